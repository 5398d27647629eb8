"""Set up both stand-ins (Kaggle with files.fast.ai, and the ImageNet weights) in a scratch folder, so that nothing
in the user's ~/.lessonkit, ~/.kaggle or ~/.cache is read or written. Returns the environment a process needs."""
from __future__ import annotations
import json, os
from pathlib import Path

HERE = Path(__file__).resolve().parent

def setup(scratch: Path, archs=(), token: bool = True, layouts: dict | None = None):
    "Make the scratch folders, a stand-in kaggle.json, the weights of `archs`; start files.fast.ai. Returns (env, server)."
    import competitions, fastai_files, weights
    scratch = Path(scratch); home = scratch/'home'; kdir = home/'.kaggle'
    server_root = scratch/'kaggle-server'; server_root.mkdir(parents=True, exist_ok=True)
    if layouts: (server_root/'layouts.json').write_text(json.dumps(layouts))
    kdir.mkdir(parents=True, exist_ok=True)
    if token:
        tok = kdir/'kaggle.json'
        tok.write_text(json.dumps({'username': 'student', 'key': 'stand-in-key'})); tok.chmod(0o600)
    torch_home = scratch/'torch'
    weights.write_weights(archs, torch_home)
    srv = fastai_files.FilesFastAi(scratch/'certs', competitions.rossmann_tgz()).start()
    env = {'HOME': str(home), 'KAGGLE_CONFIG_DIR': str(kdir), 'XDG_CONFIG_HOME': str(home/'.config'),
           'XDG_CACHE_HOME': str(home/'.cache'), 'KAGGLE_STANDIN_ROOT': str(server_root),
           'LESSONKIT_DATA': str(scratch/'data'), 'TORCH_HOME': str(torch_home), **srv.env()}
    return env, srv

def queue_faults(env: dict, faults: dict):
    "Queue faults for the Kaggle stand-in: {'<competition>/<file>' or '<competition>/*' or '*': ['403', 'cut', ...]}."
    (Path(env['KAGGLE_STANDIN_ROOT'])/'faults.json').write_text(json.dumps(faults))

def submissions(env: dict, competition: str) -> list[dict]:
    "What the stand-in received as uploads to `competition`."
    d = Path(env['KAGGLE_STANDIN_ROOT'])/'submissions'/competition
    return [json.loads(p.read_text()) for p in sorted(d.glob('*.json'))] if d.is_dir() else []
