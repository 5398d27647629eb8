"""The end-to-end task of bench_fastai.py, in fastai 2.x. Runs in bench/.venv-fastai, never imports lessonkit.

Same task as lessonkit_task.py: an ImageFolder tree (train/, valid/), the course's resnet + head trained from
scratch, SGD with momentum 0.9 and no weight decay, one SGDR cycle over all epochs (cosine from lr to 0 with the
course's warm-up at lr/100 for the first 1/20), side-on augmentation (flip, rotate 10 degrees, lighting 0.05; no
flip with --aug basic), training crops random and validation crops central at `sz`, ImageNet normalisation. Prints
one JSON line.

    python fastai_task.py --path data/dogscats --sz 64 --bs 32 --epochs 3 --lr 0.05 --seed 0 --workers 2
    python fastai_task.py ... --arch resnet34 --sz 224 --gpu     # mixed precision + channels_last on CUDA
    python fastai_task.py ... --gpu --device cpu                 # a dry run on the CPU (fastai's autocast and scaler
                                                                 # are CUDA-only: they switch themselves off there)
    python fastai_task.py ... --best                             # fastai's own best settings for a CPU with native
                                                                 # bfloat16: to_bf16() and channels-last
"""
import argparse
import json
import math
import time
import warnings
from functools import partial

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
    ap.add_argument('--n-cycle', type=int, default=1, help='SGDR cycles of `epochs`, `epochs*cycle_mult`, ... epochs')
    ap.add_argument('--cycle-mult', type=int, default=1)
    ap.add_argument('--profile', action='store_true', help='profile the fit (bench/_profile.py) and add the breakdown to the JSON')
    ap.add_argument('--best', action='store_true', help="fastai's own settings for a bfloat16 CPU: learn.to_bf16() and "
                    'learn.to_channelslast(); the JSON says whether autocast took effect (amp_effective)')
    a = ap.parse_args()

    t_import = time.perf_counter()
    import torch
    import fastai
    from fastai.vision.all import (ImageDataLoaders, Resize, ResizeMethod, aug_transforms, Normalize, imagenet_stats,
                                   vision_learner, SGD, CrossEntropyLossFlat, ParamScheduler, Callback, set_seed)
    import torchvision.models as tvm
    t_import = time.perf_counter() - t_import

    set_seed(a.seed)
    dev = torch.device(a.device or ('cuda' if a.gpu else 'cpu'))
    t0 = time.perf_counter()
    dls = ImageDataLoaders.from_folder(
        a.path, train='train', valid='valid', bs=a.bs, num_workers=a.workers, device=dev, seed=a.seed,
        item_tfms=Resize(a.sz, method=ResizeMethod.Crop),
        batch_tfms=[*aug_transforms(do_flip=a.aug == 'side_on', flip_vert=False, max_rotate=10., max_zoom=1., max_lighting=0.05,
                                    max_warp=0.), Normalize.from_stats(*imagenet_stats)])
    arch = getattr(tvm, a.arch)
    learn = vision_learner(dls, arch, pretrained=False, opt_func=partial(SGD, mom=0.9), loss_func=CrossEntropyLossFlat())
    if a.gpu: learn = learn.to_channelslast()  # adds ChannelsLast and fp16 MixedPrecision
    if a.best: learn = learn.to_bf16().to_channelslast(use_amp=False)   # bf16 MixedPrecision, then ChannelsLast alone
    seen = {}
    first_conv = next(m for m in learn.model.modules() if isinstance(m, torch.nn.Conv2d))
    def note_dtype(m, i, o): seen.setdefault('dtype', str(o.dtype))     # returns None: the output is left as it is
    hook = first_conv.register_forward_hook(note_dtype)
    t_setup = time.perf_counter() - t0

    times, train_times = [], []

    def sync():
        if dev.type == 'cuda': torch.cuda.synchronize()

    class EpochTimer(Callback):
        "Wall time of each epoch, and of its training phase alone (validation excluded)."
        order = 0
        def before_epoch(self): sync(); self.t = time.perf_counter()
        def before_train(self): sync(); self.t_train = time.perf_counter()
        def after_train(self): sync(); train_times.append(time.perf_counter() - self.t_train)
        def after_epoch(self): sync(); times.append(time.perf_counter() - self.t)

    cycles = [a.epochs * a.cycle_mult ** i for i in range(a.n_cycle)]
    total = sum(cycles)

    def sgdr(pct):  # lessonkit.sched.sgdr_mult as a function of progress over the whole fit: warm-up, then cosine per cycle
        e = pct * total
        if e < cycles[0] / 20: return a.lr * 0.01
        start = 0
        for i, n in enumerate(cycles):
            if e < start + n or i == len(cycles) - 1: return a.lr * (math.cos(math.pi * min(1., (e - start) / n)) + 1) / 2
            start += n

    def fit():
        with learn.no_bar(), learn.no_logging():
            learn.fit(total, lr=a.lr, cbs=[ParamScheduler({'lr': sgdr}), EpochTimer()])
    t0 = time.perf_counter()
    prof = None
    if a.profile:
        from _profile import profile_fit
        prof = profile_fit(fit)
    else: fit()
    fit_s = time.perf_counter() - t0
    hook.remove()
    with learn.no_bar():
        preds, targs = learn.get_preds(ds_idx=1)
    acc = float((preds.argmax(1) == targs).float().mean())
    print(json.dumps(dict(lib='fastai', version=fastai.__version__, torch=torch.__version__, epoch_s=times, train_s=train_times,
                          fit_s=fit_s, val_acc=acc, n_train=len(dls.train_ds), n_valid=len(dls.valid_ds),
                          classes=list(dls.vocab), import_s=t_import, setup_s=t_setup, peak_rss_mb=peak_rss_mb(),
                          device=str(dev), aug=a.aug, amp=a.gpu or a.best, channels_last=a.gpu or a.best, best=a.best,
                          amp_effective=seen.get('dtype') in ('torch.float16', 'torch.bfloat16'), conv_dtype=seen.get('dtype'),
                          threads=torch.get_num_threads(), profile=prof,
                          peak_gpu_mb=torch.cuda.max_memory_allocated() / 2**20 if dev.type == 'cuda' else None)))


if __name__ == '__main__':
    main()
