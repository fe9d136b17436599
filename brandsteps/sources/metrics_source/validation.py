"""Validate the raw metrics rows: failing rows go to quarantine with their reasons, the rest form the daily frame."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from brandsteps.catalogue import BASE_COLUMNS, KEY_COLUMNS, UV_COLUMNS
from brandsteps.config import BRAND_ID_PATTERN
from brandsteps.sources.metrics_source.model import MetricsBatch, MetricsReadError, empty_daily, empty_quarantine
from brandsteps.sources.metrics_source.reading import release_arrow_memory

# A daily value above this is a unit or export error, not a brand (1e12 RMB is a year of China's e-commerce).
IMPLAUSIBLE_VALUE = 1e12

Column = pd.Series | np.ndarray
Reason = str | Callable[[np.ndarray], pd.Series]


def _distinct(column: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Each row's position among the column's distinct values (-1: missing), and those values as text.

    Text work then runs once per distinct value (100,000 brand ids, 35 days) instead of once per row.
    """
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return column.cat.codes.to_numpy(), pd.Series(column.cat.categories).astype("string")
    is_object = pd.api.types.is_object_dtype(dtype)
    plain = not is_object and (pd.api.types.is_string_dtype(dtype) or dtype.kind in "iub")
    if not plain and not (is_object and pd.api.types.infer_dtype(column, skipna=True) in {"string", "date", "empty"}):
        # values that are equal but print differently (1, 1.0, True; 0.0, -0.0) must stay apart
        column = column.astype("string")
    codes, uniques = pd.factorize(column)
    return codes, pd.Series(uniques).astype("string")


def _at(distinct: pd.Series, codes: np.ndarray, rows: np.ndarray) -> pd.Series:
    """The distinct values of the given rows (missing where the code is -1), positionally indexed."""
    taken = distinct.array.take(codes[rows], allow_fill=True)
    return pd.Series(taken, dtype=distinct.dtype)


def _duplicated(brand: np.ndarray, dates: pd.Series, valid: np.ndarray) -> np.ndarray:
    """Rows whose brand code and day occur more than once among the valid rows."""
    out = np.zeros(len(valid), dtype=bool)
    if not valid.any():
        return out
    every = bool(valid.all())
    b = (brand if every else brand[valid]).astype(np.int64)
    # dates are normalised and naive here (the checks before compare them with naive days)
    day = dates.to_numpy().astype("datetime64[D]").view(np.int64)
    d = day if every else day[valid]
    first = int(d.min())
    key = b * (int(d.max()) - first + 1) + (d - first)  # one int64 per brand and day
    out[valid] = pd.Series(key).duplicated(keep=False).to_numpy()
    return out


def _categorical_ids(ids: pd.Series, codes: np.ndarray) -> pd.Categorical[str]:
    """Rows' brand ids as a Categorical of the ids they use, in sorted order (groupby and sort_values stay lexical)."""
    used = np.flatnonzero(np.bincount(codes, minlength=len(ids)))
    names = ids.to_numpy(dtype=object)[used]
    order = np.argsort(names, kind="stable")
    remap = np.full(len(ids), -1, dtype=np.int64)
    remap[used[order]] = np.arange(len(used))
    categories = pd.Index(names[order], dtype="str")
    return pd.Categorical.from_codes(remap[codes], categories=categories, validate=False)


class _Problems:
    """Each row's reasons so far, and whether it has any."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.reasons: np.ndarray | None = None  # made on the first problem: most batches have none
        self.bad = np.zeros(n, dtype=bool)

    def flag(self, mask: np.ndarray, reason: Reason) -> None:
        if not mask.any():
            return
        if self.reasons is None:
            self.reasons = np.full(self.n, "", dtype=object)
        # texts quoting values are built for the flagged rows only (millions of rows, few bad)
        add = reason(mask).to_numpy() if callable(reason) else reason
        self.reasons[mask] = self.reasons[mask] + add + "; "
        self.bad[mask] = True


@dataclass(frozen=True)
class _BrandIds:
    """The rows' brand ids, stripped and checked once per distinct written id."""

    codes: np.ndarray  # row → distinct written id (-1: missing)
    stripped: pd.Series  # the distinct written ids, stripped
    ids: pd.Series  # the distinct stripped ids: " acme" and "acme" are one brand
    brand: np.ndarray  # row → distinct stripped id (-1: missing)
    bad: np.ndarray  # rows whose id is missing or not a slug


def _brand_ids(codes: np.ndarray, distinct: pd.Series, problems: _Problems) -> _BrandIds:
    """The brand ids (stripped) checked against the slug pattern once per distinct id."""
    stripped = distinct.str.strip()
    slug_ok = stripped.fillna("").str.fullmatch(BRAND_ID_PATTERN[1:-1]).to_numpy(dtype=bool)
    id_codes, distinct_ids = pd.factorize(stripped)
    ids = _BrandIds(
        codes=codes,
        stripped=stripped,
        ids=pd.Series(distinct_ids).astype("string"),
        brand=np.append(id_codes, -1)[codes],
        bad=np.append(~slug_ok, True)[codes],
    )
    problems.flag(
        ids.bad,
        lambda m: (
            "brand_id "
            + _at(stripped, codes, m).fillna("<empty>").str.slice(0, 40).map(repr)
            + " is not a slug [a-z0-9-]"
        ),
    )
    return ids


def _read_dates(written: pd.Series, problems: _Problems) -> tuple[pd.Series, np.ndarray]:
    """Each row's day (normalised, naive; NaT where unreadable, flagged), text parsed once per distinct date."""
    if pd.api.types.is_datetime64_any_dtype(written):
        dates = written.dt.tz_localize(None) if getattr(written.dt, "tz", None) is not None else written
        dates = dates.dt.normalize()
    else:
        date_codes, date_text = _distinct(written)
        parsed = pd.to_datetime(date_text.str.strip(), errors="coerce", format="ISO8601").dt.normalize()
        dates = pd.Series(parsed.array.take(date_codes, allow_fill=True), copy=False)
    unreadable = dates.isna().to_numpy()
    problems.flag(
        unreadable,
        lambda m: (
            "date "
            + written[m].astype("string").fillna("<empty>").str.slice(0, 30).map(repr)
            + " is not a date (use YYYY-MM-DD)"
        ),
    )
    return dates, unreadable


def _future_dates(dates: pd.Series, today: date, problems: _Problems) -> np.ndarray:
    """Rows dated after today (flagged): impossible, unlike rows after as_of, which a replay reads."""
    future = (dates > pd.Timestamp(today)).to_numpy(dtype=bool)

    def in_future(m: np.ndarray) -> pd.Series:
        shown: pd.Series = dates[m].dt.strftime("%Y-%m-%d").fillna("")
        return "date " + shown + " is in the future"

    problems.flag(future, in_future)
    return future


def _checked_values(col: str, series: pd.Series, problems: _Problems) -> Column:
    """The column's values as float64, problems flagged.

    The raw Series itself while nothing had to change (shared, not copied), else an array.
    """
    if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        series = _numbers_from_text(col, series, problems)
    kept: Column
    if series.dtype == np.float64:
        arr = series.to_numpy()  # a read-only view; NaN is already "missing"
        kept = series
    else:
        arr = kept = series.to_numpy(dtype="float64", na_value=np.nan)
    del series
    # The smallest and largest value (NaN ignored) rule most checks out in two passes; the
    # row masks are built only for a check that can fail.
    lo, hi = np.fmin.reduce(arr), np.fmax.reduce(arr)
    if np.isinf(lo) or np.isinf(hi):
        infinite = np.isinf(arr)
        problems.flag(infinite, f"{col}: infinite value")
        arr = kept = np.where(infinite, np.nan, arr)
        lo, hi = np.fmin.reduce(arr), np.fmax.reduce(arr)
        del infinite
    _flag_out_of_range(col, arr, lo, hi, problems)
    return kept


def _numbers_from_text(col: str, series: pd.Series, problems: _Problems) -> pd.Series:
    """Text cells as numbers (thousands separators dropped); a cell that is not a number is flagged."""
    text = series.astype("string").str.strip().str.replace(",", "", regex=False)
    num = pd.to_numeric(text, errors="coerce")
    not_number = (num.isna() & text.notna() & (text != "")).to_numpy(dtype=bool)
    problems.flag(not_number, lambda m: f"{col}: " + text[m].str.slice(0, 30).map(repr) + " is not a number")
    return num


def _flag_out_of_range(col: str, arr: np.ndarray, lo: float, hi: float, problems: _Problems) -> None:
    """Negative, implausibly large, and (store_rating) above-5 values, each quoted."""

    def said(head: str, tail: str = "") -> Callable[[np.ndarray], pd.Series]:
        return lambda m: head + pd.Series(arr[m]).map("{:g}".format) + tail

    if lo < 0:
        problems.flag(arr < 0, said(f"{col}: negative value "))
    if hi > IMPLAUSIBLE_VALUE:
        problems.flag(arr > IMPLAUSIBLE_VALUE, said(f"{col}: implausibly large value "))
    if col == "store_rating" and hi > 5:
        problems.flag(arr > 5, said("store_rating ", " is above 5"))


def _in_range(dates: pd.Series, as_of: date, start: date | None, unreadable: np.ndarray) -> np.ndarray:
    """Rows inside the cycle's view (start to as_of), and rows whose date cannot be read.

    The range limits the view after validation, so a malformed row is reported even when its date cannot be read.
    """
    in_range = (dates <= pd.Timestamp(as_of)).to_numpy(dtype=bool, copy=True)
    if start is not None:
        in_range &= (dates >= pd.Timestamp(start)).to_numpy(dtype=bool)
    in_range |= unreadable
    return in_range


def _quarantine(
    raw: pd.DataFrame, q_mask: np.ndarray, problems: _Problems, ids: _BrandIds, dates: pd.Series
) -> pd.DataFrame:
    """The set-aside rows: where each is (file and row), its brand and day, and its reasons."""
    if not q_mask.any():
        return empty_quarantine()
    assert problems.reasons is not None
    rows = np.flatnonzero(q_mask)
    return pd.DataFrame(
        {
            "source": raw["_source"].iloc[rows].to_numpy() if "_source" in raw else "",
            "row": raw["_row"].to_numpy()[rows] if "_row" in raw else rows + 1,
            "brand_id": _at(ids.stripped, ids.codes, rows).to_numpy(),
            "date": dates.iloc[rows].dt.strftime("%Y-%m-%d").to_numpy(),
            "reason": pd.Series(problems.reasons[rows], dtype=object).str.rstrip("; ").to_numpy(),
        }
    )


def _kept(values: Column, keep: np.ndarray, every: bool) -> Column:
    """The kept rows of one column."""
    if isinstance(values, pd.Series):  # unchanged raw values: shared while every row is kept
        return values.reset_index(drop=True) if every else values.to_numpy()[keep]
    return values if every else values[keep]


def _add_base_columns(
    daily_columns: dict[str, Column | pd.Categorical[str]],
    values: dict[str, Column],
    keep: np.ndarray,
    every: bool,
    consume: bool,
) -> None:
    """Every base column's kept rows (a column the source lacks: all NaN), then uv."""
    nothing = np.full(int(keep.sum()), np.nan)
    for col in BASE_COLUMNS:
        daily_columns[col] = _kept(values.pop(col), keep, every) if col in values else nothing.copy()
        if consume and not every:
            release_arrow_memory()  # the raw column just copied from was Arrow's (Parquet)
    uv = [np.asarray(daily_columns[c], dtype=np.float64) for c in UV_COLUMNS]
    # visitors are measured only when all three parts are (same sum, left to right, as pandas' row sum)
    daily_columns["uv"] = uv[0] + uv[1] + uv[2]


def _take(raw: pd.DataFrame, col: str, consume: bool) -> pd.Series:
    """raw's column; with consume, dropped from raw, so it is freed once the caller is done with it."""
    return raw.pop(col) if consume else raw[col]


def validate(
    raw: pd.DataFrame,
    *,
    as_of: date,
    today: date,
    start: date | None = None,
    all_columns: list[str] | None = None,
    consume: bool = False,
) -> MetricsBatch:
    """Vectorised checks; every failing row goes to quarantine with all its reasons.

    Rows dated after as_of are outside this cycle (not errors: a replay reads history);
    rows dated after today are impossible and quarantined. The valid frame's brand_id is a
    Categorical of the valid ids; its columns may share memory with raw (copy-on-write).
    consume: each column of raw is dropped once read, so raw and the valid frame never both exist whole.
    """
    all_columns = all_columns if all_columns is not None else list(raw.columns)
    missing_keys = [c for c in KEY_COLUMNS if c not in raw.columns]
    if missing_keys:
        raise MetricsReadError(f"the metrics table has no {' or '.join(missing_keys)} column")
    n = len(raw)
    missing_columns = [c for c in BASE_COLUMNS if c not in raw.columns]
    known = {*KEY_COLUMNS, *BASE_COLUMNS, "_source", "_row"}
    unknown = [c for c in all_columns if c not in known]
    if n == 0:
        return MetricsBatch(empty_daily(), empty_quarantine(), missing_columns, unknown)
    problems = _Problems(n)
    ids = _brand_ids(*_distinct(_take(raw, "brand_id", consume)), problems)
    dates, unreadable = _read_dates(_take(raw, "date", consume), problems)
    future = _future_dates(dates, today, problems)
    values = {col: _checked_values(col, _take(raw, col, consume), problems) for col in BASE_COLUMNS if col in raw}
    # Neither copy of a duplicated brand/day can be trusted over the other: both go.
    problems.flag(_duplicated(ids.brand, dates, ~ids.bad & ~unreadable), "duplicate row for this brand and day")

    in_range = _in_range(dates, as_of, start, unreadable)
    quarantine = _quarantine(raw, problems.bad & in_range | problems.bad & future, problems, ids, dates)
    keep = ~problems.bad & in_range
    every = bool(keep.all())
    daily_columns: dict[str, Column | pd.Categorical[str]] = {
        "brand_id": _categorical_ids(ids.ids, ids.brand if every else ids.brand[keep]),
        "date": _kept(dates, keep, every),
    }
    del ids, dates
    _add_base_columns(daily_columns, values, keep, every, consume)
    daily = pd.DataFrame(daily_columns, copy=False)
    return MetricsBatch(daily, quarantine, missing_columns, unknown)
