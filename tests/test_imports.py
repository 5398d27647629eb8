"Every lessonkit module imports cleanly in a fresh Python process, prints nothing, and needs no notebook state."
import subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
MODS = sorted(p.stem for p in (ROOT/'lessonkit').glob('*.py') if not p.stem.startswith('_'))

@pytest.mark.parametrize('mod', MODS)
def test_fresh_import(mod, tmp_path):
    # run from an empty folder with an empty HOME: no data, no kaggle credentials, no notebook
    env = {'PATH': '/usr/bin:/bin', 'HOME': str(tmp_path), 'PYTHONPATH': str(ROOT)}
    r = subprocess.run([sys.executable, '-c', f'import lessonkit.{mod}'], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout == '', f'importing lessonkit.{mod} printed: {r.stdout[:500]!r}'

def test_modules_found():
    assert {'core', 'learner', 'sched'} <= set(MODS)
