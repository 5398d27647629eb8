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

    def sgdr(pct):  # lessonkit.sched.sgdr_mult for one cycle over the whole fit, as a function of progress
        return a.lr * (0.01 if pct < 1 / 20 else (math.cos(math.pi * pct) + 1) / 2)

    t0 = time.perf_counter()
    with learn.no_bar(), learn.no_logging():
        learn.fit(a.epochs, lr=a.lr, cbs=[ParamScheduler({'lr': sgdr}), EpochTimer()])
    fit_s = time.perf_counter() - t0
    with learn.no_bar():
        preds, targs = learn.get_preds(ds_idx=1)
    acc = float((preds.argmax(1) == targs).float().mean())
    print(json.dumps(dict(lib='fastai', version=fastai.__version__, torch=torch.__version__, epoch_s=times, train_s=train_times,
                          fit_s=fit_s, val_acc=acc, n_train=len(dls.train_ds), n_valid=len(dls.valid_ds),
                          classes=list(dls.vocab), import_s=t_import, setup_s=t_setup, peak_rss_mb=peak_rss_mb(),
                          device=str(dev), aug=a.aug, amp=a.gpu, channels_last=a.gpu, threads=torch.get_num_threads(),
                          peak_gpu_mb=torch.cuda.max_memory_allocated() / 2**20 if dev.type == 'cuda' else None)))


if __name__ == '__main__':
    main()
