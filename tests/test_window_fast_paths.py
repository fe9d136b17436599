"""Window metrics' fast paths give exactly what the plain computations give: Categorical ids, grids, one sort."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brandsteps.catalogue import BASE_COLUMNS, UV_COLUMNS
from brandsteps.window import _last_per_group, _median_per_row, compute_window_metrics


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
    out = pd.DataFrame({"window_end": ends, "window_len": list(lens.values())}, index=pd.Index(list(lens), name="brand_id"))
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
    categorical = plain.assign(brand_id=pd.Categorical(plain["brand_id"], categories=["b3", "stranger", "b0", "b1", "b2", "b4", "b5", "unused"]))
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
    ([(0, 0, 0, 1.0), (0, 2, 0, np.nan), (1, 1, 0, 5.0)], [1.0, 5.0]),  # a missing last day falls back to the day before
    ([(0, 1, 9, 1.0), (0, 1, 18, 2.0)], [2.0, np.nan]),  # two rows of one day: the later time of day (sort path)
    ([(1, 0, 23, 4.0), (1, 1, 1, 6.0)], [np.nan, 6.0]),  # times of day on different days: still by day
]


@pytest.mark.parametrize(("rows", "expected"), LAST_CASES)
def test_last_per_group_grid_and_sort_agree(rows: list[tuple[int, int, int, float]], expected: list[float]) -> None:
    codes = np.array([r[0] for r in rows])
    offset = np.array([r[1] for r in rows])
    key = (np.datetime64("2026-01-01") + offset.astype("timedelta64[D]") + np.array([r[2] for r in rows]).astype("timedelta64[h]")).astype("datetime64[ns]").astype(np.int64)
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
        {"window_start": pd.Timestamp("2026-01-01"), "window_end": pd.Timestamp("2026-01-02"), "window_len": 2}, index=pd.Index(["a", "b", "c"], name="brand_id")
    )
    m = compute_window_metrics(daily, windows)
    assert m.loc["a", "gmv"] == 10.0  # one measured day of two
    assert np.isnan(m.loc["b", "gmv"])  # inf + -inf has no value
    assert np.isnan(m.loc["c", "gmv"])  # never measured: missing, not 0
    assert m["sum_orders"].tolist() == [2.0, 2.0, 1.0]  # other columns untouched by gmv's re-sum
