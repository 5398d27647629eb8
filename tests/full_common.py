"""Shared by tests/test_full_*.py: the Kaggle, files.fast.ai and ImageNet-weights stand-ins of tests/standins set up in
a scratch folder for one test, with the process pointed at them (and away from the user's home)."""
import sys, urllib.request
from pathlib import Path
import pytest

STANDINS = Path(__file__).resolve().parent/'standins'
_servers = []

def last_server():
    "The files.fast.ai stand-in of the running test."
    return _servers[-1]

@pytest.fixture
def standins(tmp_path, monkeypatch):
    "Yields a function setup(archs=(), **kw) -> env; the environment and sys.path are restored afterwards."
    monkeypatch.syspath_prepend(str(STANDINS))
    for m in [m for m in sys.modules if m == 'kaggle' or m.startswith('kaggle.')]: monkeypatch.delitem(sys.modules, m)
    for k in ('LESSONKIT_FULL', 'KAGGLE_USERNAME', 'KAGGLE_KEY', 'KAGGLE_API_TOKEN', 'http_proxy', 'HTTP_PROXY', 'all_proxy', 'ALL_PROXY'):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setattr(urllib.request, '_opener', None)  # urllib keeps the proxy settings it first saw
    servers = []
    def setup(archs=(), **kw):
        import setup_standins
        env, srv = setup_standins.setup(tmp_path/'scratch', archs, **kw); servers.append(srv); _servers.append(srv)
        for k, v in env.items(): monkeypatch.setenv(k, v)
        import torch.hub; monkeypatch.setattr(torch.hub, '_hub_dir', None)
        return env
    yield setup
    for s in servers: s.stop()

def check_standin_weights(learn, arch, env):
    "The body's first convolution holds exactly the stand-in file's weights: pretrained=True went through torchvision."
    import torch, weights
    sd = torch.load(weights.checkpoint_path(arch, env['TORCH_HOME']), weights_only=True)
    assert torch.equal(learn.body[0].weight.detach().cpu(), sd['conv1.weight'])

def upload(path, competition, env):
    "Submit through lessonkit to the Kaggle stand-in and return what it received."
    import setup_standins
    from lessonkit.submission import submit
    submit(path, competition, 'full-mode test on stand-in data')
    got = setup_standins.submissions(env, competition)
    assert [g['file'] for g in got] == [Path(path).name] and got[0]['message'] == 'full-mode test on stand-in data'
    return got
