"""lessonkit.column_data: the tabular dataset and loaders, the embedding network, its learner, the baselines, and the
lesson's Rossmann pipeline end to end on the sample in data/rossmann."""
import math
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from lessonkit.core import set_seed
from lessonkit.column_data import (emb_sz_rule, get_emb_szs, ColumnarDataset, ColumnarModelData, MixedInputModel,
                                   StructuredLearner, split_by_idx, group_mean_baseline, rf_baseline)
from lessonkit.structured import train_cats, apply_cats, proc_df

REPO = Path(__file__).resolve().parents[1]


def exp_rmspe_ref(pred, targ):
    "The lesson's formula, written out here: RMSPE of exp(pred) against exp(targ)."
    pred, targ = np.asarray(pred, np.float64).reshape(-1), np.asarray(targ, np.float64).reshape(-1)
    return math.sqrt(np.mean(((np.exp(targ) - np.exp(pred)) / np.exp(targ)) ** 2))


def test_fresh_import():
    r = subprocess.run([sys.executable, '-c', 'import lessonkit.column_data as c; print(c.ColumnarModelData)'],
                       capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr


def toy(n=600, n_store=12, seed=0):
    "A processed frame: 2 categorical code columns, 2 continuous ones, log-sales targets with a store effect."
    rng = np.random.default_rng(seed)
    raw = pd.DataFrame({'Store': rng.integers(0, n_store, n).astype(str), 'Dow': rng.integers(1, 8, n),
                        'a': rng.normal(size=n), 'b': rng.normal(size=n)})
    eff = rng.normal(0, .4, n_store)
    yl = (8 + eff[raw.Store.astype(int)] + .2 * raw.a + rng.normal(0, .05, n)).astype(np.float32)
    raw['Dow'] = raw.Dow.astype('category')
    train_cats(raw)
    df, _, _, _ = proc_df(raw, do_scale=True)
    return raw, df, yl.to_numpy()


# ---------------------------------------------------------------- sizes and datasets

def test_emb_sizes():
    assert [emb_sz_rule(c) for c in [1, 2, 3, 99, 100, 1000]] == [1, 1, 2, 50, 50, 50]
    assert emb_sz_rule(30, max_sz=10) == 10
    raw, df, _ = toy()
    assert get_emb_szs(raw, ['Store', 'Dow']) == [(13, 7), (8, 4)]            # categories + 1 for unknown
    assert get_emb_szs(df, ['Store', 'Dow']) == [(13, 7), (8, 4)]             # from the largest code
    assert get_emb_szs(raw, ['Store'], sz_dict={'Store': 3}) == [(13, 3)]
    with pytest.raises(TypeError, match="astype\\('category'\\)"):
        get_emb_szs(raw, ['a'])


def test_dataset_checks():
    df = pd.DataFrame({'c': [0, 1, 2], 'x': [0., 1., 2.]})
    with pytest.raises(KeyError, match=r"\['d'\]"):
        ColumnarDataset.from_data_frame(df, ['d'])
    with pytest.raises(ValueError, match='negative codes'):
        ColumnarDataset.from_data_frame(df.assign(c=[0, -1, 2]), ['c'])
    with pytest.raises(ValueError, match=r"\['x'\] have missing values"):
        ColumnarDataset.from_data_frame(df.assign(x=[0., np.nan, 1.]), ['c'])
    with pytest.raises(TypeError, match='Run proc_df'):
        ColumnarDataset.from_data_frame(df.assign(when=pd.to_datetime(['2015-01-01'] * 3)), ['c'])
    with pytest.raises(TypeError, match='fractions'):
        ColumnarDataset.from_data_frame(df.assign(x=[0.5, 1., 2.]), ['x'])
    with pytest.raises(ValueError, match='3 rows but 2 targets'):
        ColumnarDataset.from_data_frame(df, ['c'], y=[1, 2])
    ds = ColumnarDataset.from_data_frame(df.assign(flag=[True, False, True]), ['c'])
    assert ds.conts[:, 1].tolist() == [1., 0., 1.] and ds.y.shape == (3, 1)


def test_split_by_idx():
    df = pd.DataFrame({'v': range(5)}, index=list('abcde')); y = np.arange(5) * 10
    ((vd, td), (vy, ty)) = split_by_idx([3, 0], df, y)
    assert list(vd.index) == ['a', 'd'] and list(td.index) == ['b', 'c', 'e'] and vy.tolist() == [0, 30]
    with pytest.raises(IndexError):
        split_by_idx([5], df)


def test_model_data_loaders_and_column_checks(tmp_path):
    raw, df, yl = toy(n=513)
    val_idx = np.arange(400, 513)
    tst = df.iloc[:7][['b', 'a', 'Dow', 'Store']]                   # columns in another order: reordered
    md = ColumnarModelData.from_data_frame(tmp_path, val_idx, df, yl, cat_flds=['Store', 'Dow'], bs=50, test_df=tst)
    assert md.path == tmp_path and md.is_reg and md.n_cont == 2 and md.cont_flds == ['a', 'b']
    assert len(md.trn_dl) == 8 and len(md.val_dl) == 2 and len(md.test_dl) == 1       # 400 = 8 x 50
    xc, xn, y = next(iter(md.trn_dl))
    assert xc.dtype == torch.int64 and xc.shape == (50, 2) and xn.dtype == torch.float32 and y.shape == (50, 1)
    np.testing.assert_array_equal(md.test_ds.conts.numpy(), df.iloc[:7][['a', 'b']].to_numpy(np.float32))
    seen = torch.cat([b[2] for b in md.val_dl]).reshape(-1).numpy()
    np.testing.assert_array_equal(seen, yl[val_idx])                    # validation in order
    with pytest.raises(ValueError, match=r"missing \['b'\], extra \['Id'\]"):
        ColumnarModelData.from_data_frame(tmp_path, val_idx, df, yl, ['Store', 'Dow'], test_df=tst.drop(columns='b').assign(Id=1))
    with pytest.raises(ValueError, match='513 rows but y has 3'):
        ColumnarModelData.from_data_frame(tmp_path, val_idx, df, yl[:3], ['Store', 'Dow'])


def test_last_batch_of_one_is_dropped(tmp_path):
    raw, df, yl = toy(n=101)
    md = ColumnarModelData.from_data_frame(tmp_path, [100], df, yl, ['Store', 'Dow'], bs=33)    # 100 = 3 x 33 + 1
    assert [len(b[0]) for b in md.trn_dl] == [33, 33, 33]
    md = ColumnarModelData.from_data_frame(tmp_path, [99, 100], df, yl, ['Store', 'Dow'], bs=33)  # 99: nothing dropped
    assert sum(len(b[0]) for b in md.trn_dl) == 99


# ---------------------------------------------------------------- the model

def test_model_structure_and_y_range():
    set_seed(0)
    m = MixedInputModel([(13, 7), (8, 4)], 2, 0.5, 1, [20, 10], [0.1, 0.2], y_range=(1., 3.), use_bn=True)
    assert [e.embedding_dim for e in m.embs] == [7, 4] and m.lins[0].in_features == 13
    assert [l.out_features for l in m.lins] == [20, 10] and m.bn.num_features == 2
    assert [d.p for d in m.drops] == [0.1, 0.2] and m.emb_drop.p == 0.5
    for e, (c, s) in zip(m.embs, [(13, 7), (8, 4)]): assert e.weight.abs().max() <= 2 / (s + 1)
    x_cat, x_cont = torch.randint(0, 8, (64, 2)), torch.randn(64, 2)
    m.eval()
    out = m(x_cat, x_cont)
    assert out.shape == (64, 1) and (out >= 1).all() and (out <= 3).all() and out.std() > 0
    assert ((m(x_cat, x_cont * 1e4) - 2).abs() <= 1).all()           # saturates inside the range, never beyond
    with torch.no_grad():                                                 # the scaled sigmoid, by hand
        x = torch.cat([m.embs[0](x_cat[:, 0]), m.embs[1](x_cat[:, 1]), m.bn(x_cont)], 1)
        for l, b in zip(m.lins, m.bns): x = b(F.relu(l(x)))
        torch.testing.assert_close(out, torch.sigmoid(m.outp(x)) * 2 + 1)


def test_model_without_categories_or_continuous():
    m = MixedInputModel([], 3, 0., 1, [8], [0.])
    assert m(torch.zeros(4, 0, dtype=torch.long), torch.randn(4, 3)).shape == (4, 1)
    m = MixedInputModel([(5, 3)], 0, 0., 2, [8], [0.], is_reg=False)
    out = m(torch.randint(0, 5, (4, 1)), torch.zeros(4, 0))
    torch.testing.assert_close(out.exp().sum(1), torch.ones(4))          # log-probabilities


# ---------------------------------------------------------------- the learner

def test_get_learner_checks(tmp_path):
    raw, df, yl = toy()
    md = ColumnarModelData.from_data_frame(tmp_path, np.arange(500, 600), df, yl, ['Store', 'Dow'], bs=64)
    with pytest.raises(ValueError, match="column 'Store' has codes up to 12 but its embedding has only 5 rows"):
        md.get_learner([(5, 3), (8, 4)], 2, 0.04, 1, [10], [0.1])
    with pytest.raises(ValueError, match='n_cont=3, but the data has 2 continuous columns'):
        md.get_learner(get_emb_szs(raw, ['Store', 'Dow']), 3, 0.04, 1, [10], [0.1])
    with pytest.raises(ValueError, match='1 embedding sizes for 2 categorical columns'):
        md.get_learner([(13, 7)], 2, 0.04, 1, [10], [0.1])
    learn = md.get_learner(None, None, 0.04, 1, [10], [0.1])
    assert isinstance(learn, StructuredLearner) and [e.num_embeddings for e in learn.model.embs] == [13, 8]
    assert learn.crit is F.mse_loss


def test_fit_sgdr_metric_and_predict_in_order(tmp_path):
    from lessonkit.metrics import exp_rmspe
    raw, df, yl = toy(n=800)
    val_idx = np.arange(600, 800)
    set_seed(0)
    md = ColumnarModelData.from_data_frame(tmp_path, val_idx, df, yl, ['Store', 'Dow'], bs=32, test_df=df.iloc[::-1])
    learn = md.get_learner(get_emb_szs(raw, ['Store', 'Dow']), 2, 0.04, 1, [50, 20], [0.001, 0.01],
                           y_range=(0, float(yl.max()) * 1.2))
    vals = learn.fit(1e-2, 2, cycle_len=1, metrics=[exp_rmspe], quiet=True)
    rows = learn.sched.rows
    assert len(rows) == 2 and isinstance(learn.opt, torch.optim.Adam)
    assert vals == pytest.approx(rows[-1][2:])       # fit returns the last epoch's [val_loss, exp_rmspe]
    pred = learn.predict()
    assert pred.shape == (200, 1)
    assert rows[-1][-1] == pytest.approx(exp_rmspe_ref(pred, yl[val_idx]), rel=1e-5)
    assert rows[-1][2] == pytest.approx(np.mean((pred[:, 0] - yl[val_idx]) ** 2), rel=1e-4)     # MSE on log sales
    test_pred = learn.predict(is_test=True)
    np.testing.assert_allclose(test_pred[::-1], _direct(learn, md, df), rtol=1e-5, atol=1e-5)   # test rows in test order
    from lessonkit.sched import fit_schedule                 # the SGDR arguments reached the schedule
    np.testing.assert_allclose(learn.sched.lrs, fit_schedule([1e-2], len(md.trn_dl), 2, 1)[:, -1])


def _direct(learn, md, df):
    "The model applied to the frame's rows directly, in eval mode."
    learn.model.eval()
    with torch.no_grad():
        xc = torch.tensor(df[md.cat_flds].to_numpy(np.int64)); xn = torch.tensor(df[md.cont_flds].to_numpy(np.float32))
        return learn.model(xc.to(learn.device), xn.to(learn.device)).cpu().numpy()


# ---------------------------------------------------------------- baselines

def test_group_mean_baseline():
    pred = group_mean_baseline(['a', 'b', 'a'], [1., 5., 3.], ['b', 'a', 'zz'])
    np.testing.assert_allclose(pred, [5., 2., 3.])


def test_rf_baseline_matches_sklearn():
    from sklearn.ensemble import RandomForestRegressor
    raw, df, yl = toy(n=400)
    ((dv, dt), (yv, yt)) = split_by_idx(np.arange(300, 400), df, yl)
    m, err = rf_baseline(dt, yt, dv, yv, n_estimators=5, seed=1)
    ref = RandomForestRegressor(n_estimators=5, max_features=0.99, min_samples_leaf=2, random_state=1, n_jobs=1)
    ref.fit(dt.to_numpy(np.float32), yt)
    assert err == pytest.approx(exp_rmspe_ref(ref.predict(dv.to_numpy(np.float32)), yv))
    assert m.n_jobs == -1 and err < exp_rmspe_ref(np.full(len(yv), yt.mean()), yv)


# ---------------------------------------------------------------- the lesson, end to end on the sample

ROSSMANN = REPO / 'data' / 'rossmann'
TABLES = ['train', 'store', 'store_states', 'state_names', 'googletrend', 'weather', 'test']


@pytest.mark.skipif(not all((ROSSMANN / f'{t}.csv').exists() for t in TABLES),
                    reason='the Rossmann sample (data/rossmann/*.csv) is not in this checkout; '
                           'lessonkit.datasets makes it (get_data("rossmann"))')
def test_rossmann_sample_end_to_end(tmp_path, capsys):
    "The lesson's pipeline on the sample: the embedding network beats predicting each store's mean."
    res = rossmann_lesson(ROSSMANN, tmp_path)
    with capsys.disabled():
        print(f"\nRossmann sample: {res['n_rows']:,} rows, {res['n_val']:,} validation (last 6 weeks); exp_rmspe: store mean "
              f"{res['store_mean']:.4f}, embedding network {res['net']:.4f} ({res['seconds']:.0f} s)")
    assert res['net'] < res['store_mean']


def rossmann_lesson(path, tmp_path, epochs=(1, 3), rf_trees=0, lr=1e-3):
    "The lesson's steps on the tables in `path`; returns the validation exp_rmspe of the network and of the store mean."
    from lessonkit.structured import rossmann_features, rossmann_cat_vars, rossmann_contin_vars, to_feather, read_feather
    from lessonkit.metrics import exp_rmspe
    t0 = time.time()
    tables = {t: pd.read_csv(path / f'{t}.csv', low_memory=False) for t in TABLES}
    joined, joined_test = rossmann_features(tables)
    joined = read_feather(to_feather(joined, tmp_path / 'joined'))
    joined = joined[joined.Sales != 0]
    joined_test = joined_test.assign(Sales=0)
    cat_vars = [c for c in rossmann_cat_vars if c in joined.columns]
    contin_vars = [c for c in rossmann_contin_vars if c in joined.columns]
    joined = joined[cat_vars + contin_vars + ['Sales', 'Date']].copy()
    joined_test = joined_test[cat_vars + contin_vars + ['Sales', 'Date', 'Id']].copy()
    for v in cat_vars: joined[v] = joined[v].astype('category').cat.as_ordered()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); apply_cats(joined_test, joined)
    for d in (joined, joined_test):
        for v in contin_vars: d[v] = d[v].fillna(0).astype('float32')
    joined, joined_test = joined.set_index('Date'), joined_test.set_index('Date')
    df, y, nas, mapper = proc_df(joined, 'Sales', do_scale=True)
    yl = np.log(y).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        df_test, _, _, _ = proc_df(joined_test, 'Sales', do_scale=True, skip_flds=['Id'], na_dict=nas, mapper=mapper)
    # validation: the last weeks of the training period, as the lesson does
    last = df.index.max()
    val_idx = np.flatnonzero(df.index > last - pd.Timedelta(days=42))
    assert 0 < len(val_idx) < len(df)
    set_seed(42)
    md = ColumnarModelData.from_data_frame(tmp_path, val_idx, df, yl, cat_flds=cat_vars, bs=128, test_df=df_test)
    emb_szs = get_emb_szs(joined, cat_vars)
    y_range = (0, float(yl.max()) * 1.2)
    learn = md.get_learner(emb_szs, len(df.columns) - len(cat_vars), 0.04, 1, [1000, 500], [0.001, 0.01], y_range=y_range)
    learn.fit(lr, epochs[0], metrics=[exp_rmspe], quiet=True)
    learn.fit(lr, epochs[1], cycle_len=1, quiet=True)
    nn_err = learn.sched.rows[-1][-1]
    assert nn_err == pytest.approx(exp_rmspe_ref(learn.predict(), yl[val_idx]), rel=1e-4)
    stores = joined.Store.to_numpy()
    trn_mask = np.ones(len(df), bool); trn_mask[val_idx] = False
    base_err = exp_rmspe_ref(group_mean_baseline(stores[trn_mask], yl[trn_mask], stores[val_idx]), yl[val_idx])
    pred_test = learn.predict(is_test=True)
    assert pred_test.shape == (len(df_test), 1) and np.isfinite(pred_test).all()
    rf_err = None
    if rf_trees:
        ((dv, dt), (yv, yt)) = split_by_idx(val_idx, df, yl)
        rf_err = rf_baseline(dt, yt, dv, yv, n_estimators=rf_trees)[1]
    return dict(n_rows=len(df), n_val=len(val_idx), net=nn_err, store_mean=base_err, rf=rf_err, seconds=time.time() - t0,
                learn=learn, md=md, df=df, yl=yl, val_idx=val_idx)
