"""Full mode, dogs-vs-cats, end to end against the stand-ins of tests/standins: Kaggle download -> safe extraction ->
arrangement into train/valid/test -> lesson 1's data object -> ConvLearner with pretrained=True (stand-in ImageNet
weights) -> one epoch of a couple of batches -> TTA on the test set -> a submission shaped like sampleSubmission.csv
-> an upload to the stand-in. resnet18 at 64 px stands in for the lesson's resnet34 at 224, to stay cheap."""
import numpy as np, pandas as pd
from pathlib import Path
from full_common import standins, check_standin_weights, upload  # noqa: F401
from lessonkit.conv_learner import *
from lessonkit.datasets import get_data, is_complete
from lessonkit.submission import write_submission, ids_from_fnames

def test_dogscats_full(standins):
    env = standins([resnet18], layouts={'dogs-vs-cats': {'n_per_class': 16, 'n_test': 5}})
    PATH = get_data('dogscats', full=True)
    assert PATH == Path(env['LESSONKIT_DATA'])/'dogscats' and is_complete(PATH)
    n = {(d, c): len(list((PATH/d/c).glob('*.jpg'))) for d in ('train', 'valid') for c in ('cats', 'dogs')}
    assert sum(n.values()) == 32 and all(v > 0 for v in n.values())
    tfms = tfms_from_model(resnet18, 64, aug_tfms=transforms_side_on, max_zoom=1.1)
    data = ImageClassifierData.from_paths(PATH, tfms=tfms, bs=16, test_name='test')
    assert data.classes == ['cats', 'dogs'] and len(data.test_ds) == 5
    learn = ConvLearner.pretrained(resnet18, data)
    check_standin_weights(learn, resnet18, env)
    learn.fit(1e-2, 1)
    log_preds, _ = learn.TTA(is_test=True)
    p_dog = np.exp(log_preds).mean(0)[:, 1]
    sample = pd.read_csv(Path(env['KAGGLE_STANDIN_ROOT'])/'served'/'dogs-vs-cats'/'sampleSubmission.csv')  # get_data does not fetch it
    sub = pd.DataFrame({'id': [int(i) for i in ids_from_fnames(data.test_ds.fnames)], 'label': p_dog}).sort_values('id')
    assert list(sub.columns) == list(sample.columns) and sorted(sub.id) == sorted(sample.id)
    assert ((sub.label >= 0) & (sub.label <= 1)).all()
    fn = write_submission(sub, PATH/'sub'/'dogscats.csv')
    upload(fn, 'dogs-vs-cats', env)
