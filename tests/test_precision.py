"The numeric path a Learner picks per device, and what stays float32 on the fast path."
import copy
import numpy as np
import pytest
import torch
import torch.nn as nn
from types import SimpleNamespace
from torch.utils.data import DataLoader, TensorDataset
import lessonkit.core as core
import lessonkit.learner as L
from lessonkit.core import choose_precision, cpu_bf16_native
from lessonkit.learner import Learner

def _data(n=48, bs=16, seed=0, path='.'):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 8, 8, generator=g); y = (x[:, 0].mean((1, 2)) > 0).long()
    dl = lambda s: DataLoader(TensorDataset(x, y), batch_size=bs, shuffle=s, generator=torch.Generator().manual_seed(1) if s else None)
    return SimpleNamespace(trn_dl=dl(True), val_dl=dl(False), test_dl=None, path=path)

def _cnn(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))

def _tensors(o):
    if torch.is_tensor(o): yield o
    elif isinstance(o, dict):
        for v in o.values(): yield from _tensors(v)
    elif isinstance(o, (list, tuple)):
        for v in o: yield from _tensors(v)

@pytest.fixture
def bf16_cpu(monkeypatch):
    "Pretend this CPU reports native bfloat16 (the flags are read in core.cpu_bf16_native)."
    monkeypatch.setattr(core, 'cpu_bf16_native', lambda cpuinfo=None: True)

@pytest.mark.parametrize('text,want', [
    ('flags\t\t: fpu avx2 avx512f amx_tile amx_bf16 amx_int8\n', True),      # Sapphire Rapids
    ('flags\t\t: fpu avx2 avx512f avx512_bf16\n', True),                     # Zen 4, Cooper Lake
    ('Features\t: fp asimd sve sve2 bf16 i8mm\n', True),                     # Arm v8.6+
    ('flags\t\t: fpu avx2 avx512f avx512bw avx512vl\n', False),              # Skylake-X
    ('flags\t\t: fpu sse2 avx avx2 fma\n', False), ('', False)])
def test_cpu_flags(text, want):
    assert cpu_bf16_native(text) is want

def test_this_machine_flags_match_proc_cpuinfo():
    flags = open('/proc/cpuinfo').read()
    assert cpu_bf16_native() == any(f in flags.split() for f in ('amx_bf16', 'avx512_bf16', 'bf16'))

def test_policy_table():
    assert choose_precision('cpu', conv=True, cpu_bf16=True)[:2] == (torch.bfloat16, True)
    assert choose_precision('cpu', conv=True, cpu_bf16=False)[:2] == (None, False)
    assert choose_precision('cpu', conv=False, cpu_bf16=True)[:2] == (None, False)
    assert choose_precision('cuda', conv=True, cuda_bf16=True)[:2] == (torch.bfloat16, True)
    assert choose_precision('cuda', conv=True, cuda_bf16=False)[:2] == (torch.float16, True)
    assert choose_precision('cuda', conv=False, cuda_bf16=False)[:2] == (torch.float16, False)
    assert 'to_fp32' in choose_precision('cpu', cpu_bf16=True)[2]

def test_default_follows_the_cpu(capsys, monkeypatch):
    monkeypatch.setattr(core, '_reported', set())
    learn = Learner(_data(), _cnn())
    native = cpu_bf16_native()
    assert (learn.autocast_dtype == torch.bfloat16) is native and learn.channels_last is native
    out = capsys.readouterr().out
    assert out.count('precision:') == 1 and ('bfloat16 autocast' in out) is native
    Learner(_data(), _cnn())                              # a second learner with the same path says nothing more
    assert 'precision:' not in capsys.readouterr().out

def test_auto_bf16_path_keeps_float32_where_it_matters(bf16_cpu, tmp_path):
    learn = Learner(_data(path=tmp_path), _cnn(), metrics=[lambda out, y: (out.argmax(1) == y).float().mean()])
    assert learn.autocast_dtype == torch.bfloat16 and learn.scaler is None and learn.channels_last
    w = learn.model[0].weight
    assert w.dtype == torch.float32 and w.is_contiguous(memory_format=torch.channels_last)
    seen = {}
    h = learn.model[0].register_forward_hook(lambda m, i, o: seen.update(inp=i[0], out=o.dtype))
    learn.fit(1e-2, 1)
    h.remove()
    assert seen['out'] == torch.bfloat16                               # the forward pass ran in bfloat16...
    assert seen['inp'].is_contiguous(memory_format=torch.channels_last)  # ...on channels-last images
    assert all(isinstance(v, float) for v in learn.sched.losses)
    preds, y = learn.get_preds(learn.data.val_dl)
    assert preds.dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in learn.model.parameters())
    saved = torch.load(learn.save('m'), weights_only=False)
    tensors = [t for t in _tensors(saved)]
    assert tensors and all(t.dtype in (torch.float32, torch.int64) for t in tensors)

def test_lr_find_restores_bit_for_bit_on_the_fast_path(bf16_cpu):
    learn = Learner(_data(), _cnn())
    before = copy.deepcopy(learn.model.state_dict())
    learn.lr_find()
    after = learn.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)

def test_non_conv_model_stays_float32(bf16_cpu):
    torch.manual_seed(0)
    x = torch.randn(32, 5); y = (x[:, 0] > 0).long()
    dl = DataLoader(TensorDataset(x, y), batch_size=8)
    learn = Learner(SimpleNamespace(trn_dl=dl, val_dl=dl, path='.'), nn.Sequential(nn.Linear(5, 2)))
    assert learn.autocast_dtype is None and not learn.channels_last

def test_to_fp32_is_the_exact_path(bf16_cpu):
    "to_fp32() on a learner that started on the fast path trains exactly as precision='fp32' does."
    torch.manual_seed(3); a = Learner(_data(), _cnn(), precision='fp32'); a.fit(1e-2, 1)
    torch.manual_seed(3); b = Learner(_data(), _cnn()).to_fp32()
    assert b.autocast_dtype is None and not b.channels_last and b.model[0].weight.is_contiguous()
    b.fit(1e-2, 1)
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values()): assert torch.equal(va, vb), k
    assert a.sched.losses == b.sched.losses

def test_explicit_precision_arguments():
    assert Learner(_data(), _cnn(), precision='bf16').autocast_dtype == torch.bfloat16
    with pytest.raises(ValueError, match="needs a CUDA GPU"): Learner(_data(), _cnn(), precision='fp16', device='cpu')
    with pytest.raises(ValueError, match="use 'auto', 'fp32'"): Learner(_data(), _cnn(), precision='half')
