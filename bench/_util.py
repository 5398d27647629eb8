"""Shared pieces of the benchmarks: timing, peak memory, rows, markdown tables, sample JPEGs.

Benchmarks report numbers; they never assert on them. Every timed figure is the median of several
repeats after a warm-up, and every row carries the ratio against a reference measured in the same run.
"""
from __future__ import annotations

import gc
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
WORK = BENCH_DIR / 'work'  # scratch space for generated images and caches (git-ignored)

ROW_KEYS = ('name', 'what', 'figure', 'unit', 'reference', 'ratio', 'goal', 'ok', 'peak_rss_mb')


# ---------------------------------------------------------------- timing

def median(xs):
    "Median of a non-empty sequence of numbers."
    return statistics.median(list(xs))


def time_it(fn, repeats: int = 5, warmup: int = 1) -> dict:
    "Call `fn()` `warmup` times untimed, then `repeats` times; return median, min, max and all times (seconds)."
    for _ in range(warmup): fn()
    times = []
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return dict(median=median(times), min=min(times), max=max(times), times=times)


def time_pair(fn_a, fn_b, repeats: int = 5, warmup: int = 1, setup_a=None, setup_b=None) -> tuple[dict, dict]:
    """Time two functions back to back, `repeats` times (a, b, then b, a, ...), so that the slow drifts of a noisy
    machine hit both alike. Returns (stats_a, stats_b) like `time_it`; stats_a also has 'ratios' (a/b of each
    back-to-back pair) and 'ratio' (their median), the figure to quote: on a shared machine it is far steadier
    than the ratio of the two medians. `setup_a` / `setup_b` run untimed before each call of `fn_a` / `fn_b`."""
    nop = lambda: None
    setup_a, setup_b = setup_a or nop, setup_b or nop
    for _ in range(warmup): setup_a(); fn_a(); setup_b(); fn_b()
    ta, tb = [], []
    for i in range(repeats):
        # alternate which one goes first, so neither always runs on a warmer cache
        a, b = (fn_a, ta, setup_a), (fn_b, tb, setup_b)
        for fn, acc, setup in ((a, b) if i % 2 == 0 else (b, a)):
            setup()
            gc.collect()
            t0 = time.perf_counter()
            fn()
            acc.append(time.perf_counter() - t0)
    st = lambda ts: dict(median=median(ts), min=min(ts), max=max(ts), times=ts)
    sa, sb = st(ta), st(tb)
    sa['ratios'] = [a / b for a, b in zip(ta, tb)]
    sa['ratio'] = median(sa['ratios'])
    return sa, sb


def paired_ratio(xs, ys) -> tuple[float, list[float]]:
    "Median of x_i / y_i over pairs measured back to back, and the list of those ratios."
    rs = [x / y for x, y in zip(xs, ys)]
    return median(rs), rs


def spread(rs) -> str:
    "'min-max' of a list of ratios, for the notes."
    return f'{min(rs):.3g}-{max(rs):.3g}'


def agree_within_seeds(xs, ys) -> tuple[bool, float, float]:
    """Do two sets of per-seed results agree? (yes when their medians differ by no more than the larger of the two
    ranges over seeds, i.e. the change moves the result no more than the seed does; the difference; that range)."""
    d, tol = abs(median(xs) - median(ys)), max(max(xs) - min(xs), max(ys) - min(ys))
    return d <= tol, d, tol


# ---------------------------------------------------------------- memory

def _status_kb(field: str) -> float | None:
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'): return float(line.split()[1])
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    "Peak resident memory of this process so far, in MiB (VmHWM; getrusage where /proc is missing)."
    kb = _status_kb('VmHWM')
    if kb is None: kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux
    return kb / 1024


def rss_mb() -> float:
    "Current resident memory of this process in MiB."
    kb = _status_kb('VmRSS')
    return (kb or 0) / 1024


def reset_peak_rss() -> bool:
    "Reset this process's peak-RSS mark so the next `peak_rss_mb()` covers only what follows (Linux only)."
    try:
        with open('/proc/self/clear_refs', 'w') as f: f.write('5')
        return True
    except OSError:
        return False


# ---------------------------------------------------------------- rows and tables

def check_goal(ratio, goal: str | None):
    "True/False when `ratio` meets/misses a goal written like '<= 1.05' or '>= 10'; None when there is nothing to check."
    if goal is None or ratio is None: return None
    g = goal.strip()
    for op in ('<=', '>=', '<', '>'):
        if g.startswith(op):
            try: lim = float(g[len(op):].strip().rstrip('x'))
            except ValueError: return None
            return {'<=': ratio <= lim, '>=': ratio >= lim, '<': ratio < lim, '>': ratio > lim}[op]
    return None


def make_row(name, what, figure, unit, reference=None, ratio=None, goal=None, ok=None, peak_rss_mb=None, **extra) -> dict:
    """One benchmark row. `reference` says what the ratio is taken against (with its figure);
    `ratio` = figure / reference figure; `ok` is worked out from `goal` when not given."""
    if ok is None: ok = check_goal(ratio, goal)
    row = dict(name=name, what=what, figure=figure, unit=unit, reference=reference, ratio=ratio,
               goal=goal, ok=ok, peak_rss_mb=peak_rss_mb)
    row.update(extra)
    return row


def fmt_num(x, digits: int = 3) -> str:
    "A number with `digits` significant digits, thousands kept whole; '' for None; text passes through."
    if x is None: return ''
    if isinstance(x, bool): return 'yes' if x else 'no'
    if isinstance(x, str): return x
    if isinstance(x, int): return f'{x:,}'
    if x != x: return 'nan'
    ax = abs(x)
    if ax >= 10 ** digits: return f'{x:,.0f}'
    if ax == 0: return '0'
    return f'{x:.{digits}g}'


def _cell(s) -> str:
    return str(s).replace('|', '\\|').replace('\n', ' ')


def markdown_table(rows: list[dict]) -> str:
    "Markdown table of benchmark rows: name, what was run, figure, reference, ratio, goal, met, peak RSS."
    head = ['benchmark', 'what was run', 'figure', 'reference (same run)', 'ratio', 'goal', 'met', 'peak RSS MiB']
    out = ['| ' + ' | '.join(head) + ' |', '|' + '|'.join(['---'] * len(head)) + '|']
    for r in rows:
        fig = fmt_num(r.get('figure'))
        if r.get('unit') and r.get('figure') is not None and not isinstance(r.get('figure'), str):
            fig = f"{fig} {r['unit']}"
        ok = r.get('ok')
        met = '' if ok is None else ('yes' if ok else '**NO**')
        ratio = r.get('ratio')
        ref = r.get('reference')
        ref_s = fmt_num(ref)
        if isinstance(ref, (int, float)) and not isinstance(ref, bool) and r.get('unit'): ref_s += f" {r['unit']}"
        if r.get('reference_what'): ref_s = f"{r['reference_what']}: {ref_s}" if ref_s else r['reference_what']
        cells = [r.get('name', ''), r.get('what', ''), fig, ref_s,
                 '' if ratio is None else f'{fmt_num(ratio)}x', r.get('goal') or '', met,
                 fmt_num(r.get('peak_rss_mb'), 4) if r.get('peak_rss_mb') is not None else '']
        out.append('| ' + ' | '.join(_cell(c) for c in cells) + ' |')
    return '\n'.join(out)


# ---------------------------------------------------------------- machine

def machine_info() -> dict:
    "Cores, CPU model, memory, OS and GPU (if torch sees one) of this machine."
    info = dict(cores=os.cpu_count(), cpu=platform.processor() or platform.machine(), os=platform.platform())
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    info['cpu'] = line.split(':', 1)[1].strip(); break
    except OSError:
        pass
    try:
        info['affinity'] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    kb = None
    try:
        with open('/proc/meminfo') as f:
            kb = float(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    info['mem_gib'] = round(kb / 2 ** 20, 1) if kb else None
    info['gpu'] = None
    try:
        import torch
        if torch.cuda.is_available():
            info['gpu'] = ', '.join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    except Exception:
        pass
    return info


def venv_version(python: str | Path, module: str) -> str | None:
    "`module.__version__` as seen by another interpreter (None when missing)."
    try:
        r = subprocess.run([str(python), '-c', f'import {module}; print({module}.__version__)'],
                           capture_output=True, text=True, timeout=120)
        return r.stdout.strip() or None if r.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        return None


# ---------------------------------------------------------------- sample images

def _save_image(img, p: Path, **kw):
    "Save a PIL image to `p` through a temporary file, so that an interrupted run leaves no half-written image in the cache."
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix('.tmp')
    img.save(tmp, **kw)
    os.replace(tmp, p)


def make_jpegs(dest: Path | str, n: int = 300, size: tuple[int, int] = (500, 375), seed: int = 0,
               classes: tuple[str, ...] = ('cats', 'dogs'), quality: int = 90) -> list[Path]:
    """Write `n` deterministic (seeded) RGB JPEGs of `size` (w, h) under dest/<class>/, split evenly over `classes`.
    Each image is a smooth colour field plus a bright ellipse whose shape depends on the class, so the
    classes can be learned. Existing files of the same name are kept (it is a cache). Returns the paths."""
    import numpy as np
    from PIL import Image
    dest = Path(dest)
    w, h = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    paths = []
    for i in range(n):
        c = i % len(classes)
        base = rng.uniform(40, 200, size=3).astype(np.float32)
        gx, gy = rng.uniform(-0.15, 0.15, size=2)
        cx, cy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h
        ax_, ay_ = (w * 0.25, h * 0.12) if c % 2 == 0 else (w * 0.1, h * 0.3)
        noise = rng.normal(0, 12, size=(h // 8 + 1, w // 8 + 1, 3)).astype(np.float32)
        p = dest / classes[c] / f'{classes[c][:-1] if classes[c].endswith("s") else classes[c]}.{i}.jpg'
        paths.append(p)
        if p.exists(): continue
        img = base + (gx * xx + gy * yy)[..., None]
        img = img + np.kron(noise, np.ones((8, 8, 1), np.float32))[:h, :w]
        mask = ((xx - cx) / ax_) ** 2 + ((yy - cy) / ay_) ** 2 <= 1
        img[mask] = img[mask] * 0.3 + np.array([230, 220, 120], np.float32) * 0.7
        _save_image(Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)), p, format='JPEG', quality=quality)
    return paths


def make_image_folder(root: Path | str, n_train: int = 256, n_valid: int = 128, size=(500, 375), seed: int = 0) -> Path:
    "An ImageFolder-style tree root/{train,valid}/{cats,dogs}/*.jpg of generated JPEGs (cached). Returns root."
    root = Path(root)
    make_jpegs(root / 'train', n_train, size, seed=seed)
    make_jpegs(root / 'valid', n_valid, size, seed=seed + 1)
    return root


def make_digits_folder(root: Path | str, n_train: int = 600, n_valid: int = 300, px: int = 40, seed: int = 0) -> Path:
    """An ImageFolder-style tree root/{train,valid}/<digit>/<index>.png of real handwritten digits (scikit-learn's
    `load_digits`: 1,797 8x8 scans, 10 classes), upsampled to `px` x `px` RGB PNGs (lossless). A seeded permutation
    picks `n_train` + `n_valid` distinct images. Existing files are kept (it is a cache). Returns root."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits
    d = load_digits()
    if n_train + n_valid > len(d.target): raise ValueError(f'load_digits has {len(d.target)} images; asked for {n_train} + {n_valid}')
    root = Path(root)
    idx = np.random.default_rng(seed).permutation(len(d.target))
    for split, ids in (('train', idx[:n_train]), ('valid', idx[n_train:n_train + n_valid])):
        for i in ids:
            p = root / split / str(d.target[i]) / f'{i}.png'
            if p.exists(): continue
            img = Image.fromarray((d.images[i] / 16 * 255).astype(np.uint8)).resize((px, px), Image.BILINEAR).convert('RGB')
            _save_image(img, p, format='PNG')
    return root


def log(*args):
    "Progress messages go to stderr so stdout carries only the results."
    print(*args, file=sys.stderr, flush=True)
