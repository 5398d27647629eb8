"""What a student sees while a model trains: in a log, aligned text rows; in Jupyter, one HTML output that holds a
table growing epoch by epoch and a bar over the batches; `fit` returns only the last epoch's figures."""
import os, re, sys, time
import numpy as np, pytest, torch, torch.nn as nn, torch.nn.functional as F
from torch.utils.data import TensorDataset, DataLoader
from types import SimpleNamespace
import lessonkit.core as core
from lessonkit.core import TrainingView, progress, set_seed
from lessonkit.learner import Learner

def tiny_learner(tmp_path, n=96, bs=16):
    set_seed(0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g); y = (x[:, 0] > 0).long()
    data = SimpleNamespace(trn_dl=DataLoader(TensorDataset(x, y), bs, shuffle=True), path=tmp_path, test_dl=None,
                           val_dl=DataLoader(TensorDataset(x[:32], y[:32]), 8), classes=[0, 1])
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2), nn.LogSoftmax(1))
    def accuracy(out, t): return (out.argmax(1) == t).float().mean().item()
    return Learner(data, model, crit=F.nll_loss, metrics=[accuracy])

class FakeDisplay:
    "Stands in for IPython's display(): records each output and every update of it, as Jupyter would show them."
    def __init__(self): self.outputs = []
    def __call__(self, obj, display_id=None, **kw):
        out = [obj.data]; self.outputs.append(out)
        return SimpleNamespace(update=lambda o: out.append(o.data))

@pytest.fixture
def notebook(monkeypatch):
    "Run as if inside a Jupyter kernel."
    import IPython.display
    fake = FakeDisplay()
    monkeypatch.setattr(IPython.display, 'display', fake)
    monkeypatch.setattr(core, 'in_notebook', lambda: True)
    return fake

def n_rows(html): return len(re.findall(r'<tr>', html))   # body rows (the header row has a style attribute)

def test_log_rows_are_text_lines(tmp_path, capsys):
    learn = tiny_learner(tmp_path)
    capsys.readouterr()          # what building the learner printed (the once-per-process precision line) is not the fit's
    vals = learn.fit(1e-2, 3)
    out = capsys.readouterr().out
    assert '\r' not in out and '<' not in out               # no bar and no HTML in a log
    lines = out.splitlines()
    assert lines[0].split() == ['epoch', 'trn_loss', 'val_loss', 'accuracy', 'time'] and len(lines) == 4
    for e, (line, row) in enumerate(zip(lines[1:], learn.sched.rows)):
        cells = line.split()
        assert int(cells[0]) == e and cells[-1].endswith('s')
        np.testing.assert_allclose([float(c) for c in cells[1:4]], row[1:4], atol=1e-6)
        assert len(line) == 12 * 5                           # columns of 12 under the header's
    # fit returns the last epoch's validation figures only, which are what validate() gives now
    assert vals == pytest.approx(learn.sched.rows[-1][2:]) and len(vals) == 2
    loss, (acc,) = learn.validate()
    assert vals == pytest.approx([loss, acc])

def test_notebook_table_grows_and_bar_goes(tmp_path, notebook):
    learn = tiny_learner(tmp_path)
    learn.fit(1e-2, 3)
    assert len(notebook.outputs) == 1                        # one output for the fit: the validation bars draw inside it
    states = [h['text/html'] if isinstance(h, dict) else h for h in notebook.outputs[0]]
    rows = [n_rows(s) for s in states]
    assert rows[0] == 0 and '<th>trn_loss</th>' in states[0] and rows[-1] == 3
    assert rows == sorted(rows) and set(rows) == {0, 1, 2, 3}   # the table grew epoch by epoch
    for k in range(3):   # a bar was shown during each epoch, before its row appeared
        assert any('<progress' in s for s, r in zip(states, rows) if r == k)
    assert '<progress' not in states[-1]                     # the bar goes when the fit ends; the table stays
    last = re.findall(r'<tr>(.*?)</tr>', states[-1])[-1]
    cells = re.findall(r'<td>(.*?)</td>', last)
    assert cells[0] == '2' and float(cells[2]) == pytest.approx(learn.sched.rows[-1][2], abs=1e-6)

def _html(h): return h if isinstance(h, str) else h.get('text/html', h)

def test_lr_find_and_predictions_show_a_bar(tmp_path, notebook):
    learn = tiny_learner(tmp_path, n=320, bs=8)
    learn.lr_find()
    assert notebook.outputs and any('<progress' in str(s) for o in notebook.outputs for s in o)
    assert all('<table' not in str(s) for o in notebook.outputs for s in o)   # no epoch rows for the finder
    assert str(notebook.outputs[-1][-1]) == ''                               # and the bar is gone at the end
    k = len(notebook.outputs)
    learn.predict()
    assert len(notebook.outputs) == k + 1 and any('<progress' in str(s) for s in notebook.outputs[-1])

def test_tta_shows_a_bar(tmp_path, notebook):
    sys.path.insert(0, os.path.dirname(__file__))
    from test_learner import make_data
    from lessonkit.conv_learner import ConvLearner, resnet18
    learn = ConvLearner.pretrained(resnet18, make_data(tmp_path), pretrained=False)
    k = len(notebook.outputs)
    preds, y = learn.TTA(n_aug=2, seed=0)
    assert preds.shape[:2] == (3, len(y))
    bar = [str(s) for s in notebook.outputs[k]]
    assert any(f'/{len(learn.data.val_dl)}' in s or '<progress' in s for s in bar) and bar[-1] == ''

def test_bar_throttles_redraws(notebook, monkeypatch):
    "Thousands of batches do not mean thousands of redraws (each one is a message to the browser)."
    list(progress(range(5000)))
    assert 2 <= len(notebook.outputs[0]) < 50

def test_view_in_a_log_prints_rows_as_they_come(capsys):
    with TrainingView(['epoch', 'trn_loss', 'time'], mode='text') as v:
        assert list(progress(range(3))) == [0, 1, 2]           # a bar inside a text view draws nothing
        v.add_row([0, 0.5, 1.25])
        assert capsys.readouterr().out.splitlines() == [f"{'epoch':>12}{'trn_loss':>12}{'time':>12}",
                                                        f"{'0':>12}{'0.500000':>12}{'1.2s':>12}"]
    assert core._views == []

def test_jupyter_kernel_shows_table_once_and_a_short_result(tmp_path):
    "In a real kernel: the rows come as one HTML output updated in place, not as printed text; Out is a short list."
    jupyter_client = pytest.importorskip('jupyter_client')
    env = {k: v for k, v in os.environ.items() if k not in ('IN_TEST', 'CI', 'MPLBACKEND')}
    km, kc = jupyter_client.manager.start_new_kernel(kernel_name='python3', env=env, cwd=str(tmp_path))
    code = ("import torch, torch.nn as nn, torch.nn.functional as F\n"
            "from types import SimpleNamespace\nfrom torch.utils.data import TensorDataset, DataLoader\n"
            "from lessonkit.learner import Learner\ntorch.manual_seed(0)\n"
            "x = torch.randn(4000, 4); y = (x[:, 0] > 0).long()\n"
            "data = SimpleNamespace(trn_dl=DataLoader(TensorDataset(x, y), 4), val_dl=DataLoader(TensorDataset(x[:64], y[:64]), 64), path=None)\n"
            "learn = Learner(data, nn.Sequential(nn.Linear(4, 2), nn.LogSoftmax(1)), crit=F.nll_loss)\n"
            "learn.fit(1e-2, 2)")
    msgs = []
    try:
        reply = kc.execute_interactive(code, timeout=120, output_hook=msgs.append)
    finally:
        kc.stop_channels(); km.shutdown_kernel(now=True)
    assert reply['content']['status'] == 'ok', reply['content']
    shown = [m['content']['data'].get('text/html', '') for m in msgs if m['header']['msg_type'] == 'display_data']
    updates = [m['content']['data'].get('text/html', '') for m in msgs if m['header']['msg_type'] == 'update_display_data']
    assert len(shown) == 1 and '<th>trn_loss</th>' in shown[0]
    assert any('<progress' in u for u in updates) and n_rows(updates[-1]) == 2 and '<progress' not in updates[-1]
    printed = ''.join(m['content']['text'] for m in msgs if m['header']['msg_type'] == 'stream')
    assert 'trn_loss' not in printed                        # the rows are not printed a second time
    result = [m['content']['data']['text/plain'] for m in msgs if m['header']['msg_type'] == 'execute_result']
    assert len(result) == 1 and re.fullmatch(r'\[[-\d.e]+\]', result[0])   # [val_loss]: no metrics in this fit
