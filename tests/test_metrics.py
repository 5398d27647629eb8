"Metrics (and the numbers interpretation shows) against scikit-learn, torch and formulas written out here."
import math, subprocess, sys, warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import sklearn.metrics as skm

from lessonkit.metrics import (accuracy, accuracy_np, accuracy_multi, accuracy_thresh, precision, recall, fbeta,
                               fbeta_curve, f2, opt_th, log_loss, rmspe, exp_rmspe)
from lessonkit.interpret import ClassificationInterpretation, per_tag_scores

# rows with no tags and none predicted are scored as zero_division on both sides; sklearn warns about them
pytestmark = pytest.mark.filterwarnings('ignore::sklearn.exceptions.UndefinedMetricWarning')


def multi_label(seed, n=60, c=7, p_tag=0.3, empty_rows=True):
    "Random probabilities and n-hot targets; some rows have no tags at all when `empty_rows`."
    rng = np.random.default_rng(seed)
    y = (rng.random((n, c)) < p_tag).astype(np.float32)
    if empty_rows: y[:3] = 0
    p = np.clip(0.5 * y + rng.random((n, c)) * 0.6, 0, 1)
    if empty_rows: p[0] = 0.01                       # no tags and none predicted
    return p, y


# ---------------------------------------------------------------- single-label accuracy
@pytest.mark.parametrize('seed', range(5))
def test_accuracy_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(50, 4)).astype(np.float32)
    y = rng.integers(0, 4, 50)
    want = skm.accuracy_score(y, logits.argmax(1))
    assert accuracy(torch.tensor(logits).log_softmax(1), torch.tensor(y)) == pytest.approx(want)
    assert accuracy_np(torch.tensor(logits).softmax(1).numpy(), y) == pytest.approx(want)
    assert accuracy(logits, y[:, None]) == pytest.approx(want)           # (N, 1) targets are flattened
    assert isinstance(accuracy(torch.tensor(logits), torch.tensor(y)), float)


def test_accuracy_on_tensors_with_grad_and_half():
    preds = torch.tensor([[2., 1.], [0., 3.]], requires_grad=True)
    assert accuracy(preds, torch.tensor([0, 0])) == 0.5
    assert accuracy(preds.detach().half(), torch.tensor([0, 1])) == 1.0


def test_accuracy_bad_inputs():
    with pytest.raises(ValueError, match='accuracy_thresh'):
        accuracy(np.ones((3, 2)) / 2, np.array([[1, 0], [0, 1], [1, 1]]))
    with pytest.raises(ValueError, match='3 predictions but 2 targets'):
        accuracy_np(np.eye(3), np.array([0, 1]))
    with pytest.raises(ValueError, match=r'np.mean\(np.exp\(log_preds\), 0\)'):
        accuracy_np(np.zeros((2, 3, 3)), np.array([0, 1, 2]))


# ---------------------------------------------------------------- multi-label
@pytest.mark.parametrize('thresh', [0.2, 0.5])
def test_accuracy_thresh_matches_sklearn_elementwise(thresh):
    p, y = multi_label(1)
    want = skm.accuracy_score(y.ravel(), (p > thresh).ravel())
    assert accuracy_thresh(thresh)(torch.tensor(p), torch.tensor(y)) == pytest.approx(want)
    assert accuracy_multi(p, y, thresh) == pytest.approx(want)


@pytest.mark.parametrize('average', ['samples', 'micro', 'macro', None])
@pytest.mark.parametrize('beta', [0.5, 1, 2])
@pytest.mark.parametrize('zero_division', [0.0, 1.0])
def test_fbeta_precision_recall_match_sklearn(average, beta, zero_division):
    p, y = multi_label(2)
    pred = p > 0.4
    kw = dict(average=average, zero_division=zero_division)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        want_f = skm.fbeta_score(y, pred, beta=beta, **kw)
        want_p, want_r = skm.precision_score(y, pred, **kw), skm.recall_score(y, pred, **kw)
    np.testing.assert_allclose(fbeta(p, y, beta, 0.4, **kw), want_f)
    np.testing.assert_allclose(precision(p, y, 0.4, **kw), want_p)
    np.testing.assert_allclose(recall(p, y, 0.4, **kw), want_r)


def test_fbeta_per_tag_thresholds_and_torch():
    p, y = multi_label(3, empty_rows=False)
    th = np.linspace(0.2, 0.5, p.shape[1])
    want = skm.fbeta_score(y, p > th, beta=2, average='samples')
    assert fbeta(torch.tensor(p), torch.tensor(y), 2, th) == pytest.approx(want)


def test_fbeta_applies_sigmoid_to_scores():
    p, y = multi_label(4, empty_rows=False)
    p = np.clip(p, 0.01, 0.99)
    logits = np.log(p / (1 - p))
    assert fbeta(logits, y, 2, 0.3) == pytest.approx(fbeta(p, y, 2, 0.3))
    assert f2(torch.tensor(logits), torch.tensor(y)) == pytest.approx(f2(p, y))
    # told explicitly that these are probabilities: no sigmoid (scores > 1 are all 'present')
    assert fbeta(logits, y, 2, 0.3, sigmoid=False) == pytest.approx(skm.fbeta_score(y, logits > 0.3, beta=2, average='samples'))


@pytest.mark.parametrize('seed', range(3))
def test_f2_is_best_sklearn_f2_over_the_course_range(seed):
    p, y = multi_label(seed, empty_rows=False)
    ths = np.arange(0.17, 0.24, 0.01)
    scores = [skm.fbeta_score(y, p > th, beta=2, average='samples') for th in ths]
    assert f2(p, y) == pytest.approx(max(scores))
    assert opt_th(p, y) == pytest.approx(ths[int(np.argmax(scores))])
    got_ths, got = fbeta_curve(p, y)
    np.testing.assert_allclose(got_ths, ths); np.testing.assert_allclose(got, scores)
    wide = np.arange(0.05, 0.95, 0.05)
    assert f2(p, y, 0.05, 0.95, 0.05) == pytest.approx(max(skm.fbeta_score(y, p > t, beta=2, average='samples') for t in wide))


def test_multi_label_bad_inputs():
    p, y = multi_label(5)
    with pytest.raises(ValueError, match='same shape'): fbeta(p, y[:, :3])
    with pytest.raises(ValueError, match='same shape'): f2(np.stack([p, p]), y)
    with pytest.raises(ValueError, match='No thresholds'): f2(p, y, 0.3, 0.2)
    with pytest.raises(ValueError, match='beta must be positive'): fbeta(p, y, 0)
    with pytest.raises(ValueError, match='average must be'): fbeta(p, y, 2, average='weighted')
    with pytest.raises(ValueError, match='0 rows'): fbeta(p[:0], y[:0])


# ---------------------------------------------------------------- log loss
@pytest.mark.parametrize('dtype', [np.float64, np.float32])
def test_log_loss_matches_sklearn(dtype):
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(5) * 0.3, 40).astype(dtype)
    p[0] = [1, 0, 0, 0, 0]                  # confidently wrong below: clipped, not infinite
    y = rng.integers(0, 5, 40); y[0] = 3
    p = p / p.sum(1, keepdims=True)
    want = skm.log_loss(y, p, labels=range(5))
    assert log_loss(y, p) == pytest.approx(want, rel=1e-5)
    assert log_loss(torch.tensor(y), torch.tensor(p)) == pytest.approx(want, rel=1e-5)


def test_log_loss_eps_binary_onehot_and_missing_classes():
    y, p = np.array([0, 1, 1]), np.array([[0.9, 0.1], [0.2, 0.8], [1.0, 0.0]])
    assert log_loss(y, p, eps=1e-15) == pytest.approx(-np.mean(np.log([0.9, 0.8, 1e-15])))
    assert log_loss(y, p[:, 1]) == pytest.approx(skm.log_loss(y, p[:, 1]))
    assert log_loss(np.eye(2)[y], p) == pytest.approx(skm.log_loss(y, p))
    # the targets use only classes 0 and 2 of 3: sklearn needs labels=, we index columns directly
    y3, p3 = np.array([0, 2, 2]), np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]])
    assert log_loss(y3, p3) == pytest.approx(skm.log_loss(y3, p3, labels=[0, 1, 2]))


def test_log_loss_bad_inputs():
    with pytest.raises(ValueError, match='np.exp'): log_loss(np.array([0, 1]), np.log([[0.9, 0.1], [0.2, 0.8]]))
    with pytest.raises(ValueError, match='targets come first'): log_loss(np.array([0, 1, 1]), np.eye(2))
    with pytest.raises(ValueError, match='class indices 0..1'): log_loss(np.array([0, 2]), np.eye(2))


# ---------------------------------------------------------------- RMSPE
def test_exp_rmspe_formula():
    rng = np.random.default_rng(0)
    targ = np.log(rng.uniform(1000, 20000, 100))
    pred = targ + rng.normal(0, 0.1, 100)
    want = math.sqrt(np.mean(((np.exp(targ) - np.exp(pred)) / np.exp(targ)) ** 2))
    assert exp_rmspe(pred, targ) == pytest.approx(want)
    assert exp_rmspe(torch.tensor(pred, dtype=torch.float32)[:, None], torch.tensor(targ, dtype=torch.float32)) \
        == pytest.approx(want, rel=1e-4)
    assert exp_rmspe(targ, targ) == 0


def test_rmspe_skips_zero_sales():
    sales, guess = np.array([100., 0., 400.]), np.array([110., 50., 300.])
    assert rmspe(guess, sales) == pytest.approx(math.sqrt((0.1 ** 2 + 0.25 ** 2) / 2))
    with pytest.raises(ValueError, match='non-zero'): rmspe(guess[1:2], sales[1:2])
    with pytest.raises(ValueError, match='3 predictions but 2 targets'): rmspe(guess, sales[:2])


# ---------------------------------------------------------------- interpretation numbers
def test_confusion_matrix_and_most_confused_match_sklearn():
    rng = np.random.default_rng(0)
    n, c = 80, 5
    probs = rng.dirichlet(np.ones(c), n)
    y = rng.integers(0, c, n)
    data = SimpleNamespace(path='.', classes=list('abcde'), is_multi=False, val_ds=SimpleNamespace(fnames=[f'{i}.jpg' for i in range(n)]))
    interp = ClassificationInterpretation.from_preds(probs, y, data)
    cm = skm.confusion_matrix(y, probs.argmax(1), labels=range(c))
    np.testing.assert_array_equal(interp.confusion_matrix(), cm)
    mc = interp.most_confused()
    assert sum(k for *_, k in mc) == n - np.trace(cm)
    assert [k for *_, k in mc] == sorted((k for *_, k in mc), reverse=True)
    a, b, k = mc[0]
    assert cm['abcde'.index(a), 'abcde'.index(b)] == k
    losses, idxs = interp.top_losses()
    np.testing.assert_allclose(losses.mean(), skm.log_loss(y, probs, labels=range(c)))


def test_per_tag_scores_match_sklearn():
    p, y = multi_label(6)
    tbl = per_tag_scores(p, y, [f't{i}' for i in range(7)], thresh=0.35)
    pred = p > 0.35
    np.testing.assert_allclose(tbl['precision'], skm.precision_score(y, pred, average=None, zero_division=0))
    np.testing.assert_allclose(tbl['recall'], skm.recall_score(y, pred, average=None, zero_division=0))
    np.testing.assert_allclose(tbl['f2'], skm.fbeta_score(y, pred, beta=2, average=None, zero_division=0))
    np.testing.assert_array_equal(tbl['support'], y.sum(0))


def test_interpretation_on_image_classifier_data(tmp_path):
    "With a real data object: images come from the dataset, titles name the files, multi-label data gets per-tag scores."
    data_mod = pytest.importorskip('lessonkit.data')
    from PIL import Image
    import matplotlib.pyplot as plt
    for split in ['train', 'valid']:
        for c, col in [('cats', (200, 50, 50)), ('dogs', (50, 50, 200))]:
            (tmp_path/split/c).mkdir(parents=True)
            for i in range(3): Image.fromarray(np.full((20, 24, 3), col, np.uint8)).save(tmp_path/split/c/f'{c}.{i}.jpg')
    data = data_mod.ImageClassifierData.from_paths(tmp_path, bs=2, tfms=(None, None))
    probs = np.array([[.9, .1], [.4, .6], [.2, .8], [.3, .7], [.6, .4], [.1, .9]])
    interp = ClassificationInterpretation.from_preds(probs, data.val_ds.y, data)
    fig = interp.plot_top_losses(2)
    assert [ax.get_title() for ax in fig.axes[:2]] == ['cats.2.jpg\ndogs/cats 1.61 / 0.20', 'cats.1.jpg\ndogs/cats 0.92 / 0.40']
    np.testing.assert_allclose(fig.axes[0].images[0].get_array()[0, 0], np.array([200, 50, 50]) / 255, atol=0.03)
    assert interp.most_confused() == [('cats', 'dogs', 2), ('dogs', 'cats', 1)]
    rng = np.random.default_rng(0)
    x = rng.random((6, 16, 16, 3)).astype(np.float32)
    y = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 1]], dtype=np.float32)
    ml = data_mod.ImageClassifierData.from_arrays(tmp_path, (x, y), (x, y), tfms=(None, None), classes=['a', 'b', 'c'])
    assert ml.is_multi
    ml_interp = ClassificationInterpretation.from_preds(np.where(y > 0, 0.6, 0.3), y, ml)
    tbl = ml_interp.per_tag(0.4)
    assert tbl['recall'].tolist() == [1.0] * 3 and tbl['precision'].tolist() == [1.0] * 3
    assert ml_interp.per_tag(0.2)['precision'].tolist() == [0.5] * 3
    assert ml_interp.plot_top_losses(2).axes[0].get_title().startswith('#0 ')
    plt.close('all')


# ---------------------------------------------------------------- imports
@pytest.mark.parametrize('mod', ['lessonkit.metrics', 'lessonkit.interpret', 'lessonkit.submission'])
def test_fresh_process_import(mod):
    code = (f"import sys, {mod} as m; assert 'kaggle' not in sys.modules, 'kaggle imported eagerly'; "
            "assert not hasattr(m, 'metrics'); print(sorted(m.__all__))")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
