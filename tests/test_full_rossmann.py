"""Full mode, rossmann-store-sales, end to end against the stand-ins of tests/standins: the Kaggle download-all zip plus
the course's rossmann.tgz fetched over HTTPS from the files.fast.ai stand-in -> extraction and the tables' check ->
the lesson's features (rossmann_features) -> ColumnarModelData -> the embedding network -> one epoch -> predictions on
the test set -> a submission that check_submission accepts against sample_submission.csv -> an upload to the stand-in.
(No ImageNet weights here; no TTA for a table.)"""
import numpy as np, pandas as pd
from full_common import standins, upload, last_server  # noqa: F401
from lessonkit.datasets import get_data, is_complete
from lessonkit.structured import *
from lessonkit.column_data import *
from lessonkit.submission import rossmann_submission, check_submission, write_submission

def test_rossmann_full(standins):
    env = standins()
    PATH = get_data('rossmann', full=True)
    assert is_complete(PATH) and last_server().requests == ['/part2/lesson14/rossmann.tgz']
    names = ['train', 'store', 'store_states', 'state_names', 'googletrend', 'weather', 'test']
    raw = {n: pd.read_csv(PATH/f'{n}.csv', low_memory=False) for n in names}
    joined, joined_test = rossmann_features(raw)
    for c in ('trend', 'trend_DE'): joined_test[c] = joined_test[c].fillna(joined[c].mean())
    cat_vars, contin_vars = rossmann_cat_vars, rossmann_contin_vars
    joined = joined[joined.Sales != 0][cat_vars + contin_vars + ['Sales', 'Date']].copy()
    joined_test['Sales'] = 0
    joined_test = joined_test[cat_vars + contin_vars + ['Sales', 'Date', 'Id']].copy()
    for v in cat_vars: joined[v] = joined[v].astype('category').cat.as_ordered()
    apply_cats(joined_test, joined)
    for v in contin_vars:
        joined[v] = joined[v].fillna(0).astype('float32'); joined_test[v] = joined_test[v].fillna(0).astype('float32')
    joined, joined_test = joined.set_index('Date'), joined_test.set_index('Date')
    df, y, nas, mapper = proc_df(joined, 'Sales', do_scale=True)
    yl = np.log(y).astype(np.float32)
    df_test, _, nas, mapper = proc_df(joined_test, 'Sales', do_scale=True, skip_flds=['Id'], mapper=mapper, na_dict=nas)
    val_idx = np.flatnonzero(df.index > df.index.max() - pd.Timedelta(days=48))
    md = ColumnarModelData.from_data_frame(PATH, val_idx, df, yl, cat_flds=cat_vars, bs=512, test_df=df_test)
    learn = md.get_learner(get_emb_szs(joined, cat_vars), len(df.columns) - len(cat_vars), 0.04, 1, [1000, 500],
                           [0.001, 0.01], y_range=(0, float(yl.max()) * 1.2))
    learn.fit(1e-3, 1)
    sub = rossmann_submission(learn.predict(is_test=True), joined_test, open_df=raw['test'])
    check_submission(sub, 'rossmann', sample=PATH/'sample_submission.csv')
    fn = write_submission(sub, PATH/'sub'/'rossmann.csv.gz')
    upload(fn, 'rossmann-store-sales', env)
