"Kaggle submissions: builders on tiny fake data, the checks' errors, gzip round trips, and the kaggle error paths (no network)."
import gzip, os, subprocess, sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from lessonkit.submission import (SubmissionError, ids_from_fnames, dogbreeds_submission, planet_submission,
                                 rossmann_submission, check_submission, write_submission, submit)

BREEDS = ['beagle', 'boxer', 'pug']
TAGS = ['clear', 'haze', 'primary', 'water']


@pytest.fixture
def dogs():
    return SimpleNamespace(classes=BREEDS, test_ds=SimpleNamespace(fnames=['test/abc.jpg', 'test/def.jpg', 'test/0f1e.jpg']))

@pytest.fixture
def planet():
    return SimpleNamespace(classes=TAGS, test_ds=SimpleNamespace(fnames=[f'test-jpg/test_{i}.jpg' for i in range(3)]))

@pytest.fixture
def dog_probs():
    return np.array([[0.7, 0.3, 0.0], [0.1, 0.1, 0.8], [1/3, 1/3, 1/3]])


def test_ids_from_fnames():
    assert ids_from_fnames(['test/abc.jpg', 'test-jpg/test_0.jpg', 'test-jpg-additional/file_9.jpg']) == ['abc', 'test_0', 'file_9']
    fns = ['test/0042d6bf3e5f3700865886db32689436.jpg']
    assert ids_from_fnames(fns) == [o[5:-4] for o in fns]          # what the course typed


# ---------------------------------------------------------------- dog breeds
def test_dogbreeds_submission(dogs, dog_probs):
    sub = dogbreeds_submission(torch.tensor(dog_probs), dogs)
    assert list(sub.columns) == ['id'] + BREEDS
    assert sub['id'].tolist() == ['abc', 'def', '0f1e']
    assert sub.loc[0, 'pug'] == 1e-6 and sub.loc[0, 'beagle'] == pytest.approx(0.7)
    assert dogbreeds_submission(dog_probs, dogs, clip=None).loc[0, 'pug'] == 0
    # the course's hand-made DataFrame, for comparison
    ds = pd.DataFrame(np.clip(dog_probs, 1e-6, 1 - 1e-6)); ds.columns = BREEDS
    ds.insert(0, 'id', [o[5:-4] for o in dogs.test_ds.fnames])
    pd.testing.assert_frame_equal(sub, ds)


def test_dogbreeds_submission_bad_inputs(dogs, dog_probs):
    with pytest.raises(SubmissionError, match='2 rows of predictions but 3 test files'): dogbreeds_submission(dog_probs[:2], dogs)
    with pytest.raises(ValueError, match=r'np.exp\(log_preds\)'): dogbreeds_submission(np.log(np.clip(dog_probs, .01, 1)), dogs)
    with pytest.raises(ValueError, match='TTA output'): dogbreeds_submission(np.stack([dog_probs] * 4), dogs)
    with pytest.raises(ValueError, match='3 classes'): dogbreeds_submission(dog_probs[:, :2] * 1.5, dogs)
    with pytest.raises(SubmissionError, match="test_name='test'"):
        dogbreeds_submission(dog_probs, SimpleNamespace(classes=BREEDS, test_ds=None))


# ---------------------------------------------------------------- planet
def test_planet_submission(planet):
    p = np.array([[0.9, 0.05, 0.6, 0.25], [0.1, 0.15, 0.1, 0.05], [0.3, 0.3, 0.3, 0.3]])
    sub = planet_submission(p, planet, thresh=0.2)
    assert list(sub.columns) == ['image_name', 'tags']
    assert sub['image_name'].tolist() == ['test_0', 'test_1', 'test_2']
    assert sub['tags'].tolist() == ['clear primary water', 'haze', 'clear haze primary water']
    assert planet_submission(p, planet, 0.2, at_least_one=False)['tags'][1] == ''
    per_tag = planet_submission(p, planet, thresh=[0.95, 0.1, 0.5, 0.5])
    assert per_tag['tags'].tolist() == ['primary', 'haze', 'haze']
    tta = planet_submission(np.stack([p, p * 0.5]), planet, 0.2)          # TTA passes: probabilities averaged
    assert tta['tags'].tolist() == planet_submission(p * 0.75, planet, 0.2)['tags'].tolist()


def test_planet_submission_bad_inputs(planet):
    with pytest.raises(SubmissionError, match=r'\(3 test files, 4 tags\)'): planet_submission(np.zeros((2, 4)), planet)
    with pytest.raises(SubmissionError, match='sigmoid'): planet_submission(np.full((3, 4), -1.0), planet)


# ---------------------------------------------------------------- rossmann
def test_rossmann_submission():
    test_df = pd.DataFrame({'Id': [1, 2, 3, 4], 'Store': [1, 1, 622, 2], 'Open': [1.0, 0.0, np.nan, 1.0]})
    sub = rossmann_submission(np.log([[5000.], [6000.], [7000.], [8000.]]), test_df)
    assert list(sub.columns) == ['Id', 'Sales'] and sub['Id'].dtype == np.int64
    np.testing.assert_allclose(sub['Sales'], [5000, 0, 7000, 8000])            # closed -> 0, unknown -> open
    raw = rossmann_submission(np.array([5000., 6000., 7000., 8000.]), test_df, log_sales=False)
    pd.testing.assert_frame_equal(raw, sub)
    # the lesson's processed table has no Open column: it comes from test.csv, matched by Id
    processed = test_df[['Id']].iloc[::-1].reset_index(drop=True)
    sub2 = rossmann_submission(np.log([8000., 7000., 6000., 5000.]), processed, open_df=test_df)
    np.testing.assert_allclose(sub2['Sales'], [8000, 7000, 0, 5000])


def test_rossmann_submission_bad_inputs():
    test_df = pd.DataFrame({'Id': [1, 2], 'Open': [1, 1]})
    with pytest.raises(SubmissionError, match='3 predictions but 2 rows'): rossmann_submission(np.zeros(3), test_df)
    with pytest.raises(SubmissionError, match="no 'Id'"): rossmann_submission(np.zeros(2), test_df[['Open']])
    with pytest.raises(SubmissionError, match='open_df=pd.read_csv'): rossmann_submission(np.zeros(2), test_df[['Id']])
    with pytest.raises(SubmissionError, match='not in open_df'):
        rossmann_submission(np.zeros(2), test_df[['Id']], open_df=test_df.iloc[:1])


# ---------------------------------------------------------------- checks
def test_check_submission_accepts_good_files(dogs, planet, dog_probs):
    sub = dogbreeds_submission(dog_probs, dogs)
    assert check_submission(sub, data=dogs) is sub
    assert check_submission(sub.iloc[::-1], data=dogs) is not None          # row order does not matter to Kaggle
    check_submission(planet_submission(np.full((3, 4), 0.3), planet), data=planet)
    check_submission(pd.DataFrame({'Id': [1, 2], 'Sales': [0.0, 10.5]}), test_df=pd.DataFrame({'Id': [2, 1]}))


def test_check_submission_errors(dogs, dog_probs):
    sub = dogbreeds_submission(dog_probs, dogs)
    cases = [
        (sub.iloc[:2], 'has 2 rows but the test set has 3'),
        (sub.assign(boxer=[0.3, np.nan, 0.3]), "first in row 1, column 'boxer'"),
        (sub.assign(id=['test/abc', 'def', '0f1e']), "Not in the test set: 'test/abc'; missing: 'abc'"),
        (sub.assign(id=['abc', 'abc', '0f1e']), "ids appear more than once: 'abc'"),
        (sub[['id', 'pug', 'boxer', 'beagle']], 'different order'),
        (sub.drop(columns='pug'), "Missing: 'pug'"),
        (sub.assign(pug=[-0.1, 0.8, 0.3]), "Row 0 \\(id 'abc'\\) has values outside"),
        (sub.assign(pug=[0.5, 0.8, 0.3]), 'Row 0 sums to 1.500'),
    ]
    for bad, msg in cases:
        with pytest.raises(SubmissionError, match=msg): check_submission(bad, data=dogs)
    with pytest.raises(SubmissionError, match='empty'): check_submission(sub.iloc[:0], data=dogs)
    with pytest.raises(SubmissionError, match='pass kind='): check_submission(sub.rename(columns={'id': 'x'}))


def test_check_submission_against_sample_csv(tmp_path, dogs, dog_probs):
    sample = pd.DataFrame({'id': ['abc', 'def', '0f1e'], **{b: 1 / 3 for b in BREEDS}})
    sample.to_csv(tmp_path/'sample_submission.csv', index=False)
    sub = dogbreeds_submission(dog_probs, dogs)
    check_submission(sub, sample=tmp_path/'sample_submission.csv')
    with pytest.raises(SubmissionError, match="unexpected: 'poodle'"):
        check_submission(sub.assign(poodle=0.0), sample=sample)


def test_check_submission_planet_and_rossmann(planet):
    sub = planet_submission(np.full((3, 4), 0.3), planet)
    with pytest.raises(SubmissionError, match="Unknown tags: 'cloudy'"):
        check_submission(sub.assign(tags=['clear cloudy', 'haze', 'water']), data=planet)
    with pytest.raises(SubmissionError, match="column 'tags'"):
        check_submission(sub.assign(tags=['clear', None, 'water']), data=planet)
    ross = pd.DataFrame({'Id': [1, 2], 'Sales': [-5.0, 10.0]})
    with pytest.raises(SubmissionError, match='not negative; row 0'): check_submission(ross)
    with pytest.raises(SubmissionError, match='has 2 rows but the test set has 3'):
        check_submission(ross.assign(Sales=1.0), test_df=pd.DataFrame({'Id': [1, 2, 3]}))


# ---------------------------------------------------------------- writing
def test_write_submission_gzip_round_trip(tmp_path, dogs, dog_probs):
    sub = dogbreeds_submission(dog_probs, dogs)
    out = write_submission(sub, tmp_path/'sub'/'subm.gz')
    assert out == tmp_path/'sub'/'subm.gz'
    with gzip.open(out, 'rt') as f: text = f.read()
    assert text.splitlines()[0] == 'id,beagle,boxer,pug'
    pd.testing.assert_frame_equal(pd.read_csv(out, compression='gzip'), sub)
    assert os.listdir(out.parent) == ['subm.gz']                               # no temporary files left
    assert write_submission(sub, tmp_path/'plain.csv').read_text().startswith('id,beagle')


def test_write_submission_replaces_atomically_and_refuses_bad(tmp_path, dogs, dog_probs):
    sub = dogbreeds_submission(dog_probs, dogs)
    path = tmp_path/'subm.csv.gz'
    write_submission(sub.iloc[:1], path)
    write_submission(sub, path)                                                # a new submission replaces the old
    assert len(pd.read_csv(path)) == 3
    before = path.read_bytes()
    with pytest.raises(SubmissionError, match='missing values'): write_submission(sub.assign(pug=np.nan), path)
    with pytest.raises(SubmissionError, match='.csv or .csv.gz'): write_submission(sub, tmp_path/'subm.xlsx')
    assert path.read_bytes() == before and os.listdir(tmp_path) == ['subm.csv.gz']


# ---------------------------------------------------------------- kaggle (a stand-in module, no network)
class _HTTPError(Exception):
    def __init__(self, status, text='boom'):
        super().__init__(text); self.response = SimpleNamespace(status_code=status)

def _fake_kaggle(submit=None, auth=None):
    calls = []
    def competition_submit(*args, **kwargs):
        calls.append((args, kwargs))
        if submit: raise submit
        return SimpleNamespace(message='Successfully submitted')
    def authenticate():
        if auth: raise auth
    return SimpleNamespace(api=SimpleNamespace(authenticate=authenticate, competition_submit=competition_submit)), calls


@pytest.fixture
def subfile(tmp_path, dogs, dog_probs):
    return write_submission(dogbreeds_submission(dog_probs, dogs), tmp_path/'subm.gz')


def test_submit_success_passes_file_message_competition(monkeypatch, subfile):
    fake, calls = _fake_kaggle()
    monkeypatch.setitem(sys.modules, 'kaggle', fake)
    res = submit(subfile, 'dog-breed-identification', 'resnet34 + TTA')
    assert res.message == 'Successfully submitted'
    (args, kwargs), = calls
    assert args[:3] == (str(subfile), 'resnet34 + TTA', 'dog-breed-identification')


@pytest.mark.parametrize('status,msg', [(403, r'accept the competition'), (401, 'new token'), (404, 'no competition called'),
                                        (429, 'too many requests'), (500, r'HTTP 500\)')])
def test_submit_http_errors_in_plain_words(monkeypatch, subfile, status, msg):
    fake, _ = _fake_kaggle(submit=_HTTPError(status, 'headers: Authorization Basic c2VjcmV0'))
    monkeypatch.setitem(sys.modules, 'kaggle', fake)
    with pytest.raises(RuntimeError, match=msg) as e: submit(subfile, 'dog-breed-identification', 'x')
    assert 'c2VjcmV0' not in str(e.value)                                     # nothing from the response echoed
    if status == 403: assert 'https://www.kaggle.com/c/dog-breed-identification/rules' in str(e.value)


def test_submit_old_style_api_exception_status(monkeypatch, subfile):
    class ApiException(Exception): status = 403
    fake, _ = _fake_kaggle(submit=ApiException('(403) Reason: Forbidden'))
    monkeypatch.setitem(sys.modules, 'kaggle', fake)
    with pytest.raises(RuntimeError, match='rules'): submit(subfile, 'planet-understanding-the-amazon-from-space', 'x')


@pytest.mark.parametrize('err', [SystemExit(1), OSError('Could not find kaggle.json. Make sure it is located in ~/.kaggle')])
def test_submit_without_credentials(monkeypatch, subfile, err, capsys):
    fake, calls = _fake_kaggle(auth=err)
    monkeypatch.setitem(sys.modules, 'kaggle', fake)
    with pytest.raises(RuntimeError, match=r'~/.kaggle/kaggle.json and run chmod 600'): submit(subfile, 'rossmann-store-sales', 'x')
    assert calls == []


def test_submit_kaggle_not_installed(monkeypatch, subfile):
    monkeypatch.setitem(sys.modules, 'kaggle', None)                           # makes `import kaggle` fail
    with pytest.raises(RuntimeError, match='pip install kaggle'): submit(subfile, 'rossmann-store-sales', 'x')


def test_submit_checks_before_calling_kaggle(monkeypatch, tmp_path, subfile):
    fake, calls = _fake_kaggle()
    monkeypatch.setitem(sys.modules, 'kaggle', fake)
    with pytest.raises(FileNotFoundError, match='write_submission'): submit(tmp_path/'nope.gz', 'dog-breed-identification', 'x')
    with pytest.raises(ValueError, match='after /c/'): submit(subfile, 'https://www.kaggle.com/c/dog-breed-identification', 'x')
    assert calls == []


def test_submit_with_the_real_package_and_no_token(tmp_path, subfile):
    "The installed kaggle package, with an empty home and no token in the environment: a clear error, no upload."
    env = {k: v for k, v in os.environ.items() if not k.startswith('KAGGLE_')}
    env.update(HOME=str(tmp_path), KAGGLE_CONFIG_DIR=str(tmp_path/'.kaggle'), XDG_CONFIG_HOME=str(tmp_path/'.config'))
    code = ("import sys\nfrom lessonkit.submission import submit\n"
            "try: submit(sys.argv[1], 'dog-breed-identification', 'x')\n"
            "except RuntimeError as e: print('ERR', e)\n")
    r = subprocess.run([sys.executable, '-c', code, str(subfile)], capture_output=True, text=True, timeout=120, env=env,
                       cwd=Path(__file__).parent.parent)
    assert 'ERR' in r.stdout, r.stdout + r.stderr
    assert 'chmod 600' in r.stdout or 'pip install kaggle' in r.stdout
