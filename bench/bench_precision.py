"""Does the reduced-precision path cost accuracy? Every sample lesson that records a headline metric, run top to bottom
on the float32 path (LESSONKIT_PRECISION=fp32) and on the bfloat16 path (LESSONKIT_PRECISION=bf16), with three seeds
each: the lesson's own seed (42) and two others, put in place of it in the lesson's `set_seed(...)` / `SEED = ...`
lines. Each run is a process of its own (lesson_run.py), the two paths alternating. The lessons' own asserts print
a line instead of stopping the run (a seed other than the lesson's may miss a threshold tuned on 42); the rows count
those lines per path.

A row: the bfloat16 path's median metric vs the float32 path's; "agree" is yes when the two medians differ by no more
than the larger of the two spreads over seeds (max - min), i.e. when the precision moves the result no more than the
seed does. The notes give every run's metric and wall time (the lesson top to bottom, data loading and plots included):
on a CPU without native bfloat16 the bfloat16 path is emulated and slower, which the time ratio shows.

    .venv/bin/python bench/bench_precision.py [--quick]     # prints the rows as JSON (bench/run.py runs it for you)
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
for p in (str(REPO), str(BENCH_DIR)):
    if p not in sys.path: sys.path.insert(0, p)

from _util import agree_within_seeds, log, make_row, median  # noqa: E402

PATHS = ('fp32', 'bf16')


def run_lesson(nb: Path, precision: str, seed: int, timeout: float = 3600) -> dict:
    "One lesson, one path, one seed, in a fresh process; the JSON line lesson_run.py prints."
    env = dict(os.environ, LESSONKIT_PRECISION=precision, PYTHONUNBUFFERED='1', MPLBACKEND='Agg')
    env.pop('LESSONKIT_FULL', None)
    r = subprocess.run([sys.executable, str(BENCH_DIR / 'lesson_run.py'), str(nb), '--seed', str(seed)],
                       capture_output=True, text=True, timeout=timeout, env=env, cwd=str(REPO))
    lines = [l for l in r.stdout.splitlines() if l.startswith('{')]
    if r.returncode != 0 or not lines:
        sys.stderr.write(r.stdout[-3000:] + r.stderr[-3000:])
        return dict(ok=False, error=(r.stderr.strip() or r.stdout.strip())[-300:], value=None, seconds=None, notes=0)
    res = json.loads(lines[-1])
    log(f"  {nb.stem} {precision} seed {seed}: {res.get('metric')} = {res.get('value')}, {res['seconds']:.0f} s, "
        f"{res['notes']} check(s) not met")
    return res


def run(quick: bool = False) -> list[dict]:
    lessons = [p for p in sorted((REPO / 'nbs' / 'lessons').glob('*.ipynb')) if 'record_result(' in p.read_text()]
    seeds = [42] if quick else [42, 1, 2]
    if quick: lessons = [p for p in lessons if 'rossmann' in p.name or 'dogscats' in p.name]
    import torch
    from lessonkit.core import cpu_bf16_native
    native = cpu_bf16_native()
    cpu = 'native bfloat16' if native else 'no native bfloat16: the bf16 path is emulated'
    rows = []
    for nb in lessons:
        res = {p: [] for p in PATHS}
        for i, seed in enumerate(seeds):
            for p in (PATHS if i % 2 == 0 else PATHS[::-1]): res[p].append(run_lesson(nb, p, seed))
        ok = {p: [r for r in res[p] if r.get('value') is not None] for p in PATHS}
        metric = next((r['metric'] for p in PATHS for r in ok[p]), 'metric')
        what = (f"{nb.stem} on the sample, top to bottom, {metric}; LESSONKIT_PRECISION=bf16 vs fp32, seeds {seeds}, "
                f"one process per run, paths alternating; this CPU: {cpu}; torch {torch.__version__.split('+')[0]}")
        if not ok['fp32'] or not ok['bf16']:
            errs = '; '.join(f"{p} seed {s}: {r.get('error')}" for p in PATHS for s, r in zip(seeds, res[p]) if r.get('value') is None)
            rows.append(make_row(f'precision: {nb.stem}', what + f'; not measured: {errs}'[:600], 'error', ''))
            continue
        v = {p: [r['value'] for r in ok[p]] for p in PATHS}
        m = {p: median(v[p]) for p in PATHS}
        agree, diff, tol = agree_within_seeds(v['bf16'], v['fp32'])
        secs = {p: [r['seconds'] for r in ok[p]] for p in PATHS}
        notes = {p: sum(r['notes'] for r in ok[p]) for p in PATHS}
        rows.append(make_row(
            f'precision: {nb.stem}', what, m['bf16'], '', reference=f"fp32: {m['fp32']:.4g}",
            ratio=m['bf16'] / m['fp32'] if m['fp32'] else None, goal='within the seeds\' spread', ok=agree,
            note=(f"{metric} per seed {seeds}: bf16 {[round(x, 4) for x in v['bf16']]}, fp32 {[round(x, 4) for x in v['fp32']]}; "
                  f"|median difference| {diff:.4f} vs spread {tol:.4f}; lesson seconds bf16 "
                  f"{[round(x) for x in secs['bf16']]}, fp32 {[round(x) for x in secs['fp32']]} (median ratio bf16/fp32 "
                  f"{median(secs['bf16']) / median(secs['fp32']):.2f}); lesson checks not met: bf16 {notes['bf16']}, "
                  f"fp32 {notes['fp32']}")))
    return rows


if __name__ == '__main__':
    print(json.dumps(run(quick='--quick' in sys.argv), indent=1, default=str))
