"""Window metrics' fast paths give exactly what the plain computations give: Categorical ids, grids, one sort."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brandsteps.catalogue import BASE_COLUMNS, UV_COLUMNS
from brandsteps.engine import window
from brandsteps.engine.window import (
    _bincount_sums,
    _in_date_order,
    _last_in_order,
    _last_per_group,
    _median_per_row,
    compute_window_metrics,
)


def _daily(n_rows: int, seed: int) -> pd.DataFrame:
    """Random rows over 6 known brands, 1 unknown and a missing id, NaN on some days, some days twice."""
    rng = np.random.default_rng(seed)
    ids = np.array(["b0", "b1", "b2", "b3", "b4", "b5", "stranger", None], dtype=object)
    frame = pd.DataFrame(
        {
            "brand_id": ids[rng.integers(0, len(ids), n_rows)],
            "date": pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 20, n_rows), unit="D"),
        }
    )
    for col in BASE_COLUMNS:
        values = rng.uniform(0, 100, n_rows)
        values[rng.random(n_rows) < 0.2] = np.nan
        frame[col] = values
    frame["uv"] = frame[list(UV_COLUMNS)].sum(axis=1, min_count=3)
    return frame


def _windows() -> pd.DataFrame:
    # b5 has no rows in the window of 14 days ending 2026-01-20 only by chance; "ghost" has none at all
    ends = pd.Timestamp("2026-01-20")
    lens = {"b0": 7, "b1": 14, "b2": 3, "b3": 14, "b4": 7, "b5": 1, "ghost": 14}
    out = pd.DataFrame(
        {"window_end": ends, "window_len": list(lens.values())}, index=pd.Index(list(lens), name="brand_id")
    )
    out["window_start"] = out["window_end"] - pd.to_timedelta(out["window_len"] - 1, unit="D")
    return out[["window_start", "window_end", "window_len"]]


def _bits(frame: pd.DataFrame) -> np.ndarray:
    values = frame.to_numpy(dtype=float)
    return np.where(np.isnan(values), 0.0, values).view(np.int64)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_categorical_brand_ids_give_bit_identical_metrics(seed: int) -> None:
    # load_metrics hands over brand_id as a Categorical (categories in no particular order here,
    # one unused); hand-built frames hold text: both must give the same bits
    plain = _daily(400, seed)
    categorical = plain.assign(
        brand_id=pd.Categorical(
            plain["brand_id"], categories=["b3", "stranger", "b0", "b1", "b2", "b4", "b5", "unused"]
        )
    )
    a = compute_window_metrics(plain, _windows())
    b = compute_window_metrics(categorical, _windows())
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert np.array_equal(_bits(a), _bits(b))
    assert a.loc["ghost", "days_with_data"] == 0 and np.isnan(a.loc["ghost", "gmv"])  # no rows: missing, not 0


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ([np.nan, np.nan, np.nan], np.nan),  # nothing measured
        ([4.0, np.nan, np.nan], 4.0),  # one value is its own median
        ([4.0, np.nan, 1.0], 2.5),  # even count: the mean of the two middle values
        ([3.0, 1.0, 2.0], 2.0),  # odd count: the middle value
        ([np.inf, 1.0, np.nan], np.inf),  # (1 + inf) / 2
        ([-np.inf, np.inf, np.nan], np.nan),  # (-inf + inf) / 2, as NumPy's nanmedian gives
    ],
)
def test_median_per_row_matches_nanmedian(row: list[float], expected: float) -> None:
    grid = np.array([row])
    got = _median_per_row(grid, (~np.isnan(grid)).sum(axis=1))
    with np.errstate(invalid="ignore"):
        reference = np.nanmedian(grid, axis=1) if (~np.isnan(grid)).any() else np.array([np.nan])
    assert np.array_equal(got, [expected], equal_nan=True)
    assert np.array_equal(got, reference, equal_nan=True)


def test_median_per_row_matches_nanmedian_on_random_grids() -> None:
    # bit for bit, the burst coefficient's denominator must not move
    rng = np.random.default_rng(7)
    grid = rng.uniform(0, 1e6, (500, 28))
    grid[rng.random(grid.shape) < 0.4] = np.nan
    grid[0] = np.nan
    count = (~np.isnan(grid)).sum(axis=1)
    measured = count > 0
    got = _median_per_row(grid, count)
    assert np.isnan(got[0])
    assert np.array_equal(got[measured].view(np.int64), np.nanmedian(grid[measured], axis=1).view(np.int64))


# rows: (brand code, day, hour, value); the latest measured day's value wins
LAST_CASES = [
    ([(0, 0, 0, 1.0), (0, 2, 0, 3.0), (0, 1, 0, 2.0)], [3.0, np.nan]),  # rows out of date order
    (
        [(0, 0, 0, 1.0), (0, 2, 0, np.nan), (1, 1, 0, 5.0)],
        [1.0, 5.0],
    ),  # a missing last day falls back to the day before
    ([(0, 1, 9, 1.0), (0, 1, 18, 2.0)], [2.0, np.nan]),  # two rows of one day: the later time of day (sort path)
    ([(1, 0, 23, 4.0), (1, 1, 1, 6.0)], [np.nan, 6.0]),  # times of day on different days: still by day
]


@pytest.mark.parametrize(("rows", "expected"), LAST_CASES)
def test_last_per_group_grid_and_sort_agree(rows: list[tuple[int, int, int, float]], expected: list[float]) -> None:
    codes = np.array([r[0] for r in rows])
    offset = np.array([r[1] for r in rows])
    key = (
        (
            np.datetime64("2026-01-01")
            + offset.astype("timedelta64[D]")
            + np.array([r[2] for r in rows]).astype("timedelta64[h]")
        )
        .astype("datetime64[ns]")
        .astype(np.int64)
    )
    values = np.array([r[3] for r in rows])
    width = 3
    slots = codes * width + offset
    by_sort = _last_per_group(codes, key, values, 2)
    assert np.array_equal(by_sort, expected, equal_nan=True)
    if len(np.unique(slots)) == len(slots):  # the grid only stands in when every (brand, day) has one row
        assert np.array_equal(_last_per_group(codes, key, values, 2, slots, width), expected, equal_nan=True)


def test_a_brand_with_an_unmeasured_day_sums_only_its_measured_days() -> None:
    # the first sum over every row meets NaN and the measured rows are summed again; inf and -inf give NaN as before
    daily = pd.DataFrame(
        {
            "brand_id": ["a", "a", "b", "b", "c"],
            "date": pd.to_datetime(["2026-01-01", "2026-01-02"] * 2 + ["2026-01-01"]),
        }
    )
    for col in (*BASE_COLUMNS, "uv"):
        daily[col] = 1.0
    daily["gmv"] = [10.0, np.nan, np.inf, -np.inf, np.nan]
    windows = pd.DataFrame(
        {"window_start": pd.Timestamp("2026-01-01"), "window_end": pd.Timestamp("2026-01-02"), "window_len": 2},
        index=pd.Index(["a", "b", "c"], name="brand_id"),
    )
    m = compute_window_metrics(daily, windows)
    assert m.loc["a", "gmv"] == 10.0  # one measured day of two
    assert np.isnan(m.loc["b", "gmv"])  # inf + -inf has no value
    assert np.isnan(m.loc["c", "gmv"])  # never measured: missing, not 0
    assert m["sum_orders"].tolist() == [2.0, 2.0, 1.0]  # other columns untouched by gmv's re-sum


def _complete_days(n_brands: int, days: int, seed: int) -> pd.DataFrame:
    """Rows as load_metrics gives them: brand by brand, each brand's days in order, some values unmeasured."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "brand_id": np.repeat([f"b{i}" for i in range(n_brands)], days),
            "date": np.tile(pd.date_range("2026-01-01", periods=days, freq="D").to_numpy(), n_brands),
        }
    )
    for col in BASE_COLUMNS:
        values = rng.uniform(-50, 1e6, len(frame)) * 10.0 ** rng.integers(-3, 4, len(frame))
        values[rng.random(len(frame)) < 0.15] = np.nan
        frame[col] = values
    frame["uv"] = frame[list(UV_COLUMNS)].sum(axis=1, min_count=3)
    return frame


def _varied_windows(n_brands: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    lens = rng.integers(1, 15, n_brands)
    out = pd.DataFrame(
        {"window_end": pd.Timestamp("2026-01-14"), "window_len": lens},
        index=pd.Index([f"b{i}" for i in range(n_brands)], name="brand_id"),
    )
    out["window_start"] = out["window_end"] - pd.to_timedelta(out["window_len"] - 1, unit="D")
    out["burst"] = rng.random(n_brands) < 0.5
    return out[["window_start", "window_end", "window_len", "burst"]]


@pytest.mark.parametrize("seed", [0, 1])
def test_rows_in_date_order_give_the_bits_of_shuffled_rows(seed: int) -> None:
    # in order (brand by brand, days increasing), the 'last' metrics read each brand's last row;
    # shuffled, the same rows go through the grid and sort: every metric must be bit-identical
    ordered = _complete_days(40, 14, seed)
    shuffled = ordered.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    windows = _varied_windows(40, seed)
    a = compute_window_metrics(ordered, windows)
    b = compute_window_metrics(shuffled, windows)
    # sums add rows in row order, so a shuffle may move their last bits; these never depend on it
    by_day = ["store_rating", "exclusive_sku_count", "burst_coefficient", "days_with_data"]
    assert np.array_equal(_bits(a[by_day]), _bits(b[by_day]))
    assert a["store_rating"].notna().any() and a["burst_coefficient"].notna().any()


@pytest.mark.parametrize("seed", [0, 1])
def test_categories_equal_to_the_index_give_the_bits_of_hashed_ids(seed: int) -> None:
    # every brand due: the Categorical's categories are the windows' index, and its codes are the
    # positions; in another order (or with one more brand) the ids are looked up: same bits
    daily = _complete_days(30, 14, seed)
    windows = _varied_windows(30, seed)
    same = daily.assign(brand_id=pd.Categorical(daily["brand_id"], categories=list(windows.index)))
    other = daily.assign(brand_id=pd.Categorical(daily["brand_id"], categories=[*reversed(windows.index), "extra"]))
    a = compute_window_metrics(same, windows)
    b = compute_window_metrics(other, windows)
    c = compute_window_metrics(daily, windows)
    assert np.array_equal(_bits(a), _bits(b))
    assert np.array_equal(_bits(a), _bits(c))


def test_measured_rows_are_summed_as_if_the_unmeasured_were_not_there() -> None:
    # the second sum adds 0.0 for an unmeasured day: the bits of summing only the measured rows
    rng = np.random.default_rng(3)
    codes = np.repeat(np.arange(200), 9)
    v = rng.uniform(-1e6, 1e6, len(codes)) * 10.0 ** rng.integers(-8, 8, len(codes))
    v[rng.random(len(v)) < 0.3] = np.nan
    v[5] = -0.0
    total, count = _bincount_sums(v, codes, np.bincount(codes, minlength=200))
    has = ~np.isnan(v)
    expected = np.bincount(codes[has], weights=v[has], minlength=200)
    assert np.array_equal(total.view(np.int64), expected.view(np.int64))
    assert np.array_equal(count, np.bincount(codes[has], minlength=200))


@pytest.mark.parametrize(
    ("codes", "days", "in_order"),
    [
        ([0, 0, 1, 1], [1, 2, 1, 2], True),
        ([0, 0, 1], [2, 1, 5], False),  # a brand's days out of order
        ([0, 1, 0], [1, 1, 2], False),  # a brand's rows apart
        ([0, 0], [3, 3], False),  # one day twice
        ([2], [7], True),
    ],
)
def test_in_date_order(codes: list[int], days: list[int], in_order: bool) -> None:
    assert _in_date_order(np.array(codes), np.array(days, dtype=np.int64)) is in_order


@pytest.mark.parametrize(
    ("rows", "expected"), [c for c in LAST_CASES if c[0][0][2] == 0 and len({(r[0], r[1]) for r in c[0]}) == len(c[0])]
)
def test_last_in_order_agrees_with_the_sort(rows: list[tuple[int, int, int, float]], expected: list[float]) -> None:
    ordered = sorted(rows)
    codes = np.array([r[0] for r in ordered])
    key = np.array([r[1] for r in ordered], dtype=np.int64)
    values = np.array([r[3] for r in ordered])
    assert np.array_equal(_last_in_order(codes, values, 2), expected, equal_nan=True)
    assert np.array_equal(_last_in_order(codes, values, 2), _last_per_group(codes, key, values, 2), equal_nan=True)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("known_only", [False, True])
def test_windows_ending_on_one_day_give_the_bits_of_windows_ending_apart(seed: int, known_only: bool) -> None:
    # windows ending on different days compare each row with its brand's end; one brand alone
    # (all windows ending on one day) compares every row with that day: the same bits per brand
    daily = _daily(400, seed)
    if known_only:  # every row's brand among the windows: no unknown rows to leave out
        daily = daily[daily["brand_id"].isin(["b0", "b1", "b2", "b3", "b4", "b5"])]
    windows = _windows()
    windows["window_end"] = windows["window_end"] - pd.to_timedelta([0, 2, 5, 0, 1, 3, 0], unit="D")
    windows["window_start"] = windows["window_end"] - pd.to_timedelta(windows["window_len"] - 1, unit="D")
    apart = compute_window_metrics(daily, windows)
    for brand in windows.index:
        alone = compute_window_metrics(daily, windows.loc[[brand]])
        assert np.array_equal(_bits(alone), _bits(apart.loc[[brand]])), brand


@pytest.mark.parametrize(
    ("categories", "index", "same"),
    [
        (["a", "b"], ["a", "b"], True),
        (["a", "b"], ["b", "a"], False),  # order matters: codes index positions
        (["ab", "c"], ["a", "bc"], False),  # same bytes, cut apart elsewhere
        (["a", "é"], ["a", "é"], True),
        (["a", "b"], ["a", None], False),  # not every id a text: compared as objects
        (["a", "b"], ["a", b"b"], False),
    ],
)
@pytest.mark.parametrize("dtype", ["str", object])
def test_same_texts_equals_comparing_objects(
    categories: list[str], index: list[object], same: bool, dtype: object
) -> None:
    cats = pd.Index(categories, dtype=dtype)
    ids = pd.Index(index, dtype=object)
    assert window._same_texts(cats, ids) is same
    assert same == bool(np.array_equal(np.asarray(cats, dtype=object), np.asarray(ids, dtype=object)))
