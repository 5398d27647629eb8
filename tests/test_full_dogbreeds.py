"""Full mode, dog-breed-identification, end to end against the stand-ins of tests/standins: Kaggle download-all zip
(with the 2018 nested archives, or today's folders) -> safe extraction -> arrangement -> lesson 2's data object ->
ConvLearner with pretrained=True (stand-in ImageNet weights) -> one epoch -> TTA on the test set -> a submission that
check_submission accepts against sample_submission.csv (120 breed columns) -> an upload to the stand-in.
resnet18 at 64 px stands in for the lesson's resnext101_64 at 224 -> 299, to stay cheap."""
import numpy as np, pandas as pd, pytest
from pathlib import Path
from full_common import standins, check_standin_weights, upload  # noqa: F401
from lessonkit.conv_learner import *
from lessonkit.datasets import get_data, is_complete
from lessonkit.data import get_cv_idxs
from lessonkit.submission import dogbreeds_submission, check_submission, write_submission

def test_dogbreeds_full(standins):
    env = standins([resnet18], layouts={'dog-breed-identification': {'n_train': 120, 'n_test': 5}})
    PATH = get_data('dogbreeds', full=True)
    assert is_complete(PATH) and sorted(p.name for p in PATH.iterdir() if not p.name.startswith('.')) == \
        ['labels.csv', 'sample_submission.csv', 'test', 'train']
    labels = pd.read_csv(PATH/'labels.csv')
    val_idxs = get_cv_idxs(len(labels))
    tfms = tfms_from_model(resnet18, 64, aug_tfms=transforms_side_on, max_zoom=1.1)
    data = ImageClassifierData.from_csv(PATH, 'train', PATH/'labels.csv', test_name='test', val_idxs=val_idxs,
                                        suffix='.jpg', tfms=tfms, bs=32)
    assert data.c == 120 and len(data.test_ds) == 5
    learn = ConvLearner.pretrained(resnet18, data, precompute=True)
    check_standin_weights(learn, resnet18, env)
    learn.fit(1e-2, 1)
    learn.precompute = False
    log_preds, _ = learn.TTA(is_test=True)
    sub = dogbreeds_submission(np.mean(np.exp(log_preds), 0), data)
    check_submission(sub, 'dogbreeds', data=data, sample=PATH/'sample_submission.csv')
    assert list(sub.columns) == list(pd.read_csv(PATH/'sample_submission.csv').columns)
    fn = write_submission(sub, PATH/'sub'/'dogbreeds.csv.gz')
    upload(fn, 'dog-breed-identification', env)

def test_dogbreeds_todays_layout_same_folder(standins, tmp_path):
    "Today's download-all zip holds train/ and test/ unzipped: the arranged folder is the same."
    standins(layouts={'dog-breed-identification': {'n_train': 12, 'n_test': 3, 'layout': 'folders'}})
    a = get_data('dogbreeds', full=True, dest=tmp_path/'folders')
    import competitions, io, zipfile
    b = tmp_path/'archives-src'; b.mkdir()
    zipped = competitions.dog_breed_identification(12, 3)['dog-breed-identification.zip']  # the 2018 nested archives
    assert sorted(zipfile.ZipFile(io.BytesIO(zipped)).namelist()) == \
        ['labels.csv.zip', 'sample_submission.csv.zip', 'test.zip', 'train.zip']
    (b/'dog-breed-identification.zip').write_bytes(zipped)
    c = get_data('dogbreeds', full=True, dest=tmp_path/'archives', local=b)
    files = lambda p: sorted(str(f.relative_to(p)) for f in p.rglob('*') if f.is_file() and not f.name.startswith('.'))
    assert files(a) == files(c) and len(files(a)) == 12 + 3 + 2
    assert (a/'labels.csv').read_bytes() == (c/'labels.csv').read_bytes()
