"Behaviour of the Learner and ConvLearner that the notebooks do not pin down: schedules, lr_find, freezing, precompute, save/load."
import math, os, pickle, shutil, warnings
from pathlib import Path
import numpy as np, pytest, torch, torch.nn as nn, torch.nn.functional as F
from lessonkit.core import set_seed
from lessonkit.sched import sgdr_mult
from lessonkit.transforms import tfms_from_model, transforms_side_on
from lessonkit.data import ImageClassifierData
from lessonkit.conv_learner import ConvLearner, resnet18, resnet34
from lessonkit.learner import Callback

def arrays(n, rng, sz=24, c=2):
    x = rng.integers(0, 255, (n, sz, sz + 8, 3), dtype=np.uint8)
    y = rng.integers(0, c, n)
    return x, y

def make_data(tmp_path, n_trn=40, n_val=12, bs=8, sz=16, multi=False, aug=None):
    rng = np.random.default_rng(0)
    (xt, yt), (xv, yv) = arrays(n_trn, rng), arrays(n_val, rng)
    if multi: yt, yv = np.eye(3, dtype=np.float32)[yt] + np.eye(3, dtype=np.float32)[(yt + 1) % 3], np.eye(3, dtype=np.float32)[yv]
    tfms = tfms_from_model(resnet18, sz, aug_tfms=aug)
    return ImageClassifierData.from_arrays(tmp_path, (xt, yt), (xv, yv), bs=bs, tfms=tfms)

@pytest.fixture
def learn(tmp_path):
    set_seed(0)
    return ConvLearner.pretrained(resnet18, make_data(tmp_path), pretrained=False)

def test_three_groups_and_head(learn):
    assert len(learn.layer_groups) == 3
    lin = [m for m in learn.head if isinstance(m, nn.Linear)]
    assert [l.out_features for l in lin] == [512, 2] and lin[0].in_features == 2 * 512
    assert isinstance(learn.head[-1], nn.LogSoftmax) and learn.crit is F.nll_loss

def test_multilabel_uses_sigmoid_and_bce(tmp_path):
    l = ConvLearner.pretrained(resnet18, make_data(tmp_path, multi=True), pretrained=False)
    assert isinstance(l.head[-1], nn.Sigmoid) and l.crit is F.binary_cross_entropy
    l.fit(1e-2, 1, quiet=True)
    p = l.predict(); assert ((p >= 0) & (p <= 1)).all()

def test_sgdr_rates_replay_formula(learn):
    lrs = np.array([1e-4, 1e-3, 1e-2])
    learn.unfreeze(); learn.fit(lrs, 3, cycle_len=1, cycle_mult=2, quiet=True)
    nb = len(learn.data.trn_dl)
    got = np.array(learn.sched.group_lrs)
    assert got.shape == (7 * nb, 3)
    want = np.array([[lr * sgdr_mult(i, nb, 1, 2) for lr in lrs] for i in range(7 * nb)])
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # the rate restarts at the top of each cycle: batches nb, 3nb
    assert got[nb, 2] == pytest.approx(1e-2) and got[3 * nb, 2] == pytest.approx(1e-2)

def test_constant_rate_without_cycle_len(learn):
    learn.fit(0.05, 2, quiet=True)
    assert set(learn.sched.lrs) == {0.05} and len(learn.sched.rows) == 2

def test_slice_spreads_geometrically(learn):
    learn.unfreeze(); learn.fit(slice(1e-5, 1e-3), 1, quiet=True)
    np.testing.assert_allclose(learn.sched.group_lrs[0], [1e-5, 1e-4, 1e-3])

def state(learn):
    return ({k: v.clone() for k, v in learn.model.state_dict().items()},
            {k: {n: t.clone() for n, t in s.items()} for k, s in learn.opt.state_dict()['state'].items()})

def test_lr_find_restores_bit_for_bit(learn):
    learn.unfreeze(); learn.fit(1e-3, 1, quiet=True)       # momentum buffers and moved BN statistics exist now
    (w0, o0) = state(learn)
    with warnings.catch_warnings(): warnings.simplefilter("ignore"); learn.lr_find(num_it=12)
    w1, o1 = state(learn)
    assert w0.keys() == w1.keys() and all(torch.equal(w0[k], w1[k]) for k in w0)
    assert o0.keys() == o1.keys() and all(torch.equal(o0[k][n], o1[k][n]) for k in o0 for n in o0[k])
    assert learn.sched.kind == 'lr_find' and len(learn.sched.lrs) >= 1

def test_lr_find_cycles_through_a_short_epoch(tmp_path):
    "3 batches per epoch: lr_find still runs its num_it batches (or stops by the 4x rule), restores the state, and plots."
    import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
    from lessonkit.sched import lr_find_lr
    set_seed(0)
    learn = ConvLearner.pretrained(resnet18, make_data(tmp_path, n_trn=24, n_val=8, bs=8), pretrained=False, precompute=True)
    assert len(learn.fit_data.trn_dl) == 3
    learn.fit(1e-3, 1, quiet=True); (w0, o0) = state(learn)
    for num_it, end_lr in ((40, 1e-2), (200, 1e4)):
        learn.lr_find(end_lr=end_lr, num_it=num_it); s = learn.sched
        w1, o1 = state(learn)
        assert all(torch.equal(w0[k], w1[k]) for k in w0) and all(torch.equal(o0[k][n], o1[k][n]) for k in o0 for n in o0[k])
        n = len(s.lrs)
        np.testing.assert_allclose(s.lrs, [1e-5 * lr_find_lr(i, num_it, 1., end_lr / 1e-5) for i in range(n)], rtol=1e-9)
        if n < num_it: assert s.losses[-1] > 4 * min(s.losses[11:-1])    # stopped by the rule
        if num_it == 40:   # 13 short epochs, the 14th cut after its first batch, none of them validated
            assert n == 40 and len(s.rows) == 13 and all(np.isnan(r[2]) for r in s.rows)
    assert n < 200                                                  # a rate of 1e4 blows the loss up
    fig, ax = plt.subplots()
    with pytest.warns(UserWarning, match='learn.sched.plot'): learn.sched.plot(n_skip=n, ax=ax)
    assert len(ax.lines[0].get_xdata()) == np.isfinite(learn.sched.losses).sum()
    plt.close(fig)

def bn_stats(m): return [t.clone() for x in m.modules() if isinstance(x, nn.BatchNorm2d) for t in (x.running_mean, x.running_var)]

def test_frozen_and_bn_freeze_keep_running_stats(learn):
    before = bn_stats(learn.body); learn.fit(1e-2, 1, quiet=True)
    assert all(torch.equal(a, b) for a, b in zip(before, bn_stats(learn.body)))
    learn.unfreeze(); learn.bn_freeze(True); learn.fit(1e-3, 1, quiet=True)
    assert all(torch.equal(a, b) for a, b in zip(before, bn_stats(learn.body)))
    learn.bn_freeze(False); learn.fit(1e-3, 1, quiet=True)
    assert not all(torch.equal(a, b) for a, b in zip(before, bn_stats(learn.body)))

def test_freeze_to(learn):
    learn.freeze_to(1)
    assert [any(p.requires_grad for p in g.parameters()) for g in learn.layer_groups] == [False, True, True]

def test_save_is_atomic(learn, monkeypatch):
    p = learn.save('a'); good = p.read_bytes()
    def broken(obj, f, *a, **k):
        f.write(b'half a file'); raise OSError('disk full')
    monkeypatch.setattr(torch, 'save', broken)
    with pytest.raises(OSError): learn.save('a')
    assert p.read_bytes() == good and sorted(x.name for x in p.parent.iterdir()) == ['a.pth']

@pytest.mark.filterwarnings('ignore:Detected pickle protocol')   # the file is a hand-made pickle on purpose
def test_load_never_runs_pickled_code(learn, tmp_path):
    flag = tmp_path/'pwned'
    class Evil:
        def __reduce__(self): return (os.system, (f'touch {flag}',))
    (learn.data.path/'models').mkdir(exist_ok=True)
    with open(learn.data.path/'models'/'evil.pth', 'wb') as f: pickle.dump({'model': Evil()}, f)
    with pytest.raises(Exception): learn.load('evil')
    assert not flag.exists()

def test_load_other_classes_names_both(learn, tmp_path):
    learn.save('two')
    other = make_data(tmp_path/'o'); other.classes = ['cat', 'dog']; other.path = learn.data.path
    l2 = ConvLearner.pretrained(resnet18, other, pretrained=False)
    with pytest.raises(ValueError, match=r"classes \['0', '1'\].*classes \['cat', 'dog'\]"): l2.load('two')

def test_load_missing_file_lists_saved(learn):
    learn.save('x1')
    with pytest.raises(FileNotFoundError, match=r"x1"): learn.load('nope')

def test_checkpoint_resumes_schedule_and_optimizer(learn):
    class Stop(Callback):
        def after_batch(self, l):
            if l.iteration == 3: raise KeyboardInterrupt
    learn.unfreeze()
    with pytest.raises(KeyboardInterrupt): learn.fit(1e-2, 2, cycle_len=1, callbacks=[Stop()], quiet=True)
    assert learn.fit_state['iteration'] == 3
    learn.save('ck'); opt_state = learn.opt.state_dict()['state']
    set_seed(1)
    l2 = ConvLearner.pretrained(resnet18, learn.data, pretrained=False).load('ck')
    for k, s in opt_state.items(): assert torch.equal(l2.opt.state_dict()['state'][k]['momentum_buffer'], s['momentum_buffer'])
    l2.resume(quiet=True)
    nb = len(learn.data.trn_dl)
    assert l2.iteration == 2 * nb and len(l2.sched.lrs) == 2 * nb - 3
    np.testing.assert_allclose(l2.sched.lrs[0], 1e-2 * sgdr_mult(3, nb, 1, 1))

def test_interrupted_learner_still_usable(learn):
    class Stop(Callback):
        def after_batch(self, l): raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt): learn.fit(1e-2, 1, callbacks=[Stop()], quiet=True)
    learn.fit(1e-2, 1, quiet=True)
    assert learn.cbs == [] and len(learn.sched.rows) == 1

def test_pretrained_offline_names_the_file(tmp_path, monkeypatch):
    import torchvision.models._api as api
    def offline(*a, **k): raise OSError('no network')
    monkeypatch.setattr(api, 'load_state_dict_from_url', offline)
    monkeypatch.setattr(torch.hub, 'load_state_dict_from_url', offline)
    with pytest.raises(FileNotFoundError, match=r'resnet34-b627a593\.pth.*checkpoints'):
        ConvLearner.pretrained(resnet34, make_data(tmp_path))

def test_precompute_cache_is_keyed(tmp_path):
    set_seed(0)
    d = make_data(tmp_path, aug=transforms_side_on)
    with pytest.warns(UserWarning, match='augmentation has no effect'):
        l = ConvLearner.pretrained(resnet18, d, pretrained=False, precompute=True)
    c1 = l.fit_data.cache_path
    l.fit(1e-2, 1, quiet=True)
    l.precompute = False; l.precompute = True           # reused: same file, no new one
    assert l.fit_data.cache_path == c1 and len(list(c1.parent.glob('feats_*.pt'))) == 1
    d2 = make_data(tmp_path, sz=24)                       # another size: another cache
    l.set_data(d2); l.precompute = True
    assert l.fit_data.cache_path != c1
    d3 = make_data(tmp_path, n_trn=39)                    # another file list: another cache
    l.set_data(d3); l.precompute = True
    assert len({c1, l.fit_data.cache_path}) == 2 and len(list(c1.parent.glob('feats_*.pt'))) == 3

def test_unfreeze_switches_precompute_off(tmp_path, capsys):
    l = ConvLearner.pretrained(resnet18, make_data(tmp_path), pretrained=False, precompute=True)
    l.unfreeze()
    assert not l.precompute and 'precompute off' in capsys.readouterr().out

def test_precompute_trains_head_only(tmp_path):
    l = ConvLearner.pretrained(resnet18, make_data(tmp_path), pretrained=False, precompute=True)
    body = {k: v.clone() for k, v in l.body.state_dict().items()}
    head = [p.clone() for p in l.head.parameters()]
    l.fit(1e-2, 1, quiet=True)
    assert all(torch.equal(v, l.body.state_dict()[k]) for k, v in body.items())
    assert not all(torch.equal(a, b) for a, b in zip(head, l.head.parameters()))

@pytest.mark.parametrize('n', [1, 9])   # one image; 9 = one batch of 8 plus a batch of one
def test_tiny_datasets_train(tmp_path, n):
    l = ConvLearner.pretrained(resnet18, make_data(tmp_path, n_trn=n, n_val=3), pretrained=False)
    l.unfreeze(); l.fit(1e-3, 1, quiet=True)
    assert math.isfinite(l.sched.rows[-1][1])

def test_predict_array_matches_predict(learn):
    p = learn.predict()
    x, _ = learn.data.val_ds[0]
    np.testing.assert_allclose(learn.predict_array(x[None]), p[:1], rtol=1e-4, atol=1e-5)

def test_set_data_keeps_weights_and_freezes(learn, tmp_path):
    learn.unfreeze()
    w = {k: v.clone() for k, v in learn.model.state_dict().items()}
    learn.set_data(make_data(tmp_path, sz=24))
    assert all(torch.equal(v, learn.model.state_dict()[k]) for k, v in w.items())
    assert [any(p.requires_grad for p in g.parameters()) for g in learn.layer_groups] == [False, False, True]

def test_summary_counts_params(learn):
    s = learn.summary()
    assert s.nb_params.sum() == sum(p.numel() for p in learn.model.parameters())
    assert s.iloc[0].input_shape == [-1, 3, 16, 16]

def test_epoch_rows_metric_over_whole_set(learn):
    from lessonkit.metrics import accuracy_np
    learn.fit(1e-2, 1, quiet=True)
    p, y = learn.predict_with_targs()
    assert learn.sched.rows[-1][3] == pytest.approx(accuracy_np(np.exp(p), y))

# The mixed-precision and channels-last code paths, run on the CPU: bfloat16 autocast, and float16's gradient scaler
# (torch.amp.GradScaler works on the CPU too), so that a GPU run does not meet these lines for the first time.
def digits_conv_learner(tmp_path, precision=None):
    "A small conv net on the real 8x8 digits (the split of the DDP tests), as 1-channel images."
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from ddp_common import digits
    from lessonkit.learner import Learner
    from lessonkit.metrics import accuracy
    from torch.utils.data import DataLoader, TensorDataset
    from types import SimpleNamespace
    (xt, yt), (xv, yv) = digits()
    dl = lambda x, y, shuffle: DataLoader(TensorDataset(x.view(-1, 1, 8, 8), y), batch_size=64, shuffle=shuffle)
    set_seed(0)
    data = SimpleNamespace(trn_dl=dl(xt, yt, True), val_dl=dl(xv, yv, False), path=tmp_path, classes=list(range(10)), c=10)
    model = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.Conv2d(32, 64, 3, stride=2, padding=1),
                          nn.BatchNorm2d(64), nn.ReLU(), nn.Flatten(), nn.Linear(64 * 16, 10), nn.LogSoftmax(1))
    return Learner(data, model, crit=F.nll_loss, metrics=[accuracy], layer_groups=[model[:6], model[6:]], precision=precision)

@pytest.mark.parametrize('precision', ['fp32', 'bf16'])
def test_fp16_on_cpu_warns_and_changes_nothing(tmp_path, precision):
    learn = digits_conv_learner(tmp_path, precision)
    before = (learn.autocast_dtype, learn.scaler, learn.channels_last)
    with pytest.warns(UserWarning, match='needs a CUDA GPU'): learn.to_fp16()
    assert (learn.autocast_dtype, learn.scaler, learn.channels_last) == before

def test_bfloat16_autocast_and_channels_last_learn(tmp_path):
    learn = digits_conv_learner(tmp_path).to_fp16(torch.bfloat16).to_channels_last()
    assert learn.autocast_dtype == torch.bfloat16 and learn.scaler is None
    learn.fit(0.1, 3, quiet=True)
    assert learn.model[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert learn.model[0].weight.dtype == torch.float32           # autocast: the weights stay float32
    acc = learn.sched.rows[-1][3]
    assert acc > 0.85, acc                                         # 10 classes: chance is 0.1
    p = learn.predict(); assert p.dtype == np.float32 and np.isfinite(p).all()

def test_gradient_scaler_path_steps_and_learns(tmp_path):
    class CountingScaler(torch.amp.GradScaler):
        calls = {'unscale_': 0, 'step': 0, 'update': 0}
        def unscale_(self, opt): self.calls['unscale_'] += 1; return super().unscale_(opt)
        def step(self, opt, *a, **k): self.calls['step'] += 1; return super().step(opt, *a, **k)
        def update(self, *a, **k): self.calls['update'] += 1; return super().update(*a, **k)
    learn = digits_conv_learner(tmp_path).to_fp16(torch.bfloat16)
    learn.scaler = CountingScaler('cpu', init_scale=2.**10)        # what to_fp16() sets up for float16 on a GPU
    learn.clip = 1.0                                               # gradients are unscaled before clipping
    w0 = learn.model[-2].weight.detach().clone()
    learn.fit(0.1, 3, quiet=True)
    n = 3 * len(learn.data.trn_dl)
    assert CountingScaler.calls == {'unscale_': n, 'step': n, 'update': n}, CountingScaler.calls
    assert not torch.equal(w0, learn.model[-2].weight) and learn.scaler.get_scale() > 0
    acc = learn.sched.rows[-1][3]
    assert acc > 0.85, acc

def test_loader_workers_start_once_per_fit(tmp_path, monkeypatch):
    "With worker processes, one fit starts them once for training and once for validation, not once per epoch."
    from torch.utils.data import dataloader
    started = []
    orig = dataloader._MultiProcessingDataLoaderIter.__init__
    def init(self, loader): started.append(loader); orig(self, loader)
    monkeypatch.setattr(dataloader._MultiProcessingDataLoaderIter, '__init__', init)
    set_seed(0)
    data = make_data(tmp_path)
    data.num_workers = 1
    learn = ConvLearner.pretrained(resnet18, data, pretrained=False, precompute=False)
    learn.fit(1e-2, 3, quiet=True)
    assert len(learn.sched.rows) == 3
    assert len(started) == 2 and started[0] is not started[1], started     # the training loader, the validation loader
    assert all(dl.persistent_workers for dl in started)
