"`python -m lessonkit.train`: the image lesson as a script, on one process and under torchrun (2 CPU processes, gloo)."
import os, shutil, subprocess, sys
from pathlib import Path
import pytest, torch
from lessonkit.core import data_root

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ddp_common import torchrun_cmd

ARGS = ['--arch', 'resnet18', '--sz', '32', '--bs', '32', '--cycles', '1', '--no-pretrained', '--lr', '0.01', '--save', 'script']

@pytest.fixture
def dogscats(tmp_path):
    dest = tmp_path/'dogscats'
    shutil.copytree(data_root()/'dogscats', dest)     # the script writes models/ next to the data
    return dest

def run(cmd, cwd):
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=cwd)

def test_script_trains_and_saves(dogscats):
    r = run([sys.executable, '-m', 'lessonkit.train', str(dogscats), *ARGS], dogscats.parent)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert 'TTA accuracy on the validation set' in r.stdout + r.stderr
    ck = torch.load(dogscats/'models'/'script.pth', weights_only=True)
    assert ck['classes'] == ['cats', 'dogs'] and all(ck['trainable'])     # saved after the unfrozen stage

def test_script_under_torchrun(dogscats):
    r = run([*torchrun_cmd(2), '-m', 'lessonkit.train', str(dogscats), *ARGS], dogscats.parent)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    out = r.stdout + r.stderr
    assert out.count('TTA accuracy on the validation set') == 1, out[-3000:]    # printed by rank 0 only
    assert (dogscats/'models'/'script.pth').exists()

def test_script_help_runs_nothing(tmp_path):
    r = run([sys.executable, '-m', 'lessonkit.train', '--help'], tmp_path)
    assert r.returncode == 0 and '--no-pretrained' in r.stdout
