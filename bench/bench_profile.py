"""Where a fit's time goes, lessonkit vs fastai, each with its defaults: the recipe of the end-to-end comparison that
found lessonkit slower (resnet18 from scratch, unfrozen, SGDR 3 cycles with cycle_mult=2 = 7 epochs, bs 32, 64 px),
on scikit-learn's real handwritten digits (40 px PNGs upscaled to 64, 640 train / 320 valid), profiled the same way in
both (bench/_profile.py: cProfile grouped into the parts of a training loop, torch.profiler for tensor copies), with
lessonkit's live view on as in a notebook. One row per part: lessonkit's seconds vs fastai's, medians over the runs,
the libraries alternating. Profiling slows Python code, not the kernels: compare the two columns, not with unprofiled
times.

    .venv/bin/python bench/bench_profile.py [--quick]
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
for p in (str(REPO), str(BENCH_DIR)):
    if p not in sys.path: sys.path.insert(0, p)

from _util import WORK, log, make_digits_folder, make_row, median  # noqa: E402
from bench_fastai import ensure_fastai_venv, interleaved  # noqa: E402


def run(quick: bool = False) -> list[dict]:
    if os.environ.get('LESSONKIT_BENCH_SKIP_FASTAI'): fa_py, fa_note = None, 'skipped with --skip-fastai'
    else: fa_py, fa_note = ensure_fastai_venv()
    path = make_digits_folder(WORK / 'digits_640_320', 640, 320)
    seeds = [0] if quick else [0, 1]
    n_cycle = 2 if quick else 3
    args = lambda seed: ['--path', str(path), '--arch', 'resnet18', '--sz', '64', '--bs', '32', '--epochs', '1',
                         '--n-cycle', str(n_cycle), '--cycle-mult', '2', '--lr', '0.01', '--seed', str(seed), '--workers', '2',
                         '--aug', 'basic', '--profile']
    res = interleaved(fa_py, args, seeds)
    lk, fa = res['lessonkit'], res['fastai']
    what = (f'resnet18 from scratch, 64px, bs 32, SGDR {n_cycle} cycles cycle_mult 2, real digits 640/320, 2 workers, '
            f'{lk[0].get("threads")} torch thread(s); each library\'s defaults (lessonkit: {lk[0].get("amp")}, channels-last '
            f'{lk[0].get("channels_last")}); cProfile + torch.profiler, medians over {len(seeds)} run(s)')
    def figures(r):   # one run's seconds: the whole fit, each part, the tensor copies
        p = r['profile']
        return {'wall': p['wall_s'], **p['parts'], 'copies': p['copies_s']}
    names = {'wall': 'profile: the whole fit', 'copies': 'profile: tensor copies (aten _to_copy/copy_/clone/contiguous, self CPU)'}
    rows = []
    for k in figures(lk[0]):
        a, b = median([figures(r)[k] for r in lk]), (median([figures(r)[k] for r in fa]) if fa else None)
        rows.append(make_row(names.get(k, f'profile: {k}'), what, a, 's',
                             reference=(f'fastai: {b:.3g} s' if fa else f'fastai not run ({fa_note})'),
                             ratio=(a / b if fa and b else None), goal=None))
    top = lambda rs: ', '.join(f'{k} {v:.2f}' for k, v in rs[0]['profile']['top_ops'][:6])
    rows[0]['note'] = f"lessonkit's costliest ops (self CPU s): {top(lk)}" + (f"; fastai's: {top(fa)}" if fa else '')
    return rows


if __name__ == '__main__':
    print(json.dumps(run(quick='--quick' in sys.argv), indent=1, default=str))
