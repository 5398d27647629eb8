"Transforms against references written here with PIL and NumPy; reading odd and broken files."
import functools, io, math
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from lessonkit.transforms import (CropType, ImageReadError, RandomDihedral, RandomFlip, RandomLighting, RandomRotate,
                                  Transforms, check_image_file, crop_resize, imagenet_stats, inception_stats,
                                  model_stats, open_image, read_image, tfms_from_model, tfms_from_stats,
                                  transforms_basic, transforms_side_on, transforms_top_down)

pytestmark = pytest.mark.filterwarnings('ignore:The image decoding and encoding capabilities:DeprecationWarning')
MEAN, STD = imagenet_stats


def smooth_image(w=90, h=60, seed=0):
    "A smooth RGB image (a few random colour blobs, blurred), so that different resizers agree closely."
    rng = np.random.default_rng(seed)
    small = (rng.random((4, 6, 3)) * 255).astype(np.uint8)
    return Image.fromarray(small).resize((w, h), Image.BICUBIC)


def ref_val(im: Image.Image, sz):
    "The course's validation transform written out: shortest side to sz, centre crop, normalise; (H, W, 3)."
    w, h = im.size; r = sz / min(w, h)
    im = im.resize((round(w * r), round(h * r)), Image.BILINEAR)
    w, h = im.size; l, t = (w - sz) // 2, (h - sz) // 2
    a = np.asarray(im.crop((l, t, l + sz, t + sz)), dtype=np.float32) / 255
    return (a - MEAN) / STD


@pytest.mark.parametrize('size,sz', [((90, 60), 32), ((60, 90), 40), ((64, 64), 64), ((300, 200), 50)])
def test_validation_transform_matches_reference(size, sz):
    im = smooth_image(*size)
    _, val = tfms_from_model(torchvision.models.resnet34, sz)
    x = val(im)
    assert x.shape == (3, sz, sz) and x.dtype == torch.float32
    # normalised units (1/255 of a pixel is about 0.017); the reference may sit half a pixel off, hence 0.08
    assert np.abs(x.permute(1, 2, 0).numpy() - ref_val(im, sz)).mean() < 0.08


def test_no_crop_squashes_the_whole_image():
    im = smooth_image(90, 60)
    trn, val = tfms_from_model('resnet34', 32, crop_type=CropType.NO)
    ref = (np.asarray(im.resize((32, 32), Image.BILINEAR), dtype=np.float32) / 255 - MEAN) / STD
    assert np.abs(val(im).permute(1, 2, 0).numpy() - ref).mean() < 0.03
    assert torch.equal(trn(im), val(im))  # no zoom, no augmentation: nothing random left


def test_square_image_without_zoom_gives_the_same_crop_in_training():
    im = smooth_image(50, 50)
    trn, val = tfms_from_model('resnet34', 32)
    assert torch.equal(trn(im), val(im))


@pytest.mark.parametrize('crop_type', [CropType.RANDOM, CropType.CENTER, CropType.NO, CropType.GOOGLENET])
def test_crop_boxes_stay_inside_and_respect_zoom(crop_type):
    t = Transforms(32, crop_type=crop_type, max_zoom=1.5)
    H, W = 60, 90
    for s in range(200):
        top, left, h, w = t.box(H, W, torch.Generator().manual_seed(s))
        assert 0 <= top and 0 <= left and top + h <= H + 1e-6 and left + w <= W + 1e-6
        if crop_type in (CropType.RANDOM, CropType.CENTER):
            assert h == w and 60 / 1.5 - 1e-6 <= h <= 60 + 1e-6
        if crop_type == CropType.CENTER:
            assert abs(top + h / 2 - 30) < 1e-6 and abs(left + w / 2 - 45) < 1e-6
        if crop_type == CropType.NO:
            assert abs(h / w - H / W) < 1e-6


def test_random_crop_positions_cover_the_image():
    t = Transforms(32, crop_type=CropType.RANDOM)
    lefts = [t.box(60, 90, torch.Generator().manual_seed(s))[1] for s in range(300)]
    assert min(lefts) < 3 and max(lefts) > 27  # anywhere in [0, 30]


def test_lighting_matches_formula():
    x = torch.rand(3, 8, 8)
    g = lambda: torch.Generator().manual_seed(7)
    u1, u2 = torch.rand(2, generator=g()).tolist()
    b, c = (2 * u1 - 1) * 0.2, (2 * u2 - 1) * 0.3
    c = -1 / (c - 1) if c < 0 else c + 1
    a = x.numpy()
    want = np.clip((a - a.mean()) * c + a.mean() + b, 0, 1)
    got = RandomLighting(0.2, 0.3)(x.clone(), g())
    assert np.allclose(got.numpy(), want, atol=1e-6)


def test_rotation_probability_and_range():
    r = RandomRotate(10, p=0.75)
    angles = [r.angle(torch.Generator().manual_seed(s)) for s in range(2000)]
    rotated = [a for a in angles if a != 0]
    assert 0.7 < len(rotated) / len(angles) < 0.8
    assert max(map(abs, rotated)) <= 10 and min(rotated) < -9 and max(rotated) > 9


def test_rotation_matches_pil():
    im = smooth_image(64, 64, seed=3)
    x = torch.from_numpy(np.array(im)).permute(2, 0, 1)
    for deg in (7, -10, 30):
        got = crop_resize(x, 0, 0, 64, 64, 64, deg).permute(1, 2, 0).numpy()
        want = np.asarray(im.rotate(deg, resample=Image.BILINEAR), dtype=np.float32)  # anticlockwise, as ours
        c = slice(16, 48)  # the middle: PIL fills the corners with black, we reflect
        assert np.abs(got[c, c] - want[c, c]).mean() < 3, deg


def test_flip_and_dihedral():
    x = torch.arange(2 * 3 * 3.).view(2, 3, 3)
    flips = {bool(torch.equal(RandomFlip()(x, torch.Generator().manual_seed(s)), x.flip(-1))) for s in range(50)}
    assert flips == {True, False}
    outs = {tuple(RandomDihedral()(x, torch.Generator().manual_seed(s)).flatten().tolist()) for s in range(300)}
    want = {tuple(torch.rot90(f, k, (-2, -1)).flatten().tolist()) for f in (x, x.flip(-1)) for k in range(4)}
    assert outs == want


def test_augmentation_sets_are_the_course_ones():
    kinds = lambda l: [type(a).__name__ for a in l]
    assert kinds(transforms_basic) == ['RandomRotate', 'RandomLighting']
    assert kinds(transforms_side_on) == ['RandomRotate', 'RandomLighting', 'RandomFlip']
    assert kinds(transforms_top_down) == ['RandomRotate', 'RandomLighting', 'RandomDihedral']
    assert transforms_basic[0].deg == 10 and (transforms_basic[1].b, transforms_basic[1].c) == (0.05, 0.05)


def test_training_transform_is_random_but_seedable_and_pure():
    trn, _ = tfms_from_model('resnet34', 24, aug_tfms=transforms_side_on, max_zoom=1.1)
    x = torch.rand(3, 40, 50)
    before = x.clone()
    g = lambda s: torch.Generator().manual_seed(s)
    outs = [trn(x, g(s)) for s in range(6)]
    assert torch.equal(outs[0], trn(x, g(0))) and len({o.sum().item() for o in outs}) == 6
    assert torch.equal(x, before)  # the input is not changed in place
    assert all(o.shape == (3, 24, 24) and torch.isfinite(o).all() for o in outs)


def test_denorm_inverts_normalisation():
    _, val = tfms_from_model('resnet34', 16)
    a = np.random.default_rng(0).random((16, 16, 3)).astype(np.float32)
    x = val(a)  # 16 x 16 already: resizing is the identity
    assert np.allclose(val.denorm(x), a, atol=1e-5)
    assert val.denorm(torch.stack([x, x])).shape == (2, 16, 16, 3)
    assert np.allclose(x.permute(1, 2, 0).numpy(), (a - MEAN) / STD, atol=1e-5)


def test_stats_per_architecture():
    tv = torchvision.models
    for arch in (tv.resnet34, tv.resnext50_32x4d, tv.vgg16, tv.densenet121, tv.wide_resnet50_2,
                 functools.partial(tv.resnet50, weights=None), 'resnext101_64'):
        assert model_stats(arch) is imagenet_stats
    assert model_stats(tv.inception_v3) is inception_stats
    trn, val = tfms_from_stats(inception_stats, 8)
    assert torch.allclose(val(np.full((8, 8, 3), 0.5, np.float32)), torch.zeros(3, 8, 8))


def test_input_types_agree(tmp_path):
    im = smooth_image(60, 40)
    p = tmp_path/'x.png'; im.save(p)
    _, val = tfms_from_model('resnet34', 32)
    ref = val(im)
    for other in (p, str(p), read_image(p), torch.from_numpy(np.array(im)).permute(2, 0, 1)):
        assert torch.equal(val(other), ref)
    assert (val(open_image(p)) - ref).abs().max() < 0.03


def test_open_image_is_course_format(tmp_path):
    p = tmp_path/'x.jpg'; smooth_image().save(p, quality=95)
    im = open_image(p)
    assert im.shape == (60, 90, 3) and im.dtype == np.float32 and 0 <= im.min() and im.max() <= 1
    assert np.abs(im - np.asarray(Image.open(p), dtype=np.float32) / 255).max() < 0.02


def test_broken_files_are_named(tmp_path):
    good = io.BytesIO(); smooth_image().save(good, 'JPEG'); good = good.getvalue()
    png = io.BytesIO(); smooth_image().save(png, 'PNG'); png = png.getvalue()
    cases = {'empty.jpg': b'', 'text.jpg': b'hello', 'cut.jpg': good[:len(good) // 2], 'cut.png': png[:len(png) // 2],
             'html.png': b'<!DOCTYPE html><html></html>'}
    for name, data in cases.items():
        (tmp_path/name).write_bytes(data)
        assert check_image_file(tmp_path/name) is not None, name
        with pytest.raises(ImageReadError) as e: read_image(tmp_path/name)
        assert name in str(e.value) and '\n' not in str(e.value) and isinstance(e.value, OSError)
    with pytest.raises(ImageReadError, match='no such file'): open_image(tmp_path/'nope.jpg')


def test_jpeg_with_trailing_bytes_is_fine(tmp_path):
    good = io.BytesIO(); smooth_image().save(good, 'JPEG'); good = good.getvalue()
    (tmp_path/'tail.jpg').write_bytes(good + b'\0' * 3000 + b'vendor data')
    assert check_image_file(tmp_path/'tail.jpg') is None
    assert read_image(tmp_path/'tail.jpg').shape == (3, 60, 90)
