"Image data: folders, CSV labels, arrays, loaders, the resize cache, and what bad input gets back."
import hashlib, os, warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torchvision
from PIL import Image, ImageOps
from sklearn.preprocessing import MultiLabelBinarizer

from lessonkit.data import (ImageClassifierData, DataError, BadImageWarning, get_cv_idxs, list_images, is_hidden,
                            show_batch, show_augs, label_text, plots)
from lessonkit.transforms import (ImageReadError, tfms_from_model, transforms_side_on, transforms_top_down,
                                  imagenet_stats, open_image)

# torchvision 0.29 calls its (still working) image decoders deprecated; lessonkit silences that, pytest re-enables it
pytestmark = pytest.mark.filterwarnings('ignore:The image decoding and encoding capabilities:DeprecationWarning')
resnet34 = torchvision.models.resnet34
COLOURS = {'cats': (200, 80, 60), 'dogs': (60, 90, 200), 'birds': (60, 200, 60)}


def photo(fn, cls='cats', seed=0, size=(48, 36), mode='RGB', fmt=None, **save_kw):
    "A small image whose colour says its class; written in `mode` (L, RGBA, P, CMYK...)."
    rng = np.random.default_rng(seed)
    a = np.clip(np.array(COLOURS.get(cls, (128, 128, 128))) + rng.normal(0, 20, (size[1], size[0], 3)), 0, 255)
    fn = Path(fn); fn.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a.astype(np.uint8)).convert(mode).save(fn, format=fmt, **save_kw)
    return fn


def dogscats(root, n_trn=6, n_val=3, n_test=4, classes=('cats', 'dogs')):
    root = Path(root)
    for split, n in [('train', n_trn), ('valid', n_val)]:
        for c in classes:
            for i in range(n): photo(root/split/c/f'{c[:-1]}.{i}.jpg', c, seed=i)
    for i in range(n_test): photo(root/'test'/f'{i:03d}.jpg', classes[i % len(classes)], seed=50 + i)
    return root


def tfms(sz=16, **kw): return tfms_from_model(resnet34, sz, **kw)


def digest(folder):
    "Name, size and content hash of every file under `folder`: to prove nothing changed."
    return {p.relative_to(folder).as_posix(): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(Path(folder).rglob('*')) if p.is_file()}


def build(*args, **kw):
    "Call a constructor, returning (data, list of warnings)."
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        d = args[0](*args[1:], **kw)
    return d, [x for x in w if not issubclass(x.category, DeprecationWarning)]


# ---------------------------------------------------------------- from_paths
def test_from_paths_layout(tmp_path):
    path = dogscats(tmp_path/'dc')
    data = ImageClassifierData.from_paths(path, tfms=tfms(), bs=4, test_name='test')
    assert data.classes == ['cats', 'dogs'] and data.c == 2 and not data.is_multi and not data.is_reg
    assert data.path == path and data.sz == 16 and data.bs == 4
    assert data.trn_ds.fnames == [f'train/cats/cat.{i}.jpg' for i in range(6)] + [f'train/dogs/dog.{i}.jpg' for i in range(6)]
    assert data.trn_ds.y.dtype == np.int64 and data.trn_ds.y.tolist() == [0] * 6 + [1] * 6
    assert data.val_ds.y.tolist() == [0] * 3 + [1] * 3
    assert data.test_ds.fnames == [f'test/{i:03d}.jpg' for i in range(4)]
    assert data.test_ds.y.tolist() == [0] * 4
    # the course opens files as PATH + fn
    assert open_image(str(path) + '/' + data.val_ds.fnames[0]).shape == (36, 48, 3)
    x, y = data.val_ds[0]
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32 and y.item() == 0


def test_from_paths_test_order_is_sorted_and_stable(tmp_path):
    path = dogscats(tmp_path/'dc', n_test=0)
    for name in ['b.jpg', 'a.jpg', 'c10.jpg', 'c2.jpg']: photo(path/'test'/name)
    d1 = ImageClassifierData.from_paths(path, tfms=tfms(), test_name='test')
    assert d1.test_ds.fnames == ['test/a.jpg', 'test/b.jpg', 'test/c10.jpg', 'test/c2.jpg']
    preds = [fn for fn in d1.test_ds.fnames]
    x, _ = next(iter(d1.test_dl))  # in order, not shuffled
    assert len(x) == 4 and preds == ImageClassifierData.from_paths(path, tfms=tfms(), test_name='test').test_ds.fnames


def test_hidden_files_and_folders_are_ignored(tmp_path):
    path = dogscats(tmp_path/'dc')
    (path/'train'/'.ipynb_checkpoints').mkdir()
    photo(path/'train'/'.ipynb_checkpoints'/'x.jpg')
    (path/'train'/'__MACOSX').mkdir()
    photo(path/'train'/'__MACOSX'/'y.jpg')
    (path/'train'/'.DS_Store').write_bytes(b'\0\0\0\1Bud1\0')
    (path/'train'/'cats'/'._cat.0.jpg').write_bytes(b'\0\5\26\7\0\2\0\0Mac OS X')
    (path/'train'/'dogs'/'Thumbs.db').write_bytes(b'\xd0\xcf\x11\xe0')
    (path/'valid'/'.hidden').mkdir()
    (path/'test'/'.DS_Store').write_bytes(b'x')
    data, w = build(ImageClassifierData.from_paths, path, tfms=tfms(), test_name='test')
    assert w == []  # clutter is not even worth a warning
    assert data.classes == ['cats', 'dogs']
    assert len(data.trn_ds) == 12 and len(data.test_ds) == 4
    assert not any('/.' in f or '__MACOSX' in f for f in data.trn_ds.fnames)
    assert is_hidden('.DS_Store') and is_hidden('._x.jpg') and is_hidden('Thumbs.db') and not is_hidden('cat.jpg')


def test_bad_files_are_skipped_with_one_warning_and_left_alone(tmp_path):
    path = dogscats(tmp_path/'dc')
    good = (path/'train'/'cats'/'cat.0.jpg').read_bytes()
    (path/'train'/'cats'/'zero.jpg').write_bytes(b'')
    (path/'train'/'cats'/'cut.jpg').write_bytes(good[:len(good) // 2])
    (path/'train'/'dogs'/'page.jpg').write_text('<html><body>404 Not Found</body></html>')
    (path/'valid'/'dogs'/'notes.jpg').write_text('just text')
    before = digest(path)
    data, w = build(ImageClassifierData.from_paths, path, tfms=tfms())
    assert len(w) == 1 and issubclass(w[0].category, BadImageWarning)
    msg = str(w[0].message)
    assert 'Skipped 4' in msg
    for name in ['zero.jpg', 'cut.jpg', 'page.jpg', 'notes.jpg']: assert name in msg
    assert len(data.trn_ds) == 12 and len(data.val_ds) == 6
    for xb, yb in data.trn_dl: pass  # every remaining image reads
    with pytest.raises(DataError, match='4 image file'):
        ImageClassifierData.from_paths(path, tfms=tfms(), strict=True)
    assert digest(path) == before


def test_many_bad_files_list_only_the_first(tmp_path):
    path = dogscats(tmp_path/'dc')
    for i in range(9): (path/'train'/'dogs'/f'bad{i}.jpg').write_bytes(b'')
    _, w = build(ImageClassifierData.from_paths, path, tfms=tfms())
    msg = str(w[0].message)
    assert 'Skipped 9' in msg and 'bad0.jpg' in msg and 'bad8.jpg' not in msg and '...' in msg


@pytest.mark.parametrize('mode,ext', [('L', 'jpg'), ('CMYK', 'jpg'), ('RGBA', 'png'), ('P', 'png'), ('LA', 'png'),
                                      ('RGB', 'bmp'), ('RGB', 'gif'), ('I;16', 'png')])
def test_any_colour_mode_becomes_rgb(tmp_path, mode, ext):
    path = dogscats(tmp_path/'dc', n_trn=2, n_val=1, n_test=0)
    fn = path/'train'/'cats'/f'odd.{ext}'
    if mode == 'I;16':
        Image.fromarray((np.linspace(0, 65535, 36 * 48).reshape(36, 48)).astype(np.uint16)).save(fn)
    else: photo(fn, 'cats', mode=mode)
    data = ImageClassifierData.from_paths(path, tfms=tfms())
    i = data.trn_ds.fnames.index(f'train/cats/odd.{ext}')
    x, y = data.trn_ds[i]
    assert x.shape == (3, 16, 16) and torch.isfinite(x).all()
    im = data.trn_ds.get_x(i)
    assert im.shape == (36, 48, 3) and im.dtype == np.float32 and 0 <= im.min() and im.max() <= 1
    ref = np.asarray(Image.open(fn).convert('RGB'), dtype=np.float32) / 255 if mode != 'I;16' else None
    if ref is not None and mode not in ('CMYK',): assert np.abs(im - ref).mean() < 0.02


def test_exif_orientation_is_applied(tmp_path):
    path = dogscats(tmp_path/'dc', n_trn=2, n_val=1, n_test=0)
    a = np.zeros((36, 48, 3), np.uint8); a[:, :24] = (250, 0, 0)  # left half red, right half black
    exif = Image.Exif(); exif[0x0112] = 6  # display rotated 90 degrees clockwise
    fn = path/'train'/'cats'/'phone.jpg'
    Image.fromarray(a).save(fn, exif=exif, quality=95)
    data = ImageClassifierData.from_paths(path, tfms=tfms())
    im = data.trn_ds.get_x(data.trn_ds.fnames.index('train/cats/phone.jpg'))
    ref = np.asarray(ImageOps.exif_transpose(Image.open(fn)), dtype=np.float32) / 255
    assert im.shape == (48, 36, 3) == ref.shape
    assert np.abs(im - ref).mean() < 0.02
    assert im[:20, :, 0].mean() > 0.8 and im[-20:, :, 0].mean() < 0.2  # red on top after the turn


def test_empty_class_folder_is_an_error_naming_it(tmp_path):
    path = dogscats(tmp_path/'dc')
    (path/'train'/'fish').mkdir()
    (path/'train'/'owls').mkdir()
    (path/'train'/'owls'/'.DS_Store').write_bytes(b'x')
    with pytest.raises(DataError, match=r"\['fish', 'owls'\]"):
        ImageClassifierData.from_paths(path, tfms=tfms())


def test_class_only_in_valid_is_an_error(tmp_path):
    path = dogscats(tmp_path/'dc')
    photo(path/'valid'/'birds'/'b.jpg', 'birds')
    with pytest.raises(DataError, match=r"\['birds'\].*\['cats', 'dogs'\]"):
        ImageClassifierData.from_paths(path, tfms=tfms())


def test_class_missing_from_valid_keeps_indices(tmp_path):
    path = dogscats(tmp_path/'dc', classes=('birds', 'cats', 'dogs'))
    for f in (path/'valid'/'cats').iterdir(): f.unlink()
    (path/'valid'/'cats').rmdir()
    data = ImageClassifierData.from_paths(path, tfms=tfms())
    assert data.classes == ['birds', 'cats', 'dogs']
    assert sorted(set(data.val_ds.y.tolist())) == [0, 2]  # dogs is still 2, not 1
    assert all(data.classes[y] in f for f, y in zip(data.val_ds.fnames, data.val_ds.y))


def test_missing_folders_and_flat_layout(tmp_path):
    path = dogscats(tmp_path/'dc')
    with pytest.raises(DataError, match='validation folder'):
        ImageClassifierData.from_paths(path, tfms=tfms(), val_name='val')
    with pytest.raises(DataError, match='test folder'):
        ImageClassifierData.from_paths(path, tfms=tfms(), test_name='tst')
    flat = tmp_path/'flat'
    for i in range(3): photo(flat/'train'/f'{i}.jpg')
    (flat/'valid').mkdir()
    with pytest.raises(DataError, match='from_csv'):
        ImageClassifierData.from_paths(flat, tfms=tfms())


# ---------------------------------------------------------------- get_cv_idxs
def test_get_cv_idxs_matches_course_and_keeps_global_rng():
    np.random.seed(123); state = np.random.get_state()
    v = get_cv_idxs(1000)
    after = np.random.get_state()
    assert all(np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b for a, b in zip(state, after))
    np.random.seed(42)
    assert np.array_equal(v, np.random.permutation(1000)[:200])
    assert len(get_cv_idxs(10, val_pct=0.3)) == 3
    assert np.array_equal(get_cv_idxs(50, seed=1), get_cv_idxs(50, seed=1))
    assert not np.array_equal(get_cv_idxs(50, seed=1), get_cv_idxs(50, seed=2))


# ---------------------------------------------------------------- from_csv
def breeds(root, n=20, breeds=('beagle', 'pug', 'akita'), header='id,breed', bom=False, sep=',', suffix_in_csv=False,
           extra_rows=()):
    root = Path(root)
    rows, labels = [], []
    for i in range(n):
        b = breeds[i % len(breeds)]
        photo(root/'train'/f'{i:04x}.jpg', 'cats' if b == 'beagle' else 'dogs', seed=i)
        rows.append(f'{i:04x}{".jpg" if suffix_in_csv and i % 2 else ""}{sep}{b}'); labels.append(b)
    for i in range(5): photo(root/'test'/f'{i:04x}.jpg', seed=100 + i)
    text = header + '\n' + '\n'.join(rows + list(extra_rows)) + '\n'
    (root/'labels.csv').write_text(('\ufeff' if bom else '') + text, encoding='utf-8')
    return root, labels


def test_from_csv_single_label(tmp_path):
    path, labels = breeds(tmp_path/'db')
    label_csv = f'{path}/labels.csv'
    n = len(list(open(label_csv))) - 1
    val_idxs = get_cv_idxs(n)
    data = ImageClassifierData.from_csv(path, 'train', label_csv, test_name='test', val_idxs=val_idxs, suffix='.jpg',
                                        tfms=tfms(), bs=4)
    assert data.classes == ['akita', 'beagle', 'pug'] and not data.is_multi
    assert sorted(data.val_ds.fnames) == sorted(f'train/{i:04x}.jpg' for i in val_idxs)
    assert len(data.trn_ds) == n - len(val_idxs)
    for ds in (data.trn_ds, data.val_ds):
        for f, y in zip(ds.fnames, ds.y):
            assert data.classes[y] == labels[int(f[6:10], 16)]
    assert data.test_ds.fnames == [f'test/{i:04x}.jpg' for i in range(5)]
    # the course builds a submission id from the file name
    assert [o[5:-4] for o in data.test_ds.fnames] == [f'{i:04x}' for i in range(5)]
    x, y = next(iter(data.trn_dl))
    assert x.shape == (4, 3, 16, 16) and y.dtype == torch.int64


def test_from_csv_bom_ids_with_suffix_spaces(tmp_path):
    path, labels = breeds(tmp_path/'db', bom=True, sep=' ,  ', suffix_in_csv=True)
    data = ImageClassifierData.from_csv(path, 'train', path/'labels.csv', val_idxs=[0, 1], suffix='.jpg', tfms=tfms())
    assert data.classes == ['akita', 'beagle', 'pug']
    assert sorted(data.val_ds.fnames) == ['train/0000.jpg', 'train/0001.jpg']
    assert all(not f.endswith('.jpg.jpg') for f in data.trn_ds.fnames)


def test_from_csv_relative_csv_name_and_default_split(tmp_path):
    path, _ = breeds(tmp_path/'db', n=25)
    data = ImageClassifierData.from_csv(path, 'train', 'labels.csv', suffix='.jpg', tfms=tfms())
    assert len(data.val_ds) == 5 and sorted(data.val_ds.fnames) == sorted(f'train/{i:04x}.jpg' for i in get_cv_idxs(25))


def test_from_csv_missing_files_error_counts_and_names(tmp_path):
    path, _ = breeds(tmp_path/'db', extra_rows=[f'gone{i},pug' for i in range(8)])
    with pytest.raises(DataError, match=r"8 of the 28 ids.*'gone0', 'gone1', 'gone2', 'gone3', 'gone4'") as e:
        ImageClassifierData.from_csv(path, 'train', path/'labels.csv', val_idxs=[0], suffix='.jpg', tfms=tfms())
    assert 'gone7' not in str(e.value)


def test_from_csv_suggests_the_suffix(tmp_path):
    path, _ = breeds(tmp_path/'db')
    with pytest.raises(DataError, match=r"suffix='\.jpg'"):
        ImageClassifierData.from_csv(path, 'train', path/'labels.csv', val_idxs=[0], tfms=tfms())


def test_from_csv_duplicate_ids(tmp_path):
    path, _ = breeds(tmp_path/'db', extra_rows=['0001,pug'])  # 0001 is a pug already
    data, w = build(ImageClassifierData.from_csv, path, 'train', path/'labels.csv', val_idxs=[0], suffix='.jpg', tfms=tfms())
    assert len(w) == 1 and '0001' in str(w[0].message)
    assert len(data.trn_ds) + len(data.val_ds) == 20
    path2, _ = breeds(tmp_path/'db2', extra_rows=['0001,akita', '0002,pug'])
    with pytest.raises(DataError, match=r"different labels: \['0001', '0002'\]"):
        ImageClassifierData.from_csv(path2, 'train', path2/'labels.csv', val_idxs=[0], suffix='.jpg', tfms=tfms())


def test_from_csv_val_idxs_out_of_range(tmp_path):
    path, _ = breeds(tmp_path/'db')
    with pytest.raises(DataError, match='20 rows'):
        ImageClassifierData.from_csv(path, 'train', path/'labels.csv', val_idxs=[3, 20], suffix='.jpg', tfms=tfms())


def planet(root, tags, sep=' '):
    root = Path(root)
    for i in range(len(tags)): photo(root/'train-jpg'/f'train_{i}.jpg', seed=i, size=(32, 32))
    for i in range(3): photo(root/'test-jpg'/f'test_{i}.jpg', seed=50 + i, size=(32, 32))
    (root/'train_v2.csv').write_text('image_name,tags\n' + '\n'.join(f'train_{i},{t}' for i, t in enumerate(tags)) + '\n')
    return root


TAGS = ['clear primary', 'haze   primary water ', 'cloudy', ' clear primary road', 'partly_cloudy primary',
        'agriculture clear cultivation primary', 'clear primary', 'cloudy', 'haze primary', 'clear water'] * 2


def test_from_csv_multi_label_n_hot(tmp_path):
    path = planet(tmp_path/'planet', TAGS)
    n = len(TAGS); val_idxs = get_cv_idxs(n)
    data = ImageClassifierData.from_csv(path, 'train-jpg', path/'train_v2.csv', tfms=tfms(aug_tfms=transforms_top_down),
                                        suffix='.jpg', val_idxs=val_idxs, test_name='test-jpg', bs=4)
    mlb = MultiLabelBinarizer()
    ref = mlb.fit_transform([t.split() for t in TAGS]).astype(np.float32)
    assert data.is_multi and data.classes == list(mlb.classes_) and data.c == len(mlb.classes_)
    is_val = np.isin(np.arange(n), val_idxs)
    assert np.array_equal(data.val_ds.y, ref[is_val]) and np.array_equal(data.trn_ds.y, ref[~is_val])
    assert data.val_ds.fnames == [f'train-jpg/train_{i}.jpg' for i in np.flatnonzero(is_val)]
    assert data.trn_ds.y.dtype == np.float32
    x, y = next(iter(data.val_dl))
    assert y.dtype == torch.float32 and y.shape == (4, len(mlb.classes_))
    assert data.test_ds.y.shape == (3, len(mlb.classes_)) and not data.test_ds.y.any()
    first = int(np.flatnonzero(~is_val)[0])
    assert label_text(data, data.trn_ds.y[0]) == ' '.join(sorted(TAGS[first].split()))


def test_from_csv_label_delim(tmp_path):
    path = planet(tmp_path/'planet', [t.strip().replace('   ', ' ').replace(' ', ';') for t in TAGS])
    data = ImageClassifierData.from_csv(path, 'train-jpg', path/'train_v2.csv', tfms=tfms(), suffix='.jpg',
                                        val_idxs=[0], label_delim=';')
    assert data.is_multi and 'partly_cloudy' in data.classes and len(data.classes) == 9
    path2 = planet(tmp_path/'p2', ['a', 'b', 'a', 'c'])  # one tag each: single-label
    d2 = ImageClassifierData.from_csv(path2, 'train-jpg', path2/'train_v2.csv', tfms=tfms(), suffix='.jpg', val_idxs=[0])
    assert not d2.is_multi and d2.classes == ['a', 'b', 'c'] and d2.trn_ds.y.tolist() == [1, 0, 2]


def test_from_csv_bad_image_is_skipped(tmp_path):
    path, _ = breeds(tmp_path/'db')
    (path/'train'/'0003.jpg').write_bytes(b'')
    data, w = build(ImageClassifierData.from_csv, path, 'train', path/'labels.csv', val_idxs=[0], suffix='.jpg', tfms=tfms())
    assert len(w) == 1 and 'train/0003.jpg' in str(w[0].message)
    assert 'train/0003.jpg' not in data.trn_ds.fnames and len(data.trn_ds) == 18


# ---------------------------------------------------------------- from_arrays
def test_from_arrays():
    rng = np.random.default_rng(0)
    x = (rng.random((12, 20, 24, 3)) * 255).astype(np.uint8)
    y = np.arange(12) % 3
    data = ImageClassifierData.from_arrays('.', (x[:9], y[:9]), (x[9:], y[9:]), bs=4, tfms=tfms(), test=x[:2])
    assert data.classes == ['0', '1', '2'] and data.c == 3 and data.trn_ds.fnames is None
    xb, yb = next(iter(data.val_dl))
    assert xb.shape == (3, 3, 16, 16) and yb.tolist() == [0, 1, 2]
    assert np.allclose(data.val_ds.get_x(0), x[9] / 255)
    assert data.resize(20) is data
    chw = ImageClassifierData.from_arrays('.', (torch.tensor(x[:9]).permute(0, 3, 1, 2), y[:9]), (x[9:], y[9:]), tfms=tfms())
    assert torch.equal(chw.trn_ds.new(tfm=chw.tfms[1])[0][0], data.trn_ds.new(tfm=data.tfms[1])[0][0])


# ---------------------------------------------------------------- loaders
@pytest.mark.parametrize('workers', [0, 2])
def test_unreadable_file_in_loader_names_it_without_worker_traceback(tmp_path, workers):
    path = dogscats(tmp_path/'dc')
    data = ImageClassifierData.from_paths(path, tfms=tfms(), bs=4, num_workers=workers)
    victim = path/'valid'/'dogs'/'dog.1.jpg'
    victim.write_bytes(b'\xff\xd8\xff\xe0' + b'\x00' * 50 + b'\xff\xd9')  # looks like a JPEG, is not one
    with pytest.raises(ImageReadError) as e:
        for xb, yb in data.val_dl: pass
    msg = str(e.value)
    assert 'valid/dogs/dog.1.jpg' in msg and e.value.path == str(victim)
    assert 'Traceback' not in msg and 'worker' not in msg and '\n' not in msg
    assert e.value.__cause__ is None and (e.value.__context__ is None or e.value.__suppress_context__)
    assert len(e.traceback) <= 3  # the student's loop and our re-raise, nothing from inside the loader


def test_images_of_different_sizes_without_tfms(tmp_path):
    path = dogscats(tmp_path/'dc')
    photo(path/'valid'/'cats'/'wide.jpg', size=(80, 30))
    data = ImageClassifierData.from_paths(path, bs=16)
    x, y = data.val_ds[0]
    assert x.shape == (3, 36, 48)  # no tfms: the image as it is, in [0, 1]
    with pytest.raises(DataError, match='tfms_from_model'):
        next(iter(data.val_dl))


@pytest.mark.parametrize('n,bs,sizes', [(1, 4, [2]), (3, 4, [3]), (9, 4, [4, 4]), (8, 4, [4, 4]), (5, 4, [4])])
def test_batchnorm_never_sees_one_image(tmp_path, n, bs, sizes):
    rng = np.random.default_rng(0)
    x = (rng.random((n, 20, 20, 3)) * 255).astype(np.uint8)
    data = ImageClassifierData.from_arrays('.', (x, np.arange(n) % 2), (x[:1], np.zeros(1, int)), bs=bs,
                                           tfms=tfms(aug_tfms=transforms_side_on))
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 8), nn.BatchNorm1d(8), nn.Linear(8, 2)).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    seen = []
    for xb, yb in data.trn_dl:  # one training epoch; a batch of one would raise in BatchNorm1d
        loss = nn.functional.cross_entropy(model(xb), yb)
        opt.zero_grad(); loss.backward(); opt.step()
        seen.append(len(yb))
    assert seen == sizes and len(data.trn_dl) == len(sizes)
    model.eval()
    assert sum(len(model(xb)) for xb, _ in data.val_dl) == 1


def test_seeded_augmentation_is_repeatable_across_workers(tmp_path):
    path = dogscats(tmp_path/'dc')
    data = ImageClassifierData.from_paths(path, tfms=tfms(aug_tfms=transforms_side_on, max_zoom=1.1), bs=4)
    a = torch.cat([x for x, _ in data.dl('val', 'trn', seed=0, num_workers=0)])
    b = torch.cat([x for x, _ in data.dl('val', 'trn', seed=0, num_workers=2)])
    c = torch.cat([x for x, _ in data.dl('val', 'trn', seed=1, num_workers=0)])
    plain = torch.cat([x for x, _ in data.val_dl])
    assert torch.equal(a, b) and not torch.equal(a, c) and not torch.equal(a, plain)
    assert torch.equal(plain, torch.cat([x for x, _ in data.val_dl]))


def test_trn_dl_shuffles_and_augments(tmp_path):
    path = dogscats(tmp_path/'dc', n_trn=20)
    data = ImageClassifierData.from_paths(path, tfms=tfms(aug_tfms=transforms_side_on), bs=40, num_workers=0)
    torch.manual_seed(0); y1 = next(iter(data.trn_dl))[1]
    torch.manual_seed(1); y2 = next(iter(data.trn_dl))[1]
    assert sorted(y1.tolist()) == sorted(y2.tolist()) == [0] * 20 + [1] * 20 and not torch.equal(y1, y2)


def test_default_workers(tmp_path, monkeypatch):
    path = dogscats(tmp_path/'dc')
    data = ImageClassifierData.from_paths(path, tfms=tfms(), bs=4)
    monkeypatch.delenv('IN_TEST', raising=False); monkeypatch.delenv('CI', raising=False)
    assert data.trn_dl.num_workers == min(2, os.cpu_count())
    assert data.dl('val', bs=64).num_workers == 0  # a single batch: not worth starting workers
    monkeypatch.setenv('IN_TEST', '1')
    assert data.trn_dl.num_workers == 0


# ---------------------------------------------------------------- resize
def test_resize_cache(tmp_path):
    path = dogscats(tmp_path/'dc', n_trn=4, n_val=2, n_test=3)
    photo(path/'train'/'cats'/'big.jpg', size=(200, 120))
    photo(path/'train'/'dogs'/'alpha.png', 'dogs', mode='RGBA', size=(90, 60))
    before = digest(path)
    data = ImageClassifierData.from_paths(path, tfms=tfms(16), bs=4, test_name='test')
    small = data.resize(24, 'tmp')
    cache = path/'tmp'/'24'
    assert digest(path) == {**before, **{f'tmp/24/{k}': v for k, v in digest(cache).items()}}  # originals untouched
    for ds, sds in [(data.trn_ds, small.trn_ds), (data.val_ds, small.val_ds), (data.test_ds, small.test_ds)]:
        assert sds.fnames == ds.fnames and np.array_equal(sds.y, ds.y) and sds.img_path == cache
        for f in ds.fnames:
            w, h = Image.open(cache/f).size
            ow, oh = Image.open(path/f).size
            assert min(w, h) == min(24, ow, oh) and abs(w / h - ow / oh) < 0.05
    assert small.classes == data.classes and small.path == path and small.sz == 16
    assert Image.open(cache/'train/dogs/alpha.png').format == 'PNG'
    # the presized image looks like the original
    i = data.trn_ds.fnames.index('train/cats/big.jpg')
    assert (data.val_ds.new(fnames=data.trn_ds.fnames, y=data.trn_ds.y)[i][0]
            - small.val_ds.new(fnames=small.trn_ds.fnames, y=small.trn_ds.y)[i][0]).abs().mean() < 0.15
    xb, yb = next(iter(small.trn_dl))
    assert xb.shape == (4, 3, 16, 16)


def test_resize_reuses_complete_cache_and_redoes_incomplete(tmp_path):
    path = dogscats(tmp_path/'dc', n_trn=3, n_val=2, n_test=0)
    data = ImageClassifierData.from_paths(path, tfms=tfms(16))
    data.resize(20)
    cache = path/'tmp'/'20'
    stamp = {f: (cache/f).stat().st_mtime_ns for f in data.trn_ds.fnames}
    data.resize(20)
    assert {f: (cache/f).stat().st_mtime_ns for f in data.trn_ds.fnames} == stamp
    # interrupted run: the marker and one image are missing
    for m in cache.glob('.complete-*'): m.unlink()
    (cache/data.trn_ds.fnames[0]).unlink()
    data.resize(20)
    assert (cache/data.trn_ds.fnames[0]).exists() and len(list(cache.glob('.complete-*'))) == 1
    assert {f: (cache/f).stat().st_mtime_ns for f in data.trn_ds.fnames[1:]} == {f: stamp[f] for f in data.trn_ds.fnames[1:]}
    # a source image that changed is cached again
    src = path/data.trn_ds.fnames[1]
    photo(src, 'dogs', size=(60, 40)); os.utime(src, ns=(stamp[data.trn_ds.fnames[1]] + 10**9,) * 2)
    d2 = ImageClassifierData.from_paths(path, tfms=tfms(16))
    d2.resize(20)
    assert Image.open(cache/data.trn_ds.fnames[1]).size == (30, 20)


def test_resize_csv_data_and_progressive_sizes(tmp_path):
    path = planet(tmp_path/'planet', TAGS)
    def get_data(sz):
        t = tfms_from_model(resnet34, sz, aug_tfms=transforms_top_down, max_zoom=1.05)
        return ImageClassifierData.from_csv(path, 'train-jpg', path/'train_v2.csv', tfms=t, suffix='.jpg',
                                            val_idxs=get_cv_idxs(len(TAGS)), test_name='test-jpg', bs=4)
    for sz in (8, 16, 24):
        data = get_data(sz)
        small = data.resize(int(sz * 1.3), 'tmp')
        assert small.trn_ds.fnames == data.trn_ds.fnames and small.is_multi
        assert (path/'tmp'/str(int(sz * 1.3))/'test-jpg'/'test_0.jpg').exists()
        xb, yb = next(iter(small.trn_dl))
        assert xb.shape == (4, 3, sz, sz) and yb.shape == (4, small.c)


# ---------------------------------------------------------------- pictures
def test_show_batch_and_augs(tmp_path):
    path = planet(tmp_path/'planet', TAGS)
    data = ImageClassifierData.from_csv(path, 'train-jpg', path/'train_v2.csv', tfms=tfms(aug_tfms=transforms_top_down),
                                        suffix='.jpg', val_idxs=get_cv_idxs(len(TAGS)))
    fig = show_batch(data, n=4)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    want = [label_text(data, y) for y in data.val_ds.y[:4]]
    assert titles == want and all(' ' in t or t in data.classes for t in titles)
    fig = show_augs(data, idx=0, n=6)
    assert len(fig.axes) == 6
    ims = [ax.get_images()[0].get_array() for ax in fig.axes]
    assert all(im.shape == (16, 16, 3) for im in ims) and not np.allclose(ims[0], ims[1])
    fig = plots(np.zeros((3, 8, 8, 3)), rows=1, titles=['a', 'b', 'c'])
    assert [ax.get_title() for ax in fig.axes] == ['a', 'b', 'c']


def test_list_images_sorted_relative(tmp_path):
    photo(tmp_path/'b'/'2.jpg'); photo(tmp_path/'a'/'1.png', fmt='PNG'); (tmp_path/'a'/'readme.txt').write_text('x')
    assert list_images(tmp_path) == ['a/1.png', 'b/2.jpg']
    assert list_images(tmp_path/'a', tmp_path) == ['a/1.png']


def test_from_csv_continuous_and_missing_csv(tmp_path):
    path, _ = breeds(tmp_path/'db', n=6)
    (path/'ages.csv').write_text('id,age\n' + '\n'.join(f'{i:04x},{i * 1.5}' for i in range(6)) + '\n')
    data = ImageClassifierData.from_csv(path, 'train', 'ages.csv', val_idxs=[0], suffix='.jpg', tfms=tfms(),
                                        continuous=True)
    assert data.is_reg and not data.is_multi and data.c == 1 and data.classes is None
    assert data.trn_ds.y.dtype == np.float32 and data.trn_ds.y.tolist() == [1.5, 3.0, 4.5, 6.0, 7.5]
    assert label_text(data, data.trn_ds.y[0]) == '1.5'
    with pytest.raises(DataError, match='No labels file'):
        ImageClassifierData.from_csv(path, 'train', 'nope.csv', suffix='.jpg', tfms=tfms())
