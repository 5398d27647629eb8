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


# The names the course's lesson 1-3 notebooks use without importing them, which their star imports
# (`from fastai.conv_learner import *`, `from fastai.structured import *`, `from fastai.column_data import *`) gave.
COMMON = ['np', 'pd', 'plt', 'PIL', 'Image', 'glob', 'os', 're', 'sys', 'math', 'datetime', 'json', 'Path', 'display',
          'FileLink', 'torch', 'nn', 'F', 'DataLoader', 'Dataset']
COURSE_NAMES = {
    'conv_learner': COMMON + ['ConvLearner', 'ImageClassifierData', 'tfms_from_model', 'transforms_side_on',
                              'transforms_top_down', 'resnet34', 'resnext101_64', 'get_cv_idxs', 'open_image', 'accuracy',
                              'accuracy_np', 'f2', 'to_np', 'plots', 'plots_from_files', 'plot_confusion_matrix',
                              'FilesIndexArrayDataset', 'metrics', 'confusion_matrix'],
    'structured': COMMON + ['add_datepart', 'join_df', 'apply_cats', 'train_cats', 'proc_df'],
    'column_data': COMMON + ['ColumnarModelData', 'split_by_idx', 'get_cv_idxs'],
}

@pytest.mark.parametrize('mod', sorted(COURSE_NAMES))
def test_course_star_import(mod, tmp_path):
    "A fresh process's star import gives every name the course's notebooks use, and the ones the course uses oddly work as there."
    code = (f'from lessonkit.{mod} import *\n'
            f'missing = [n for n in {COURSE_NAMES[mod]!r} if n not in globals()]\n'
            'assert not missing, missing\n'
            "assert callable(glob) and glob('*.nothing') == []\n"                 # glob is the function, as in the course
            'assert datetime.datetime(2014, 9, 17).month == 9\n'                  # datetime is the module
            "assert PIL.Image.open is Image.open and math.sqrt(4) == 2\n"
            "print(repr(FileLink('sub.csv')))\n")
    env = {'PATH': '/usr/bin:/bin', 'HOME': str(tmp_path), 'PYTHONPATH': str(ROOT), 'MPLBACKEND': 'Agg'}
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'sub.csv' in r.stdout

def test_display_without_ipython(tmp_path):
    "Without IPython (a plain Python install), display prints and FileLink shows the path."
    code = ("import sys; sys.modules['IPython'] = None\n"
            'from lessonkit.imports import *\n'
            "display(pd.DataFrame({'a': [1]})); print(repr(FileLink('tmp/sub.csv')))\n")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=tmp_path,
                       env={'PATH': '/usr/bin:/bin', 'HOME': str(tmp_path), 'PYTHONPATH': str(ROOT)})
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split('\n')[:3] == ['   a', '0  1', 'tmp/sub.csv']
