"""Read the daily metrics table (CSV, Parquet, a folder of them, or SQL) and quarantine bad rows."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from brandsteps.catalogue import BASE_COLUMNS, KEY_COLUMNS, UV_COLUMNS
from brandsteps.config import BRAND_ID_PATTERN, SqlMetrics

# A daily value above this is a unit or export error, not a brand (1e12 RMB is a year of China's e-commerce).
IMPLAUSIBLE_VALUE = 1e12
QUARANTINE_COLUMNS = ["source", "row", "brand_id", "date", "reason"]
_RENAMED_DUPLICATE = re.compile(r"(.+)\.(\d+)")
# Headers of a Kuaishou 生意通 export: fed in directly, they need `brandsteps import-kuaishou` first.
_KUAISHOU_HINTS = ("成交金额", "成交订单数", "日期", "商品曝光次数")


class MetricsReadError(Exception):
    """The metrics source as a whole could not be read (missing file, bad table, no key columns)."""


@dataclass
class MetricsBatch:
    """Valid daily rows (one per brand and day) and the rows set aside, each with its reason."""

    daily: pd.DataFrame
    quarantine: pd.DataFrame
    missing_columns: list[str] = field(default_factory=list)
    unknown_columns: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    @classmethod
    def empty(cls) -> MetricsBatch:
        """No rows at all (a sharded cycle's parent reads no metrics itself)."""
        daily = pd.DataFrame({"brand_id": pd.Series(dtype=object), "date": pd.Series(dtype="datetime64[ns]")})
        return cls(daily, _empty_quarantine())


@dataclass(frozen=True)
class MetricsSource:
    """Where the metrics live: a file or folder path, or an SQLAlchemy URL and table."""

    path: Path | None = None
    url: str | None = None
    table: str = "daily_metrics"

    @classmethod
    def parse(cls, spec: str | SqlMetrics, root: Path | None = None) -> MetricsSource:
        if isinstance(spec, SqlMetrics):
            return cls(url=spec.url, table=spec.table)
        if "://" in spec:
            url, _, table = spec.partition("#")
            return cls(url=url, table=table or "daily_metrics")
        path = Path(spec).expanduser()
        if not path.is_absolute() and root is not None:
            path = root / path
        return cls(path=path)

    def describe(self) -> str:
        if self.path is not None:
            return str(self.path)
        from sqlalchemy.engine import make_url

        return f"{make_url(self.url or '').render_as_string(hide_password=True)} table {self.table}"


# ---------------------------------------------------------------- reading


def _read_parquet(path: Path, start: date | None, end: date | None) -> pd.DataFrame:
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    if path.stat().st_size == 0:
        raise MetricsReadError(f"{path}: empty file (0 bytes), not a Parquet file")
    try:
        schema = pq.read_schema(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise MetricsReadError(f"{path}: not a readable Parquet file ({exc})") from None
    wanted = [c for c in (*KEY_COLUMNS, *BASE_COLUMNS) if c in schema.names]
    dataset = ds.dataset(path, format="parquet")
    expr = _date_filter(schema.field("date").type if "date" in schema.names else None, start, end)
    table = dataset.to_table(columns=wanted, filter=expr)
    frame = table.to_pandas()
    frame.attrs["all_columns"] = list(schema.names)
    return frame


def _date_filter(date_type: object, start: date | None, end: date | None) -> object:
    """Push the date range down to Parquet when the column's type allows a safe comparison."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    if date_type is None or (start is None and end is None):
        return None
    field_ = ds.field("date")
    if pa.types.is_date(date_type) or pa.types.is_timestamp(date_type):
        lo = pa.scalar(start, type=pa.date32()).cast(date_type) if start else None
        hi = pa.scalar(end, type=pa.date32()).cast(date_type) if end else None
        if pa.types.is_timestamp(date_type) and hi is not None:
            # a timestamp on the end day (any time of day) belongs to that day
            hi = pa.scalar(pd.Timestamp(end) + pd.Timedelta(days=1), type=pa.timestamp("ns")).cast(date_type)
            expr_hi = field_ < hi
        else:
            expr_hi = field_ <= hi if hi is not None else None
        expr_lo = field_ >= lo if lo is not None else None
    elif pa.types.is_string(date_type) or pa.types.is_large_string(date_type):
        # ISO dates compare as text; a malformed date must still reach validation, so keep
        # anything that does not look like YYYY-MM-DD (it sorts outside the digit range).
        expr_lo = (field_ >= start.isoformat()) if start else None
        expr_hi = (field_ <= end.isoformat()) | (field_ > "9") if end else None
    else:
        return None
    parts = [e for e in (expr_lo, expr_hi) if e is not None]
    out = parts[0]
    for p in parts[1:]:
        out = out & p
    return out


def _read_csv(path: Path) -> pd.DataFrame:
    if path.stat().st_size == 0:
        raise MetricsReadError(f"{path}: empty file")
    with path.open("rb") as handle:
        bom = handle.read(2)
    # Excel's "Unicode text" export is UTF-16 with a byte-order mark; GBK is what Chinese Excel saves.
    encodings = ("utf-16",) if bom in (b"\xff\xfe", b"\xfe\xff") else ("utf-8-sig", "gb18030")
    for encoding in encodings:
        try:
            frame = pd.read_csv(path, dtype={"brand_id": str, "date": str}, encoding=encoding, keep_default_na=True, na_values=["-"])
            break
        except UnicodeDecodeError:
            continue
        except pd.errors.EmptyDataError:
            raise MetricsReadError(f"{path}: no header row") from None
        except pd.errors.ParserError as exc:
            raise MetricsReadError(f"{path}: not a readable CSV file ({str(exc).strip()})") from None
    else:
        raise MetricsReadError(f"{path}: unknown text encoding (use UTF-8)")
    # pandas renames a repeated header to "gmv.1"; two columns of one name cannot both be right.
    repeated = [c for c in frame.columns if (m := _RENAMED_DUPLICATE.fullmatch(str(c))) and m.group(1) in frame.columns]
    if repeated:
        names = ", ".join(sorted({_RENAMED_DUPLICATE.fullmatch(str(c)).group(1) for c in repeated}))  # type: ignore[union-attr]
        raise MetricsReadError(f"{path}: column {names} appears more than once in the header")
    frame.attrs["all_columns"] = list(frame.columns)
    return frame


def _read_sql(url: str, table: str, start: date | None, end: date | None) -> pd.DataFrame:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        schema, _, name = table.rpartition(".")
        meta = sa.MetaData()
        try:
            tbl = sa.Table(name, meta, autoload_with=engine, schema=schema or None)
        except sa.exc.NoSuchTableError:
            raise MetricsReadError(f"table {table!r} not found in the metrics database") from None
        cols = [tbl.c[c] for c in (*KEY_COLUMNS, *BASE_COLUMNS) if c in tbl.c]
        if "date" not in tbl.c:
            raise MetricsReadError(f"table {table!r} has no 'date' column")
        query = sa.select(*cols)
        # bound parameters only: the table name went through reflection, never into SQL text
        if start is not None:
            query = query.where(tbl.c.date >= start)
        if end is not None:
            query = query.where(tbl.c.date <= end)
        with engine.connect() as conn:
            frame = pd.read_sql(query, conn)
        frame.attrs["all_columns"] = list(tbl.c.keys())
        return frame
    finally:
        engine.dispose()


def read_raw(source: MetricsSource, start: date | None = None, end: date | None = None) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Read the source into one frame with _source/_row columns; returns (frame, sources, all columns)."""
    if source.url is not None:
        frame = _read_sql(source.url, source.table, start, end)
        label = source.describe()
        frame["_source"] = label
        frame["_row"] = np.arange(1, len(frame) + 1)
        return frame, [label], frame.attrs.get("all_columns", [])
    assert source.path is not None
    path = source.path
    if not path.exists():
        raise MetricsReadError(f"{path}: no such file or folder")
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.suffix.lower() in {".csv", ".parquet", ".pq"})
    if not files:
        raise MetricsReadError(f"{path}: no .csv or .parquet files in this folder")
    frames = []
    all_columns: list[str] = []
    for f in files:
        if f.suffix.lower() == ".csv":
            frame = _read_csv(f)
            first_row = 2  # line 1 is the header; CSV has no pushdown, validate() applies the range
        elif f.suffix.lower() in {".parquet", ".pq"}:
            frame = _read_parquet(f, start, end)
            first_row = 1
        else:
            raise MetricsReadError(f"{f}: unsupported file type (use .csv or .parquet)")
        all_columns += [c for c in frame.attrs.get("all_columns", []) if c not in all_columns]
        frame["_source"] = str(f)
        frame["_row"] = np.arange(first_row, first_row + len(frame))
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return out, [str(f) for f in files], all_columns


# ---------------------------------------------------------------- validation


def _empty_quarantine() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object if c != "row" else "int64") for c in QUARANTINE_COLUMNS})


def validate(raw: pd.DataFrame, *, as_of: date, today: date, start: date | None = None, all_columns: list[str] | None = None) -> MetricsBatch:
    """Vectorised checks; every failing row goes to quarantine with all its reasons.

    Rows dated after as_of are outside this cycle (not errors: a replay reads history);
    rows dated after today are impossible and quarantined.
    """
    all_columns = all_columns if all_columns is not None else list(raw.columns)
    missing_keys = [c for c in KEY_COLUMNS if c not in raw.columns]
    if missing_keys:
        raise MetricsReadError(f"the metrics table has no {' or '.join(missing_keys)} column")
    n = len(raw)
    if n == 0:
        empty = pd.DataFrame({"brand_id": pd.Series(dtype=object), "date": pd.Series(dtype="datetime64[ns]")})
        for col in (*BASE_COLUMNS, "uv"):
            empty[col] = pd.Series(dtype="float64")
        known_empty = {*KEY_COLUMNS, *BASE_COLUMNS, "_source", "_row"}
        return MetricsBatch(empty, _empty_quarantine(), [c for c in BASE_COLUMNS if c not in raw.columns], [c for c in all_columns if c not in known_empty])
    reasons = np.full(n, "", dtype=object)

    def flag(mask: np.ndarray, text: pd.Series | str | Callable[[np.ndarray], pd.Series]) -> None:
        nonlocal reasons
        if not mask.any():
            return
        # texts quoting values are built for the flagged rows only (millions of rows, few bad)
        add = text(mask).to_numpy() if callable(text) else text[mask].to_numpy() if isinstance(text, pd.Series) else text
        reasons[mask] = reasons[mask] + add + "; "

    brand = raw["brand_id"].astype("string").str.strip()
    bad_brand = ~brand.fillna("").str.fullmatch(BRAND_ID_PATTERN[1:-1]).to_numpy(dtype=bool)
    flag(bad_brand, lambda m: "brand_id " + brand[m].fillna("<empty>").str.slice(0, 40).map(repr) + " is not a slug [a-z0-9-]")

    raw_date = raw["date"]
    if pd.api.types.is_datetime64_any_dtype(raw_date):
        dates = raw_date.dt.tz_localize(None) if getattr(raw_date.dt, "tz", None) is not None else raw_date
    else:
        dates = pd.to_datetime(raw_date.astype("string").str.strip(), errors="coerce", format="ISO8601")
    dates = dates.dt.normalize()
    bad_date = dates.isna().to_numpy()
    flag(bad_date, lambda m: "date " + raw_date[m].astype("string").fillna("<empty>").str.slice(0, 30).map(repr) + " is not a date (use YYYY-MM-DD)")
    future = (dates > pd.Timestamp(today)).to_numpy(dtype=bool)
    flag(future, lambda m: "date " + dates[m].dt.strftime("%Y-%m-%d").fillna("") + " is in the future")

    values = {}
    for col in BASE_COLUMNS:
        if col not in raw.columns:
            continue
        series = raw[col]
        if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            text = series.astype("string").str.strip().str.replace(",", "", regex=False)
            num = pd.to_numeric(text, errors="coerce")
            not_number = (num.isna() & text.notna() & (text != "")).to_numpy(dtype=bool)
            flag(not_number, lambda m, text=text, col=col: f"{col}: " + text[m].str.slice(0, 30).map(repr) + " is not a number")
            series = num
        arr = series.to_numpy(dtype="float64", na_value=np.nan)
        infinite = np.isinf(arr)
        flag(infinite, f"{col}: infinite value")
        arr = np.where(infinite, np.nan, arr)
        def shown(m: np.ndarray, arr: np.ndarray = arr) -> pd.Series:
            return pd.Series(arr[m]).map("{:g}".format)

        flag(arr < 0, lambda m, col=col, shown=shown: f"{col}: negative value " + shown(m))
        flag(arr > IMPLAUSIBLE_VALUE, lambda m, col=col, shown=shown: f"{col}: implausibly large value " + shown(m))
        if col == "store_rating":
            flag(arr > 5, lambda m, shown=shown: "store_rating " + shown(m) + " is above 5")
        values[col] = arr

    # Neither copy of a duplicated brand/day can be trusted over the other: both go.
    dup_frame = pd.DataFrame({"b": brand.to_numpy(), "d": dates.to_numpy()})
    dup = dup_frame.duplicated(keep=False).to_numpy() & ~bad_brand & ~bad_date
    flag(dup, "duplicate row for this brand and day")

    bad = reasons != ""
    # A date range ending on as_of limits the cycle's view after validation, so a malformed
    # row is reported even when its date cannot be read.
    in_range = (dates <= pd.Timestamp(as_of)).to_numpy(dtype=bool, copy=True)
    if start is not None:
        in_range &= (dates >= pd.Timestamp(start)).to_numpy(dtype=bool)
    in_range |= bad_date
    q_mask = bad & in_range | bad & future
    quarantine = pd.DataFrame(
        {
            "source": raw["_source"].to_numpy()[q_mask] if "_source" in raw else "",
            "row": raw["_row"].to_numpy()[q_mask] if "_row" in raw else np.flatnonzero(q_mask) + 1,
            "brand_id": brand.to_numpy()[q_mask],
            "date": dates.dt.strftime("%Y-%m-%d").to_numpy()[q_mask],
            "reason": pd.Series(reasons[q_mask], dtype=object).str.rstrip("; ").to_numpy(),
        }
    ) if q_mask.any() else _empty_quarantine()

    keep = ~bad & in_range
    daily = pd.DataFrame({"brand_id": brand.to_numpy()[keep], "date": dates.to_numpy()[keep]})
    for col in BASE_COLUMNS:
        daily[col] = values[col][keep] if col in values else np.nan
    daily["uv"] = daily[list(UV_COLUMNS)].sum(axis=1, min_count=len(UV_COLUMNS))
    missing_columns = [c for c in BASE_COLUMNS if c not in raw.columns]
    known = {*KEY_COLUMNS, *BASE_COLUMNS, "_source", "_row"}
    unknown = [c for c in all_columns if c not in known]
    return MetricsBatch(daily, quarantine, missing_columns, unknown)


def load_metrics(source: MetricsSource, *, as_of: date, today: date, start: date | None = None) -> MetricsBatch:
    """Read and validate the rows from start (if given) up to as_of."""
    raw, sources, all_columns = read_raw(source, start, as_of)
    try:
        batch = validate(raw, as_of=as_of, today=today, start=start, all_columns=all_columns)
    except MetricsReadError as exc:
        hint = ""
        if any(h in str(c) for c in all_columns for h in _KUAISHOU_HINTS):
            hint = " (this looks like a Kuaishou 生意通 export: convert it with `brandsteps import-kuaishou FILE --brand ID`)"
        raise MetricsReadError(f"{', '.join(sources)}: {exc}{hint}") from None
    batch.sources = sources
    return batch
