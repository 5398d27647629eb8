"""The calls the course's 2018 notebooks (lesson 1, dog breeds, Planet, Rossmann) make on lessonkit's objects, made the
same way: positional arguments where the course passes them positionally, PATH a string ending in '/', file names
glued to it with +. The data is tiny and made here (or read from the shipped Rossmann sample); the ImageNet weights
are a stand-in (random weights of the same shape), since the tests run without internet."""
import math, warnings
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
import torchvision.models._api as tv_api
from PIL import Image
from torch.utils.data import DataLoader
from sklearn import metrics
from sklearn.metrics import confusion_matrix
from lessonkit.core import set_seed
from lessonkit.conv_learner import (ConvLearner, ImageClassifierData, tfms_from_model, transforms_side_on, transforms_top_down,
                                    resnet18, resnet34, get_cv_idxs, accuracy, accuracy_np, f2, to_np, open_image,
                                    plot_confusion_matrix, plots_from_files, FilesIndexArrayDataset)
from lessonkit.structured import add_datepart, join_df, apply_cats, proc_df
from lessonkit.column_data import ColumnarModelData, split_by_idx

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def stand_in_weights(monkeypatch):
    "ConvLearner.pretrained(arch, data) as the course calls it (ImageNet weights): random weights of that architecture."
    import torchvision
    def fake(url, *a, **k):
        name = Path(url).name.rsplit('-', 1)[0]
        torch.manual_seed(0)
        return torchvision.models.get_model(name, weights=None).state_dict()
    monkeypatch.setattr(tv_api, 'load_state_dict_from_url', fake)
    torch.set_num_threads(1)
    set_seed(0)


def photo(fn, colour, i, size=(40, 34)):
    rng = np.random.default_rng(i)
    a = np.clip(np.array(colour) + rng.normal(0, 30, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    Path(fn).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(fn, quality=90)

COLOURS = [(200, 80, 60), (60, 90, 200), (80, 200, 80)]


def test_lesson1_folders(tmp_path):
    "Dogs vs cats: folders, precompute, lr_find, augmentation, SGDR, save/load, unfreeze, TTA, confusion matrix."
    for s, (split, n) in enumerate([('train', 10), ('valid', 4)]):
        for c, cls in enumerate(['cats', 'dogs']):
            for i in range(n): photo(tmp_path/split/cls/f'{cls[:-1]}.{i}.jpg', COLOURS[c], 100 * s + 10 * c + i)
    PATH = f'{tmp_path}/'
    arch, sz = resnet34, 32
    data = ImageClassifierData.from_paths(PATH, tfms=tfms_from_model(arch, sz))
    learn = ConvLearner.pretrained(arch, data, precompute=True)
    assert (tmp_path/'tmp').is_dir() and (tmp_path/'models').is_dir()     # where the course's code writes
    learn.fit(0.01, 3)
    assert data.classes == ['cats', 'dogs'] and data.val_y.tolist() == [0] * 4 + [1] * 4
    log_preds = learn.predict()
    assert log_preds.shape == (8, 2) and np.allclose(np.exp(log_preds).sum(1), 1, atol=1e-5)
    preds = np.argmax(log_preds, axis=1); probs = np.exp(log_preds[:, 1])
    imgs = np.stack([data.val_ds[x][0] for x in [0, 5]])
    assert data.val_ds.denorm(imgs).shape == (2, sz, sz, 3)
    assert np.array(Image.open(PATH + data.val_ds.fnames[5])).shape == (34, 40, 3)
    learn = ConvLearner.pretrained(arch, data, precompute=True)
    lrf = learn.lr_find()
    assert 1 < len(learn.sched.lrs) <= 100
    learn.sched.plot_lr()
    with warnings.catch_warnings(): warnings.simplefilter('ignore'); learn.sched.plot()
    plt.close('all')
    tfms = tfms_from_model(resnet34, sz, aug_tfms=transforms_side_on, max_zoom=1.1)
    x, _ = next(iter(ImageClassifierData.from_paths(PATH, bs=2, tfms=tfms, num_workers=1).aug_dl))
    assert data.trn_ds.denorm(x)[1].shape == (sz, sz, 3)
    data = ImageClassifierData.from_paths(PATH, tfms=tfms)
    learn = ConvLearner.pretrained(arch, data, precompute=True)
    learn.fit(1e-2, 1)
    learn.precompute = False
    learn.fit(1e-2, 1, cycle_len=1)
    learn.sched.plot_lr(); plt.close('all')
    learn.save('224_lastlayer')
    assert (tmp_path/'models'/'224_lastlayer.pth').is_file()
    learn.load('224_lastlayer')
    learn.unfreeze()
    lr = np.array([1e-4, 1e-3, 1e-2])
    learn.fit(lr, 2, cycle_len=1, cycle_mult=2)
    assert np.allclose(learn.sched.group_lrs[len(learn.sched.lrs) // 3], lr)   # the top of the second cycle
    log_preds, y = learn.TTA()
    probs = np.mean(np.exp(log_preds), 0)
    assert log_preds.shape[1:] == (8, 2) and y.tolist() == data.val_y.tolist()
    assert accuracy(probs, y) == pytest.approx((probs.argmax(1) == y).mean())
    preds = np.argmax(probs, axis=1)
    cm = confusion_matrix(y, preds)
    fig = plot_confusion_matrix(cm, data.classes)
    assert fig is not None and cm.sum() == 8
    plt.close('all')


def test_dogbreeds_csv_and_one_image(tmp_path):
    "Dog breeds: labels from a CSV, resize to a cache, set_data, TTA on the test set, a submission frame, one image two ways."
    breeds = ['beagle', 'boxer', 'pug']
    ids = [f'{i:03x}ab' for i in range(18)]
    for i, id_ in enumerate(ids): photo(tmp_path/'train'/f'{id_}.jpg', COLOURS[i % 3], i)
    for i in range(4): photo(tmp_path/'test'/f't{i}.jpg', COLOURS[i % 3], 50 + i)
    pd.DataFrame({'id': ids, 'breed': [breeds[i % 3] for i in range(18)]}).to_csv(tmp_path/'labels.csv', index=False)
    PATH, sz, bs, arch = f'{tmp_path}/', 32, 8, resnet18
    label_csv = f'{PATH}labels.csv'
    n = len(list(open(label_csv))) - 1
    val_idxs = get_cv_idxs(n)
    assert n == 18 and len(val_idxs) == 3
    def get_data(sz, bs):
        tfms = tfms_from_model(arch, sz, aug_tfms=transforms_side_on, max_zoom=1.1)
        data = ImageClassifierData.from_csv(PATH, 'train', f'{PATH}labels.csv', test_name='test',
                                            val_idxs=val_idxs, suffix='.jpg', tfms=tfms, bs=bs)
        return data if sz > 300 else data.resize(40, 'tmp')
    data = get_data(sz, bs)
    assert any((tmp_path/'tmp'/'40').rglob('*.jpg'))
    fn = PATH + data.trn_ds.fnames[0]
    assert Image.open(fn).size == (40, 34)
    size_d = {k: Image.open(PATH + k).size for k in data.trn_ds.fnames}
    assert len(size_d) == 15
    assert (len(data.trn_ds), len(data.test_ds)) == (15, 4) and (len(data.classes), data.classes[:5]) == (3, breeds)
    learn = ConvLearner.pretrained(arch, data, precompute=True, ps=0.5)
    learn.fit(1e-2, 2)
    learn.precompute = False
    learn.fit(1e-2, 1, cycle_len=1)
    learn.save('224_pre'); learn.load('224_pre')
    learn.set_data(get_data(40, bs))
    learn.freeze()
    assert len(learn.summary()) > 0
    learn.fit(1e-2, 1, cycle_len=1, cycle_mult=2)
    log_preds, y = learn.TTA()
    probs = np.mean(np.exp(log_preds), 0)
    assert sorted(set(y.tolist())) == [0, 1, 2]            # every breed in the validation set, so log_loss can score it
    assert accuracy_np(probs, y) == pytest.approx((probs.argmax(1) == y).mean())
    assert metrics.log_loss(y, probs) > 0
    assert len(data.val_ds.y) == 3
    log_preds, y = learn.TTA(is_test=True)
    probs = np.mean(np.exp(log_preds), 0)
    assert probs.shape == (4, 3)
    df = pd.DataFrame(probs); df.columns = data.classes
    df.insert(0, 'id', [o[5:-4] for o in data.test_ds.fnames])
    assert sorted(df.id) == ['t0', 't1', 't2', 't3'] and list(df.columns) == ['id'] + breeds
    fn = data.val_ds.fnames[0]
    trn_tfms, val_tfms = tfms_from_model(arch, 40)
    ds = FilesIndexArrayDataset([fn], np.array([0]), val_tfms, PATH)
    dl = DataLoader(ds)
    preds = learn.predict_dl(dl)
    assert preds.shape == (1, 3) and learn.data.classes[np.argmax(preds)] in breeds
    im = val_tfms(open_image(PATH + fn))
    # uint8 vs float resize: rounding only, which bfloat16's 8-bit mantissa amplifies on that path (the default on CPUs with it)
    np.testing.assert_allclose(learn.predict_array(im[None]), preds, atol=5e-3 if learn.autocast_dtype is None else 3e-2)


def test_planet_multilabel(tmp_path):
    "Planet: tags from a CSV, plots_from_files, f2 as the metric, progressive resizing, f2 on TTA output."
    tags = ['agriculture clear primary', 'haze primary', 'clear primary water']
    for i in range(12): photo(tmp_path/'train-jpg'/f'train_{i}.jpg', COLOURS[i % 3], i)
    for i in range(3): photo(tmp_path/'test-jpg'/f'test_{i}.jpg', COLOURS[i % 3], 40 + i)
    pd.DataFrame({'image_name': [f'train_{i}' for i in range(12)], 'tags': [tags[i % 3] for i in range(12)]}).to_csv(
        tmp_path/'train_v2.csv', index=False)
    PATH = f'{tmp_path}/'
    list_paths = [f"{PATH}train-jpg/train_0.jpg", f"{PATH}train-jpg/train_1.jpg"]
    fig = plots_from_files(list_paths, titles=tags[:2], maintitle="Multi-label classification")
    assert [a.get_title() for a in fig.axes] == tags[:2]
    metrics_ = [f2]; f_model = resnet18
    label_csv = f'{PATH}train_v2.csv'
    n = len(list(open(label_csv))) - 1
    val_idxs = get_cv_idxs(n)
    def get_data(sz):
        tfms = tfms_from_model(f_model, sz, aug_tfms=transforms_top_down, max_zoom=1.05)
        return ImageClassifierData.from_csv(PATH, 'train-jpg', label_csv, tfms=tfms, suffix='.jpg', val_idxs=val_idxs,
                                            test_name='test-jpg')
    data = get_data(32)
    x, y = next(iter(data.val_dl))
    assert data.classes == ['agriculture', 'clear', 'haze', 'primary', 'water'] and y.shape == (2, 5)
    assert len(list(zip(data.classes, y[0]))) == 5
    assert (data.val_ds.denorm(to_np(x))[0] * 1.4).shape == (32, 32, 3)
    sz = 24
    data = get_data(sz).resize(int(sz * 1.3), 'tmp')
    learn = ConvLearner.pretrained(f_model, data, metrics=metrics_)
    lrf = learn.lr_find()
    with warnings.catch_warnings(): warnings.simplefilter('ignore'); learn.sched.plot()
    lr = 0.2
    learn.fit(lr, 1, cycle_len=1, cycle_mult=2)
    lrs = np.array([lr / 9, lr / 3, lr])
    learn.unfreeze()
    learn.fit(lrs, 1, cycle_len=1, cycle_mult=2)
    learn.save(f'{sz}')
    assert (tmp_path/'models'/'24.pth').is_file()
    learn.sched.plot_loss(); plt.close('all')
    sz = 32
    learn.set_data(get_data(sz)); learn.freeze()
    learn.fit(lr, 1, cycle_len=1, cycle_mult=2)
    log_preds, y = learn.TTA()
    preds = np.mean(log_preds, 0)      # a multi-label model ends in a sigmoid: probabilities, not logs (see lesson2-planet)
    assert preds.shape == (2, 5) and ((preds >= 0) & (preds <= 1)).all()
    assert 0 <= f2(preds, y) <= 1


def test_rossmann_sequence(tmp_path, capsys):
    "Rossmann: the course's joins in its order, date parts, apply_cats, proc_df, the embedding network, a submission file."
    table_names = ['train', 'store', 'store_states', 'state_names', 'googletrend', 'weather', 'test']
    tables = [pd.read_csv(REPO/'data'/'rossmann'/f'{fname}.csv', low_memory=False) for fname in table_names]
    train, store, store_states, state_names, googletrend, weather, test = tables
    keep = sorted(train.Store.unique())[:6]                  # six of the sample's 20 stores: quicker, same columns
    train = train[train.Store.isin(keep)].reset_index(drop=True); test = test[test.Store.isin(keep)].reset_index(drop=True)
    assert len(test) > 0
    train.StateHoliday = train.StateHoliday != '0'
    test.StateHoliday = test.StateHoliday != '0'
    weather = join_df(weather, state_names, "file", "StateName")
    googletrend['Date'] = googletrend.week.str.split(' - ', expand=True)[0]
    googletrend['State'] = googletrend.file.str.split('_', expand=True)[2]
    googletrend.loc[googletrend.State == 'NI', "State"] = 'HB,NI'
    for t in (weather, googletrend, train, test): add_datepart(t, "Date", drop=False)
    trend_de = googletrend[googletrend.file == 'Rossmann_DE']
    store = join_df(store, store_states, "Store")
    joined = join_df(train, store, "Store"); joined_test = join_df(test, store, "Store")
    joined = join_df(joined, googletrend, ["State", "Year", "Week"])
    joined_test = join_df(joined_test, googletrend, ["State", "Year", "Week"])
    joined = joined.merge(trend_de, 'left', ["Year", "Week"], suffixes=('', '_DE'))
    joined_test = joined_test.merge(trend_de, 'left', ["Year", "Week"], suffixes=('', '_DE'))
    capsys.readouterr()
    joined = join_df(joined, weather, ["State", "Date"])
    joined_test = join_df(joined_test, weather, ["State", "Date"])
    out = capsys.readouterr().out
    assert "already has 'Month_y'" in out and "'Month_y_y'" in out       # it says what happened to the clashing columns
    assert len(joined) == len(train) and joined.Mean_TemperatureC.notna().all()
    for df in (joined, joined_test):
        for c in df.columns:
            if c.endswith('_y'):
                if c in df.columns: df.drop(c, inplace=True, axis=1)
    assert not [c for c in joined.columns if c.endswith('_y')] and 'Month' in joined and 'trend_DE' in joined
    joined = joined[joined.Sales != 0].reset_index(drop=True)
    cat_vars = ['Store', 'DayOfWeek', 'Year', 'Month', 'Day', 'StateHoliday', 'StoreType', 'Assortment', 'State', 'Week']
    contin_vars = ['CompetitionDistance', 'Max_TemperatureC', 'Mean_TemperatureC', 'trend', 'trend_DE', 'Promo']
    n = len(joined)
    dep = 'Sales'
    joined = joined[cat_vars + contin_vars + [dep, 'Date']].copy()
    joined_test[dep] = 0
    joined_test = joined_test[cat_vars + contin_vars + [dep, 'Date', 'Id']].copy()
    for v in cat_vars: joined[v] = joined[v].astype('category').cat.as_ordered()
    apply_cats(joined_test, joined)
    assert joined_test.Store.cat.categories.equals(joined.Store.cat.categories)
    for v in contin_vars:
        joined[v] = joined[v].astype('float32'); joined_test[v] = joined_test[v].astype('float32')
    idxs = get_cv_idxs(n, val_pct=1500 / n)
    joined_samp = joined.iloc[idxs].set_index("Date")
    samp_size = len(joined_samp)
    assert samp_size == int(1500 / n * n)
    df, y, nas, mapper = proc_df(joined_samp, 'Sales', do_scale=True)
    yl = np.log(y)
    joined_test = joined_test.set_index("Date")
    df_test, _, nas, mapper = proc_df(joined_test, 'Sales', do_scale=True, skip_flds=['Id'], mapper=mapper, na_dict=nas)
    assert list(df_test.columns) == list(df.columns)
    val_idx = np.flatnonzero((df.index <= pd.Timestamp(2014, 9, 17)) & (df.index >= pd.Timestamp(2014, 8, 1)))
    assert 0 < len(val_idx) < len(df)
    def inv_y(a): return np.exp(a)
    def exp_rmspe(y_pred, targ):
        targ = inv_y(targ); pct_var = (targ - inv_y(y_pred)) / targ
        return math.sqrt((pct_var**2).mean())
    max_log_y = np.max(yl); y_range = (0, max_log_y * 1.2)
    PATH = f'{tmp_path}/'
    md = ColumnarModelData.from_data_frame(PATH, val_idx, df, yl.astype(np.float32), cat_flds=cat_vars, bs=128, test_df=df_test)
    cat_sz = [(c, len(joined_samp[c].cat.categories) + 1) for c in cat_vars]
    emb_szs = [(c, min(50, (c + 1) // 2)) for _, c in cat_sz]
    m = md.get_learner(emb_szs, len(df.columns) - len(cat_vars), 0.04, 1, [1000, 500], [0.001, 0.01], y_range=y_range)
    lr = 1e-3
    m.lr_find()
    assert 1 < len(m.sched.lrs) <= 100
    with pytest.warns(UserWarning, match='all of them are drawn'): m.sched.plot(100)
    plt.close('all')
    m.fit(lr, 1, metrics=[exp_rmspe])
    m.fit(lr, 1, metrics=[exp_rmspe], cycle_len=1)
    m.save('val0'); m.load('val0')
    x, y = m.predict_with_targs()
    assert x.shape == y.shape == (len(val_idx), 1) and exp_rmspe(x, y) > 0
    pred_test = np.exp(m.predict(True))
    joined_test['Sales'] = pred_test
    csv_fn = f'{PATH}tmp/sub.csv'
    joined_test[['Id', 'Sales']].to_csv(csv_fn, index=False)
    assert len(pd.read_csv(csv_fn)) == len(joined_test)
    ((val, trn), (y_val, y_trn)) = split_by_idx(val_idx, df.values, yl)
    assert len(val) == len(val_idx) and len(trn) + len(val) == len(df) and np.array_equal(y_val, yl[val_idx])
