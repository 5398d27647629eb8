"""Run every benchmark in bench/ and write BENCHMARKS.md.

    .venv/bin/python bench/run.py              # full run (about 20 minutes on 2 cores), writes BENCHMARKS.md
    .venv/bin/python bench/run.py --quick      # smaller sizes, fewer repeats; writes bench/work/BENCHMARKS.quick.md
    .venv/bin/python bench/run.py --skip-fastai            # no fastai virtual environment, lessonkit side only
    .venv/bin/python bench/run.py --only loop data         # some modules; writes bench/work/BENCHMARKS.partial.md
    .venv/bin/python bench/run.py --gpu-dry-run            # the GPU rows' code on the CPU at toy sizes (a check, not a figure)

Each bench/bench_*.py module has `run(quick=False) -> list[dict]` and runs in a process of its own, so the peak
memory of one benchmark is not inflated by another. Numbers are reported, never judged: this command exits 0 even
when a goal is missed (the table says so) and is not part of the tests or CI.
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
for p in (str(REPO), str(BENCH_DIR)):
    if p not in sys.path: sys.path.insert(0, p)

from _util import WORK, log, machine_info, make_row, markdown_table, peak_rss_mb, venv_version  # noqa: E402

FASTAI_PY = BENCH_DIR / '.venv-fastai' / 'bin' / 'python'


def discover(only: list[str] | None) -> list[str]:
    "Names of the bench_*.py modules to run (all of them, or those whose name contains one of `only`)."
    mods = sorted(p.stem for p in BENCH_DIR.glob('bench_*.py'))
    if only: mods = [m for m in mods if any(o in m for o in only)]
    return mods


def child(module: str, quick: bool, out: str):
    "Runs in the subprocess: import one module, call run(quick), write its rows as JSON to `out`."
    t0 = time.perf_counter()
    mod = importlib.import_module(module)
    rows = mod.run(quick=quick)
    peak = peak_rss_mb()
    clean = []
    for r in rows or []:
        r = dict(r)
        r.setdefault('module', module)
        if r.get('peak_rss_mb') is None:
            r['peak_rss_mb'] = peak
            r['rss_scope'] = 'process'
        clean.append(r)
    Path(out).write_text(json.dumps(dict(rows=clean, seconds=time.perf_counter() - t0, peak_rss_mb=peak), default=str))


def _relay(pipe, log_path: Path):
    "Copy a child's output to our stderr and to its log file, line by line."
    with open(log_path, 'w') as logf:
        for line in iter(pipe.readline, ''):
            sys.stderr.write('  ' + line); sys.stderr.flush()
            logf.write(line); logf.flush()


def run_module(module: str, quick: bool, timeout: float, env: dict) -> tuple[list[dict], dict]:
    """Run one module in a subprocess; return its rows and facts about the process (seconds, peak RSS, exit status).
    The child's output goes through a pipe (so it never sees a terminal and draws no progress bars) to stderr and
    to bench/work/logs/<module>.log."""
    fd, out = tempfile.mkstemp(prefix=f'{module}.', suffix='.json'); os.close(fd)
    logs = WORK / 'logs'; logs.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), '--child', module, '--json', out] + (['--quick'] if quick else [])
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=str(REPO), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True, bufsize=1, start_new_session=True)
    relay = threading.Thread(target=_relay, args=(proc.stdout, logs / f'{module}.log'), daemon=True)
    relay.start()
    timed_out = False
    deadline = t0 + timeout
    # os.wait4 gives the resource use of this child (and what it waited for), so ru_maxrss is its own peak
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid: break
        if time.perf_counter() > deadline:
            timed_out = True
            try: os.killpg(proc.pid, signal.SIGKILL)  # the module and the processes it started (its own group)
            except ProcessLookupError: pass
            pid, status, ru = os.wait4(proc.pid, 0)
            break
        time.sleep(0.2)
    proc.returncode = os.waitstatus_to_exitcode(status)
    relay.join(timeout=10)
    facts = dict(seconds=time.perf_counter() - t0, tree_peak_rss_mb=ru.ru_maxrss / 1024, returncode=proc.returncode,
                 load_end=loadavg())
    try:
        data = json.loads(Path(out).read_text()) if Path(out).stat().st_size else None
    except (OSError, ValueError):
        data = None
    finally:
        Path(out).unlink(missing_ok=True)
    if data: rows = data['rows']
    else:
        why = f'timed out after {timeout:.0f} s' if timed_out else f'exited with status {proc.returncode}'
        rows = [make_row(module, f'did not finish ({why}); see bench/work/logs/{module}.log', 'error', '',
                         module=module, peak_rss_mb=facts['tree_peak_rss_mb'], rss_scope='process')]
    return rows, facts


def loadavg() -> float | None:
    "1-minute load average (how many runnable processes competed for the CPUs)."
    try: return os.getloadavg()[0]
    except OSError: return None


def versions() -> dict:
    "Versions of python, torch, torchvision, lessonkit here, and fastai in its own environment."
    v = dict(python=platform.python_version())
    for m in ('torch', 'torchvision', 'lessonkit', 'numpy', 'pandas', 'PIL'):
        try: v[m if m != 'PIL' else 'pillow'] = importlib.import_module(m).__version__
        except Exception: v[m] = None
    v['fastai'] = venv_version(FASTAI_PY, 'fastai') if FASTAI_PY.exists() else None
    v['fastai torch'] = venv_version(FASTAI_PY, 'torch') if FASTAI_PY.exists() else None
    return v


def git_rev() -> str:
    try:
        rev = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=REPO, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
        return rev + (' (with uncommitted changes)' if dirty else '')
    except OSError:
        return 'unknown'


def render(rows, facts, args, started, seconds, load0=None) -> str:
    "The whole report: header (date, machine, versions), the table, notes."
    m, v = machine_info(), versions()
    gpu = m['gpu'] or 'none (CUDA not available)'
    cmd = 'python bench/run.py' + (' --quick' if args.quick else '') + (' --skip-fastai' if args.skip_fastai else '') \
        + (f' --threads {args.threads}' if args.threads else '') \
        + (' --gpu-dry-run' if args.gpu_dry_run else ' --only ' + ' '.join(args.only) if args.only else '')
    lines = [
        '# lessonkit benchmarks', '',
        f'Produced by `{cmd}` on {started:%Y-%m-%d %H:%M} UTC in {seconds / 60:.1f} min '
        f'({"GPU dry run" if args.gpu_dry_run else "quick" if args.quick else "full"} mode, commit {git_rev()}). '
        'Everything below, the table included, is what that command printed; rerun it to refresh this file.', '',
        f'- machine: {m["cores"]} CPU cores ({m.get("affinity", m["cores"])} usable), {m["cpu"]}, '
        f'{m["mem_gib"]} GiB RAM; GPU: {gpu}; {m["os"]}',
        '- versions: ' + ', '.join(f'{k} {val}' for k, val in v.items() if val) +
        ('' if v.get('fastai') else ', fastai not installed (bench/.venv-fastai missing)'),
        f'- torch threads per process: {args.threads or "default (" + str(torch_threads()) + ")"}; 1-minute load average {f"{load0:.1f}" if load0 is not None else "?"} at the start, '
        + ', '.join(f'{f["load_end"]:.1f} after {m}' for m, f in facts.items() if f.get('load_end') is not None)
        + f' (with {m["cores"]} cores, a load above {m["cores"]} means other jobs were competing for the CPU)', '',
        'Figures are medians of several repeats. Each timed figure and its reference are measured in the same '
        'run as back-to-back pairs (which one goes first alternates), and the ratio is the median of the '
        'per-pair ratios: on shared machines absolute times drift by tens of percent, or worse while other '
        'jobs run, and pairs taken seconds apart cancel most of that (the notes give the spread of the pair '
        'ratios). "met" compares the ratio with the goal; a missed goal is reported, never hidden, and never '
        'fails anything. Peak RSS is that of the benchmark\'s own process: the row alone where marked * '
        '(peak reset before the row, or the row\'s own subprocess), else the whole module process.', '',
    ]
    table = markdown_table([dict(r, peak_rss_mb=r.get('peak_rss_mb')) for r in rows])
    # mark rows whose RSS is per row
    tl = table.split('\n')
    for i, r in enumerate(rows):
        if r.get('rss_scope') != 'process' and r.get('peak_rss_mb') is not None:
            tl[i + 2] = tl[i + 2][:-2] + '* |'
    table = '\n'.join(tl)
    lines += [table, '']
    notes = [(r['name'], r['note']) for r in rows if r.get('note')]
    if notes:
        lines += ['Notes:', ''] + [f'- {n}: {t}' for n, t in notes] + ['']
    lines += ['Modules (process wall time, peak RSS of the process tree):', '']
    lines += [f'- {mod}: {f["seconds"]:.0f} s, {f["tree_peak_rss_mb"]:.0f} MiB, exit {f["returncode"]}'
              for mod, f in facts.items()]
    return '\n'.join(lines) + '\n'


def torch_threads():
    try:
        import torch
        return torch.get_num_threads()
    except Exception:
        return None


def main(argv=None):
    ap = argparse.ArgumentParser(description='Run the lessonkit benchmarks and write BENCHMARKS.md.')
    ap.add_argument('--quick', action='store_true', help='smaller sizes and fewer repeats (a few minutes)')
    ap.add_argument('--skip-fastai', action='store_true', help='do not install or run fastai; lessonkit side only')
    ap.add_argument('--only', nargs='+', help='run only modules whose name contains one of these words')
    ap.add_argument('--out', help='where to write the report (default: BENCHMARKS.md for a full run, '
                                  'bench/work/BENCHMARKS.quick.md / .partial.md otherwise)')
    ap.add_argument('--threads', type=int, help='torch threads in every benchmark process (OMP_NUM_THREADS); default: '
                    "torch's own choice (one per core). On a machine busy with other jobs, 1 avoids threads waiting "
                    'for each other and keeps the run short; the report says which was used')
    ap.add_argument('--gpu-dry-run', action='store_true', help='run the GPU rows\' code on the CPU at toy sizes (no other '
                    'rows), to check it on a machine without CUDA; writes bench/work/BENCHMARKS.gpu-dry-run.md')
    ap.add_argument('--timeout', type=float, default=None, help='seconds allowed per module (default 1800, quick 600)')
    ap.add_argument('--child', help=argparse.SUPPRESS)
    ap.add_argument('--json', help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child: return child(args.child, args.quick, args.json)

    started, t0, load0 = dt.datetime.now(dt.timezone.utc), time.perf_counter(), loadavg()
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join([str(REPO), str(BENCH_DIR)] + ([env['PYTHONPATH']] if env.get('PYTHONPATH') else []))
    env['PYTHONUNBUFFERED'] = '1'
    if args.skip_fastai: env['LESSONKIT_BENCH_SKIP_FASTAI'] = '1'
    if args.gpu_dry_run: env['LESSONKIT_BENCH_GPU_DRY_RUN'] = '1'; args.only = ['fastai']
    if args.threads: env['OMP_NUM_THREADS'] = env['MKL_NUM_THREADS'] = str(args.threads)
    timeout = args.timeout or (600 if args.quick else 1800)
    mods = discover(args.only)
    if not mods:
        log('No bench/bench_*.py module matched; nothing to run.'); return 1
    rows, facts = [], {}
    for mod in mods:
        log(f'== {mod} ({"quick" if args.quick else "full"}) ==')
        r, f = run_module(mod, args.quick, timeout, env)
        rows += r; facts[mod] = f
        log(f'== {mod}: {len(r)} rows in {f["seconds"]:.0f} s, peak RSS {f["tree_peak_rss_mb"]:.0f} MiB ==')
    report = render(rows, facts, args, started, time.perf_counter() - t0, load0)
    print(report)
    out = Path(args.out) if args.out else WORK / 'BENCHMARKS.gpu-dry-run.md' if args.gpu_dry_run else (
        REPO / 'BENCHMARKS.md' if not (args.quick or args.only) else
        WORK / ('BENCHMARKS.quick.md' if args.quick and not args.only else 'BENCHMARKS.partial.md'))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix('.tmp')
    tmp.write_text(report)
    os.replace(tmp, out)
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / 'last_rows.json').write_text(json.dumps(dict(rows=rows, facts=facts), indent=1, default=str))
    log(f'Wrote {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
