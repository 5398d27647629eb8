"""What Kaggle serves for the course's four competitions, in miniature: the same file names, archive formats and
nesting as the real downloads, with contents made from the synthetic samples in data/ (so they are stand-ins: nothing
here is real competition data).

Where each name and layout comes from (checked against the sources named; UNCONFIRMED marks what could not be checked):
- dogs-vs-cats: the competition's data page and the course (lesson 1 arranges `train/{cats,dogs}` itself): `train.zip`
  holding a top folder `train/` of flat `cat.N.jpg` / `dog.N.jpg`, `test1.zip` holding `test1/N.jpg` numbered from 1,
  and `sampleSubmission.csv` with columns `id,label`. Download-all gives `dogs-vs-cats.zip` holding those three: the
  kaggle client names it `<competition>.<ext of the served URL>` (kaggle 2.2.4, KaggleApi.competition_download_files).
- dog-breed-identification: `labels.csv` is `id,breed`; `sample_submission.csv` is `id` then the 120 breed columns in
  alphabetical order (the header as reproduced in public solutions, e.g. the list in BREEDS_120); images are `<id>.jpg`
  in `train/` and `test/`. The 2018 listing had `train.zip`, `test.zip`, `labels.csv.zip`, `sample_submission.csv.zip`
  (layout 'archives', the default here); today's download-all zip holds `train/`, `test/` and the two CSVs unzipped
  (layout 'folders'). UNCONFIRMED: which of the two a student gets today; both are served.
- planet-understanding-the-amazon-from-space: `train-jpg.tar.7z`, `test-jpg.tar.7z`, `test-jpg-additional.tar.7z`
  (7-Zip archives each holding one tar whose top folder is `train-jpg/`, `test-jpg/`, `test-jpg-additional/`), images
  `train_N.jpg`, `test_N.jpg`, `file_N.jpg`, 256 x 256 JPEG chips; `train_v2.csv` is `image_name,tags` and
  `sample_submission_v2.csv` lists the `test_N` rows then the `file_N` rows. UNCONFIRMED: that Kaggle serves the two CSVs
  only zipped (`train_v2.csv.zip`), so that asking for `train_v2.csv` gives 404; lessonkit asks for both spellings.
- rossmann-store-sales: `train.csv`, `store.csv`, `test.csv`, `sample_submission.csv` (columns as in the course notebook
  and the samples). Download-all gives `rossmann-store-sales.zip` holding them flat. UNCONFIRMED: whether each CSV is
  zipped again inside it (lessonkit unpacks nested zips either way).
- rossmann.tgz (https://files.fast.ai/part2/lesson14/rossmann.tgz, named in the course notebook): the extra tables
  `store_states.csv`, `state_names.csv`, `googletrend.csv`, `weather.csv`. UNCONFIRMED: that they sit flat at the top of
  the archive and that it holds nothing else.
Image sizes are made like the real ones (dogs and cats about 500 x 375, planet 256 x 256), by enlarging the samples'.
"""
from __future__ import annotations
import io, tarfile, zipfile, shutil
from pathlib import Path
import numpy as np
import pandas as pd
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT/'data'

BREEDS_120 = ('affenpinscher afghan_hound african_hunting_dog airedale american_staffordshire_terrier appenzeller '
    'australian_terrier basenji basset beagle bedlington_terrier bernese_mountain_dog black-and-tan_coonhound '
    'blenheim_spaniel bloodhound bluetick border_collie border_terrier borzoi boston_bull bouvier_des_flandres boxer '
    'brabancon_griffon briard brittany_spaniel bull_mastiff cairn cardigan chesapeake_bay_retriever chihuahua chow '
    'clumber cocker_spaniel collie curly-coated_retriever dandie_dinmont dhole dingo doberman english_foxhound '
    'english_setter english_springer entlebucher eskimo_dog flat-coated_retriever french_bulldog german_shepherd '
    'german_short-haired_pointer giant_schnauzer golden_retriever gordon_setter great_dane great_pyrenees '
    'greater_swiss_mountain_dog groenendael ibizan_hound irish_setter irish_terrier irish_water_spaniel irish_wolfhound '
    'italian_greyhound japanese_spaniel keeshond kelpie kerry_blue_terrier komondor kuvasz labrador_retriever '
    'lakeland_terrier leonberg lhasa malamute malinois maltese_dog mexican_hairless miniature_pinscher miniature_poodle '
    'miniature_schnauzer newfoundland norfolk_terrier norwegian_elkhound norwich_terrier old_english_sheepdog otterhound '
    'papillon pekinese pembroke pomeranian pug redbone rhodesian_ridgeback rottweiler saint_bernard saluki samoyed '
    'schipperke scotch_terrier scottish_deerhound sealyham_terrier shetland_sheepdog shih-tzu siberian_husky '
    'silky_terrier soft-coated_wheaten_terrier staffordshire_bullterrier standard_poodle standard_schnauzer '
    'sussex_spaniel tibetan_mastiff tibetan_terrier toy_poodle toy_terrier vizsla walker_hound weimaraner '
    'welsh_springer_spaniel west_highland_white_terrier whippet wire-haired_fox_terrier yorkshire_terrier').split()
assert len(BREEDS_120) == 120 and BREEDS_120 == sorted(BREEDS_120)

COMPETITIONS = ('dogs-vs-cats', 'dog-breed-identification', 'planet-understanding-the-amazon-from-space', 'rossmann-store-sales')

def _jpeg(src: Path, size: tuple[int, int] | None) -> bytes:
    "The sample image `src`, enlarged to `size` (w, h), as JPEG bytes."
    im = Image.open(src).convert('RGB')
    if size is not None: im = im.resize(size, Image.BILINEAR)
    buf = io.BytesIO(); im.save(buf, 'JPEG', quality=85); return buf.getvalue()

def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w', zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items(): zf.writestr(name, data)
    return buf.getvalue()

def _tar(members: dict[str, bytes], mode: str = 'w') -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        folders = sorted({n.split('/')[0] for n in members if '/' in n})
        for d in folders:
            ti = tarfile.TarInfo(d); ti.type = tarfile.DIRTYPE; ti.mode = 0o755; tf.addfile(ti)
        for name, data in members.items():
            ti = tarfile.TarInfo(name); ti.size = len(data); ti.mode = 0o644; tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()

def _tar_7z(members: dict[str, bytes], tar_name: str, tmp: Path) -> bytes:
    "A .tar.7z: a 7-Zip archive holding one tar, as Planet's image archives are."
    import py7zr
    tmp.mkdir(parents=True, exist_ok=True)
    t = tmp/tar_name; t.write_bytes(_tar(members))
    out = tmp/f'{tar_name}.7z'
    with py7zr.SevenZipFile(out, 'w') as z: z.write(t, tar_name)
    data = out.read_bytes(); t.unlink(); out.unlink()
    return data

def _csv(df: pd.DataFrame) -> bytes: return df.to_csv(index=False).encode()

def dogs_vs_cats(n_per_class: int = 60, n_test: int = 10) -> dict[str, bytes]:
    "train.zip (flat cat.N.jpg / dog.N.jpg under train/), test1.zip (test1/N.jpg), sampleSubmission.csv."
    s = DATA/'dogscats'; rng = np.random.default_rng(0); train = {}
    for cls in ('cat', 'dog'):
        srcs = sorted((s/'train'/f'{cls}s').glob('*.jpg')) + sorted((s/'valid'/f'{cls}s').glob('*.jpg'))
        for i, f in enumerate(srcs[:n_per_class]):
            train[f'train/{cls}.{i}.jpg'] = _jpeg(f, (int(rng.integers(400, 501)), int(rng.integers(300, 376))))
    tests = sorted((s/'test').glob('*.jpg'))[:n_test]
    test = {f'test1/{i}.jpg': _jpeg(f, (500, 375)) for i, f in enumerate(tests, 1)}
    sub = pd.DataFrame({'id': range(1, len(test) + 1), 'label': 0})
    return {'train.zip': _zip(train), 'test1.zip': _zip(test), 'sampleSubmission.csv': _csv(sub)}

def dog_breed_identification(n_train: int = 120, n_test: int = 8, layout: str = 'archives') -> dict[str, bytes]:
    "labels.csv (id,breed) over all 120 breeds, sample_submission.csv with the 120 columns, train/ and test/ <id>.jpg."
    s = DATA/'dogbreeds'; rng = np.random.default_rng(0)
    lab = pd.read_csv(s/'labels.csv').head(n_train).copy()
    # every breed at least once, as in the real labels (so the model has the 120 outputs the submission needs)
    lab['breed'] = [BREEDS_120[i % 120] for i in rng.permutation(len(lab))]
    train = {f'train/{i}.jpg': _jpeg(s/'train'/f'{i}.jpg', (500, 375)) for i in lab['id']}
    test_files = sorted((s/'test').glob('*.jpg'))[:n_test]
    test = {f'test/{f.stem}.jpg': _jpeg(f, (500, 375)) for f in test_files}
    sub = pd.DataFrame(1/120, index=range(len(test_files)), columns=BREEDS_120); sub.insert(0, 'id', [f.stem for f in test_files])
    labels, sample = _csv(lab), _csv(sub)
    if layout == 'folders':
        return {'dog-breed-identification.zip': _zip({**train, **test, 'labels.csv': labels, 'sample_submission.csv': sample})}
    files = {'train.zip': _zip(train), 'test.zip': _zip(test), 'labels.csv.zip': _zip({'labels.csv': labels}),
             'sample_submission.csv.zip': _zip({'sample_submission.csv': sample})}
    return {'dog-breed-identification.zip': _zip(files), **files}

def planet(tmp: Path, n_train: int = 128, n_test: int = 8, n_additional: int = 4) -> dict[str, bytes]:
    "The three .tar.7z image archives and the two CSVs (served zipped)."
    s = DATA/'planet'
    lab = pd.read_csv(s/'train_v2.csv').head(n_train)
    train = {f'train-jpg/{n}.jpg': _jpeg(s/'train-jpg'/f'{n}.jpg', (256, 256)) for n in lab['image_name']}
    tests = sorted((s/'test-jpg').glob('*.jpg'), key=lambda p: int(p.stem.split('_')[1]))
    test = {f'test-jpg/test_{i}.jpg': _jpeg(f, (256, 256)) for i, f in enumerate(tests[:n_test])}
    add = {f'test-jpg-additional/file_{i}.jpg': _jpeg(f, (256, 256)) for i, f in enumerate(tests[n_test:n_test + n_additional])}
    names = [f'test_{i}' for i in range(len(test))] + [f'file_{i}' for i in range(len(add))]
    sub = pd.DataFrame({'image_name': names, 'tags': 'primary clear agriculture road water'})
    return {'train-jpg.tar.7z': _tar_7z(train, 'train-jpg.tar', tmp), 'test-jpg.tar.7z': _tar_7z(test, 'test-jpg.tar', tmp),
            'test-jpg-additional.tar.7z': _tar_7z(add, 'test-jpg-additional.tar', tmp),
            'train_v2.csv.zip': _zip({'train_v2.csv': _csv(lab)}),
            'sample_submission_v2.csv.zip': _zip({'sample_submission_v2.csv': _csv(sub)})}

ROSSMANN_KAGGLE = ('train.csv', 'store.csv', 'test.csv', 'sample_submission.csv')
ROSSMANN_EXTRA = ('store_states.csv', 'state_names.csv', 'googletrend.csv', 'weather.csv')

def rossmann_store_sales() -> dict[str, bytes]:
    "The four Kaggle tables (the sample's rows), each on its own and all in the download-all zip."
    files = {f: (DATA/'rossmann'/f).read_bytes() for f in ROSSMANN_KAGGLE}
    return {'rossmann-store-sales.zip': _zip(files), **files}

def rossmann_tgz() -> bytes:
    "The course's rossmann.tgz: the four extra tables."
    return _tar({f: (DATA/'rossmann'/f).read_bytes() for f in ROSSMANN_EXTRA}, 'w:gz')

def build(competition: str, folder: Path, **kw) -> Path:
    "Write what Kaggle serves for `competition` into `folder` (once; a second call reuses it); returns the folder."
    folder = Path(folder)
    if (folder/'.built').is_file(): return folder
    if folder.exists(): shutil.rmtree(folder)
    folder.mkdir(parents=True)
    if competition == 'dogs-vs-cats': files = dogs_vs_cats(**kw)
    elif competition == 'dog-breed-identification': files = dog_breed_identification(**kw)
    elif competition == 'planet-understanding-the-amazon-from-space': files = planet(folder/'.tmp', **kw)
    elif competition == 'rossmann-store-sales': files = rossmann_store_sales(**kw)
    else: raise KeyError(competition)
    if competition != 'dog-breed-identification' and f'{competition}.zip' not in files:
        files[f'{competition}.zip'] = _zip(files)
    for name, data in files.items(): (folder/name).write_bytes(data)
    shutil.rmtree(folder/'.tmp', ignore_errors=True)
    (folder/'.built').write_text('\n'.join(sorted(files)))
    return folder
