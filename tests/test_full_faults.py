"""What a student meets when Kaggle or files.fast.ai misbehave, through the stand-ins of tests/standins: no token, 401,
403 (rules not accepted), 404, 429, a transfer cut half-way, a damaged archive. Each must give lessonkit's plain-words
message and leave nothing that a second call would take as complete: the second call, once the fault is gone, must
finish the dataset."""
import pytest
from pathlib import Path
from full_common import standins  # noqa: F401  (fixture)
import lessonkit.datasets as D
from lessonkit.datasets import get_data, is_complete, DatasetError, KaggleCredentialsError, KaggleAccessError, CorruptArchiveError

SMALL = {'dogs-vs-cats': {'n_per_class': 6, 'n_test': 3}}

def _second_call_finishes(dest):
    assert not is_complete(dest)
    p = get_data('dogscats', full=True, dest=dest)
    assert is_complete(p) and len(list((p/'train'/'cats').glob('cat.*.jpg'))) + len(list((p/'valid'/'cats').glob('cat.*.jpg'))) == 6
    assert sorted(f.name for f in (p/'test').iterdir()) == ['1.jpg', '2.jpg', '3.jpg']
    return p

def test_no_token(standins, tmp_path):
    env = standins(token=False, layouts=SMALL)
    dest = tmp_path/'dogscats'
    with pytest.raises(KaggleCredentialsError) as e: get_data('dogscats', full=True, dest=dest)
    assert 'No Kaggle API token found' in str(e.value) and 'kaggle.json' in str(e.value)
    tok = Path(env['KAGGLE_CONFIG_DIR'])/'kaggle.json'
    tok.write_text('{"username": "student", "key": "k"}'); tok.chmod(0o600)
    _second_call_finishes(dest)

@pytest.mark.parametrize('fault,err,words', [
    ('401', KaggleCredentialsError, ['401 Unauthorized', 'https://www.kaggle.com/settings']),
    ('403', KaggleAccessError, ['403 Forbidden', 'https://www.kaggle.com/competitions/dogs-vs-cats/rules', 'Accept']),
    ('404', DatasetError, ['404 Not Found', 'https://www.kaggle.com/competitions/dogs-vs-cats']),
    ('429', DatasetError, ['429', 'too many requests', 'again']),
    ('cut', DatasetError, ['cut off', 'again']),
    ('corrupt', CorruptArchiveError, ['damaged or incomplete', 'download it again']),
])
def test_kaggle_fault_then_second_call(standins, tmp_path, fault, err, words):
    import setup_standins
    env = standins(layouts=SMALL)
    setup_standins.queue_faults(env, {'dogs-vs-cats/train.zip': [fault]})
    dest = tmp_path/'dogscats'
    with pytest.raises(err) as e: get_data('dogscats', full=True, dest=dest)
    msg = str(e.value)
    for w in words: assert w.lower() in msg.lower(), msg
    assert 'Traceback' not in msg and 'HTTPError' not in msg
    _second_call_finishes(dest)

@pytest.mark.parametrize('fault,words', [('404', ['404', 'rossmann_tgz=']), ('cut', ['cut off', 'again'])])
def test_rossmann_tgz_fault_then_second_call(standins, tmp_path, fault, words):
    standins()
    from full_common import last_server
    last_server().set_fault(fault)
    dest = tmp_path/'rossmann'
    with pytest.raises(DatasetError) as e: get_data('rossmann', full=True, dest=dest)
    for w in words: assert w.lower() in str(e.value).lower(), str(e.value)
    assert not is_complete(dest) and not (dest/D.DOWNLOADS/'extras'/'rossmann.tgz').exists()
    last_server().set_fault(None)
    p = get_data('rossmann', full=True, dest=dest)
    assert is_complete(p) and (p/'weather.csv').is_file() and (p/'train.csv').is_file()
