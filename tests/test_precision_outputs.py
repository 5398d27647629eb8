"""Every output that leaves the model on the reduced-precision path is float32 in value, not only in type: the output
activation and the loss run in float32 on float32 logits. The bfloat16 path is forced (precision='bf16' or
LESSONKIT_PRECISION=bf16), so these run on any CPU: natively where it has bfloat16, emulated elsewhere.

Tolerances, stated once: log-probabilities are normalised within 1e-5 per row (float32 rounding; the old path, which
cast bfloat16 log-probabilities to float32, was off by up to ~6e-3); on the same weights the bfloat16 path's
probabilities agree with the float32 path's within 0.03 (bfloat16 keeps 8 bits of mantissa through every layer)."""
import copy
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.metrics import accuracy_score
import lessonkit.core as core
from lessonkit.core import set_seed, choose_precision
from lessonkit.learner import Learner, float32_output
from lessonkit.conv_learner import ConvLearner, resnet18, compute_features
from lessonkit.interpret import ClassificationInterpretation, MultiLabelInterpretation
import lessonkit.tta  # noqa: F401  (learn.TTA)
from test_learner import make_data

SUM_TOL, AGREE_TOL = 1e-5, 0.03

def bf16_values(a) -> bool:
    "True when every value of `a` is exactly a bfloat16 number: what a float32 cast of a bfloat16 result looks like."
    t = torch.as_tensor(np.asarray(a, dtype=np.float32))
    return bool(torch.equal(t, t.bfloat16().float()))

def pair(tmp_path, multi=False):
    "Two ConvLearners with the same weights: the exact float32 path and the forced bfloat16 path."
    set_seed(0)
    a = ConvLearner.pretrained(resnet18, make_data(tmp_path, multi=multi), pretrained=False, precision='fp32')
    a.fit(1e-2, 1, quiet=True)
    b = ConvLearner.pretrained(resnet18, a.data, pretrained=False, precision='bf16')
    b.model.load_state_dict(a.model.state_dict())
    assert a.autocast_dtype is None and b.autocast_dtype == torch.bfloat16 and b.channels_last
    return a, b

@pytest.fixture
def learners(tmp_path): return pair(tmp_path)

def check_log_probs(p):
    p = np.asarray(p)
    assert p.dtype == np.float32 and np.isfinite(p).all()
    np.testing.assert_allclose(np.exp(p.astype(np.float64)).sum(-1), 1, atol=SUM_TOL)
    assert not bf16_values(p)

def test_predict_get_preds_predict_dl(learners):
    a, b = learners
    pa, pb = a.predict(), b.predict()
    check_log_probs(pb)
    np.testing.assert_allclose(np.exp(pb), np.exp(pa), atol=AGREE_TOL)
    check_log_probs(b.predict_dl(b.data.val_dl))
    out, y = b.get_preds(b.data.val_dl)
    assert out.dtype == torch.float32
    check_log_probs(out.numpy())

def test_predict_array_is_the_same_path_as_predict(learners):
    _, b = learners
    x, _ = b.data.val_ds[0]
    pa = b.predict_array(x[None])
    check_log_probs(pa)
    np.testing.assert_allclose(np.exp(pa), np.exp(b.predict()[:1]), atol=AGREE_TOL)

def test_tta_and_interpretation(learners):
    a, b = learners
    lp, y = b.TTA(n_aug=2, seed=0)
    assert lp.shape == (3, 12, 2)
    check_log_probs(lp)
    probs = np.mean(np.exp(lp), 0)
    np.testing.assert_allclose(probs.sum(1), 1, atol=SUM_TOL)
    np.testing.assert_allclose(probs, np.mean(np.exp(a.TTA(n_aug=2, seed=0)[0]), 0), atol=AGREE_TOL)
    interp = ClassificationInterpretation.from_preds(probs, y, b.data)      # refused rows that do not sum to 1 before
    assert interp.probs.shape == (12, 2)

def test_validate_loss_and_metrics_against_references(learners):
    _, b = learners
    loss, (acc,) = b.validate()
    out, y = b.get_preds(b.data.val_dl)
    ref = F.nll_loss(out.double(), y).item()                                 # float64 reference on the same outputs
    assert loss == pytest.approx(ref, rel=1e-6)
    assert acc == pytest.approx(accuracy_score(y.numpy(), out.argmax(1).numpy()))

def test_fit_losses_and_lr_find_on_the_bf16_path(learners):
    _, b = learners
    b.fit(1e-2, 1, quiet=True)
    assert all(np.isfinite(b.sched.losses)) and not bf16_values(b.sched.losses)
    before = copy.deepcopy(b.model.state_dict())
    b.lr_find(num_it=6)
    assert len(b.sched.losses) and all(np.isfinite(b.sched.losses))
    after = b.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)

def test_precomputed_features_are_float32_and_match_the_exact_path(learners):
    a, b = learners
    dl = a.data.dl('val', tfm='val', shuffle=False)
    fa, fb = compute_features(a._pool(), dl, a.device), compute_features(b._pool(), dl, b.device)
    assert fb.dtype == torch.float32 and not bf16_values(fb.numpy())
    torch.testing.assert_close(fb, fa, rtol=1e-4, atol=1e-5)
    b.precompute = True
    check_log_probs(b.predict())

def test_multi_label_probabilities(tmp_path):
    a, b = pair(tmp_path, multi=True)
    pa, pb = a.predict(), b.predict()
    assert pb.dtype == np.float32 and (pb >= 0).all() and (pb <= 1).all() and not bf16_values(pb)
    np.testing.assert_allclose(pb, pa, atol=AGREE_TOL)
    lp, y = b.TTA(n_aug=2, seed=0)
    assert (lp >= 0).all() and (lp <= 1).all() and not bf16_values(lp)
    MultiLabelInterpretation.from_preds(lp.mean(0), y, b.data)

def test_a_model_of_your_own_ending_in_an_activation():
    "float32_output (which every Learner applies) hooks the last layer if it is LogSoftmax, Softmax or Sigmoid."
    x = torch.randn(64, 20) * 5
    for act in (nn.LogSoftmax(1), nn.Softmax(1), nn.Sigmoid()):
        torch.manual_seed(0); m = nn.Sequential(nn.Linear(20, 10), act)
        with torch.autocast('cpu', dtype=torch.bfloat16): raw = m(x)
        assert raw.dtype == torch.bfloat16                                  # what autocast does on its own
        float32_output(float32_output(m))                                   # idempotent: one hook
        assert len(m[1]._forward_pre_hooks) == 1
        with torch.autocast('cpu', dtype=torch.bfloat16): out = m(x)
        assert out.dtype == torch.float32
        if isinstance(act, nn.Sigmoid): assert (out >= 0).all() and (out <= 1).all()
        else:
            s = out.exp().sum(1) if isinstance(act, nn.LogSoftmax) else out.sum(1)
            torch.testing.assert_close(s, torch.ones(64), atol=SUM_TOL, rtol=0)
    m = nn.Sequential(nn.Sigmoid(), nn.Linear(20, 10))                       # not an output activation: left alone
    float32_output(m); assert not m[0]._forward_pre_hooks

def _table_learner(tmp_path, is_reg, precision):
    import pandas as pd
    from lessonkit.column_data import ColumnarModelData
    rng = np.random.default_rng(0)
    df = pd.DataFrame({'Store': rng.integers(1, 9, 400), 'a': rng.normal(size=400).astype(np.float32)})
    if is_reg: y = (np.log1p(df.Store.to_numpy() * 100.) + 0.1 * df.a.to_numpy()).astype(np.float32)
    else: y = (df.a.to_numpy() > 0).astype(np.int64)
    md = ColumnarModelData.from_data_frame(tmp_path, np.arange(300, 400), df, y, ['Store'], bs=50, is_reg=is_reg)
    set_seed(0)
    kw = dict(y_range=(0., 10.)) if is_reg else dict(out_sz=2)
    return md.get_learner([(9, 4)], 1, 0.0, szs=(50, 20), drops=(0., 0.), precision=precision, **kw)

@pytest.mark.parametrize('is_reg', [False, True], ids=['classifier', 'regression'])
def test_column_data_outputs(tmp_path, is_reg):
    a = _table_learner(tmp_path, is_reg, 'fp32'); a.fit(1e-2, 1, quiet=True)
    b = _table_learner(tmp_path, is_reg, 'bf16'); b.model.load_state_dict(a.model.state_dict())
    pa, pb = a.predict(), b.predict()
    assert pb.dtype == np.float32 and not bf16_values(pb)
    if is_reg: assert ((pb > 0) & (pb < 10)).all(); np.testing.assert_allclose(pb, pa, rtol=0.02)
    else: check_log_probs(pb); np.testing.assert_allclose(np.exp(pb), np.exp(pa), atol=AGREE_TOL)

# ---- LESSONKIT_PRECISION: the default of Learner(precision=...), said in the once-printed line

def _small():
    from test_precision import _data, _cnn
    return _data(), _cnn()

@pytest.mark.parametrize('env,dtype', [('bf16', torch.bfloat16), ('fp32', None), ('BF16', torch.bfloat16)])
def test_env_sets_the_default_and_says_so(monkeypatch, capsys, env, dtype):
    monkeypatch.setattr(core, '_reported', set())
    monkeypatch.setenv('LESSONKIT_PRECISION', env)
    learn = Learner(*_small())
    assert learn.autocast_dtype == dtype and learn.channels_last == (dtype is not None)
    out = capsys.readouterr().out
    assert out.count('precision:') == 1 and f'set by LESSONKIT_PRECISION={env.lower()}' in out
    assert ('emulates' in out) == (dtype is not None and not core.cpu_bf16_native())
    assert Learner(*_small(), precision='fp32').autocast_dtype is None       # an argument beats the variable

def test_env_auto_and_unset_follow_the_device(monkeypatch, capsys):
    want = choose_precision('cpu', conv=True)[0]
    for env in ('auto', None):
        if env is None: monkeypatch.delenv('LESSONKIT_PRECISION', raising=False)
        else: monkeypatch.setenv('LESSONKIT_PRECISION', env)
        assert Learner(*_small()).autocast_dtype == want

def test_env_errors_name_the_variable(monkeypatch):
    monkeypatch.setenv('LESSONKIT_PRECISION', 'half')
    with pytest.raises(ValueError, match=r"LESSONKIT_PRECISION='half'.*auto, fp32, bf16, fp16"): Learner(*_small())
    monkeypatch.setenv('LESSONKIT_PRECISION', 'fp16')
    with pytest.raises(ValueError, match='LESSONKIT_PRECISION=fp16 needs a CUDA GPU'): Learner(*_small(), device='cpu')
