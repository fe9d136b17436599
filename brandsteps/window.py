"""Window metrics for every brand at once: ratios of window sums, computed with numpy/pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd

from brandsteps.catalogue import BASE_COLUMNS, GMV_FACTORS, METRICS

BURST_ROLLING_DAYS = 7
BURST_MIN_DAYS = 5  # a 7-day mean needs at least 5 measured days to be a mean of the week


def _ratio(num: np.ndarray, den: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """num / den, missing (NaN) where the denominator is 0 or unmeasured: never 0, never inf."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0) * scale, np.nan)
    return np.where(np.isnan(num) | np.isnan(den), np.nan, out)


def _last_per_group(codes: np.ndarray, order_key: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """The value on the latest day that has one, per group code."""
    out = np.full(n, np.nan)
    has = ~np.isnan(values)
    if not has.any():
        return out
    c, k, v = codes[has], order_key[has], values[has]
    order = np.lexsort((k, c))
    c, v = c[order], v[order]
    last = np.r_[c[1:] != c[:-1], True]
    out[c[last]] = v[last]
    return out


def _burst_coefficient(codes: np.ndarray, offset: np.ndarray, values: np.ndarray, n: int, width: int) -> np.ndarray:
    """Peak 7-day rolling mean of daily values over the window / median daily value.

    codes: brand position per row; offset: days from the window's first possible day (0..width-1).
    """
    if width < BURST_ROLLING_DAYS or n == 0:
        return np.full(n, np.nan)
    grid = np.full((n, width), np.nan)
    grid[codes, offset] = values
    measured = ~np.isnan(grid)
    filled = np.where(measured, grid, 0.0)
    csum = np.concatenate([np.zeros((n, 1)), np.cumsum(filled, axis=1)], axis=1)
    ccnt = np.concatenate([np.zeros((n, 1)), np.cumsum(measured, axis=1)], axis=1)
    k = BURST_ROLLING_DAYS
    sums = csum[:, k:] - csum[:, :-k]
    counts = ccnt[:, k:] - ccnt[:, :-k]
    with np.errstate(divide="ignore", invalid="ignore"):
        means = np.where(counts >= BURST_MIN_DAYS, sums / np.maximum(counts, 1), np.nan)
    all_nan_rows = np.isnan(means).all(axis=1)
    peak = np.full(n, np.nan)
    if (~all_nan_rows).any():
        peak[~all_nan_rows] = np.nanmax(means[~all_nan_rows], axis=1)
    median = np.full(n, np.nan)
    any_measured = measured.any(axis=1)
    if any_measured.any():
        median[any_measured] = np.nanmedian(grid[any_measured], axis=1)
    return _ratio(peak, median)


def compute_window_metrics(daily: pd.DataFrame, windows: pd.DataFrame) -> pd.DataFrame:
    """Window sums and every derived metric of DOMAIN.md, one row per brand of `windows`.

    daily: brand_id, date (datetime64), base columns and uv (NaN = not measured).
    windows: index brand_id; columns window_start, window_end (Timestamps), window_len (days).
    A window sum over days where a column was never measured is missing, not 0.
    """
    n = len(windows)
    index = windows.index
    out: dict[str, np.ndarray] = {}
    if n == 0:
        columns = ["days_with_data", *(f"sum_{c}" for c in (*BASE_COLUMNS, "uv")), *METRICS]
        return pd.DataFrame(columns=list(dict.fromkeys(columns)), index=index, dtype=float)
    codes_all = index.get_indexer(pd.Index(daily["brand_id"]))
    known = codes_all >= 0
    dates_ns = daily["date"].to_numpy(dtype="datetime64[ns]")
    start = windows["window_start"].to_numpy(dtype="datetime64[ns]")
    end = windows["window_end"].to_numpy(dtype="datetime64[ns]")
    safe_codes = np.where(known, codes_all, 0)
    in_window = known & (dates_ns >= start[safe_codes]) & (dates_ns <= end[safe_codes])
    codes = codes_all[in_window]
    rows = daily.loc[in_window]

    out["days_with_data"] = np.bincount(codes, minlength=n).astype(float)
    for col in (*BASE_COLUMNS, "uv"):
        v = rows[col].to_numpy(dtype=float)
        has = ~np.isnan(v)
        total = np.bincount(codes[has], weights=v[has], minlength=n)
        count = np.bincount(codes[has], minlength=n)
        out[f"sum_{col}"] = np.where(count > 0, total, np.nan)
        out[f"n_{col}"] = count.astype(float)

    day_key = dates_ns[in_window].astype("int64")
    for name, spec in METRICS.items():
        if spec.kind == "sum":
            out[name] = out[f"sum_{spec.numerator}"]
        elif spec.kind == "ratio":
            out[name] = _ratio(out[f"sum_{spec.numerator}"], out[f"sum_{spec.denominator}"], spec.scale)
        elif spec.kind == "mean":
            out[name] = _ratio(out[f"sum_{spec.numerator}"], out[f"n_{spec.numerator}"])
        elif spec.kind == "last":
            out[name] = _last_per_group(codes, day_key, rows[spec.numerator].to_numpy(dtype=float), n)
    window_len = windows["window_len"].to_numpy(dtype=float)
    out["live_hours_per_day"] = _ratio(out["sum_live_minutes"], window_len * 60.0)
    width = int(windows["window_len"].max()) if n else 0
    offset = ((dates_ns[in_window] - start[codes]) // np.timedelta64(1, "D")).astype(int)
    out["burst_coefficient"] = _burst_coefficient(
        codes, offset, rows["gmv_affiliate"].to_numpy(dtype=float), n, max(width, 0)
    )
    frame = pd.DataFrame({k: v for k, v in out.items() if not k.startswith("n_")}, index=index)
    return frame


def gmv_factor_product(metrics: pd.DataFrame) -> pd.Series:
    """UV × watch/UV × buyers/minute × orders/buyer × GMV/order: equals window GMV by construction."""
    product = pd.Series(1.0, index=metrics.index)
    for factor in GMV_FACTORS:
        product = product * metrics[factor]
    return product
