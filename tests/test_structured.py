"""lessonkit.structured: joins, date parts, elapsed / rolling features, feather, categories, missing values, proc_df.
Values are checked against independent references: the course's own loop and pandas expressions, Python's
datetime, scikit-learn's StandardScaler, and numbers worked out by hand."""
import datetime as dt
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lessonkit.structured import (join_df, add_datepart, add_elapsed, add_rolling, to_feather, read_feather, train_cats,
                                  apply_cats, fix_missing, scale_vars, proc_df, get_sample, rossmann_features,
                                  rossmann_cat_vars, rossmann_contin_vars)

REPO = Path(__file__).resolve().parents[1]


def test_fresh_import():
    r = subprocess.run([sys.executable, '-c', 'import lessonkit.structured as s; print(len(s.__all__))'],
                       capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr


# ---------------------------------------------------------------- join_df

def test_join_keeps_rows_index_and_reports_unmatched(capsys):
    left = pd.DataFrame({'Store': [3, 1, 2, 9, 9], 'x': range(5)}, index=list('abcde'))
    right = pd.DataFrame({'Store': [1, 2, 3], 'Type': ['a', 'b', 'c'], 'x': [7, 8, 9]})
    j = join_df(left, right, 'Store')
    assert list(j.index) == list('abcde')
    assert j.Type.tolist()[:3] == ['c', 'a', 'b'] and j.Type.isna().tolist() == [False] * 3 + [True] * 2
    assert j.x.tolist() == [0, 1, 2, 3, 4] and j.x_y.tolist()[:3] == [9, 7, 8]
    out = capsys.readouterr().out
    assert '2 of 5 rows' in out and '1 distinct key' in out and '(9,)' in out


def test_join_quiet_when_all_match(capsys):
    left = pd.DataFrame({'k': [1, 2]}); right = pd.DataFrame({'k': [2, 1], 'v': [20, 10]})
    assert join_df(left, right, 'k').v.tolist() == [10, 20]
    assert capsys.readouterr().out == ''


def test_join_refuses_duplicated_right_keys():
    left = pd.DataFrame({'k': [1, 2]}); right = pd.DataFrame({'k': [1, 1, 2], 'v': [1, 2, 3]})
    with pytest.raises(ValueError, match='more than once.*drop_duplicates'):
        join_df(left, right, 'k')


def test_join_multiple_keys_different_names_and_suffix():
    left = pd.DataFrame({'State': ['BY', 'BE', 'BY'], 'Week': [1, 1, 2], 'trend': [0, 0, 0]})
    right = pd.DataFrame({'S': ['BY', 'BY', 'BE'], 'W': [1, 2, 1], 'trend': [10, 20, 30]})
    j = join_df(left, right, ['State', 'Week'], ['S', 'W'], suffix='_DE')
    assert j.trend_DE.tolist() == [10, 30, 20] and j.trend.tolist() == [0, 0, 0]


def test_join_errors_name_the_problem():
    left = pd.DataFrame({'Store': [1]}); right = pd.DataFrame({'Store': ['1'], 'v': [1]})
    with pytest.raises(KeyError, match=r"right table has no column \['store'\]"):
        join_df(left, right, 'Store', 'store')
    with pytest.raises(ValueError, match='same type on both sides'):
        join_df(left, right, 'Store')
    with pytest.raises(ValueError, match='one right key per left key'):
        join_df(left, right, ['Store'], ['Store', 'v'])


# ---------------------------------------------------------------- add_datepart

def test_datepart_against_python_datetime():
    days = pd.date_range('2012-12-25', '2016-01-10', freq='37D')
    df = pd.DataFrame({'Date': days.strftime('%Y-%m-%d')})
    add_datepart(df, 'Date')
    assert 'Date' not in df.columns
    for i, d in enumerate(days.to_pydatetime()):
        iso = d.isocalendar()
        nxt = d + dt.timedelta(days=1)
        assert (df.Year[i], df.Month[i], df.Week[i], df.Day[i]) == (d.year, d.month, iso[1], d.day)
        assert df.Dayofweek[i] == d.weekday() and df.Dayofyear[i] == d.timetuple().tm_yday
        assert df.Is_month_end[i] == (nxt.month != d.month) and df.Is_month_start[i] == (d.day == 1)
        assert df.Is_year_end[i] == (nxt.year != d.year) and df.Is_year_start[i] == (d.month == 1 and d.day == 1)
        assert df.Is_quarter_start[i] == (d.day == 1 and d.month in (1, 4, 7, 10))
        assert df.Is_quarter_end[i] == (nxt.month != d.month and d.month in (3, 6, 9, 12))
        assert df.Elapsed[i] == int((d - dt.datetime(1970, 1, 1)).total_seconds())
    assert df.Week.dtype == np.int32 and df.Is_month_end.dtype == bool and df.Elapsed.dtype == np.int64


def test_datepart_any_resolution_gives_seconds():
    for unit in ['s', 'ms', 'us', 'ns']:
        df = pd.DataFrame({'Date': pd.to_datetime(['2015-07-31']).as_unit(unit)})
        add_datepart(df, 'Date')
        assert df.Elapsed[0] == 1438300800, unit


def test_datepart_nat_rows_are_nan():
    df = pd.DataFrame({'Date': ['2015-07-31', None, '2015-12-31']})
    add_datepart(df, 'Date', drop=False)
    new = [c for c in df.columns if c != 'Date']
    assert df.loc[1, new].isna().all()
    assert df.Year.tolist()[::2] == [2015, 2015] and df.Is_year_end.tolist()[::2] == [0., 1.]
    assert df.Elapsed[0] == 1438300800


def test_datepart_prefix_time_and_timezone():
    df = pd.DataFrame({'saledate': pd.to_datetime(['2015-07-31 13:45:10']).tz_localize('Europe/Berlin')})
    add_datepart(df, 'saledate', time=True, drop=False)
    assert str(df.saledate.dt.tz) == 'Europe/Berlin'                                  # the user's column is left alone
    assert df.saleHour[0] == 11 and df.saleMinute[0] == 45 and df.saleSecond[0] == 10    # in UTC
    assert df.saleElapsed[0] == 1438300800 + 11 * 3600 + 45 * 60 + 10


def test_datepart_bad_input():
    with pytest.raises(KeyError, match="no column 'date'"):
        add_datepart(pd.DataFrame({'Date': ['2015-01-01']}), 'date')
    with pytest.raises(ValueError, match=r"column 'Date'.*'31/31/2015'"):
        add_datepart(pd.DataFrame({'Date': ['2015-01-01', '31/31/2015']}), 'Date')


# ---------------------------------------------------------------- elapsed and rolling

def course_get_elapsed(df, fld, pre):
    "The lesson's loop, verbatim in spirit (df sorted by Store then Date, ascending for After, descending for Before)."
    day1 = np.timedelta64(1, 'D')
    last_date, last_store, res = np.datetime64('NaT'), 0, []
    for s, v, d in zip(df.Store.values, df[fld].values, df.Date.values):
        if s != last_store: last_date, last_store = np.datetime64('NaT'), s
        if v: last_date = d
        res.append((d - last_date).astype('timedelta64[D]') / day1)
    df[pre + fld] = res


def random_events(seed=0, n_store=5, n_day=60):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({'Store': np.repeat(np.arange(1, n_store + 1), n_day),
                       'Date': np.tile(pd.date_range('2015-01-01', periods=n_day), n_store),
                       'Promo': rng.random(n_store * n_day) < 0.2, 'SchoolHoliday': (rng.random(n_store * n_day) < 0.1).astype(int)})
    df = df[rng.random(len(df)) > 0.15]          # gaps, as when stores close for a while
    return df.sample(frac=1, random_state=seed).reset_index(drop=True)


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_elapsed_matches_course_loop(seed):
    df = random_events(seed)
    ref = df.sort_values(['Store', 'Date'])
    for f in ['Promo', 'SchoolHoliday']: course_get_elapsed(ref, f, 'After')
    ref = ref.sort_values(['Store', 'Date'], ascending=[True, False])
    for f in ['Promo', 'SchoolHoliday']: course_get_elapsed(ref, f, 'Before')
    ref = ref.sort_index()
    add_elapsed(df, ['Promo', 'SchoolHoliday'])
    for c in ['AfterPromo', 'BeforePromo', 'AfterSchoolHoliday', 'BeforeSchoolHoliday']:
        np.testing.assert_array_equal(df[c].to_numpy(), ref[c].to_numpy(), err_msg=c)


def test_elapsed_by_hand_with_text_keys_and_nat():
    df = pd.DataFrame({'Store': ['b', 'a', 'a', 'a', 'b', 'a'],
                       'Date': pd.to_datetime(['2015-01-02', '2015-01-04', '2015-01-01', None, '2015-01-01', '2015-01-02']),
                       'Ev': [0, 0, 0, 1, 1, 1]})
    add_elapsed(df, 'Ev', by='Store')
    nan = np.nan
    # store a: 01 (no event yet), 02 (event), 04; the NaT row is neither an event nor gets a value
    np.testing.assert_array_equal(df.AfterEv, [1, 2, nan, nan, 0, 0])
    np.testing.assert_array_equal(df.BeforeEv, [nan, nan, -1, nan, 0, 0])


def test_elapsed_refuses_text_events():
    df = pd.DataFrame({'Store': [1], 'Date': pd.to_datetime(['2015-01-01']), 'StateHoliday': ['a']})
    with pytest.raises(TypeError, match=r"StateHoliday != '0'"):
        add_elapsed(df, 'StateHoliday')
    with pytest.raises(KeyError, match="no column 'Shop' to group by"):
        add_elapsed(df.assign(StateHoliday=1), 'StateHoliday', by='Shop')


@pytest.mark.parametrize('window', [1, 3, 7, 100])
def test_rolling_matches_pandas(window):
    df = random_events(3)
    df['Promo'] = df.Promo.astype(int)
    add_rolling(df, ['Promo', 'SchoolHoliday'], window=window)
    s = df.set_index('Date')
    key = pd.MultiIndex.from_frame(df[['Store', 'Date']])
    for f in ['Promo', 'SchoolHoliday']:
        bwd = s[['Store', f]].sort_index().groupby('Store').rolling(window, min_periods=1).sum()[f]
        fwd = s[['Store', f]].sort_index(ascending=False).groupby('Store').rolling(window, min_periods=1).sum()[f]
        np.testing.assert_array_equal(df[f + '_bw'].to_numpy(), bwd.reindex(key).to_numpy())
        np.testing.assert_array_equal(df[f + '_fw'].to_numpy(), fwd.reindex(key).to_numpy())
    assert df.Promo_bw.dtype == np.int64


def test_rolling_bad_window():
    df = pd.DataFrame({'Store': [1], 'Date': pd.to_datetime(['2015-01-01']), 'Promo': [1]})
    for w in [0, 2.5, '7D']:
        with pytest.raises(ValueError, match='window'):
            add_rolling(df, 'Promo', window=w)


# ---------------------------------------------------------------- feather

def test_feather_round_trip_keeps_dtypes_and_index(tmp_path):
    df = pd.DataFrame({'i8': np.array([1, 2, 3], dtype='int8'), 'f32': np.float32([1.5, np.nan, 2]),
                       'b': [True, False, True], 'cat': pd.Categorical(['b', 'a', None], categories=['b', 'a'], ordered=True),
                       'txt': ['x', None, 'z'], 'when': pd.to_datetime(['2015-01-01', None, '2015-01-03'])},
                      index=pd.DatetimeIndex(pd.to_datetime(['2014-01-01', '2014-01-02', '2014-01-03']), name='Date'))
    back = read_feather(to_feather(df, tmp_path / 'joined'))
    pd.testing.assert_frame_equal(back, df)
    assert back.cat.cat.categories.tolist() == ['b', 'a'] and back.cat.cat.ordered
    assert [p.name for p in tmp_path.iterdir()] == ['joined']


def test_feather_errors(tmp_path):
    with pytest.raises(TypeError, match='mixes kinds of values'):
        to_feather(pd.DataFrame({'m': [1, 'a']}), tmp_path / 'bad')
    assert list(tmp_path.iterdir()) == []                       # nothing half-written left behind
    with pytest.raises(FileNotFoundError, match='to_feather'):
        read_feather(tmp_path / 'nope')


# ---------------------------------------------------------------- categories

def test_train_and_apply_cats_share_codes():
    trn = pd.DataFrame({'a': ['x', 'y', 'z', 'x'], 'n': [1, 2, 3, 4], 'c': pd.Categorical(['p', 'q', 'p', 'q'])})
    tst = pd.DataFrame({'a': ['z', 'x', 'w', None], 'n': [5, 6, 7, 8], 'c': ['q', 'q', 'p', 'r']})
    train_cats(trn)
    assert trn.a.cat.ordered and trn.a.cat.categories.tolist() == ['x', 'y', 'z'] and trn.n.dtype == np.int64
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always'); apply_cats(tst, trn)
    msgs = [str(o.message) for o in w]
    assert len(msgs) == 2 and "'a' has 1 value(s) not seen in training (e.g. 'w')" in msgs[0] and "(e.g. 'r')" in msgs[1]
    assert tst.a.cat.codes.tolist() == [2, 0, -1, -1]
    assert tst.c.cat.codes.tolist() == [1, 1, 0, -1]
    assert tst.a.dtype == trn.a.dtype


def test_apply_cats_numeric_categories_match_floats():
    trn = pd.DataFrame({'Week': pd.Categorical([1, 2, 3]).as_ordered()})
    tst = pd.DataFrame({'Week': [3.0, np.nan, 1.0]})
    apply_cats(tst, trn)
    assert tst.Week.cat.codes.tolist() == [2, -1, 0]


def test_unseen_category_gets_code_zero_never_out_of_range():
    trn = pd.DataFrame({'s': ['a', 'b', 'c'], 'y': [1, 2, 3]})
    tst = pd.DataFrame({'s': ['c', 'zz', 'a'], 'y': [0, 0, 0]})
    train_cats(trn)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); apply_cats(tst, trn)
    x, _, _ = proc_df(trn, 'y'); xt, _, _ = proc_df(tst, 'y')
    assert x.s.tolist() == [1, 2, 3] and xt.s.tolist() == [3, 0, 1]
    assert xt.s.max() < len(trn.s.cat.categories) + 1


# ---------------------------------------------------------------- missing values and proc_df

def test_fix_missing_median_and_na_column():
    df = pd.DataFrame({'a': [1., np.nan, 5., 10.], 'b': [1, 2, 3, 4], 'c': pd.array([1, None, 2, 4], dtype='Int64')})
    nas = {}
    for n, c in list(df.items()): fix_missing(df, c, n, nas)
    assert nas == {'a': 5.0, 'c': 2.0}
    assert df.a.tolist() == [1, 5, 5, 10] and df.a_na.tolist() == [False, True, False, False]
    assert df.c.tolist() == [1, 2, 2, 4] and 'b_na' not in df.columns


def test_proc_df_train_test_consistency_and_scaling():
    from sklearn.preprocessing import StandardScaler
    trn = pd.DataFrame({'dist': [100., np.nan, 300., 700.], 'temp': [1., 2., 3., 4.], 'kind': ['a', 'b', 'a', 'c'],
                        'hol': [True, False, False, True], 'Sales': [5., 6., 7., 8.]})
    tst = pd.DataFrame({'temp': [np.nan, 10.], 'dist': [50., 60.], 'kind': ['c', 'd'], 'hol': [False, True], 'Sales': 0.})
    trn_before = trn.copy()
    train_cats(trn)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); apply_cats(tst, trn)
    x, y, nas, mapper = proc_df(trn, 'Sales', do_scale=True)
    pd.testing.assert_frame_equal(trn.astype({'kind': object}), trn_before.astype({'kind': object}))  # input untouched
    assert list(x.columns) == ['dist', 'temp', 'kind', 'hol', 'dist_na'] and y.tolist() == [5, 6, 7, 8]
    assert nas == {'dist': 300.0}
    ref = StandardScaler().fit(np.array([[100, 1], [300, 2], [300, 3], [700, 4]], dtype=float))
    np.testing.assert_allclose(x[['dist', 'temp']].to_numpy(), ref.transform([[100, 1], [300, 2], [300, 3], [700, 4]]))
    assert x.hol.dtype == bool and x.dist_na.dtype == bool                          # booleans are not scaled
    with pytest.warns(UserWarning, match=r"\['temp'\] have missing values here but had none in training"):
        xt, yt, nas_t, _ = proc_df(tst, 'Sales', do_scale=True, na_dict=nas, mapper=mapper)
    assert list(xt.columns) == list(x.columns)                                        # same _na columns, same order
    np.testing.assert_allclose(xt[['dist', 'temp']].to_numpy(), ref.transform([[50, 10], [60, 10]]))  # train statistics
    assert xt.dist_na.tolist() == [False, False] and xt.kind.tolist() == [3, 0]


def test_proc_df_options():
    df = pd.DataFrame({'Id': [7, 8, 9], 'kind': pd.Categorical(['a', 'b', 'a']), 'v': [1., 2., 3.], 'y': ['no', 'yes', 'no']})
    x, y, _ = proc_df(df, 'y', skip_flds=['Id'])
    assert y.tolist() == [0, 1, 0] and list(x.columns) == ['kind', 'v']
    x, _, _ = proc_df(df, 'y', ignore_flds=['Id'], max_n_cat=3)
    assert x.Id.tolist() == [7, 8, 9] and {'kind_a', 'kind_b', 'kind_nan'} <= set(x.columns)
    x, y, _ = proc_df(df, 'y', subset=2)
    assert len(x) == 2 and list(x.index) == sorted(x.index)
    def double(d): d['v2'] = d.v * 2
    x, y, _ = proc_df(df, 'y', preproc_fn=double)
    assert x.v2.tolist() == [2., 4., 6.] and 'v2' not in df.columns
    assert len(get_sample(df, 2, seed=0)) == 2


def test_proc_df_helpful_errors():
    df = pd.DataFrame({'Date': pd.to_datetime(['2015-01-01']), 'v': [1.]})
    with pytest.raises(KeyError, match=r"no column 'Sales'.*df\['Sales'\] = 0"):
        proc_df(df, 'Sales')
    with pytest.raises(TypeError, match=r"add_datepart\(df, 'Date'\)"):
        proc_df(df, 'v')
    with pytest.raises(KeyError, match="no column 'Id'"):
        proc_df(df.set_index('Date'), 'v', skip_flds=['Id'])
    with pytest.raises(KeyError, match=r"no column\(s\) \['w'\]"):
        _, _, _, m = proc_df(pd.DataFrame({'w': [1., 2.]}), do_scale=True)
        with pytest.warns(UserWarning, match=r"\['v'\] were not in the training frame"):
            proc_df(pd.DataFrame({'v': [1.]}), do_scale=True, mapper=m)


def test_proc_df_text_column_warns():
    with pytest.warns(UserWarning, match='train_cats'):
        x, _, _ = proc_df(pd.DataFrame({'s': ['b', 'a']}))
    assert x.s.tolist() == [2, 1]


def test_scale_vars_constant_column():
    df = pd.DataFrame({'c': [5., 5., 5.]})
    scale_vars(df)
    assert df.c.tolist() == [0., 0., 0.]


# ---------------------------------------------------------------- the Rossmann pipeline

def tiny_rossmann():
    days = pd.date_range('2015-07-01', periods=16)
    n = len(days)
    sales = pd.DataFrame({'Store': np.repeat([1, 2, 3], n), 'Date': np.tile(days.strftime('%Y-%m-%d'), 3),
                          'Sales': np.arange(3 * n) * 10, 'Promo': np.tile(([1] * 5 + [0] * 2) * 2 + [1, 1], 3),
                          'StateHoliday': np.tile(['0'] * 8 + ['a'] + ['0'] * 7, 3), 'SchoolHoliday': 0, 'Open': 1})
    sales['DayOfWeek'] = pd.to_datetime(sales.Date).dt.day_of_week + 1
    weeks = pd.date_range('2015-06-28', periods=4, freq='7D')
    wk = [f'{a:%Y-%m-%d} - {a + pd.Timedelta(days=6):%Y-%m-%d}' for a in weeks]
    return dict(
        train=sales[sales.Date < '2015-07-13'].reset_index(drop=True),
        test=sales[sales.Date >= '2015-07-13'].drop(columns='Sales').reset_index(drop=True).assign(Id=lambda d: d.index + 1),
        store=pd.DataFrame({'Store': [1, 2, 3], 'StoreType': ['a', 'c', 'a'], 'Assortment': ['a', 'c', 'b'],
                            'CompetitionDistance': [500., np.nan, 20.], 'CompetitionOpenSinceMonth': [6, np.nan, 1],
                            'CompetitionOpenSinceYear': [2015, np.nan, 1980], 'Promo2': [1, 0, 1],
                            'Promo2SinceWeek': [27, np.nan, 1], 'Promo2SinceYear': [2015, np.nan, 2010],
                            'PromoInterval': ['Jan,Apr,Jul,Oct', np.nan, 'Feb,May,Aug,Nov']}),
        store_states=pd.DataFrame({'Store': [1, 2, 3], 'State': ['BY', 'HB,NI', 'BY']}),
        state_names=pd.DataFrame({'StateName': ['Bayern', 'Niedersachsen'], 'State': ['BY', 'HB,NI']}),
        googletrend=pd.DataFrame({'file': ['Rossmann_DE_BY', 'Rossmann_DE_NI', 'Rossmann_DE'] * 4,
                                  'week': np.repeat(wk, 3), 'trend': np.arange(12) + 50}),
        weather=pd.DataFrame({'file': np.repeat(['Bayern', 'Niedersachsen'], n), 'Date': np.tile(days.strftime('%Y-%m-%d'), 2),
                              'Max_TemperatureC': np.arange(2 * n), 'Mean_TemperatureC': 1, 'Events': None}))


def test_rossmann_features_tiny(capsys):
    tables = tiny_rossmann()
    before = {k: v.copy() for k, v in tables.items()}
    joined, joined_test = rossmann_features(tables)
    for k in tables: pd.testing.assert_frame_equal(tables[k], before[k])               # the raw tables are untouched
    assert capsys.readouterr().out == ''                                               # every join matched
    assert len(joined) == 36 and len(joined_test) == 12
    assert set(rossmann_cat_vars) - set(joined.columns) == set()
    assert {c for c in rossmann_contin_vars if c in joined.columns} >= {'trend', 'trend_DE', 'AfterPromo', 'CompetitionDistance'}
    s = joined.set_index(['Store', 'Date'])
    assert s.loc[(2, '2015-07-01'), 'trend'] == s.loc[(2, '2015-07-01'), 'trend'] and not np.isnan(s.loc[(2, '2015-07-01'), 'trend'])
    # competition: store 1 opened 2015-06-15 -> 16 days on 07-01; store 3's competitor dates from before 1990 -> 0
    assert s.loc[(1, '2015-07-01'), 'CompetitionDaysOpen'] == 16 and s.loc[(3, '2015-07-10'), 'CompetitionDaysOpen'] == 0
    assert s.loc[(1, '2015-07-01'), 'CompetitionMonthsOpen'] == 0 and s.loc[(2, '2015-07-01'), 'CompetitionMonthsOpen'] == 0
    # Promo2: store 1 since Monday of ISO week 27 of 2015 (29 June) -> 2 days on 07-01; store 3 since 2010 -> capped at 25 weeks
    assert s.loc[(1, '2015-07-01'), 'Promo2Days'] == 2 and s.loc[(3, '2015-07-01'), 'Promo2Weeks'] == 25
    # state holiday on 07-09: days since / until, and the 7-day counts around it
    one = joined[joined.Store == 1]
    assert one.AfterStateHoliday.tolist() == [0] * 8 + [0, 1, 2, 3]
    assert one.BeforeStateHoliday.tolist() == [-8, -7, -6, -5, -4, -3, -2, -1, 0] + [0] * 3
    assert one.StateHoliday_bw.tolist() == [0] * 8 + [1] * 4 and one.StateHoliday_fw.tolist()[:3] == [0, 0, 1]
    assert joined_test.trend_DE.notna().all() and joined.Max_TemperatureC.notna().all()


def test_rossmann_features_missing_table():
    t = tiny_rossmann(); del t['weather']
    with pytest.raises(KeyError, match=r"\['weather'\] are missing"):
        rossmann_features(t)
