"""Structured-data rows: the whole Rossmann feature pipeline on a generated million-row table (rows/s, peak memory),
and the vectorised elapsed / rolling features against the course's own code on the same rows.

    .venv/bin/python bench/bench_structured.py [--quick]     # prints a table (bench/run.py folds the rows in)

The pipeline is what the lesson runs before training: `rossmann_features` (add_datepart, the joins, competition /
Promo2 durations, elapsed and rolling features), the lesson's column selection and categories, `apply_cats`, and
`proc_df` on the training and the test frame. It runs in a subprocess of its own so that its peak RSS is clean.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
for p in (str(BENCH_DIR.parent), str(BENCH_DIR)):
    if p not in sys.path: sys.path.insert(0, p)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from _util import log, make_row, markdown_table, median, peak_rss_mb, reset_peak_rss, rss_mb  # noqa: E402

STATES = {'BadenWuerttemberg': 'BW', 'Bayern': 'BY', 'Berlin': 'BE', 'Hamburg': 'HH', 'Hessen': 'HE',
          'Niedersachsen': 'HB,NI', 'NordrheinWestfalen': 'NW', 'RheinlandPfalz': 'RP', 'Sachsen': 'SN',
          'SachsenAnhalt': 'ST', 'SchleswigHolstein': 'SH', 'Thueringen': 'TH'}
WEATHER = ['Max_TemperatureC', 'Mean_TemperatureC', 'Min_TemperatureC', 'Dew_PointC', 'MeanDew_PointC', 'Min_DewpointC',
           'Max_Humidity', 'Mean_Humidity', 'Min_Humidity', 'Max_Sea_Level_PressurehPa', 'Mean_Sea_Level_PressurehPa',
           'Min_Sea_Level_PressurehPa', 'Max_VisibilityKm', 'Mean_VisibilityKm', 'Min_VisibilitykM', 'Max_Wind_SpeedKm_h',
           'Mean_Wind_SpeedKm_h', 'Max_Gust_SpeedKm_h', 'Precipitationmm', 'CloudCover']


# ---------------------------------------------------------------- a Rossmann-shaped dataset, generated

def make_rossmann(n_rows: int = 1_000_000, n_stores: int = 1115, test_days: int = 48, seed: int = 0) -> dict:
    """Raw tables shaped like the Kaggle Rossmann files as `pd.read_csv` returns them (dates as text): `n_rows` train
    rows (one per store and day from 2013-01-01, the last day partly filled), `test_days` days of test after them."""
    rng = np.random.default_rng(seed)
    n_days = -(-n_rows // n_stores)
    days = pd.date_range('2013-01-01', periods=n_days + test_days)
    day_str = np.asarray(days.strftime('%Y-%m-%d'), dtype=object)
    names = list(STATES)
    store_state = rng.integers(0, len(names), n_stores)
    # per day and state: school holidays (a summer block and a week in autumn, shifted per state), state holidays
    doy = days.day_of_year.to_numpy()
    shift = rng.integers(0, 40, len(names))
    school = (((doy[:, None] - 180 - shift[None]) % 365) < 42) | (((doy[:, None] - 290 - shift[None] // 4) % 365) < 7)
    hol_doy = np.array([1, 95, 121, 141, 152, 276, 359, 360])
    state_hol = np.isin(doy, hol_doy)[:, None] & (rng.random((len(days), len(names))) < 0.9)
    # promotions: Monday to Friday of every other week, for every store (as in the real data, mostly)
    dow = days.day_of_week.to_numpy()
    promo_day = ((days.isocalendar().week.to_numpy() % 2 == 0) & (dow < 5)).astype(np.int64)

    def rows(day_idx, store_idx):
        st = store_state[store_idx]
        hol = state_hol[day_idx, st]
        kind = np.where(hol, np.where(doy[day_idx] > 355, 'c', np.where(doy[day_idx] == 95, 'b', 'a')), '0')
        return dict(Store=store_idx + 1, DayOfWeek=dow[day_idx] + 1, Date=day_str[day_idx],
                    Promo=promo_day[day_idx], StateHoliday=kind.astype(object),
                    SchoolHoliday=school[day_idx, st].astype(np.int64)), hol

    # train: day-major like the Kaggle file, truncated to n_rows
    i = np.arange(n_rows)
    d_idx, s_idx = i // n_stores, i % n_stores
    cols, hol = rows(d_idx, s_idx)
    open_ = ((dow[d_idx] != 6) & ~hol & (rng.random(n_rows) > 0.02)).astype(np.int64)
    s_eff, d_eff = rng.normal(0, 0.35, n_stores), np.array([0.25, 0.05, 0.0, 0.0, 0.05, 0.1, -0.3])
    log_sales = (8.6 + s_eff[s_idx] + d_eff[dow[d_idx]] + 0.3 * cols['Promo'] + 0.05 * cols['SchoolHoliday']
                 + 0.1 * np.sin(2 * np.pi * doy[d_idx] / 365) + rng.normal(0, 0.12, n_rows))
    sales = np.where(open_ == 1, np.round(np.exp(log_sales)), 0).astype(np.int64)
    train = pd.DataFrame(dict(Store=cols['Store'], DayOfWeek=cols['DayOfWeek'], Date=cols['Date'], Sales=sales,
                              Customers=(sales / 9.5).astype(np.int64), Open=open_, Promo=cols['Promo'],
                              StateHoliday=cols['StateHoliday'], SchoolHoliday=cols['SchoolHoliday']))
    # test: the next test_days days, every store
    j = np.arange(test_days * n_stores)
    cols, hol = rows(n_days + j // n_stores, j % n_stores)
    test = pd.DataFrame(dict(Id=j + 1, Store=cols['Store'], DayOfWeek=cols['DayOfWeek'], Date=cols['Date'],
                             Open=(~hol).astype(float), Promo=cols['Promo'], StateHoliday=cols['StateHoliday'],
                             SchoolHoliday=cols['SchoolHoliday']))
    # one row per store
    has_comp = rng.random(n_stores) > 0.3
    promo2 = rng.random(n_stores) > 0.5
    store = pd.DataFrame(dict(
        Store=np.arange(1, n_stores + 1), StoreType=rng.choice(list('abcd'), n_stores), Assortment=rng.choice(list('abc'), n_stores),
        CompetitionDistance=np.where(rng.random(n_stores) > 0.003, np.round(np.exp(rng.normal(7.5, 1.2, n_stores)), -1), np.nan),
        CompetitionOpenSinceMonth=np.where(has_comp, rng.integers(1, 13, n_stores), np.nan),
        CompetitionOpenSinceYear=np.where(has_comp, rng.integers(1990, 2015, n_stores), np.nan),
        Promo2=promo2.astype(np.int64),
        Promo2SinceWeek=np.where(promo2, rng.integers(1, 51, n_stores), np.nan),
        Promo2SinceYear=np.where(promo2, rng.integers(2009, 2016, n_stores), np.nan),
        PromoInterval=np.where(promo2, rng.choice(['Jan,Apr,Jul,Oct', 'Feb,May,Aug,Nov', 'Mar,Jun,Sept,Dec'], n_stores), None)))
    store_states = pd.DataFrame(dict(Store=store.Store, State=[STATES[names[k]] for k in store_state]))
    state_names = pd.DataFrame(dict(StateName=names, State=[STATES[n] for n in names]))
    # Google trend: one row per state (and Germany) per Sunday-to-Saturday week
    sundays = pd.date_range(days[0] - pd.Timedelta(days=int((days[0].day_of_week + 1) % 7)), days[-1] + pd.Timedelta(days=7), freq='W-SUN')
    weeks = [f'{a:%Y-%m-%d} - {b:%Y-%m-%d}' for a, b in zip(sundays, sundays + pd.Timedelta(days=6))]
    codes = ['DE'] + [('NI' if c == 'HB,NI' else c) for c in STATES.values()]
    googletrend = pd.DataFrame(dict(file=np.repeat([f'Rossmann_DE_{c}' if c != 'DE' else 'Rossmann_DE' for c in codes], len(weeks)),
                                    week=np.tile(weeks, len(codes)), trend=rng.integers(40, 100, len(codes) * len(weeks))))
    # weather: one row per state and day
    n_w = len(names) * len(days)
    weather = pd.DataFrame(dict(file=np.repeat(names, len(days)), Date=np.tile(day_str, len(names))))
    season = np.tile(np.sin(2 * np.pi * (doy - 110) / 365), len(names))
    for k, c in enumerate(WEATHER):
        weather[c] = np.round(10 + 10 * season * (k % 3 == 0) + rng.normal(0, 3, n_w)).astype(np.int64)
    weather['Max_VisibilityKm'] = np.where(rng.random(n_w) > 0.02, weather.Max_VisibilityKm, np.nan)
    weather['Events'] = np.where(rng.random(n_w) > 0.6, rng.choice(['Rain', 'Fog', 'Rain-Thunderstorm', 'Snow'], n_w), None)
    weather['WindDirDegrees'] = rng.integers(0, 360, n_w)
    return dict(train=train, store=store, store_states=store_states, state_names=state_names,
                googletrend=googletrend, weather=weather, test=test)


# ---------------------------------------------------------------- the pipeline being timed

def pipeline(tables: dict):
    "The lesson's steps from raw tables to the numeric frames the network trains on."
    from lessonkit.structured import rossmann_features, rossmann_cat_vars, rossmann_contin_vars, apply_cats, proc_df
    joined, joined_test = rossmann_features(tables)
    joined = joined[joined.Sales != 0]
    joined_test = joined_test.assign(Sales=0)
    cols = rossmann_cat_vars + rossmann_contin_vars + ['Sales', 'Date']
    joined, joined_test = joined[cols].copy(), joined_test[cols + ['Id']].copy()
    for v in rossmann_cat_vars: joined[v] = joined[v].astype('category').cat.as_ordered()
    apply_cats(joined_test, joined)
    for df in (joined, joined_test):
        for v in rossmann_contin_vars: df[v] = df[v].fillna(0).astype('float32')
    joined, joined_test = joined.set_index('Date'), joined_test.set_index('Date')
    df, y, nas, mapper = proc_df(joined, 'Sales', do_scale=True)
    df_test, _, _, _ = proc_df(joined_test, 'Sales', do_scale=True, skip_flds=['Id'], na_dict=nas, mapper=mapper)
    return df, y, df_test


def _pipeline_child(n_rows: int, repeats: int) -> dict:
    "Runs in its own process: generate the tables, then time the pipeline `repeats` times; peak RSS of this process."
    import contextlib, io, warnings
    import lessonkit.structured  # noqa: F401  (imports torch through lessonkit.core: not part of the pipeline's memory)
    t0 = time.perf_counter()
    tables = make_rossmann(n_rows)
    gen_s = time.perf_counter() - t0
    base = rss_mb(); reset_peak_rss()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter('ignore')
            df, y, df_test = pipeline(tables)
        times.append(time.perf_counter() - t0)
        shape = list(df.shape)
        del df, y, df_test
    return dict(times=times, gen_s=gen_s, base_rss_mb=base, peak_rss_mb=peak_rss_mb(), out_shape=shape)


def run_pipeline(n_rows: int, repeats: int) -> dict:
    "`_pipeline_child` in a fresh interpreter, so its peak memory is its own."
    code = (f'import sys, json; sys.path.insert(0, {str(BENCH_DIR)!r}); import bench_structured as b; '
            f'print(json.dumps(b._pipeline_child({n_rows}, {repeats})))')
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=str(BENCH_DIR.parent))
    if r.returncode != 0: raise RuntimeError(f'pipeline child failed:\n{r.stderr[-3000:]}')
    return json.loads(r.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- the course's code, for reference

def course_get_elapsed(df: pd.DataFrame, fld: str, pre: str) -> list:
    "The lesson's get_elapsed: a Python loop over the rows (df sorted by Store, then Date)."
    day1 = np.timedelta64(1, 'D')
    last_date = np.datetime64()
    last_store = 0
    res = []
    for s, v, d in zip(df.Store.values, df[fld].values, df.Date.values):
        if s != last_store:
            last_date = np.datetime64()
            last_store = s
        if v: last_date = d
        res.append(((d - last_date).astype('timedelta64[D]') / day1))
    df[pre + fld] = res
    return res


def course_elapsed(ev: pd.DataFrame, flds) -> pd.DataFrame:
    "The lesson's cells: sort ascending for After, descending for Before, loop."
    df = ev.sort_values(['Store', 'Date'])
    for f in flds: course_get_elapsed(df, f, 'After')
    df = df.sort_values(['Store', 'Date'], ascending=[True, False])
    for f in flds: course_get_elapsed(df, f, 'Before')
    return df


def course_rolling(ev: pd.DataFrame, flds):
    "The lesson's backward and forward 7-day rolling sums per store."
    df = ev.set_index('Date')
    bwd = df[['Store'] + flds].sort_index().groupby('Store').rolling(7, min_periods=1).sum()
    fwd = df[['Store'] + flds].sort_index(ascending=False).groupby('Store').rolling(7, min_periods=1).sum()
    return bwd, fwd


def _events(tables: dict) -> pd.DataFrame:
    tr = tables['train']
    return pd.DataFrame(dict(Date=pd.to_datetime(tr.Date), Store=tr.Store, Promo=tr.Promo,
                             StateHoliday=(tr.StateHoliday != '0'), SchoolHoliday=tr.SchoolHoliday))


def _time(fn, repeats: int) -> float:
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
    return median(ts)


# ---------------------------------------------------------------- rows

def run(quick: bool = False) -> list[dict]:
    "Rows for the benchmark table: the pipeline (rows/s, peak RSS), elapsed and rolling features against the course's code."
    from lessonkit.structured import add_elapsed, add_rolling
    n_rows, repeats = (100_000, 2) if quick else (1_000_000, 3)
    flds = ['SchoolHoliday', 'StateHoliday', 'Promo']
    rows = []

    log(f'structured: whole pipeline on {n_rows:,} generated rows, {repeats} repeats (own process)')
    p = run_pipeline(n_rows, repeats)
    t = median(p['times'])
    rows.append(make_row('rossmann_pipeline', f'rossmann_features + lesson prep + proc_df (train and test), {n_rows:,} train rows '
                         f'-> {p["out_shape"][0]:,}x{p["out_shape"][1]} frame; median of {repeats}: {t:.1f} s',
                         round(n_rows / t), 'rows/s', peak_rss_mb=round(p['peak_rss_mb'], 1),
                         seconds=t, times=p['times'], base_rss_mb=round(p['base_rss_mb'], 1),
                         pipeline_peak_mb=round(p['peak_rss_mb'] - p['base_rss_mb'], 1),
                         rss_scope='own process: interpreter + torch (imported by lessonkit.core) + raw tables (base_rss_mb), '
                                   'plus the pipeline (pipeline_peak_mb)'))

    tables = make_rossmann(n_rows)
    ev = _events(tables)
    log('structured: add_elapsed vs the course loop')
    t_vec = _time(lambda: add_elapsed(ev.copy(), flds), repeats)
    t_ref = _time(lambda: course_elapsed(ev.copy(), flds), 1)   # one run: it is slow
    rows.append(make_row('elapsed_features', f'add_elapsed (3 events, After+Before) on {n_rows:,} rows: {t_vec:.2f} s',
                         round(n_rows / t_vec), 'rows/s', reference=round(n_rows / t_ref),
                         ratio=round(t_ref / t_vec, 1), goal='>= 10', reference_what="the course's get_elapsed loop (rows/s)"))
    log('structured: add_rolling vs groupby().rolling()')
    t_vec = _time(lambda: add_rolling(ev.copy(), flds), repeats)
    t_ref = _time(lambda: course_rolling(ev, flds), repeats)
    rows.append(make_row('rolling_features', f'add_rolling (3 events, 7-row bw+fw) on {n_rows:,} rows: {t_vec:.2f} s',
                         round(n_rows / t_vec), 'rows/s', reference=round(n_rows / t_ref),
                         ratio=round(t_ref / t_vec, 1), goal='>= 1', reference_what="the course's groupby('Store').rolling(7).sum() (rows/s)"))
    return rows


if __name__ == '__main__':
    quick = '--quick' in sys.argv
    res = run(quick=quick)
    print(markdown_table(res))
    for r in res:
        extra = {k: v for k, v in r.items() if k not in ('name', 'what', 'figure', 'unit', 'reference', 'ratio', 'goal', 'ok', 'peak_rss_mb')}
        print(f"{r['name']}: {extra}")
