"""End to end: the same small task in lessonkit and in the current fastai 2.x, each in a process of its own.

CPU rows: resnet18 from scratch at 32 px on real handwritten digits (scikit-learn's load_digits written as an
ImageFolder tree of 40 px PNGs: 640 train, 320 valid, 10 classes), fixed epochs, one SGDR cycle, SGD momentum 0.9,
same batch size and number of loader workers: wall time per epoch, final validation accuracy and peak RSS, lessonkit
vs fastai. Four variants per seed, their order rotating: lessonkit's defaults, lessonkit on its other numeric path
(fp32 where the default is bfloat16, bf16 elsewhere: accuracy and time of the two paths), fastai's defaults, and, on a
CPU with native bfloat16 only, fastai's best settings for it (to_bf16() + to_channelslast()); without native
bfloat16 that row reads "not measured". GPU rows (only where CUDA is available): training images/s of resnet34 at 224 px with mixed precision and
channels_last; LESSONKIT_BENCH_GPU_DRY_RUN=1 (run.py --gpu-dry-run) runs that code on the CPU at toy sizes instead.

fastai lives in its own virtual environment, bench/.venv-fastai (git-ignored), created on first use with the same
torch and torchvision as lessonkit's environment: `python -m venv` + `pip install torch==X torchvision==Y 'fastai>=2.7,<3'`.
LESSONKIT_BENCH_SKIP_FASTAI=1 (run.py --skip-fastai) runs the lessonkit side only.

    .venv/bin/python bench/bench_fastai.py [--quick]      # prints the rows as JSON (bench/run.py runs it for you)
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
for p in (str(REPO), str(BENCH_DIR)):
    if p not in sys.path: sys.path.insert(0, p)

from _util import (WORK, agree_within_seeds, log, make_digits_folder, make_image_folder, make_row, median,  # noqa: E402
                   paired_ratio, spread)

FASTAI_VENV = BENCH_DIR / '.venv-fastai'
FASTAI_PY = FASTAI_VENV / 'bin' / 'python'
FASTAI_SPEC = 'fastai>=2.7,<3'


def _works(py: Path) -> str | None:
    "fastai's version if `py` can import fastai and torchvision, else None."
    if not py.exists(): return None
    r = subprocess.run([str(py), '-c', 'import torch, torchvision, fastai; print(fastai.__version__)'],
                       capture_output=True, text=True, timeout=300)
    return r.stdout.strip() if r.returncode == 0 else None


def ensure_fastai_venv() -> tuple[Path | None, str]:
    "Create bench/.venv-fastai with this environment's torch/torchvision and fastai 2.x if needed; (python, what was done)."
    import torch, torchvision
    tv, tvv = torch.__version__.split('+')[0], torchvision.__version__.split('+')[0]
    have = _works(FASTAI_PY)
    if have: return FASTAI_PY, f'fastai {have} from the existing bench/.venv-fastai'
    log(f'Creating {FASTAI_VENV} (torch=={tv}, torchvision=={tvv}, {FASTAI_SPEC}); this takes a few minutes, once.')
    t0 = time.perf_counter()
    subprocess.run([sys.executable, '-m', 'venv', '--clear', str(FASTAI_VENV)], check=True)
    pip = [str(FASTAI_PY), '-m', 'pip', 'install', '--quiet']
    r = subprocess.run(pip + [f'torch=={tv}', f'torchvision=={tvv}', FASTAI_SPEC])
    how = 'pip install torch, torchvision and fastai together'
    if r.returncode != 0:
        # fastai's own pins refused this torch: install torch first, then fastai without letting it replace torch
        log('fastai did not install beside this torch; installing torch first, then fastai with --no-deps plus its other requirements')
        subprocess.run(pip + [f'torch=={tv}', f'torchvision=={tvv}'], check=True)
        subprocess.run(pip + ['--no-deps', FASTAI_SPEC], check=True)
        subprocess.run(pip + ['fastcore', 'fasttransform', 'fastdownload', 'fastprogress', 'plum-dispatch', 'matplotlib', 'pandas',
                              'scikit-learn', 'scipy', 'pyyaml', 'requests', 'pillow', 'packaging', 'cloudpickle', 'spacy'], check=True)
        how = 'torch pinned first, then fastai --no-deps'
    have = _works(FASTAI_PY)
    if not have: return None, 'could not install fastai (see the log above)'
    return FASTAI_PY, f'installed fastai {have} ({how}) in {time.perf_counter() - t0:.0f} s'


def run_task(lib: str, py: Path, args: list[str], timeout: float = 1800) -> dict:
    "Run lessonkit_task.py / fastai_task.py with `py`; return the JSON line it prints."
    script = BENCH_DIR / f'{lib}_task.py'
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    if lib == 'fastai': env.pop('PYTHONPATH', None)  # keep lessonkit's environment out of fastai's
    r = subprocess.run([str(py), str(script), *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=str(REPO))
    lines = [l for l in r.stdout.splitlines() if l.startswith('{')]
    if r.returncode != 0 or not lines:
        sys.stderr.write(r.stdout[-3000:] + r.stderr[-3000:])
        raise RuntimeError(f'{script.name} {" ".join(args)} failed with status {r.returncode}: {r.stderr.strip()[-300:]}')
    res = json.loads(lines[-1])
    log(f"  {lib} {' '.join(args)}: fit {res['fit_s']:.1f} s, epochs {[round(t, 1) for t in res['epoch_s']]}, "
        f"acc {res['val_acc']:.3f}, peak RSS {res['peak_rss_mb']:.0f} MiB")
    return res


def interleaved(fa_py: Path | None, args_for_seed, seeds, variants=None) -> dict[str, list[dict]]:
    """Run every variant once per seed, the order rotating from seed to seed. `variants`: {label: (lib, extra args)};
    by default lessonkit and fastai, each with its defaults."""
    variants = variants or {'lessonkit': ('lessonkit', []), 'fastai': ('fastai', [])}
    out = {k: [] for k in variants}
    labels = list(variants)
    for i, seed in enumerate(seeds):
        k = i % len(labels)
        for label in labels[k:] + labels[:k]:
            lib, extra = variants[label]
            if lib == 'fastai' and fa_py is None: continue
            out[label].append(run_task(lib, fa_py if lib == 'fastai' else Path(sys.executable), args_for_seed(seed) + extra))
    return out


def cpu_rows(quick: bool, fa_py: Path | None, fa_note: str) -> list[dict]:
    # Real data that both libraries learn in a few epochs from scratch, so the accuracy row compares something: the
    # synthetic dogs-vs-cats sample needs ~15 epochs at 64 px (lesson 1) and stays near chance in a budget like this one.
    from lessonkit.core import cpu_bf16_native, resolved_precision
    n_trn, n_val = (320, 160) if quick else (640, 320)  # whole batches of 32: fastai drops a last partial batch, lessonkit keeps it
    path = make_digits_folder(WORK / f'digits_{n_trn}_{n_val}', n_trn, n_val)
    what_data = "scikit-learn's real 8x8 handwritten digits as 40 px PNGs, 10 classes"
    epochs, seeds = (2, [0]) if quick else (4, [0, 1, 2])  # three seeds of four variants: about 10 minutes on 2 cores
    sz, bs, workers, lr = 32, 32, 2, 0.01
    args = lambda seed: ['--path', str(path), '--arch', 'resnet18', '--sz', str(sz), '--bs', str(bs), '--epochs', str(epochs),
                         '--lr', str(lr), '--seed', str(seed), '--workers', str(workers), '--aug', 'basic']
    native = cpu_bf16_native()
    default = resolved_precision('cpu', conv=True)
    other = 'fp32' if default != 'fp32' else 'bf16'
    variants = {'lessonkit': ('lessonkit', []), 'fastai': ('fastai', []), 'lessonkit other': ('lessonkit', ['--precision', other])}
    if native: variants['fastai best'] = ('fastai', ['--best'])
    res = interleaved(fa_py, args, seeds, variants)
    lk, fa, lo, fb = res['lessonkit'], res['fastai'], res['lessonkit other'], res.get('fastai best', [])
    epoch_of = lambda r: r['fit_s'] / len(r['epoch_s'])
    per_epoch = lambda rs: median([epoch_of(r) for r in rs])
    steady = lambda rs: median([median(r['epoch_s'][1:] or r['epoch_s']) for r in rs])
    acc = lambda rs: median([r['val_acc'] for r in rs])
    rss = lambda rs: max(r['peak_rss_mb'] for r in rs)
    accs = lambda rs: str([round(r['val_acc'], 3) for r in rs])
    n = f"{lk[0]['n_train']} train / {lk[0]['n_valid']} valid"
    what = (f'resnet18 from scratch, {sz}px, {what_data} ({n}), {epochs} epochs as one SGDR cycle, lr {lr}, SGD mom 0.9, '
            f'bs {bs}, {workers} loader workers, {lk[0].get("threads")} torch thread(s), rotate + lighting (no flips); median over {len(seeds)} seed(s), the '
            f'variants alternating')
    fa_v = fa[0]['version'] if fa else None
    ref = lambda fmt, f: (f"fastai {fa_v}: {fmt.format(f(fa))}" if fa else f'fastai not run ({fa_note})')
    ratio = lambda f: f(lk) / f(fa) if fa and f(fa) else None
    t_ratio, t_ratios = paired_ratio([epoch_of(r) for r in lk], [epoch_of(r) for r in fa]) if fa else (None, [])
    lk_path = f"lessonkit defaults (here: {default}{' + channels-last' if lk[0].get('channels_last') else ''})"
    rows = [
        make_row('e2e wall time per epoch', what + f'; {lk_path} vs fastai defaults (float32); fit wall time / epochs '
                 '(workers starting, validation included)',
                 per_epoch(lk), 's/epoch', reference=ref('{:.3g} s/epoch', per_epoch), ratio=t_ratio,
                 goal='<= 0.8' if native else '<= 1.0', peak_rss_mb=rss(lk), rss_scope='row',
                 note=f"steady-state epochs (2nd on): lessonkit {steady(lk):.3g} s, fastai "
                      f"{steady(fa) if fa else float('nan'):.3g} s" + (f'; pair ratios {spread(t_ratios)}' if fa else '') +
                      f"; goal {'0.8x on a CPU with native bfloat16' if native else '1.0x without native bfloat16'}; fastai: {fa_note}"),
        make_row('e2e final validation accuracy', what + f'; {lk_path} vs fastai defaults', acc(lk), '', reference=ref('{:.3f}', acc),
                 ratio=ratio(acc), goal='>= 1.0', peak_rss_mb=rss(lk), rss_scope='row',
                 note='accuracies per seed: lessonkit ' + accs(lk) + (', fastai ' + accs(fa) if fa else '')),
    ]
    if not native:
        rows.append(make_row('e2e wall time per epoch vs fastai best', 'lessonkit defaults vs fastai with to_bf16() and '
                             'channels-last: not measured: this CPU has no native bfloat16', 'not measured', '',
                             reference='fastai to_bf16() + to_channelslast()'))
    elif fb:
        b_ratio, b_ratios = paired_ratio([epoch_of(r) for r in lk], [epoch_of(r) for r in fb])
        eff = 'autocast took effect' if all(r.get('amp_effective') for r in fb) else \
            f"fastai's autocast did not take effect on the CPU (its first convolution computed in {fb[0].get('conv_dtype')}): its best here is float32 + channels-last"
        rows += [
            make_row('e2e wall time per epoch vs fastai best', what + f'; {lk_path} vs fastai with its settings for a bfloat16 '
                     'CPU (learn.to_bf16() + learn.to_channelslast())', per_epoch(lk), 's/epoch',
                     reference=f"fastai best: {per_epoch(fb):.3g} s/epoch", ratio=b_ratio, goal='<= 1.0', peak_rss_mb=rss(lk),
                     rss_scope='row', note=f'pair ratios {spread(b_ratios)}; steady-state epochs fastai best {steady(fb):.3g} s; {eff}'),
            make_row('e2e final validation accuracy vs fastai best', what, acc(lk), '', reference=f'fastai best: {acc(fb):.3f}',
                     ratio=acc(lk) / acc(fb) if acc(fb) else None, goal='>= 1.0', peak_rss_mb=rss(lk), rss_scope='row',
                     note='accuracies per seed: lessonkit ' + accs(lk) + ', fastai best ' + accs(fb)),
        ]
    if lo:
        bf, fp = (lk, lo) if default == 'bf16' else (lo, lk)
        same, d, spread_acc = agree_within_seeds([r['val_acc'] for r in bf], [r['val_acc'] for r in fp])
        p_ratio, p_ratios = paired_ratio([epoch_of(r) for r in bf], [epoch_of(r) for r in fp])
        rows += [
            make_row('e2e accuracy, lessonkit bf16 vs fp32', what + '; lessonkit precision=bf16 vs fp32 (the default and '
                     f'the other path, {"native" if native else "emulated"} bfloat16)', acc(bf), '', reference=f'fp32: {acc(fp):.3f}',
                     ratio=acc(bf) / acc(fp) if acc(fp) else None, goal="within the seeds' spread", ok=same,
                     peak_rss_mb=rss(bf), rss_scope='row',
                     note=f'accuracies per seed: bf16 {accs(bf)}, fp32 {accs(fp)}; |median difference| {d:.3f} vs spread {spread_acc:.3f}'),
            make_row('e2e wall time per epoch, lessonkit bf16 vs fp32', what, per_epoch(bf), 's/epoch',
                     reference=f'fp32: {per_epoch(fp):.3g} s/epoch', ratio=p_ratio, goal=None, peak_rss_mb=rss(bf), rss_scope='row',
                     note=f"pair ratios {spread(p_ratios)}; {'native' if native else 'emulated (no native bfloat16 on this CPU)'} bfloat16"),
        ]
    rows.append(make_row('e2e peak RSS', 'peak resident memory of the training process of the e2e task above (max over seeds)',
                         rss(lk), 'MiB', reference=ref('{:.0f} MiB', rss), ratio=ratio(rss), goal=None, peak_rss_mb=rss(lk),
                         rss_scope='row'))
    for r in rows:
        if 'note' in r and r['note'] is None: r.pop('note')
    return rows


def gpu_rows(quick: bool, fa_py: Path | None, fa_note: str, dry_run: bool = False) -> list[dict]:
    """resnet34 at 224 px, fp16 mixed precision + channels_last, training images/s (steady-state epochs, training phase
    only). `dry_run` runs the same code on the CPU with tiny sizes (64 px, 64 images), to check the recipe, the task
    scripts and this row before a GPU is at hand; its figures mean nothing."""
    import torch
    if dry_run: n_trn, n_val, sz, epochs, bs, seeds = 64, 32, 64, 2, 16, [0]
    elif quick: n_trn, n_val, sz, epochs, bs, seeds = 512, 128, 224, 3, 64, [0]
    else: n_trn, n_val, sz, epochs, bs, seeds = 2048, 256, 224, 4, 128, [0, 1]
    path = make_image_folder(WORK / f'gpu_imgs_{n_trn}', n_trn, n_val)
    workers = 2 if dry_run else min(8, os.cpu_count() or 1)
    args = lambda seed: ['--path', str(path), '--arch', 'resnet34', '--sz', str(sz), '--bs', str(bs), '--epochs', str(epochs),
                         '--lr', '0.05', '--seed', str(seed), '--workers', str(workers), '--gpu'] + (['--device', 'cpu'] if dry_run else [])
    res = interleaved(fa_py, args, seeds)
    lk, fa = res['lessonkit'], res['fastai']
    ips_of = lambda r: r['n_train'] / median(r['train_s'][1:] or r['train_s'])
    ips = lambda rs: median([ips_of(r) for r in rs])
    fa_v = fa[0]['version'] if fa else None
    r_lk, r_fa = ips(lk), (ips(fa) if fa else None)
    ratio = paired_ratio([ips_of(r) for r in lk], [ips_of(r) for r in fa])[0] if fa else None
    slower = None if ratio is None else ('lessonkit' if ratio < 1 else 'fastai')
    device = 'CPU (dry run: both libraries switch float16 autocast off on the CPU, so this runs float32 + channels_last)' \
        if dry_run else torch.cuda.get_device_name(0)
    gpu_mb = lambda rs: max(r.get('peak_gpu_mb') or 0 for r in rs)
    row = make_row(
        ('DRY RUN, not a measurement: ' if dry_run else '') + f'GPU train images/s, resnet34 {sz}px AMP channels_last',
        f'{device}; resnet34 from scratch, {sz}px, fp16 autocast + grad scaling, channels_last, '
        f'{n_trn} generated 500x375 JPEGs, bs {bs}, {workers} workers, each library\'s own data pipeline; training phase '
        f'of epochs 2-{epochs} (epoch 1 is warm-up)', r_lk, 'img/s',
        reference=(f'fastai {fa_v}: {r_fa:.0f} img/s' if fa else f'fastai not run ({fa_note})'), ratio=ratio, goal='>= 1.0',
        peak_rss_mb=max(r['peak_rss_mb'] for r in lk), rss_scope='row',
        note=(f'SLOWER: {slower}' if slower else 'no fastai figure') +
             ('' if dry_run else f'; peak GPU memory lessonkit {gpu_mb(lk):.0f} MiB' + (f', fastai {gpu_mb(fa):.0f} MiB' if fa else '')))
    return [row]


def run(quick: bool = False) -> list[dict]:
    """CPU rows always; GPU rows when CUDA is available (on the CPU with LESSONKIT_BENCH_GPU_DRY_RUN=1, and nothing
    else); each section reports an error row instead of stopping the rest."""
    import traceback
    if os.environ.get('LESSONKIT_BENCH_SKIP_FASTAI'): fa_py, fa_note = None, 'skipped with --skip-fastai'
    else:
        try: fa_py, fa_note = ensure_fastai_venv()
        except Exception as e:
            traceback.print_exc(); fa_py, fa_note = None, f'install failed: {type(e).__name__}: {e}'[:200]
    log(f'fastai: {fa_note}')
    rows = []
    if os.environ.get('LESSONKIT_BENCH_GPU_DRY_RUN'):  # run.py --gpu-dry-run: the GPU rows' code on the CPU, nothing else
        return gpu_rows(quick, fa_py, fa_note, dry_run=True)
    try: rows += cpu_rows(quick, fa_py, fa_note)
    except Exception as e:
        traceback.print_exc()
        rows.append(make_row('e2e lessonkit vs fastai', f'not measured: {type(e).__name__}: {e}'[:300], 'error', ''))
    import torch
    if torch.cuda.is_available():
        try: rows += gpu_rows(quick, fa_py, fa_note)
        except Exception as e:
            traceback.print_exc()
            rows.append(make_row('GPU train images/s', f'not measured: {type(e).__name__}: {e}'[:300], 'error', ''))
    return rows


if __name__ == '__main__':
    print(json.dumps(run(quick='--quick' in sys.argv), indent=1, default=str))
