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


def _last_per_group(
    codes: np.ndarray,
    order_key: np.ndarray,
    values: np.ndarray,
    n: int,
    slots: np.ndarray | None = None,
    width: int = 0,
) -> np.ndarray:
    """The value on the latest day that has one, per group code.

    slots: each row's place in an n × width grid of (group, day), given when no two rows share a
    place; reading each grid row's last measured place then replaces sorting every row.
    """
    out = np.full(n, np.nan)
    has = ~np.isnan(values)
    if not has.any():
        return out
    if slots is not None:
        grid = np.full(n * width, np.nan)
        grid[slots[has]] = values[has]
        rows = grid.reshape(n, width)
        # the first measured place reading each row backwards; a row with none reads its NaN last place
        last = width - 1 - np.argmax(~np.isnan(rows[:, ::-1]), axis=1)
        result: np.ndarray = rows[np.arange(n), last]
        return result
    c, k, v = codes[has], order_key[has], values[has]
    order = np.lexsort((k, c))
    c, v = c[order], v[order]
    last_of_group = np.r_[c[1:] != c[:-1], True]
    out[c[last_of_group]] = v[last_of_group]
    return out


def _median_per_row(grid: np.ndarray, count: np.ndarray) -> np.ndarray:
    """np.nanmedian(grid, axis=1), given each row's count of measured (non-NaN) values.

    The same arithmetic as NumPy's nanmedian for short rows (a masked median): (low + high) / 2
    of the two middle measured values, the middle one twice for an odd count; one sort of the
    grid puts NaN after the measured values. A row with none reads NaN at its end.
    """
    ordered = np.sort(grid, axis=1)
    high = count // 2
    low = np.where(count % 2 == 1, high, high - 1)
    rows = np.arange(len(grid))
    with np.errstate(invalid="ignore"):  # -inf and inf in the middle: NaN, as nanmedian
        result: np.ndarray = (ordered[rows, low] + ordered[rows, high]) / 2.0
    return result


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


def _brand_positions(brand: pd.Series, index: pd.Index) -> np.ndarray:
    """Each row's position in index, -1 where the brand is not there.

    A Categorical column (what load_metrics gives) maps its distinct ids and takes the row codes:
    hashing 100,000 ids instead of 3.5 million row strings; when its categories are the index
    itself (every brand due), comparing them in order is cheaper still than hashing them.
    """
    if isinstance(brand.dtype, pd.CategoricalDtype):
        codes = brand.cat.codes.to_numpy()
        categories = brand.cat.categories
        if len(categories) == len(index) and _same_texts(categories, index):
            return codes.astype(np.int64)  # code -1 (a missing id) stays -1
        per_category = index.get_indexer(categories)
        positions: np.ndarray = np.append(per_category, -1)[codes]  # code -1: a missing id
        return positions
    return index.get_indexer(pd.Index(brand))


def _same_texts(categories: pd.Index, index: pd.Index) -> bool:
    """Whether the categories are the index's ids, in the same order (compared as Python objects)."""
    return bool(np.array_equal(np.asarray(categories, dtype=object), np.asarray(index, dtype=object)))


def _in_date_order(codes: np.ndarray, day_key: np.ndarray) -> bool:
    """Whether rows come brand by brand, each brand's days strictly increasing (how load_metrics sorts them).

    Then each brand's last row is its latest day, and no two rows share a day: the 'last' metrics
    read group ends instead of a grid or a sort.
    """
    if len(codes) < 2:
        return True
    later_brand = codes[1:] > codes[:-1]
    return bool((later_brand | ((codes[1:] == codes[:-1]) & (day_key[1:] > day_key[:-1]))).all())


def _last_in_order(codes: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """_last_per_group for rows in date order per brand (see _in_date_order): each brand's last measured row."""
    out = np.full(n, np.nan)
    has = ~np.isnan(values)
    if not has.all():
        codes, values = codes[has], values[has]
    if len(codes):
        last = np.flatnonzero(np.r_[codes[1:] != codes[:-1], True])
        out[codes[last]] = values[last]
    return out


def stage_windows(
    as_of: date, entered: np.ndarray, window_days: np.ndarray, lag_days: int | np.ndarray = 0
) -> tuple[np.ndarray, np.ndarray]:
    """First and last day (datetime64[ns]) of each brand's window: window_days ending lag_days before as_of, never before
    the brand entered its stage (docs/design.md#windows). A first day after the last is an empty window: the brand
    entered its stage after the lagged window ended.
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
    codes_all = _brand_positions(daily["brand_id"], index)
    known = codes_all >= 0
    dates_ns = daily["date"].to_numpy(dtype="datetime64[ns]")
    start = windows["window_start"].to_numpy(dtype="datetime64[ns]")
    end = windows["window_end"].to_numpy(dtype="datetime64[ns]")
    every_known = bool(known.all())
    safe_codes = codes_all if every_known else np.where(known, codes_all, 0)
    # a cycle's windows all end on its day: one bound for every row, not one gathered per row
    row_end = end[0] if bool((end == end[0]).all()) else end[safe_codes]
    in_window = (dates_ns >= start[safe_codes]) & (dates_ns <= row_end)
    if not every_known:
        in_window &= known
    # Rows are gathered per column by position, not copied whole with .loc (26 columns); when
    # every row is in a window, the columns are read as they are.
    rows = np.flatnonzero(in_window)
    every = len(rows) == len(codes_all)
    codes = codes_all if every else codes_all[rows]
    days = dates_ns if every else dates_ns[rows]
    days_with_data = np.bincount(codes, minlength=n)
    out["days_with_data"][:] = days_with_data
    counts: dict[str, np.ndarray] = {}
    kept: dict[str, np.ndarray] = {}
    needed = {spec.numerator for spec in METRICS.values() if spec.kind == "last"} | {"gmv_affiliate"}
    for col in _SUM_COLUMNS:
        column = daily[col].to_numpy(dtype=float)
        v = column if every else column.take(rows)
        total, count = _bincount_sums(v, codes, days_with_data)
        np.copyto(out[f"sum_{col}"], np.where(count > 0, total, np.nan))
        counts[col] = count
        if col in needed:
            kept[col] = v

    window_len = windows["window_len"].to_numpy(dtype=float)
    width = max(int(windows["window_len"].max()), 0)
    day_key = days.view(np.int64)  # the exact timestamps, for the sort when no grid stands in
    in_order = _in_date_order(codes, day_key)
    offset: np.ndarray | None = None
    slots: np.ndarray | None = None
    if not in_order:
        offset = _day_offsets(days, start, codes)
        slots = _day_slots(codes, offset, n, width)
    for name, spec in METRICS.items():
        if spec.kind == "sum":
            out[name][:] = out[f"sum_{spec.numerator}"]
        elif spec.kind == "ratio":
            out[name][:] = _ratio(out[f"sum_{spec.numerator}"], out[f"sum_{spec.denominator}"], spec.scale)
        elif spec.kind == "mean":
            out[name][:] = _ratio(out[f"sum_{spec.numerator}"], counts[spec.numerator].astype(float))
        elif spec.kind == "last":
            values = kept[spec.numerator]
            out[name][:] = (
                _last_in_order(codes, values, n)
                if in_order
                else _last_per_group(codes, day_key, values, n, slots, width)
            )
    out["live_hours_per_day"][:] = _ratio(out["sum_live_minutes"], window_len * 60.0)
    out["burst_coefficient"][:] = np.nan
    wanted = windows["burst"].to_numpy(dtype=bool) if "burst" in windows else np.ones(n, dtype=bool)
    if wanted.any():
        brands = np.flatnonzero(wanted)
        compact = np.full(n, -1, dtype=np.int64)
        compact[brands] = np.arange(len(brands))
        burst_rows = np.flatnonzero(wanted[codes])
        b_codes = codes[burst_rows]
        b_offset = offset[burst_rows] if offset is not None else _day_offsets(days[burst_rows], start, b_codes)
        out["burst_coefficient"][brands] = _burst_coefficient(
            compact[b_codes], b_offset, kept["gmv_affiliate"][burst_rows], len(brands), width
        )
    return pd.DataFrame(block.T, index=index, columns=names, copy=False)


def _bincount_sums(v: np.ndarray, codes: np.ndarray, days_with_data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each brand's sum of v over its rows (in row order) and its count of measured rows.

    Every row summed first: a NaN total means a brand has an unmeasured day (or inf met -inf),
    and only then are the measured rows summed again, in the same order.
    """
    n = len(days_with_data)
    total = np.bincount(codes, weights=v, minlength=n)
    count = days_with_data
    if np.isnan(total).any():
        missing = np.isnan(v)
        # an unmeasured day adds 0.0 in its place: a total started at 0.0 never is -0.0, so adding
        # 0.0 leaves it as it is, and the totals are those of the measured rows, bit for bit
        total = np.bincount(codes, weights=np.where(missing, 0.0, v), minlength=n)
        count = days_with_data - np.bincount(codes[missing], minlength=n)
    return total, count


def _day_offsets(days: np.ndarray, start: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Whole days from each row's window start (0 on the first day)."""
    offset: np.ndarray = ((days - start[codes]) // np.timedelta64(1, "D")).astype(int)
    return offset


def _day_slots(codes: np.ndarray, offset: np.ndarray, n: int, width: int) -> np.ndarray | None:
    """Each row's place in an n × width grid of (brand, day), or None when a grid cannot stand in for a sort.

    Validated metrics have one row per brand and day; a hand-built frame may hold two rows of one
    day (two times of day), and then only sorting by the exact timestamp says which is last. With
    one row per place, a later place is a later timestamp (whole days from the same window start).
    """
    if (
        len(codes) == 0
        or width <= 0
        or offset.min() < 0
        or offset.max() >= width
        or n * width > 4 * len(codes) + (1 << 22)
    ):
        return None
    slots: np.ndarray = codes.astype(np.int64) * width + offset
    if np.bincount(slots, minlength=n * width).max() > 1:
        return None
    return slots


def gmv_factor_product(metrics: pd.DataFrame) -> pd.Series:
    """UV × watch/UV × buyers/minute × orders/buyer × GMV/order: equals window GMV by construction."""
    product = pd.Series(1.0, index=metrics.index)
    for factor in GMV_FACTORS:
        product = product * metrics[factor]
    return product
