"""Image loading rows: a plain torchvision ImageFolder pipeline vs lessonkit's loaders, before and after `data.resize`.

    .venv/bin/python bench/bench_data.py [--quick] [--n 384] [--json]   # prints a table (bench/run.py runs it for you)

The same generated 500x375 JPEGs are read three ways, each through a DataLoader with 2 worker processes and
batches of 64:

- torchvision: `ImageFolder` + the usual transforms (PIL decode, resize, crop, to tensor, normalise);
- lessonkit: `ImageClassifierData.from_paths(...)` on the original JPEGs;
- lessonkit resized: the same after `data.resize(int(sz*1.3))` (the cache is built once, before timing).

Both the validation pipeline (resize + centre crop) and the training pipeline (random zoom/crop, rotate by up to
10 degrees, lighting, flip; torchvision: RandomRotation + Resize + RandomCrop + ColorJitter + RandomHorizontalFlip)
are timed, at sz=224 and sz=64. The three runs of one row are interleaved, repeat after repeat, and the ratios are
medians of the per-repeat ratios, so the noise of a shared machine hits all three alike.

The figures are steady-state throughput: each loader keeps its workers between passes (persistent_workers), and a
warm-up pass is not timed, so what is measured is the work per image (decode, resize, augment, normalise), as in a
long epoch. Starting 2 workers costs a fixed 0.1-0.3 s per epoch on top, the same for all three; it is reported
separately.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
for p in (str(BENCH_DIR.parent), str(BENCH_DIR)):
    if p not in sys.path: sys.path.insert(0, p)

import torch  # noqa: E402

from _util import WORK, log, make_image_folder, make_row, markdown_table, median, spread  # noqa: E402

BS, WORKERS = 64, 2


def torchvision_loader(root: Path, sz: int, train: bool):
    "The plain torchvision pipeline over root/train (workers kept between passes)."
    import torchvision.transforms as T
    from torchvision.datasets import ImageFolder
    from torch.utils.data import DataLoader
    norm = T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    if train:
        tfm = T.Compose([T.RandomRotation(10), T.Resize(int(sz * 1.1)), T.RandomCrop(sz), T.ColorJitter(0.05, 0.05),
                         T.RandomHorizontalFlip(), T.ToTensor(), norm])
    else: tfm = T.Compose([T.Resize(sz), T.CenterCrop(sz), T.ToTensor(), norm])
    return DataLoader(ImageFolder(root/'train', tfm), BS, shuffle=train, num_workers=WORKERS, persistent_workers=True)


def lessonkit_loader(data, train: bool):
    "`data.trn_dl` (train) or the training images with the validation transform, workers kept between passes."
    from lessonkit.data import ImageLoader
    ds = data.trn_ds if train else data.trn_ds.new(tfm=data.tfms[1])
    return ImageLoader(ds, BS, shuffle=train, num_workers=WORKERS, persistent_workers=True)


def lessonkit_loaders(root: Path, sz: int):
    "(data, resized data, seconds the resize took) for root, with the course's side-on augmentation."
    import torchvision
    from lessonkit.data import ImageClassifierData
    from lessonkit.transforms import tfms_from_model, transforms_side_on
    tfms = tfms_from_model(torchvision.models.resnet34, sz, aug_tfms=transforms_side_on, max_zoom=1.1)
    data = ImageClassifierData.from_paths(root, tfms=tfms, bs=BS, num_workers=WORKERS)
    cached = any((root/'tmp'/str(int(sz * 1.3))).glob('.complete-*'))
    t0 = time.perf_counter()
    resized = data.resize(int(sz * 1.3), 'tmp')
    took = f'{time.perf_counter() - t0:.1f} s' + (' (the cache of an earlier run was reused)' if cached else '')
    return data, resized, took


def one_pass(dl) -> float:
    "Seconds for one pass over the loader."
    t0 = time.perf_counter()
    for xb, yb in dl: pass
    return time.perf_counter() - t0


def measure(loaders: dict, repeats: int) -> dict:
    "Seconds per pass for each loader, interleaved, order rotating; the first (untimed) pass starts the workers."
    names = list(loaders)
    for n in names: one_pass(loaders[n])
    times = {n: [] for n in names}
    for r in range(repeats):
        for n in names[r % len(names):] + names[:r % len(names)]: times[n].append(one_pass(loaders[n]))
    return times


def startup_seconds(repeats: int = 3) -> float:
    "Seconds a pass over 2 tiny batches takes with 2 fresh workers: the fixed cost per epoch of starting them."
    from torch.utils.data import DataLoader, TensorDataset
    ds = TensorDataset(torch.zeros(2 * BS, 3, 8, 8), torch.zeros(2 * BS))
    return median(one_pass(DataLoader(ds, BS, num_workers=WORKERS)) for _ in range(repeats))


def run(quick: bool = False, n: int | None = None) -> list[dict]:
    "Rows: images per second of each pipeline at sz 224 and 64, with ratios against torchvision."
    n = n or (128 if quick else 384)
    repeats = 3 if quick else 5
    root = make_image_folder(WORK / f'data_imgs_{n}', n_train=n, n_valid=64)
    rows = []
    start = startup_seconds()
    log(f'starting 2 workers: {start:.2f} s per pass')
    for sz in (224, 64):
        data, resized, resize_s = lessonkit_loaders(root, sz)
        for train in (False, True):
            mode = 'train' if train else 'valid'
            loaders = {'torchvision': torchvision_loader(root, sz, train), 'lessonkit': lessonkit_loader(data, train),
                       'lessonkit resized': lessonkit_loader(resized, train)}
            t = measure(loaders, repeats)
            del loaders  # stops their workers
            ips = {k: n / median(v) for k, v in t.items()}
            speedup = lambda k: [a / b for a, b in zip(t['torchvision'], t[k])]  # >1: faster than torchvision
            what = (f'{n} generated 500x375 JPEGs -> sz {sz}, {mode} transforms, bs {BS}, {WORKERS} workers, '
                    f'steady state; median of {repeats} interleaved passes')
            ref = f"torchvision ImageFolder {ips['torchvision']:.0f} img/s"
            rows.append(make_row(f'loading sz {sz} {mode}: torchvision', what, ips['torchvision'], 'img/s',
                                 note=f'starting the 2 workers of a loader adds {start:.2f} s per epoch (all three alike)'))
            rows.append(make_row(f'loading sz {sz} {mode}: lessonkit', what, ips['lessonkit'], 'img/s', reference=ref,
                                 ratio=median(speedup('lessonkit')), goal='>= 1',
                                 note=f"speed-up vs torchvision per repeat {spread(speedup('lessonkit'))}"))
            goal = '>= 2' if sz == 64 else None
            rows.append(make_row(f'loading sz {sz} {mode}: lessonkit after resize({int(sz * 1.3)})', what,
                                 ips['lessonkit resized'], 'img/s', reference=ref,
                                 ratio=median(speedup('lessonkit resized')), goal=goal,
                                 note=f"speed-up vs torchvision per repeat {spread(speedup('lessonkit resized'))}; "
                                      f"vs lessonkit without resize {ips['lessonkit resized'] / ips['lessonkit']:.2f}x; "
                                      f"building the cache took {resize_s} once"))
            for r in rows[-3:]: log(r['name'], f"{r['figure']:.0f} img/s", r['ratio'])
    return rows


if __name__ == '__main__':
    args = sys.argv[1:]
    n = int(args[args.index('--n') + 1]) if '--n' in args else None
    rows = run(quick='--quick' in args, n=n)
    if '--json' in args: print(json.dumps(rows, indent=1, default=str))
    else:
        print(markdown_table(rows))
        for r in rows:
            if r.get('note'): print(f"- {r['name']}: {r['note']}")
