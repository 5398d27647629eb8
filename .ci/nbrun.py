"Run notebooks the way nbdev_test does (cells flagged in settings.ini's tst_flags skipped unless forced), optionally saving the executed copy."
from __future__ import annotations
import os, sys, time, configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def tst_flags() -> list[str]:
    cfg = configparser.ConfigParser(); cfg.read(ROOT/'settings.ini')
    return cfg['DEFAULT'].get('tst_flags', '').split()

def run_nb(fn: Path, force_flags=(), save_to: Path | None = None, test: bool = True, edit=None) -> tuple[bool, float, str]:
    "Execute notebook `fn` in its own folder (as a test: IN_TEST=1); returns (ok, seconds, error text). `edit(cell)` may rewrite code cells first."
    from execnb.nbio import read_nb, write_nb
    from execnb.shell import CaptureShell
    from nbdev.process import NBProcessor
    from fastcore.xtras import working_directory
    if test: os.environ.setdefault('IN_TEST', '1')
    os.environ.setdefault('MPLBACKEND', 'Agg')
    flags = set(tst_flags()) - set(force_flags)
    fn = Path(fn).resolve()
    nb = NBProcessor(fn, process=True).nb
    if edit is not None:
        for c in nb.cells:
            if c.cell_type == 'code': edit(c)
    def _no_eval(cell):
        if cell.cell_type != 'code': return True
        if 'nbdev_export' + '(' in cell.source: return True
        direc = getattr(cell, 'directives_', {}) or {}
        if direc.get('eval:', [''])[0].lower() == 'false': return True
        return bool(flags & direc.keys())
    k = CaptureShell(fn)
    t0, ok, err = time.time(), True, ''
    try:
        with working_directory(fn.parent): k.run_all(nb, exc_stop=True, preproc=_no_eval)
    except Exception:
        ok, err = False, k.prettytb(fname=fn)
    dt = time.time() - t0
    if save_to is not None:
        save_to.parent.mkdir(parents=True, exist_ok=True)
        for c in nb.cells:  # drop nbdev's processing attributes before writing
            for a in ('directives_', 'idx_'): c.pop(a, None)
        write_nb(nb, save_to)
    return ok, dt, err

if __name__ == '__main__':
    force = [f for f in os.environ.get('LESSONKIT_TEST_FLAGS', '').split() if f]
    ok, dt, err = run_nb(Path(sys.argv[1]), force)
    if not ok: sys.stderr.write(err + '\n'); sys.exit(1)
    print(f'{sys.argv[1]}: ok in {dt:.1f}s')
