"Every notebook in nbs/ (library and lessons) as one pytest case, with nbdev's test semantics: cells flagged `full` are skipped."
import os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
NBS = sorted(p for p in (ROOT/'nbs').rglob('*.ipynb') if '.ipynb_checkpoints' not in p.parts)

@pytest.mark.parametrize('nb', NBS, ids=[str(p.relative_to(ROOT/'nbs')) for p in NBS])
def test_notebook(nb):
    # each notebook in a fresh process: no state leaks from one notebook into the next
    env = {**os.environ, 'IN_TEST': '1', 'MPLBACKEND': 'Agg'}
    if os.environ.get('PYTEST_XDIST_WORKER'): env['OMP_NUM_THREADS'] = '1'   # one core per pytest worker
    r = subprocess.run([sys.executable, str(ROOT/'.ci'/'nbrun.py'), str(nb)], capture_output=True, text=True, env=env)
    assert r.returncode == 0, f'{nb.name} failed:\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}'
