"""Training-loop rows: lessonkit's fit vs a bare PyTorch loop, precompute on vs off, TTA vs one validation pass.

    .venv/bin/python bench/bench_loop.py [--quick]      # prints the rows as JSON (bench/run.py runs it for you)
"""
from __future__ import annotations

import copy
import json
import sys
import time
import traceback
from pathlib import Path
from types import SimpleNamespace

BENCH_DIR = Path(__file__).resolve().parent
for p in (str(BENCH_DIR.parent), str(BENCH_DIR)):
    if p not in sys.path: sys.path.insert(0, p)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from _util import WORK, log, make_image_folder, make_row, median, peak_rss_mb, reset_peak_rss, spread, time_pair  # noqa: E402


# ---------------------------------------------------------------- fit vs a bare loop

def small_cnn(c: int = 2) -> nn.Module:
    "Three stride-2 convolutions and a linear layer: so cheap that any per-batch overhead of the loop shows."
    def block(ni, nf): return [nn.Conv2d(ni, nf, 3, stride=2, padding=1), nn.ReLU(), nn.BatchNorm2d(nf)]
    return nn.Sequential(*block(3, 16), *block(16, 32), *block(32, 64), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, c))


def tensor_data(n_trn: int, n_val: int, sz: int, bs: int, seed: int = 0):
    "In-memory image-shaped tensors behind the loaders both loops share (same batches, same order, no workers)."
    g = torch.Generator().manual_seed(seed)
    def ds(n):
        y = torch.randint(0, 2, (n,), generator=g)
        x = torch.randn(n, 3, sz, sz, generator=g) + y[:, None, None, None] * 0.5
        return TensorDataset(x, y)
    return SimpleNamespace(path=WORK / 'loop', trn_dl=DataLoader(ds(n_trn), batch_size=bs, shuffle=False),
                           val_dl=DataLoader(ds(n_val), batch_size=bs * 2, shuffle=False), test_dl=None,
                           classes=['0', '1'], c=2)


def bare_epoch(model, opt, data, lr):
    "The reference: the loop anyone writes in plain PyTorch (train one epoch, then loss and accuracy on validation)."
    for g in opt.param_groups: g['lr'] = lr
    model.train()
    tot = 0.
    for xb, yb in data.trn_dl:
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        tot += loss.item()
    model.eval()
    outs, ys = [], []
    with torch.no_grad():
        for xb, yb in data.val_dl:
            outs.append(model(xb)); ys.append(yb)
    out, y = torch.cat(outs), torch.cat(ys)
    return F.cross_entropy(out, y).item(), (out.argmax(1) == y).float().mean().item()


def loop_rows(quick: bool) -> list[dict]:
    from torchvision.models import resnet18
    from lessonkit.learner import Learner
    from lessonkit.metrics import accuracy
    cases = [  # name, model factory, n_trn, n_val, sz, bs, repeats
        ('loop overhead, resnet18 32px', lambda: resnet18(num_classes=2), 128 if quick else 640, 64 if quick else 256, 32, 64, 3 if quick else 15),
        ('loop overhead, small CNN 32px', small_cnn, 1024 if quick else 4096, 512 if quick else 1024, 32, 64, 3 if quick else 21),
    ]
    rows = []
    for name, mk, n_trn, n_val, sz, bs, reps in cases:
        reset_peak_rss()
        torch.manual_seed(0)
        data = tensor_data(n_trn, n_val, sz, bs)
        m0 = mk()
        m_lk, m_bare = copy.deepcopy(m0), copy.deepcopy(m0)  # same starting weights, separate copies
        lr = 0.01
        learn = Learner(data, m_lk, crit=F.cross_entropy, metrics=[accuracy], device='cpu')
        opt = torch.optim.SGD(m_bare.parameters(), lr=lr, momentum=0.9)  # what Learner's default opt_fn builds
        # Every timed epoch starts from the same weights and empty momentum buffers, for both loops, so both do the
        # same arithmetic on the same numbers (trained on from where they were, the two copies drifted apart in speed;
        # see bench/README.md).
        w0 = copy.deepcopy(m0.state_dict())
        def reset(model, opt):
            def setup():
                model.load_state_dict(w0)
                if opt() is not None: opt().state.clear()
            return setup
        s_lk, s_bare = time_pair(lambda: learn.fit(lr, 1, quiet=True), lambda: bare_epoch(m_bare, opt, data, lr),
                                 repeats=reps, warmup=1, setup_a=reset(m_lk, lambda: learn.opt), setup_b=reset(m_bare, lambda: opt))
        ratio = s_lk['ratio']
        nb = len(data.trn_dl)
        rows.append(make_row(
            name, f'{n_trn} train + {n_val} valid {sz}px tensors in memory, bs {bs} ({nb} batches), SGD mom 0.9, '
                  f'one epoch = train + validation loss/accuracy; lessonkit `learn.fit(lr, 1)` vs a plain PyTorch loop; '
                  f'median of {reps} back-to-back pairs, each epoch from the same starting weights',
            s_lk['median'], 's/epoch', reference=f"bare loop {s_bare['median']:.3g} s/epoch", ratio=ratio, goal='<= 1.05',
            peak_rss_mb=peak_rss_mb(), rss_scope='row',
            note=f"pair ratios {spread(s_lk['ratios'])}; lessonkit s {[round(t, 3) for t in s_lk['times']]}, "
                 f"bare s {[round(t, 3) for t in s_bare['times']]}"))
        log(rows[-1]['name'], rows[-1]['figure'], rows[-1]['ratio'])
    return rows


# ---------------------------------------------------------------- precompute and TTA

def image_data(quick: bool, sz: int = 64, bs: int = 32):
    "An ImageClassifierData over generated 500x375 JPEGs (cached in bench/work/loop_imgs)."
    from lessonkit.conv_learner import ImageClassifierData, resnet18, tfms_from_model, transforms_side_on
    n_trn, n_val = (128, 64) if quick else (256, 128)
    path = make_image_folder(WORK / f'loop_imgs_{n_trn}', n_trn, n_val)
    tfms = tfms_from_model(resnet18, sz, aug_tfms=transforms_side_on, max_zoom=1.1)
    return ImageClassifierData.from_paths(path, bs=bs, tfms=tfms), n_trn, n_val


def precompute_rows(quick: bool) -> list[dict]:
    from lessonkit.conv_learner import ConvLearner, resnet18
    reset_peak_rss()
    torch.manual_seed(0)
    data, n_trn, n_val = image_data(quick)
    for f in (Path(data.path) / 'tmp').glob('feats_*'): f.unlink()  # build the cache afresh, to time it
    t0 = time.perf_counter()
    learn = ConvLearner.pretrained(resnet18, data, pretrained=False, precompute=True)
    build_s = time.perf_counter() - t0  # learner + activation cache (built once, then read back from PATH/tmp)
    reps = 3 if quick else 5

    def mode(pre):
        def f(): learn.precompute = pre  # untimed: switching on reads the cache file back
        return f
    fit1 = lambda: learn.fit(1e-2, 1, quiet=True)
    s_on, s_off = time_pair(fit1, fit1, repeats=reps, warmup=1, setup_a=mode(True), setup_b=mode(False))
    ratio = median([1 / r for r in s_on['ratios']])
    row = make_row(
        'precompute on vs off', f'head-only training epoch, resnet18 body (random weights) frozen, sz 64, {n_trn} train + '
        f'{n_val} valid generated 500x375 JPEGs, bs {data.bs}, side-on augmentation; precompute=True (cache built) vs '
        f'False; median of {reps} back-to-back pairs; ratio = off / on', s_on['median'], 's/epoch',
        reference=f"precompute off {s_off['median']:.3g} s/epoch", ratio=ratio, goal='>= 10',
        peak_rss_mb=peak_rss_mb(), rss_scope='row',
        note=f"building the learner with its activation cache took {build_s:.1f} s (once); pair ratios "
             f"{spread([1 / r for r in s_on['ratios']])}")
    log(row['name'], row['figure'], row['ratio'])
    return [row], learn, data


def tta_rows(quick: bool, learn=None, data=None, n_aug: int = 4) -> list[dict]:
    from lessonkit.conv_learner import ConvLearner, resnet18
    reset_peak_rss()
    if learn is None:
        data, _, _ = image_data(quick)
        learn = ConvLearner.pretrained(resnet18, data, pretrained=False, precompute=False)
    learn.precompute = False
    reps = 3 if quick else 5
    s_tta, s_val = time_pair(lambda: learn.TTA(n_aug=n_aug), lambda: learn.predict(), repeats=reps, warmup=1)
    ratio = s_tta['ratio']
    lim = (n_aug + 1) * 1.1
    n_val = len(data.val_ds)
    row = make_row(
        f'TTA (n_aug={n_aug}) vs one validation pass', f'`learn.TTA(n_aug={n_aug})` vs `learn.predict()` on {n_val} '
        f'validation JPEGs (500x375 -> sz 64), resnet18; median of {reps} back-to-back pairs',
        s_tta['median'], 's', reference=f"predict {s_val['median']:.3g} s", ratio=ratio, goal=f'<= {lim:.2f}',
        peak_rss_mb=peak_rss_mb(), rss_scope='row',
        note=f"goal is (n_aug+1) x 1.1 = {lim:.2f}: TTA reads each image once and runs the model on its plain view and {n_aug} augmented views; "
             f"pair ratios {spread(s_tta['ratios'])}")
    log(row['name'], row['figure'], row['ratio'])
    return [row]


def _error_row(name, e) -> dict:
    traceback.print_exc()
    return make_row(name, f'not measured: {type(e).__name__}: {e}'[:300], 'error', '')


def run(quick: bool = False) -> list[dict]:
    "All rows of this module (each section reports its own error row instead of stopping the others)."
    torch.set_num_threads(torch.get_num_threads())
    rows = []
    try: rows += loop_rows(quick)
    except Exception as e: rows.append(_error_row('loop overhead', e))
    learn = data = None
    try:
        r, learn, data = precompute_rows(quick); rows += r
    except Exception as e: rows.append(_error_row('precompute on vs off', e))
    try: rows += tta_rows(quick, learn, data)
    except Exception as e: rows.append(_error_row('TTA vs one validation pass', e))
    return rows


if __name__ == '__main__':
    print(json.dumps(run(quick='--quick' in sys.argv), indent=1, default=str))
