"lessonkit's sample body: the sha256 check on load, the errors, and that pretrained=True / False / 'sample' load different weights through the same code and cache apart."
import shutil
from pathlib import Path
import numpy as np, pytest, torch
import torchvision.models as tvm
from lessonkit.core import set_seed
from lessonkit.transforms import tfms_from_model
from lessonkit.data import ImageClassifierData
from lessonkit.conv_learner import ConvLearner, resnet18, resnet34, weights_source
from lessonkit.datasets import sha256sum
from lessonkit.pretrain import SAMPLE_SHA256, load_sample_weights, sample_weights_path

def make_data(tmp_path, n_trn=10, n_val=6, sz=16):
    rng = np.random.default_rng(0)
    x = lambda n: rng.integers(0, 255, (n, sz, sz, 3), dtype=np.uint8)
    return ImageClassifierData.from_arrays(tmp_path, (x(n_trn), np.arange(n_trn) % 2), (x(n_val), np.arange(n_val) % 2), bs=4,
                                           tfms=tfms_from_model(resnet18, sz))

def test_shipped_file_matches_recorded_sha():
    p = sample_weights_path('resnet18')
    assert p.exists() and p.stat().st_size < 25e6
    assert sha256sum(p) == SAMPLE_SHA256['resnet18']

def test_damaged_file_is_refused_with_the_rebuild_command(tmp_path):
    bad = tmp_path/'resnet18-sample.pth'; shutil.copy(sample_weights_path('resnet18'), bad)
    data = bytearray(bad.read_bytes()); data[len(data)//2] ^= 0xFF; bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match='make pretrain-sample') as e: load_sample_weights('resnet18', bad)
    assert str(bad) in str(e.value) and SAMPLE_SHA256['resnet18'] in str(e.value)
    with pytest.raises(FileNotFoundError, match='make pretrain-sample'): load_sample_weights('resnet18', tmp_path/'gone.pth')

def test_sample_for_another_arch_names_the_available_ones(tmp_path):
    with pytest.raises(ValueError, match=r"only for resnet18.*resnet34"):
        ConvLearner.pretrained(resnet34, make_data(tmp_path), pretrained='sample')

def test_unknown_pretrained_value_is_refused(tmp_path):
    with pytest.raises(ValueError, match="'sample'"): ConvLearner.pretrained(resnet18, make_data(tmp_path), pretrained='imagenet22k')
    assert [weights_source(p) for p in (True, False, 'sample')] == ['imagenet', 'random', 'sample']

def test_sample_weights_are_loaded_into_the_body(tmp_path):
    learn = ConvLearner.pretrained(resnet18, make_data(tmp_path), pretrained='sample')
    w = load_sample_weights('resnet18')
    assert torch.equal(learn.body[0].weight, w['conv1.weight'])                       # the first conv
    assert torch.equal(learn.body[7][1].bn2.running_var, w['layer4.1.bn2.running_var'])  # and the last BatchNorm's statistics
    assert learn.weights_source == 'sample' and [len(list(g.parameters())) > 0 for g in learn.layer_groups] == [True]*3
    assert not any(p.requires_grad for p in learn.body.parameters())

@pytest.fixture
def imagenet_standin(tmp_path, monkeypatch):
    "A stand-in for torchvision's cached ImageNet resnet18 file (random weights under the real name), in a scratch TORCH_HOME."
    home = tmp_path/'torch'; ck = home/'hub'/'checkpoints'; ck.mkdir(parents=True)
    torch.manual_seed(1); torch.save(tvm.resnet18().state_dict(), ck/Path(tvm.ResNet18_Weights.IMAGENET1K_V1.url).name)
    monkeypatch.setenv('TORCH_HOME', str(home)); monkeypatch.setattr(torch.hub, '_hub_dir', str(home/'hub'))
    return home

def test_cache_keys_tell_the_three_apart(tmp_path, imagenet_standin):
    data = make_data(tmp_path/'d')
    paths = {}
    for p in (True, False, 'sample'):
        set_seed(0); learn = ConvLearner.pretrained(resnet18, data, pretrained=p, precompute=True)
        paths[weights_source(p)] = learn.fit_data.cache_path
    assert len(set(paths.values())) == 3
    assert all(f'_{src}_' in path.name for src, path in paths.items())

def test_pretraining_is_seeded_and_fresh_draws_new_images(tmp_path):
    "Two runs of the same recipe write the same file; `fresh=True` trains the second epoch on a new draw (same first epoch)."
    from lessonkit.pretrain import pretrain_sample
    kw = dict(n_per_class=1, n_valid=1, epochs=2, bs=25, lr=0.01, threads=1)
    a = pretrain_sample('resnet18', tmp_path/'a.pth', **kw)
    b = pretrain_sample('resnet18', tmp_path/'b.pth', **kw)
    c = pretrain_sample('resnet18', tmp_path/'c.pth', fresh=True, **kw)
    assert a['sha256'] == b['sha256'] and a['history'] == b['history']
    assert c['history'][0] == a['history'][0]                # epoch 1: the same images, the same weights
    assert c['history'][1][1] != a['history'][1][1]          # epoch 2: other images, another training loss
    assert c['sha256'] != a['sha256']
    with torch.serialization.safe_globals([torch.torch_version.TorchVersion]):
        meta = torch.load(tmp_path/'c.pth', weights_only=True)['meta']
    assert meta['fresh'] is True and meta['epochs'] == 2

def test_precompute_cache_follows_the_validation_crop(tmp_path):
    "Features cached with one crop are not reused for another: squashing and centre-cropping a wide image differ."
    from lessonkit.transforms import CropType
    rng = np.random.default_rng(1)
    x = lambda n: rng.integers(0, 255, (n, 16, 32, 3), dtype=np.uint8)   # wide images: the crop matters
    trn, val = (x(8), np.arange(8) % 2), (x(4), np.arange(4) % 2)
    feats = {}
    for crop in (CropType.NO, CropType.CENTER):
        data = ImageClassifierData.from_arrays(tmp_path, trn, val, bs=4, tfms=tfms_from_model(resnet18, 16, crop_type=crop))
        set_seed(0); learn = ConvLearner.pretrained(resnet18, data, pretrained='sample', precompute=True)
        feats[crop] = (learn.fit_data.cache_path, learn.fit_data.val_dl.dataset.tensors[0])
    (p1, f1), (p2, f2) = feats.values()
    assert p1 != p2 and p1.exists() and p2.exists()
    assert not torch.allclose(f1, f2)
