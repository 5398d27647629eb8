"""The end-to-end task of bench_fastai.py, in lessonkit (the course API). Same task and arguments as fastai_task.py:
resnet from scratch (`pretrained=False`, every layer group trained), SGD momentum 0.9, no weight decay,
`fit(lr, 1, cycle_len=epochs)` (one SGDR cycle with the course's warm-up), `transforms_side_on` (or
`transforms_basic`, without flips, with `--aug basic`), training crops random and validation crops central at `sz`.
Prints one JSON line.

    python lessonkit_task.py --path data/dogscats --sz 64 --bs 32 --epochs 3 --lr 0.05 --seed 0 --workers 2
    python lessonkit_task.py ... --arch resnet34 --sz 224 --gpu     # mixed precision + channels_last on CUDA
    python lessonkit_task.py ... --gpu --device cpu                 # a dry run on the CPU: channels_last, but float32
                                                                    # (to_fp16() warns and keeps float32 there)
    python lessonkit_task.py ... --precision fp32                   # a numeric path asked for (default: the Learner's
                                                                    # own, LESSONKIT_PRECISION or what the device runs fastest)
"""
import argparse
import json
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
warnings.filterwarnings('ignore')


def peak_rss_mb():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmHWM:'): return float(line.split()[1]) / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--path', required=True)
    ap.add_argument('--arch', default='resnet18')
    ap.add_argument('--sz', type=int, default=64)
    ap.add_argument('--bs', type=int, default=32)
    ap.add_argument('--epochs', type=int, default=3)
    ap.add_argument('--lr', type=float, default=0.05)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--workers', type=int, default=2)
    ap.add_argument('--aug', choices=['side_on', 'basic'], default='side_on',
                    help='side_on: rotate, lighting and horizontal flips; basic: no flips (digits, text)')
    ap.add_argument('--gpu', action='store_true', help='the GPU recipe: mixed precision (fp16) and channels_last')
    ap.add_argument('--device', help='cuda with --gpu, else cpu; `--gpu --device cpu` is a dry run of the GPU recipe')
    ap.add_argument('--n-cycle', type=int, default=1, help='SGDR cycles: fit(lr, n_cycle, cycle_len=epochs, cycle_mult)')
    ap.add_argument('--cycle-mult', type=int, default=1)
    ap.add_argument('--profile', action='store_true', help='profile the fit (bench/_profile.py) and add the breakdown to the JSON')
    ap.add_argument('--precision', choices=['auto', 'fp32', 'bf16', 'fp16'],
                    help="Learner(precision=...); default: the Learner's default (LESSONKIT_PRECISION, else auto)")
    a = ap.parse_args()

    t_import = time.perf_counter()
    import torch
    import lessonkit
    import lessonkit.conv_learner as cl
    from lessonkit.core import set_seed
    from lessonkit.learner import Callback
    t_import = time.perf_counter() - t_import

    set_seed(a.seed)
    dev = torch.device(a.device or ('cuda' if a.gpu else 'cpu'))
    t0 = time.perf_counter()
    arch = getattr(cl, a.arch)
    tfms = cl.tfms_from_model(arch, a.sz, aug_tfms=cl.transforms_side_on if a.aug == 'side_on' else cl.transforms_basic)
    data = cl.ImageClassifierData.from_paths(a.path, bs=a.bs, tfms=tfms, num_workers=a.workers)
    learn = cl.ConvLearner.pretrained(arch, data, pretrained=False, precompute=False, precision=a.precision)
    learn.unfreeze()
    if learn.device != dev:
        learn.model.to(dev); learn.device = dev
    if a.gpu:
        learn.to_fp16(); learn.to_channels_last()
    t_setup = time.perf_counter() - t0

    times, train_times = [], []

    def sync():
        if dev.type == 'cuda': torch.cuda.synchronize()

    class EpochTimer(Callback):
        "Wall time of each epoch, and of its training phase alone (up to the last batch, validation excluded)."
        order = 100
        def before_epoch(self, learn): sync(); self.t = time.perf_counter()
        def after_batch(self, learn):
            if learn.iteration % learn.nb == 0: sync(); train_times.append(time.perf_counter() - self.t)
        def after_epoch(self, learn): sync(); times.append(time.perf_counter() - self.t)

    def fit(): learn.fit(a.lr, a.n_cycle, cycle_len=a.epochs, cycle_mult=a.cycle_mult, callbacks=[EpochTimer()], quiet=not a.profile)
    t0 = time.perf_counter()
    prof = None
    if a.profile:
        from _profile import profile_fit
        prof = profile_fit(fit)          # with the live view on, as a student's fit runs
    else: fit()
    fit_s = time.perf_counter() - t0
    preds, targs = learn.predict_with_targs()
    acc = float((preds.argmax(1) == targs).mean())
    print(json.dumps(dict(lib='lessonkit', version=lessonkit.__version__, torch=torch.__version__, epoch_s=times,
                          train_s=train_times, fit_s=fit_s, val_acc=acc, n_train=len(data.trn_ds), n_valid=len(data.val_ds),
                          classes=list(data.classes), import_s=t_import, setup_s=t_setup, peak_rss_mb=peak_rss_mb(),
                          device=str(dev), aug=a.aug, amp=str(learn.autocast_dtype), channels_last=learn.channels_last,
                          precision=a.precision or 'default', threads=torch.get_num_threads(), profile=prof,
                          peak_gpu_mb=torch.cuda.max_memory_allocated() / 2**20 if dev.type == 'cuda' else None)))


if __name__ == '__main__':
    main()
