"""lessonkit.datasets and lessonkit.samples without a network: archives made here (laid out like Kaggle's, and
malicious ones), a fake downloader in place of Kaggle, the completion marker, credentials, verify_images, the CLI,
and the committed samples in data/ against a fresh redraw and against the real datasets' layout."""
import hashlib, io, json, os, subprocess, sys, tarfile, zipfile
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageFile

import lessonkit.datasets as D
from lessonkit.datasets import (get_data, extract_archive, verify_images, is_complete, main, DatasetError,
                                KaggleCredentialsError, KaggleAccessError, UnsafeArchiveError, CorruptArchiveError,
                                ChecksumError)

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT/'data'


# ---------------------------------------------------------------- helpers

def make_zip(fn, members):
    "A zip at `fn` holding {name: bytes}."
    fn = Path(fn); fn.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(fn, 'w') as zf:
        for name, data in members.items(): zf.writestr(name, data)
    return fn

def jpeg_bytes(seed, size=(24, 16)):
    "A small real JPEG, different for each seed."
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(buf, 'JPEG')
    return buf.getvalue()

def tar_add(tf, name, data=b'', **attrs):
    ti = tarfile.TarInfo(name); ti.size = len(data)
    for k, v in attrs.items(): setattr(ti, k, v)
    tf.addfile(ti, io.BytesIO(data) if data else None)

def snapshot(folder):
    "{relative path: sha256} of every file under `folder`."
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(folder).rglob('*')) if p.is_file()}

N_PER_CLASS = 50

class FakeKaggle:
    "Stands in for the Kaggle download: writes archives laid out like the competition's into the folder, and counts calls."
    def __init__(self, fail=None): self.calls, self.fail = [], fail or {}
    def __call__(self, competition, file, folder):
        self.calls.append(file)
        if file in self.fail:
            action = self.fail.pop(file)
            if action == 'interrupt':  # half a file on disk, then the process is stopped
                (folder/file).write_bytes(b'PK\x03\x04 half a zip'); raise KeyboardInterrupt
            if action == 'corrupt':
                self.write(competition, file, folder); p = folder/file; p.write_bytes(p.read_bytes()[:len(p.read_bytes())//2]); return
        self.write(competition, file, folder)
    def write(self, competition, file, folder):
        if competition == 'dogs-vs-cats' and file == 'train.zip':  # flat, as on Kaggle
            make_zip(folder/file, {f'train/{c}.{i}.jpg': jpeg_bytes(1000*(c == 'dog') + i) for c in ('cat', 'dog') for i in range(N_PER_CLASS)})
        elif competition == 'dogs-vs-cats' and file == 'test1.zip':
            make_zip(folder/file, {f'test1/{i}.jpg': jpeg_bytes(i) for i in range(1, 8)})
        else: raise AssertionError(f'unexpected download {competition} {file}')

@pytest.fixture
def fresh(tmp_path, monkeypatch):
    "No LESSONKIT_FULL/LESSONKIT_DATA from the environment; HOME empty."
    for k in ('LESSONKIT_FULL', 'LESSONKIT_DATA', 'KAGGLE_USERNAME', 'KAGGLE_KEY', 'KAGGLE_API_TOKEN', 'KAGGLE_CONFIG_DIR', 'XDG_CONFIG_HOME'):
        monkeypatch.delenv(k, raising=False)
    home = tmp_path/'home'; home.mkdir(); monkeypatch.setenv('HOME', str(home))
    return tmp_path


# ---------------------------------------------------------------- dogs vs cats arranged from a Kaggle-like zip

def test_dogscats_arranged_seeded_and_reproducible(fresh):
    fake = FakeKaggle()
    d = get_data('dogscats', full=True, dest=fresh/'a'/'dogscats', downloader=fake)
    assert fake.calls == ['train.zip', 'test1.zip']
    n_val = round(N_PER_CLASS*0.08)
    for cls in ('cats', 'dogs'):
        trn, val = sorted(p.name for p in (d/'train'/cls).iterdir()), sorted(p.name for p in (d/'valid'/cls).iterdir())
        assert len(val) == n_val and len(trn) == N_PER_CLASS - n_val and not set(trn) & set(val)
        assert all(n.startswith(cls[:-1] + '.') for n in trn + val)
    assert sorted(p.name for p in (d/'test').iterdir()) == sorted(f'{i}.jpg' for i in range(1, 8))
    # contents survive the trip: each file is the one the zip held under that name
    assert (d/'test'/'3.jpg').read_bytes() == jpeg_bytes(3)
    assert is_complete(d) and json.loads((d/D.MARKER).read_text())['competition'] == 'dogs-vs-cats'
    assert sorted(p.name for p in d.iterdir()) == sorted([D.MARKER, 'test', 'train', 'valid'])  # archives and staging gone
    # the same seed gives the same split on another run; another seed a different one
    d2 = get_data('dogscats', full=True, dest=fresh/'b'/'dogscats', downloader=FakeKaggle())
    without_marker = lambda d: {k: v for k, v in snapshot(d).items() if k != D.MARKER}  # the marker holds a time stamp
    assert without_marker(d2) == without_marker(d)
    d3 = get_data('dogscats', full=True, dest=fresh/'c'/'dogscats', downloader=FakeKaggle(), seed=7)
    assert sorted((d3/'valid'/'cats').iterdir()) != sorted((d/'valid'/'cats').iterdir())

def test_local_kaggle_files_used_and_left_alone(fresh):
    local = fresh/'Downloads'; local.mkdir()
    FakeKaggle()('dogs-vs-cats', 'train.zip', local); FakeKaggle()('dogs-vs-cats', 'test1.zip', local)
    before = snapshot(local)
    def no_download(*a): raise AssertionError('local files given: nothing to download')
    d = get_data('dogscats', full=True, dest=fresh/'dogscats', local=local, downloader=no_download)
    assert is_complete(d) and len(list((d/'test').iterdir())) == 7 and snapshot(local) == before
    with pytest.raises(DatasetError, match='has no'): get_data('planet', full=True, dest=fresh/'planet', local=local)

def test_full_data_goes_to_lessonkit_data(fresh, monkeypatch):
    monkeypatch.setenv('LESSONKIT_DATA', str(fresh/'store'))
    d = get_data('dogs-vs-cats', full=True, downloader=FakeKaggle())
    assert d == fresh/'store'/'dogscats' and is_complete(d)

def test_sample_needs_no_network(fresh):
    def no_download(*a): raise AssertionError('the sample must not download anything')
    for name in ('dogscats', 'dogbreeds', 'planet', 'rossmann', 'dogbreed'):
        p = get_data(name, downloader=no_download)
        assert p.parent == DATA and p.is_dir()
    with pytest.raises(KeyError, match='dogscats, dogbreeds, planet, rossmann'): get_data('cifar10')


# ---------------------------------------------------------------- nested archives, .tar.7z, csv.zip, rossmann.tgz

def test_dogbreeds_whole_competition_zip_with_nested_zips(fresh):
    def dl(competition, file, folder):
        assert competition == 'dog-breed-identification' and file is None
        inner = fresh/'inner'
        make_zip(inner/'train.zip', {f'train/{i:032x}.jpg': jpeg_bytes(i) for i in range(6)})
        make_zip(inner/'test.zip', {f'test/{i + 100:032x}.jpg': jpeg_bytes(i + 100) for i in range(3)})
        make_zip(inner/'labels.csv.zip', {'labels.csv': 'id,breed\n' + ''.join(f'{i:032x},pug\n' for i in range(6))})
        make_zip(folder/f'{competition}.zip', {p.name: p.read_bytes() for p in inner.iterdir()} | {'sample_submission.csv': 'id,pug\n'})
    d = get_data('dogbreed', full=True, dest=fresh/'dogbreeds', downloader=dl)
    assert len(list((d/'train').glob('*.jpg'))) == 6 and len(list((d/'test').glob('*.jpg'))) == 3
    assert pd.read_csv(d/'labels.csv').shape == (6, 2) and (d/'sample_submission.csv').is_file()
    assert not list(d.rglob('*.zip'))

def test_planet_tar_7z_and_zipped_csv(fresh):
    py7zr = pytest.importorskip('py7zr')
    def tar7z(fn, folder, names):
        tar = fresh/'t'/(fn.name[:-3]); tar.parent.mkdir(exist_ok=True)
        with tarfile.open(tar, 'w') as tf:
            for i, n in enumerate(names): tar_add(tf, f'{folder}/{n}', jpeg_bytes(i))
        with py7zr.SevenZipFile(fn, 'w') as z: z.write(tar, tar.name)
    def dl(competition, file, folder):
        if file == 'train-jpg.tar.7z': tar7z(folder/file, 'train-jpg', [f'train_{i}.jpg' for i in range(5)])
        elif file == 'test-jpg.tar.7z': tar7z(folder/file, 'test-jpg', [f'test_{i}.jpg' for i in range(3)])
        elif file == 'test-jpg-additional.tar.7z': tar7z(folder/file, 'test-jpg-additional', [f'file_{i}.jpg' for i in range(2)])
        elif file == 'train_v2.csv':  # Kaggle serves some csv files zipped, under another name
            make_zip(folder/'train_v2.csv.zip', {'train_v2.csv': 'image_name,tags\n' + ''.join(f'train_{i},clear primary\n' for i in range(5))})
        elif file == 'sample_submission_v2.csv': (folder/file).write_text('image_name,tags\ntest_0,clear\n')
        else: raise AssertionError(file)
    d = get_data('planet', full=True, dest=fresh/'planet', downloader=dl)
    assert sorted(p.name for p in (d/'train-jpg').iterdir()) == [f'train_{i}.jpg' for i in range(5)]
    assert sorted(p.name for p in (d/'test-jpg').iterdir()) == ['file_0.jpg', 'file_1.jpg', 'test_0.jpg', 'test_1.jpg', 'test_2.jpg']
    assert list(pd.read_csv(d/'train_v2.csv').columns) == ['image_name', 'tags']
    assert verify_images(d) == [] and not list(d.rglob('*.tar'))

def _rossmann_kaggle(competition, file, folder):
    assert competition == 'rossmann-store-sales' and file is None
    make_zip(folder/f'{competition}.zip', {f'{t}.csv': f'{t}\n1\n' for t in ('train', 'store', 'test', 'sample_submission')})

def _rossmann_tgz(fn, tables=('store_states', 'state_names', 'googletrend', 'weather')):
    heads = {'store_states': 'Store,State', 'state_names': 'StateName,State', 'googletrend': 'file,week,trend',
             'weather': 'file,Date,Max_TemperatureC,Mean_TemperatureC'}
    with tarfile.open(fn, 'w:gz') as tf:
        for t in tables: tar_add(tf, f'{t}.csv', f'{heads[t]}\n'.encode())
    return fn

def test_rossmann_kaggle_tables_plus_local_extras(fresh):
    tgz = _rossmann_tgz(fresh/'rossmann.tgz')
    d = get_data('rossmann', full=True, dest=fresh/'rossmann', downloader=_rossmann_kaggle, rossmann_tgz=tgz)
    assert sorted(p.name for p in d.iterdir() if p.suffix == '.csv') == sorted(
        f'{t}.csv' for t in ['train', 'store', 'store_states', 'state_names', 'googletrend', 'weather', 'test', 'sample_submission'])
    assert tgz.is_file()  # the student's copy is read, never moved

def test_rossmann_extras_checked(fresh):
    bad = _rossmann_tgz(fresh/'bad.tgz', tables=('store_states', 'state_names', 'googletrend'))
    with pytest.raises(DatasetError, match='weather.csv'):
        get_data('rossmann', full=True, dest=fresh/'r1', downloader=_rossmann_kaggle, rossmann_tgz=bad)
    good = _rossmann_tgz(fresh/'good.tgz')
    with pytest.raises(ChecksumError):
        get_data('rossmann', full=True, dest=fresh/'r2', downloader=_rossmann_kaggle, rossmann_tgz=good, sha256='0'*64)
    assert not is_complete(fresh/'r1') and not is_complete(fresh/'r2')

def test_download_url_https_only_and_checksum(fresh, monkeypatch):
    with pytest.raises(ValueError, match='https'): D.download_url('http://files.fast.ai/x.tgz', fresh/'x')
    payload = b'rossmann' * 1000
    class Resp(io.BytesIO):
        headers = {'Content-Length': str(len(payload))}
        def __enter__(self): return self
        def __exit__(self, *a): self.close()
    import urllib.request
    monkeypatch.setattr(urllib.request, 'urlopen', lambda url, timeout=None: Resp(payload))
    good = hashlib.sha256(payload).hexdigest()
    assert D.download_url('https://example.org/r.tgz', fresh/'r.tgz', sha256=good) == good and (fresh/'r.tgz').read_bytes() == payload
    with pytest.raises(ChecksumError, match='expected'): D.download_url('https://example.org/r.tgz', fresh/'s.tgz', sha256='f'*64)
    with pytest.raises(ChecksumError): D.download_url('https://example.org/r.tgz', fresh/'s.tgz', size=5)
    assert sorted(p.name for p in fresh.iterdir() if p.name != 'home') == ['r.tgz']  # nothing half-written left behind


# ---------------------------------------------------------------- archive attacks

@pytest.mark.parametrize('bad', ['../evil.txt', 'ok/../../evil.txt', 'ABS', '..\\evil.txt'])
def test_malicious_zip_refused_nothing_written(tmp_path, bad):
    box = tmp_path/'box'; box.mkdir(); dest = box/'dest'
    name = str(tmp_path/'abs_evil.txt') if bad == 'ABS' else bad
    fn = make_zip(tmp_path/'evil.zip', {'train/fine.jpg': b'fine', name: b'evil'})
    with pytest.raises(UnsafeArchiveError, match='Refusing'): extract_archive(fn, dest)
    assert not (tmp_path/'evil.txt').exists() and not (box/'evil.txt').exists() and not (tmp_path/'abs_evil.txt').exists()
    assert not dest.exists() or not any(dest.rglob('*'))  # not even the harmless member

def test_zip_symlink_refused(tmp_path):
    fn = tmp_path/'link.zip'
    with zipfile.ZipFile(fn, 'w') as zf:
        zi = zipfile.ZipInfo('link'); zi.external_attr = (0o120777 << 16); zf.writestr(zi, '/etc/passwd')
    with pytest.raises(UnsafeArchiveError, match='symbolic link'): extract_archive(fn, tmp_path/'dest')

def _tar(fn, add):
    with tarfile.open(fn, 'w:gz') as tf:
        tar_add(tf, 'train/fine.jpg', b'fine'); add(tf)
    return fn

TAR_ATTACKS = {
    'dotdot': lambda tf, t: tar_add(tf, '../evil.txt', b'evil'),
    'absolute': lambda tf, t: tar_add(tf, str(t/'abs_evil.txt'), b'evil'),
    'symlink_out': lambda tf, t: tar_add(tf, 'escape', type=tarfile.SYMTYPE, linkname=str(t)),
    'symlink_dotdot': lambda tf, t: tar_add(tf, 'train/up', type=tarfile.SYMTYPE, linkname='../../..'),
    'symlink_then_file': lambda tf, t: (tar_add(tf, 'lnk', type=tarfile.SYMTYPE, linkname='..'), tar_add(tf, 'lnk/evil.txt', b'evil')),
    'hardlink_out': lambda tf, t: tar_add(tf, 'hard', type=tarfile.LNKTYPE, linkname='../evil.txt'),
    'device': lambda tf, t: tar_add(tf, 'dev', type=tarfile.CHRTYPE, devmajor=1, devminor=3),
}

@pytest.mark.parametrize('attack', list(TAR_ATTACKS))
def test_malicious_tar_refused_nothing_written(tmp_path, attack):
    box = tmp_path/'box'; box.mkdir(); dest = box/'dest'
    fn = _tar(tmp_path/'evil.tgz', lambda tf: TAR_ATTACKS[attack](tf, tmp_path))
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(UnsafeArchiveError, match='Refusing'): extract_archive(fn, dest)
    assert sorted(p.name for p in tmp_path.iterdir()) == before and sorted(p.name for p in box.iterdir()) in ([], ['dest'])
    assert not dest.exists() or not any(dest.rglob('*'))

def test_tar_link_inside_target_allowed(tmp_path):
    fn = _tar(tmp_path/'ok.tgz', lambda tf: tar_add(tf, 'train/alias.jpg', type=tarfile.SYMTYPE, linkname='fine.jpg'))
    extract_archive(fn, tmp_path/'dest')
    assert (tmp_path/'dest'/'train'/'alias.jpg').read_bytes() == b'fine'

def test_malicious_download_refused_by_get_data(fresh):
    def dl(competition, file, folder):
        make_zip(folder/file, {'train/cat.1.jpg': b'x', '../../../escaped.jpg': b'evil'} if file == 'train.zip' else {'test1/1.jpg': b'x'})
    with pytest.raises(UnsafeArchiveError): get_data('dogscats', full=True, dest=fresh/'data'/'dogscats', downloader=dl)
    assert not list(fresh.rglob('escaped.jpg')) and not is_complete(fresh/'data'/'dogscats')


# ---------------------------------------------------------------- corrupt archives

@pytest.mark.parametrize('kind', ['zip', 'tgz', '7z', 'notzip'])
def test_corrupt_archive_named_error(tmp_path, kind):
    if kind == 'zip':
        fn = make_zip(tmp_path/'a.zip', {'a.txt': os.urandom(5000)}); fn.write_bytes(fn.read_bytes()[:2000])
    elif kind == 'tgz':
        fn = _tar(tmp_path/'a.tgz', lambda tf: tar_add(tf, 'big.bin', os.urandom(50000))); fn.write_bytes(fn.read_bytes()[:20000])
    elif kind == '7z':
        py7zr = pytest.importorskip('py7zr')
        src = tmp_path/'big.bin'; src.write_bytes(os.urandom(50000))
        fn = tmp_path/'a.7z'
        with py7zr.SevenZipFile(fn, 'w') as z: z.write(src, 'big.bin')
        fn.write_bytes(fn.read_bytes()[:20000])
    else:
        fn = tmp_path/'a.zip'; fn.write_text('<html>Too many requests</html>')
    with pytest.raises(CorruptArchiveError) as e: extract_archive(fn, tmp_path/'dest')
    assert fn.name in str(e.value) and 'download it again' in str(e.value)

def test_corrupt_download_is_fetched_again(fresh):
    fake = FakeKaggle(fail={'train.zip': 'corrupt'})
    dest = fresh/'data'/'dogscats'
    with pytest.raises(CorruptArchiveError): get_data('dogscats', full=True, dest=dest, downloader=fake)
    assert not is_complete(dest) and not (dest/D.DOWNLOADS/'train.zip').exists()
    get_data('dogscats', full=True, dest=dest, downloader=fake)
    assert fake.calls == ['train.zip', 'test1.zip', 'train.zip'] and is_complete(dest)


# ---------------------------------------------------------------- the completion marker

def test_interrupted_download_is_redone(fresh):
    fake = FakeKaggle(fail={'test1.zip': 'interrupt'})
    dest = fresh/'data'/'dogscats'
    with pytest.raises(KeyboardInterrupt): get_data('dogscats', full=True, dest=dest, downloader=fake)
    assert not is_complete(dest)
    d = get_data('dogscats', full=True, dest=dest, downloader=fake)
    assert fake.calls == ['train.zip', 'test1.zip', 'test1.zip']  # train.zip had finished; test1.zip is fetched again
    assert is_complete(d) and len(list((d/'test').iterdir())) == 7

def test_interrupted_arranging_is_redone(fresh, monkeypatch):
    fake, dest = FakeKaggle(), fresh/'data'/'dogscats'
    real = D.arrange_dogscats
    def stop_halfway(staging, out, **kw):
        real(staging, out, **kw); raise KeyboardInterrupt
    monkeypatch.setattr(D, 'arrange_dogscats', stop_halfway)
    with pytest.raises(KeyboardInterrupt): get_data('dogscats', full=True, dest=dest, downloader=fake)
    assert not is_complete(dest) and not (dest/'train').exists()
    monkeypatch.setattr(D, 'arrange_dogscats', real)
    d = get_data('dogscats', full=True, dest=dest, downloader=fake)
    assert fake.calls == ['train.zip', 'test1.zip']  # downloads kept; only unpacking and arranging redone
    assert sum(1 for _ in (d/'train').rglob('*.jpg')) + sum(1 for _ in (d/'valid').rglob('*.jpg')) == 2*N_PER_CLASS

def test_interrupted_move_is_undone_and_redone(fresh, monkeypatch):
    fake, dest = FakeKaggle(), fresh/'data'/'dogscats'
    real_finish = D._finish
    def crash_after_first(dest_, out, ds):
        entries = sorted(p.name for p in out.iterdir())
        (dest_/D.MANIFEST).write_text(json.dumps({'dataset': ds.name, 'entries': entries}))
        D._move(out/entries[0], dest_/entries[0]); raise KeyboardInterrupt
    monkeypatch.setattr(D, '_finish', crash_after_first)
    with pytest.raises(KeyboardInterrupt): get_data('dogscats', full=True, dest=dest, downloader=fake)
    assert (dest/'test').is_dir() and not is_complete(dest)
    monkeypatch.setattr(D, '_finish', real_finish)
    d = get_data('dogscats', full=True, dest=dest, downloader=fake)
    assert is_complete(d) and len(list((d/'test').iterdir())) == 7 and not (d/D.MANIFEST).exists()

def test_finished_dataset_not_downloaded_again(fresh):
    dest = fresh/'data'/'dogscats'
    get_data('dogscats', full=True, dest=dest, downloader=FakeKaggle())
    before = snapshot(dest)
    def must_not_run(*a): raise AssertionError('downloaded again')
    assert get_data('dogscats', full=True, dest=dest, downloader=must_not_run) == dest
    assert snapshot(dest) == before

def test_foreign_files_never_touched(fresh):
    dest = fresh/'data'/'dogscats'
    (dest/'train'/'cats').mkdir(parents=True); (dest/'valid'/'cats').mkdir(parents=True)
    (dest/'train'/'cats'/'mine.jpg').write_bytes(b'my photo'); (dest/'notes.txt').write_text('mine')
    before = snapshot(dest)
    fake = FakeKaggle()
    with pytest.raises(DatasetError, match='adopt=True'): get_data('dogscats', full=True, dest=dest, downloader=fake)
    assert snapshot(dest) == before and fake.calls == []
    assert get_data('dogscats', full=True, dest=dest, downloader=fake, adopt=True) == dest
    assert is_complete(dest) and fake.calls == [] and (dest/'train'/'cats'/'mine.jpg').read_bytes() == b'my photo'


# ---------------------------------------------------------------- Kaggle credentials and errors

def test_missing_credentials_clear_message(fresh):
    with pytest.raises(KaggleCredentialsError) as e: get_data('dogscats', full=True, dest=fresh/'d')
    msg = str(e.value)
    assert '~/.kaggle/kaggle.json' in msg and 'chmod 600' in msg and 'KAGGLE_USERNAME' in msg
    assert isinstance(e.value, Exception) and not (fresh/'home'/'.kaggle').exists()

def test_real_kaggle_systemexit_becomes_exception(fresh):
    "kaggle 2.x calls exit(1) when its token is unusable; that must come out as KaggleCredentialsError, printing nothing."
    pytest.importorskip('kaggle')
    kdir = fresh/'home'/'.kaggle'; kdir.mkdir(); (kdir/'kaggle.json').write_text('{}'); (kdir/'kaggle.json').chmod(0o600)
    code = ("from lessonkit.datasets import kaggle_api, KaggleCredentialsError\n"
            "try: kaggle_api('dogscats')\n"
            "except KaggleCredentialsError as e: import sys; sys.stderr.write('CAUGHT ' + str(e))\n")
    env = {'PATH': os.environ.get('PATH', '/usr/bin:/bin'), 'HOME': str(fresh/'home'), 'PYTHONPATH': str(ROOT)}
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, cwd=fresh, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout == '' and r.stderr.startswith('CAUGHT') and 'kaggle.json' in r.stderr and 'chmod 600' in r.stderr

class _FakeApi:
    "A stand-in for kaggle.api.kaggle_api_extended.KaggleApi."
    status, seen, exit_on_auth = {}, [], False
    def authenticate(self):
        if _FakeApi.exit_on_auth: print('Authentication required ... 18 lines of help'); raise SystemExit(1)
    def competition_download_file(self, competition, file, path=None, quiet=True, **kw):
        _FakeApi.seen.append(file)
        st = _FakeApi.status.get(file)
        if st:
            e = Exception(f'{st} Client Error'); e.response = type('R', (), {'status_code': st})(); raise e
        Path(path, file).write_bytes(b'data')

@pytest.fixture
def fake_kaggle_pkg(fresh, monkeypatch):
    "A fake `kaggle` package in sys.modules, and dummy credentials in the environment."
    import types
    mod = types.ModuleType('kaggle.api.kaggle_api_extended'); mod.KaggleApi = _FakeApi
    for name in ('kaggle', 'kaggle.api'): monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, 'kaggle.api.kaggle_api_extended', mod)
    monkeypatch.setenv('KAGGLE_USERNAME', 'student'); monkeypatch.setenv('KAGGLE_KEY', 'S3CRET-KEY-VALUE')
    _FakeApi.status, _FakeApi.seen, _FakeApi.exit_on_auth = {}, [], False
    return fresh

def test_kaggle_403_says_accept_rules(fake_kaggle_pkg, capsys):
    _FakeApi.status = {'train.zip': 403}
    with pytest.raises(KaggleAccessError) as e: D.kaggle_download('dogs-vs-cats', 'train.zip', fake_kaggle_pkg/'dl', 'dogscats')
    assert 'https://www.kaggle.com/competitions/dogs-vs-cats/rules' in str(e.value) and 'Accept' in str(e.value)
    out = capsys.readouterr()
    assert 'S3CRET' not in str(e.value) + out.out + out.err

def test_kaggle_401_and_systemexit(fake_kaggle_pkg, capsys):
    _FakeApi.status = {'train.zip': 401}
    with pytest.raises(KaggleCredentialsError, match='401'): D.kaggle_download('dogs-vs-cats', 'train.zip', fake_kaggle_pkg/'dl')
    _FakeApi.exit_on_auth = True
    with pytest.raises(KaggleCredentialsError) as e: D.kaggle_api('dogscats')
    out = capsys.readouterr()
    assert 'Authentication required' not in out.out + out.err  # kaggle's own notice is swallowed
    assert 'KAGGLE_USERNAME and KAGGLE_KEY' in str(e.value) and 'S3CRET' not in str(e.value) + out.out + out.err

def test_kaggle_tries_zipped_name_on_404(fake_kaggle_pkg):
    _FakeApi.status = {'train_v2.csv': 404}
    D.kaggle_download('planet-understanding-the-amazon-from-space', 'train_v2.csv', fake_kaggle_pkg/'dl')
    assert _FakeApi.seen == ['train_v2.csv', 'train_v2.csv.zip'] and (fake_kaggle_pkg/'dl'/'train_v2.csv.zip').is_file()

def test_readable_token_file_warned_not_shown(fresh, capsys):
    kdir = fresh/'home'/'.kaggle'; kdir.mkdir()
    tok = kdir/'kaggle.json'; tok.write_text('{"username": "student", "key": "S3CRET-KEY-VALUE"}'); tok.chmod(0o644)
    assert D.kaggle_credentials() == str(tok)
    D._warn_if_readable(D.kaggle_credentials())
    out = capsys.readouterr().out
    assert 'chmod 600' in out and 'S3CRET' not in out


# ---------------------------------------------------------------- import is silent

def test_import_prints_nothing_and_needs_no_kaggle(tmp_path):
    code = "import lessonkit, lessonkit.datasets, lessonkit.samples, sys; assert 'kaggle' not in sys.modules, 'kaggle imported'"
    env = {'PATH': '/usr/bin:/bin', 'HOME': str(tmp_path), 'PYTHONPATH': str(ROOT)}
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout == '' and r.stderr == ''
    assert list(tmp_path.iterdir()) == []  # no ~/.kaggle or ~/.config/kaggle created


# ---------------------------------------------------------------- verify_images

def test_verify_images_reports_and_deletes_nothing(tmp_path):
    d = tmp_path/'imgs'; (d/'sub').mkdir(parents=True)
    (d/'good.jpg').write_bytes(jpeg_bytes(1, (64, 48)))
    Image.new('RGB', (10, 10), 'blue').save(d/'sub'/'good.png')
    (d/'sub'/'truncated.jpg').write_bytes(jpeg_bytes(2, (64, 48))[:300])
    (d/'zero.jpg').write_bytes(b'')
    (d/'sub'/'page.jpg').write_text('<!DOCTYPE html><html>403 Forbidden</html>')
    (d/'readme.txt').write_text('not an image, not checked')
    before = snapshot(d)
    old = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = True  # another library allowed truncated images: still reported
    try: bad = verify_images(d)
    finally: ImageFile.LOAD_TRUNCATED_IMAGES, flag = old, ImageFile.LOAD_TRUNCATED_IMAGES
    assert flag is True  # and the caller's setting is left as it was
    assert sorted(str(p.relative_to(d)) for p, _ in bad) == ['sub/page.jpg', 'sub/truncated.jpg', 'zero.jpg']
    assert all(isinstance(why, str) and why for _, why in bad)
    assert snapshot(d) == before
    assert verify_images(d/'good.jpg') == []

def test_cli_verify(tmp_path, capsys):
    (tmp_path/'ok.jpg').write_bytes(jpeg_bytes(1)); (tmp_path/'bad.jpg').write_bytes(b'\xff\xd8 truncated')
    assert main(['verify', str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert str(tmp_path/'bad.jpg') in out and 'ok.jpg' not in out and (tmp_path/'bad.jpg').exists()
    (tmp_path/'bad.jpg').unlink()
    assert main(['verify', str(tmp_path)]) == 0


# ---------------------------------------------------------------- command line

def test_cli_python_m(fresh):
    env = {k: v for k, v in os.environ.items() if not k.startswith(('LESSONKIT_', 'KAGGLE_'))}
    env.update(PYTHONPATH=str(ROOT), HOME=str(fresh/'home'))
    r = subprocess.run([sys.executable, '-m', 'lessonkit.datasets', 'get', 'dogbreed'], capture_output=True, text=True,
                       env=env, cwd=ROOT, timeout=120)
    assert r.returncode == 0 and Path(r.stdout.strip()) == DATA/'dogbreeds'

def test_cli_errors_without_traceback(fresh, capsys):
    assert main(['get', 'mnist']) == 1
    assert 'no dataset called' in capsys.readouterr().err
    assert main(['get', 'dogscats', '--full', '--dest', str(fresh/'d')]) == 1
    err = capsys.readouterr().err
    assert err.startswith('lessonkit-data: error:') and 'chmod 600' in err
    assert main(['sample', 'rossmann', str(DATA/'rossmann')]) == 1  # refuses to write into a non-empty folder
    assert 'not empty' in capsys.readouterr().err
    with pytest.raises(SystemExit): main(['get'])  # argparse's usage error


# ---------------------------------------------------------------- the committed samples

@pytest.fixture(scope='module')
def redrawn(tmp_path_factory):
    from lessonkit.samples import make_sample
    root = tmp_path_factory.mktemp('samples')
    return {n: make_sample(n, root/n) for n in ('dogscats', 'dogbreeds', 'planet', 'rossmann')}

LESSON_CACHES = {'tmp', 'models', 'sub'}  # what lessons write next to the data (git-ignored)

def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob('*')
                  if p.is_file() and not LESSON_CACHES & set(p.relative_to(folder).parts[:1]) and not p.name.startswith('joined'))

@pytest.mark.parametrize('name', ['dogscats', 'dogbreeds', 'planet', 'rossmann'])
def test_sample_redraws_to_committed(redrawn, name):
    new, old = redrawn[name], DATA/name
    assert _files(new) == _files(old)
    for rel in _files(old):
        a, b = (old/rel).read_bytes(), (new/rel).read_bytes()
        if rel.endswith('.csv'): assert a == b, rel
        elif a != b:  # another libjpeg may encode differently; the pictures must still be the same
            x, y = (np.asarray(Image.open(io.BytesIO(v)).convert('RGB'), dtype=np.float32) for v in (a, b))
            assert x.shape == y.shape and np.abs(x - y).mean() < 1.0, rel

def test_samples_small_and_jpeg():
    shipped = [DATA/n/f for n in ('dogscats', 'dogbreeds', 'planet', 'rossmann') for f in _files(DATA/n)]
    assert sum(p.stat().st_size for p in shipped) < 20*2**20
    jpgs = [p for p in shipped if p.suffix == '.jpg']
    assert len(jpgs) > 900 and all(p.read_bytes()[:2] == b'\xff\xd8' for p in jpgs)

def test_dogscats_sample_layout():
    d = DATA/'dogscats'
    counts = {(s, c): len(list((d/s/c).glob('*.jpg'))) for s in ('train', 'valid') for c in ('cats', 'dogs')}
    assert counts == {('train', 'cats'): 150, ('train', 'dogs'): 150, ('valid', 'cats'): 50, ('valid', 'dogs'): 50}
    assert all(p.name.startswith('cat.') for p in (d/'train'/'cats').iterdir())
    assert len(list((d/'test').glob('*.jpg'))) == 40
    sizes = {Image.open(p).size for p in (d/'valid'/'dogs').iterdir()}
    assert len(sizes) > 10 and all(140 <= w <= 200 and 105 <= h <= 150 for w, h in sizes)  # rectangular, varying

def test_dogbreeds_sample_layout():
    d = DATA/'dogbreeds'
    labels = pd.read_csv(d/'labels.csv')
    assert list(labels.columns) == ['id', 'breed'] and labels.id.is_unique and labels.id.str.fullmatch('[0-9a-f]{32}').all()
    assert sorted(f'{i}.jpg' for i in labels.id) == sorted(p.name for p in (d/'train').iterdir())
    # eight breeds of the competition's 120, spelled as in its labels.csv
    real = {'afghan_hound', 'beagle', 'boxer', 'chihuahua', 'golden_retriever', 'pug', 'rottweiler', 'siberian_husky'}
    assert set(labels.breed) == real and labels.breed.value_counts().min() >= 25
    sub = pd.read_csv(d/'sample_submission.csv')
    assert list(sub.columns) == ['id'] + sorted(real)
    assert sorted(f'{i}.jpg' for i in sub.id) == sorted(p.name for p in (d/'test').iterdir())
    assert np.allclose(sub.drop(columns='id').sum(axis=1), 1)

def test_planet_sample_layout():
    d = DATA/'planet'
    tags17 = {'agriculture', 'artisinal_mine', 'bare_ground', 'blooming', 'blow_down', 'clear', 'cloudy', 'conventional_mine',
              'cultivation', 'habitation', 'haze', 'partly_cloudy', 'primary', 'road', 'selective_logging', 'slash_burn', 'water'}
    weather = {'clear', 'partly_cloudy', 'haze', 'cloudy'}
    df = pd.read_csv(d/'train_v2.csv')
    assert list(df.columns) == ['image_name', 'tags'] and len(df) == 300
    assert sorted(f'{n}.jpg' for n in df.image_name) == sorted(p.name for p in (d/'train-jpg').iterdir())
    tags = [t.split(' ') for t in df.tags]
    assert {t for ts in tags for t in ts} == tags17  # every real tag occurs
    assert all(len(set(ts) & weather) == 1 for ts in tags)
    assert all(ts == ['cloudy'] for ts in tags if 'cloudy' in ts)
    assert {Image.open(d/'train-jpg'/'train_0.jpg').size} == {(128, 128)}
    assert sorted(p.name for p in (d/'test-jpg').iterdir()) == sorted(f'test_{i}.jpg' for i in range(40))
    assert list(pd.read_csv(d/'sample_submission_v2.csv').columns) == ['image_name', 'tags']

ROSSMANN_COLUMNS = {
    'train': ['Store', 'DayOfWeek', 'Date', 'Sales', 'Customers', 'Open', 'Promo', 'StateHoliday', 'SchoolHoliday'],
    'test': ['Id', 'Store', 'DayOfWeek', 'Date', 'Open', 'Promo', 'StateHoliday', 'SchoolHoliday'],
    'store': ['Store', 'StoreType', 'Assortment', 'CompetitionDistance', 'CompetitionOpenSinceMonth', 'CompetitionOpenSinceYear',
              'Promo2', 'Promo2SinceWeek', 'Promo2SinceYear', 'PromoInterval'],
    'sample_submission': ['Id', 'Sales'],
    'store_states': ['Store', 'State'],
    'state_names': ['StateName', 'State'],
    'googletrend': ['file', 'week', 'trend'],
    'weather': ['file', 'Date', 'Max_TemperatureC', 'Mean_TemperatureC', 'Min_TemperatureC', 'Dew_PointC', 'MeanDew_PointC',
                'Min_DewpointC', 'Max_Humidity', 'Mean_Humidity', 'Min_Humidity', 'Max_Sea_Level_PressurehPa',
                'Mean_Sea_Level_PressurehPa', 'Min_Sea_Level_PressurehPa', 'Max_VisibilityKm', 'Mean_VisibilityKm',
                'Min_VisibilitykM', 'Max_Wind_SpeedKm_h', 'Mean_Wind_SpeedKm_h', 'Max_Gust_SpeedKm_h', 'Precipitationmm',
                'CloudCover', 'Events', 'WindDirDegrees'],
}

def test_rossmann_sample_like_the_real_tables():
    t = {n: pd.read_csv(DATA/'rossmann'/f'{n}.csv', low_memory=False) for n in ROSSMANN_COLUMNS}
    for n, cols in ROSSMANN_COLUMNS.items(): assert list(t[n].columns) == cols, n
    tr, te, st = t['train'], t['test'], t['store']
    assert (tr.Date.min(), tr.Date.max(), te.Date.min(), te.Date.max()) == ('2013-01-01', '2015-07-31', '2015-08-01', '2015-09-17')
    assert pd.to_datetime(tr.Date, format='%Y-%m-%d').notna().all()
    assert tr.Store.nunique() >= 15 and len(tr) > 15000
    for df in (tr, te):  # a string column in both files, as the lesson's `StateHoliday != '0'` needs
        assert not pd.api.types.is_numeric_dtype(df.StateHoliday) and set(df.StateHoliday) <= {'0', 'a', 'b', 'c'}
    assert set(tr.StateHoliday) == {'0', 'a', 'b', 'c'}
    assert tr.Date.iloc[0] == '2015-07-31' and (tr.Date.values[:-1] >= tr.Date.values[1:]).all()  # newest first
    assert ((tr.Open == 0) <= (tr.Sales == 0)).all() and (tr[tr.DayOfWeek == 7].Open == 0).mean() > 0.8
    assert te.Open.isna().sum() > 0 and te.Open.dtype == float
    assert (t['sample_submission'].Id.values == te.Id.values).all() and te.Id.tolist() == list(range(1, len(te) + 1))
    for col in ('CompetitionDistance', 'CompetitionOpenSinceYear', 'Promo2SinceWeek', 'PromoInterval'): assert st[col].isna().any(), col
    assert set(t['store_states'].State) <= set(t['state_names'].State) and 'HB,NI' in set(t['state_names'].State)
    assert set(t['weather'].file) == set(t['state_names'].StateName)
    w = t['weather']
    assert w.Max_Gust_SpeedKm_h.isna().any() and w.Events.isna().any() and w.CloudCover.isna().any()
    assert t['googletrend'].week.str.fullmatch(r'\d{4}-\d\d-\d\d - \d{4}-\d\d-\d\d').all() and 'Rossmann_DE' in set(t['googletrend'].file)
    # a learnable signal: promotions and weekdays move sales, as in the real data
    open_ = tr[(tr.Open == 1) & (tr.Sales > 0)]
    assert open_[open_.Promo == 1].Sales.mean() > 1.15*open_[open_.Promo == 0].Sales.mean()
    by_dow = open_[open_.Promo == 0].groupby('DayOfWeek').Sales.mean()
    assert by_dow[1] > by_dow[6]
