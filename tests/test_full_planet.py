"""Full mode, planet-understanding-the-amazon-from-space, end to end against the stand-ins of tests/standins: three
.tar.7z image archives and the zipped CSVs from the Kaggle stand-in -> safe extraction (7z, then tar) -> arrangement
(test-jpg-additional merged into test-jpg) -> the lesson's multi-label data object -> ConvLearner with pretrained=True
(stand-in ImageNet weights) -> one epoch -> TTA on the test set -> a submission that check_submission accepts against
sample_submission_v2.csv -> an upload to the stand-in. resnet18 at 64 px stands in for resnet34 at 64 -> 256."""
import numpy as np, pandas as pd
from full_common import standins, check_standin_weights, upload  # noqa: F401
from lessonkit.conv_learner import *
from lessonkit.datasets import get_data, is_complete
from lessonkit.data import get_cv_idxs
from lessonkit.metrics import f2
from lessonkit.submission import planet_submission, check_submission, write_submission

def test_planet_full(standins):
    env = standins([resnet18], layouts={'planet-understanding-the-amazon-from-space': {'n_train': 40, 'n_test': 4, 'n_additional': 3}})
    PATH = get_data('planet', full=True)
    assert is_complete(PATH)
    assert sorted(p.name for p in (PATH/'test-jpg').iterdir()) == [f'file_{i}.jpg' for i in range(3)] + [f'test_{i}.jpg' for i in range(4)]
    label_csv = PATH/'train_v2.csv'
    val_idxs = get_cv_idxs(len(pd.read_csv(label_csv)))
    tfms = tfms_from_model(resnet18, 64, aug_tfms=transforms_top_down, max_zoom=1.05)
    data = ImageClassifierData.from_csv(PATH, 'train-jpg', label_csv, tfms=tfms, bs=16, suffix='.jpg',
                                        val_idxs=val_idxs, test_name='test-jpg')
    assert data.is_multi and len(data.test_ds) == 7
    learn = ConvLearner.pretrained(resnet18, data, metrics=[f2])
    check_standin_weights(learn, resnet18, env)
    learn.fit(1e-2, 1)
    test_preds, _ = learn.TTA(is_test=True, seed=0)
    sub = planet_submission(np.mean(test_preds, 0), learn.data, thresh=0.2)
    check_submission(sub, data=learn.data, sample=PATH/'sample_submission_v2.csv')
    fn = write_submission(sub, PATH/'sub'/'planet.csv.gz')
    upload(fn, 'planet-understanding-the-amazon-from-space', env)
