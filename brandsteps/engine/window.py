"""Window metrics for every brand at once: ratios of window sums, computed with numpy/pandas."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from brandsteps.catalogue import BASE_COLUMNS, GMV_FACTORS, METRICS

BURST_ROLLING_DAYS = 7
BURST_MIN_DAYS = 5  # a 7-day mean needs at least 5 measured days to be a mean of the week


def _ratio(num: np.ndarray, den: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """num / den, missing (NaN) where the denominator is 0 or unmeasured: never 0, never inf.

    A quotient too large for a float (1e300 over 1e-10) is no measurement either: missing too.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0) * scale, np.nan)
    result: np.ndarray = np.where(np.isnan(num) | np.isnan(den) | np.isinf(out), np.nan, out)
    return result


def _median_per_row(grid: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """np.nanmedian of each row of grid; NaN for a row without a measured value (measured: its count)."""
    median = np.full(len(grid), np.nan)
    has = measured > 0
    with np.errstate(invalid="ignore"):  # -inf and inf in the middle: NaN
        median[has] = np.nanmedian(grid[has], axis=1)
    return median


def _burst_coefficient(codes: np.ndarray, offset: np.ndarray, values: np.ndarray, n: int, width: int) -> np.ndarray:
    """Peak 7-day rolling mean of daily values over the window / median daily value.

    codes: brand position per row; offset: days from the window's first possible day (0..width-1).
    One n × width grid is reused for every step (100,000 brands × 28 days is 22 MB a copy).
    """
    if width < BURST_ROLLING_DAYS or n == 0:
        return np.full(n, np.nan)
    grid = np.full((n, width), np.nan)
    grid[codes, offset] = values
    missing = np.isnan(grid)
    # running counts of measured days, from 0 before the first day (small integers: exact)
    ccnt = np.zeros((n, width + 1), dtype=np.int32)
    np.cumsum(~missing, axis=1, out=ccnt[:, 1:])
    median = _median_per_row(grid, ccnt[:, -1])
    np.copyto(grid, 0.0, where=missing)  # now the filled grid: unmeasured days add nothing
    csum = np.zeros((n, width + 1))
    np.cumsum(grid, axis=1, out=csum[:, 1:])
    k = BURST_ROLLING_DAYS
    sums = csum[:, k:] - csum[:, :-k]
    counts = ccnt[:, k:] - ccnt[:, :-k]
    with np.errstate(divide="ignore", invalid="ignore"):
        means = np.where(counts >= BURST_MIN_DAYS, sums / np.maximum(counts, 1), np.nan)
    # nanmax is fmax.reduce; fmax leaves NaN only for a row without any 7-day mean
    peak = np.fmax.reduce(means, axis=1)
    return _ratio(peak, median)


def _last_per_brand(codes: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Each brand's value on its latest row that has one; codes and values in time order within each brand."""
    out = np.full(n, np.nan)
    has = ~np.isnan(values)
    codes, values = codes[has], values[has]
    last = np.flatnonzero(np.r_[codes[1:] != codes[:-1], True]) if len(codes) else np.empty(0, dtype=np.int64)
    out[codes[last]] = values[last]
    return out


def stage_windows(
    as_of: date, entered: np.ndarray, window_days: np.ndarray, lag_days: int | np.ndarray = 0
) -> tuple[np.ndarray, np.ndarray]:
    """First and last day (datetime64[ns]) of each brand's window.

    window_days ending lag_days before as_of, never before the brand entered its stage (docs/design.md#windows).
    A first day after the last is an empty window: the brand entered its stage after the lagged window ended.
    """
    end = np.datetime64(as_of, "ns") - np.asarray(lag_days, dtype="timedelta64[D]").astype("timedelta64[ns]")
    earliest = end - (np.asarray(window_days, dtype=np.int64) - 1).astype("timedelta64[D]").astype("timedelta64[ns]")
    start = np.maximum(earliest, np.asarray(entered, dtype="datetime64[ns]"))
    return start, np.broadcast_to(end, start.shape).copy()


def window_texts(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """'2026-11-16..2026-11-29' for each window ('' for an empty one), each distinct text built once."""
    first = np.asarray(start, dtype="datetime64[D]").astype(np.int64)
    last = np.asarray(end, dtype="datetime64[D]").astype(np.int64)
    pairs, inverse = np.unique(np.stack([first, last], axis=1).reshape(-1, 2), axis=0, return_inverse=True)
    texts = np.array(
        [f"{np.datetime64(a, 'D')}..{np.datetime64(b, 'D')}" if a <= b else "" for a, b in pairs.tolist()] or [""],
        dtype=object,
    )
    return np.asarray(texts[inverse.reshape(-1)], dtype=object) if len(first) else np.empty(0, dtype=object)


def lagged_name(metric: str, lag_days: int) -> str:
    """The window-metrics column holding `metric` computed over the window lag_days back ('refund_rate@lag7')."""
    return metric if lag_days == 0 else f"{metric}@lag{lag_days}"


_SUM_COLUMNS: tuple[str, ...] = (*BASE_COLUMNS, "uv")


# The frame's columns: the counts and sums, the metrics computed from them, then the two that are not.
_COLUMNS: list[str] = [
    "days_with_data",
    *(f"sum_{c}" for c in _SUM_COLUMNS),
    *(name for name, spec in METRICS.items() if spec.kind in ("sum", "ratio", "mean", "last")),
    "live_hours_per_day",
    "burst_coefficient",
]
_EMPTY_COLUMNS: list[str] = list(dict.fromkeys(["days_with_data", *(f"sum_{c}" for c in _SUM_COLUMNS), *METRICS]))


def compute_window_metrics(daily: pd.DataFrame, windows: pd.DataFrame) -> pd.DataFrame:
    """Window sums and every derived metric of docs/domain.md#metrics, one row per brand of `windows`.

    daily: brand_id (text or Categorical), date (datetime64), base columns and uv (NaN = not measured).
    windows: index brand_id; columns window_start, window_end (Timestamps), window_len (days), and
    optionally burst (bool): only these brands' rules read burst_coefficient, the one metric that needs
    a day-by-day grid; the others get it missing.
    A window sum over days where a column was never measured is missing, not 0.
    """
    n = len(windows)
    index = windows.index
    if n == 0:
        return pd.DataFrame(columns=_EMPTY_COLUMNS, index=index, dtype=float)
    names = _COLUMNS
    # Every output column is written into one block, which becomes the frame without a copy.
    block = np.empty((len(names), n))
    out: dict[str, np.ndarray] = {name: block[i] for i, name in enumerate(names)}
    # a Categorical brand_id (what load_metrics gives) is looked up once per distinct id, not once per row
    codes_all = index.get_indexer(pd.Index(daily["brand_id"]))
    known = codes_all >= 0
    safe_codes = np.where(known, codes_all, 0)
    dates_ns = daily["date"].to_numpy(dtype="datetime64[ns]")
    start = windows["window_start"].to_numpy(dtype="datetime64[ns]")
    end = windows["window_end"].to_numpy(dtype="datetime64[ns]")
    # rows are gathered per column by position, not copied whole with .loc (26 columns)
    rows = np.flatnonzero(known & (dates_ns >= start[safe_codes]) & (dates_ns <= end[safe_codes]))
    codes = codes_all[rows]
    days = dates_ns[rows]
    days_with_data = np.bincount(codes, minlength=n)
    out["days_with_data"][:] = days_with_data
    counts: dict[str, np.ndarray] = {}
    kept: dict[str, np.ndarray] = {}
    needed = {spec.numerator for spec in METRICS.values() if spec.kind == "last"} | {"gmv_affiliate"}
    for col in _SUM_COLUMNS:
        v = daily[col].to_numpy(dtype=float).take(rows)
        total, count = _bincount_sums(v, codes, days_with_data)
        np.copyto(out[f"sum_{col}"], np.where(count > 0, total, np.nan))
        counts[col] = count
        if col in needed:
            kept[col] = v

    window_len = windows["window_len"].to_numpy(dtype=float)
    width = max(int(windows["window_len"].max()), 0)
    in_time = np.lexsort((days.view(np.int64), codes))  # each brand's rows in time order, for the 'last' metrics
    for name, spec in METRICS.items():
        if spec.kind == "sum":
            out[name][:] = out[f"sum_{spec.numerator}"]
        elif spec.kind == "ratio":
            out[name][:] = _ratio(out[f"sum_{spec.numerator}"], out[f"sum_{spec.denominator}"], spec.scale)
        elif spec.kind == "mean":
            out[name][:] = _ratio(out[f"sum_{spec.numerator}"], counts[spec.numerator].astype(float))
        elif spec.kind == "last":
            out[name][:] = _last_per_brand(codes[in_time], kept[spec.numerator][in_time], n)
    out["live_hours_per_day"][:] = _ratio(out["sum_live_minutes"], window_len * 60.0)
    out["burst_coefficient"][:] = np.nan
    wanted = windows["burst"].to_numpy(dtype=bool) if "burst" in windows else np.ones(n, dtype=bool)
    if wanted.any():
        brands = np.flatnonzero(wanted)
        compact = np.full(n, -1, dtype=np.int64)
        compact[brands] = np.arange(len(brands))
        burst_rows = np.flatnonzero(wanted[codes])
        b_codes = codes[burst_rows]
        b_offset = _day_offsets(days[burst_rows], start, b_codes)
        out["burst_coefficient"][brands] = _burst_coefficient(
            compact[b_codes], b_offset, kept["gmv_affiliate"][burst_rows], len(brands), width
        )
    return pd.DataFrame(block.T, index=index, columns=names, copy=False)


def _bincount_sums(v: np.ndarray, codes: np.ndarray, days_with_data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each brand's sum of v over its measured rows (in row order) and its count of them.

    An unmeasured day adds 0.0 in its place: a total started at 0.0 never is -0.0, so adding 0.0 leaves it
    as it is, and the totals are those of the measured rows, bit for bit (inf and -inf still give NaN).
    """
    missing = np.isnan(v)
    total = np.bincount(codes, weights=np.where(missing, 0.0, v), minlength=len(days_with_data))
    return total, days_with_data - np.bincount(codes[missing], minlength=len(days_with_data))


def _day_offsets(days: np.ndarray, start: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Whole days from each row's window start (0 on the first day)."""
    offset: np.ndarray = ((days - start[codes]) // np.timedelta64(1, "D")).astype(int)
    return offset


def gmv_factor_product(metrics: pd.DataFrame) -> pd.Series:
    """UV × watch/UV × buyers/minute × orders/buyer × GMV/order: equals window GMV by construction."""
    product = pd.Series(1.0, index=metrics.index)
    for factor in GMV_FACTORS:
        product = product * metrics[factor]
    return product
