"""Read the daily metrics table (CSV, Parquet, a folder of them, or SQL) and quarantine bad rows."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from brandsteps.catalogue import BASE_COLUMNS, KEY_COLUMNS, UV_COLUMNS
from brandsteps.config import BRAND_ID_PATTERN, SqlMetrics

if TYPE_CHECKING:
    import pyarrow as pa

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
        return cls(_empty_daily(), _empty_quarantine())


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
    text_ids = "brand_id" in schema.names and _is_text(schema.field("brand_id").type)
    # Brand ids as dictionary codes: a few distinct ids repeat on every day, and validate() and the
    # window metrics work on the distinct ids. Without pre-buffering, the scan holds one row group's
    # pages at a time rather than whole row groups ahead (about 300 MB less at 3.5M rows).
    fmt = ds.ParquetFileFormat(
        read_options=ds.ParquetReadOptions(dictionary_columns=["brand_id"] if text_ids else []),
        default_fragment_scan_options=ds.ParquetFragmentScanOptions(pre_buffer=False),
    )
    dataset = ds.dataset(path, format=fmt)
    expr = _date_filter(schema.field("date").type if "date" in schema.names else None, start, end)
    # handed over in a list, so no reference here keeps the whole table alive while it is converted
    frame = _arrow_to_frame([dataset.to_table(columns=wanted, filter=expr, batch_readahead=1, fragment_readahead=1)])
    frame.attrs["all_columns"] = list(schema.names)
    return frame


def _arrow_to_frame(holder: list[pa.Table]) -> pd.DataFrame:
    """Column by column, each Arrow column released once converted: the table and the frame never both exist whole."""
    import pyarrow as pa

    table = holder.pop()
    names = list(table.column_names)
    index_columns = (table.schema.pandas_metadata or {}).get("index_columns", [])
    if not names or any(isinstance(c, str) and c in names for c in index_columns):
        whole: pd.DataFrame = table.to_pandas()  # pandas' own index columns: keep exactly what pandas makes of them
        return whole
    columns: dict[str, object] = {}
    for name in names:
        if pa.types.is_float64(table.schema.field(name).type):
            # our own writeable array (NaN for nulls, as to_pandas), so the valid frame can share it
            values = table.column(name).to_numpy()
            columns[name] = values if values.flags.writeable else values.copy()
        else:
            # dictionary → Categorical, text → str, dates: what to_pandas makes of the whole table
            columns[name] = table.select([name]).to_pandas()[name]
        table = table.drop_columns([name])
        # the freed chunks are too small for the next 22 MB column: about 250 MB less peak at 3.5M rows
        _release_arrow_memory()
    return pd.DataFrame(columns, columns=names, copy=False)


def _is_text(arrow_type: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type))


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
        if pa.types.is_timestamp(date_type) and end is not None:  # hi is set exactly when end is
            # a timestamp on the end day (any time of day) belongs to that day
            hi = pa.scalar(pd.Timestamp(end) + pd.Timedelta(days=1), type=pa.timestamp("ns")).cast(date_type)
            expr_hi = field_ < hi
        else:
            expr_hi = field_ <= hi if hi is not None else None
        expr_lo = field_ >= lo if lo is not None else None
    elif _is_text(date_type):
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
            frame = pd.read_csv(
                path, dtype={"brand_id": str, "date": str}, encoding=encoding, keep_default_na=True, na_values=["-"]
            )
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


def read_raw(
    source: MetricsSource, start: date | None = None, end: date | None = None
) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Read the source into one frame with _source/_row columns; returns (frame, sources, all columns)."""
    if source.url is not None:
        frame = _read_sql(source.url, source.table, start, end)
        label = source.describe()
        _number_rows(frame, [label], [len(frame)], [1])
        return frame, [label], frame.attrs.get("all_columns", [])
    assert source.path is not None
    path = source.path
    if not path.exists():
        raise MetricsReadError(f"{path}: no such file or folder")
    files = (
        [path]
        if path.is_file()
        else sorted(p for p in path.rglob("*") if p.suffix.lower() in {".csv", ".parquet", ".pq"})
    )
    if not files:
        raise MetricsReadError(f"{path}: no .csv or .parquet files in this folder")
    frames = []
    all_columns: list[str] = []
    first_rows = []
    for f in files:
        if f.suffix.lower() == ".csv":
            frame = _read_csv(f)
            first_rows.append(2)  # line 1 is the header; CSV has no pushdown, validate() applies the range
        elif f.suffix.lower() in {".parquet", ".pq"}:
            frame = _read_parquet(f, start, end)
            first_rows.append(1)
        else:
            raise MetricsReadError(f"{f}: unsupported file type (use .csv or .parquet)")
        all_columns += [c for c in frame.attrs.get("all_columns", []) if c not in all_columns]
        frames.append(frame)
    lengths = [len(f) for f in frames]
    out = _concat(frames) if len(frames) > 1 else frames[0]
    del frames
    labels = [str(f) for f in files]
    _number_rows(out, labels, lengths, first_rows)
    return out, labels, all_columns


def _number_rows(frame: pd.DataFrame, labels: list[str], lengths: list[int], first_rows: list[int]) -> None:
    """_source and _row of the stacked parts (lengths rows each): one category per part rather than its label on millions of rows."""
    codes = np.repeat(np.arange(len(labels), dtype=np.min_scalar_type(-len(labels))), lengths)
    frame["_source"] = pd.Categorical.from_codes(codes, categories=pd.Index(labels))
    frame["_row"] = np.concatenate([np.arange(first, first + k) for first, k in zip(first_rows, lengths, strict=True)])


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Stack the files' frames, keeping brand_id categorical when every file gave it so (Parquet)."""
    ids = [f["brand_id"] for f in frames if "brand_id" in f]
    if len(ids) == len(frames) and all(isinstance(s.dtype, pd.CategoricalDtype) for s in ids):
        try:
            # pd.concat would make differing categories a Python string per row
            brand = pd.Series(union_categoricals(ids))
        except TypeError:  # ids of different types in different files: plain concat, as always
            pass
        else:
            where = list(frames[0].columns).index("brand_id")
            out = pd.concat([f.drop(columns="brand_id") for f in frames], ignore_index=True)
            out.insert(where, "brand_id", brand)
            return out
    return pd.concat(frames, ignore_index=True)


# ---------------------------------------------------------------- validation


def _empty_daily() -> pd.DataFrame:
    empty = pd.DataFrame({"brand_id": pd.Series(dtype=object), "date": pd.Series(dtype="datetime64[ns]")})
    for col in (*BASE_COLUMNS, "uv"):
        empty[col] = pd.Series(dtype="float64")
    return empty


def _empty_quarantine() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object if c != "row" else "int64") for c in QUARANTINE_COLUMNS})


def _release_arrow_memory() -> None:
    """Hand freed Arrow buffers back to the system: Arrow's allocator keeps them for Arrow, NumPy cannot use them."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


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
    span = int(d.max()) - first + 1
    key = b * span + (d - first)
    size = (int(b.max()) + 1) * span
    if size <= 4 * len(key) + (1 << 20):  # a dense count (one pass) when the key space is small
        out[valid] = np.bincount(key, minlength=size)[key] > 1
    else:
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


def validate(
    raw: pd.DataFrame, *, as_of: date, today: date, start: date | None = None, all_columns: list[str] | None = None
) -> MetricsBatch:
    """Vectorised checks; every failing row goes to quarantine with all its reasons.

    Rows dated after as_of are outside this cycle (not errors: a replay reads history);
    rows dated after today are impossible and quarantined. The valid frame's brand_id is a
    Categorical of the valid ids; its columns may share memory with raw (copy-on-write).
    """
    return _validate(raw, as_of=as_of, today=today, start=start, all_columns=all_columns, consume=False)


def _validate(
    raw: pd.DataFrame, *, as_of: date, today: date, start: date | None, all_columns: list[str] | None, consume: bool
) -> MetricsBatch:
    """validate(); with consume, each column of raw is dropped once read, so raw and the valid frame never both exist whole."""
    all_columns = all_columns if all_columns is not None else list(raw.columns)
    missing_keys = [c for c in KEY_COLUMNS if c not in raw.columns]
    if missing_keys:
        raise MetricsReadError(f"the metrics table has no {' or '.join(missing_keys)} column")
    n = len(raw)
    missing_columns = [c for c in BASE_COLUMNS if c not in raw.columns]
    known = {*KEY_COLUMNS, *BASE_COLUMNS, "_source", "_row"}
    unknown = [c for c in all_columns if c not in known]
    if n == 0:
        return MetricsBatch(_empty_daily(), _empty_quarantine(), missing_columns, unknown)
    reasons: np.ndarray | None = None  # made on the first problem: most batches have none
    bad = np.zeros(n, dtype=bool)

    def flag(mask: np.ndarray, text: pd.Series | str | Callable[[np.ndarray], pd.Series]) -> None:
        nonlocal reasons
        if not mask.any():
            return
        if reasons is None:
            reasons = np.full(n, "", dtype=object)
        # texts quoting values are built for the flagged rows only (millions of rows, few bad)
        add = (
            text(mask).to_numpy() if callable(text) else text[mask].to_numpy() if isinstance(text, pd.Series) else text
        )
        reasons[mask] = reasons[mask] + add + "; "
        bad[mask] = True

    def drop(col: str) -> None:
        if consume:
            del raw[col]

    # brand_id: stripped, and checked against the slug pattern once per distinct id
    codes, distinct = _distinct(raw["brand_id"])
    drop("brand_id")
    stripped = distinct.str.strip()
    slug_ok = stripped.fillna("").str.fullmatch(BRAND_ID_PATTERN[1:-1]).to_numpy(dtype=bool)
    id_codes, distinct_ids = pd.factorize(stripped)  # " acme" and "acme" are one brand
    ids = pd.Series(distinct_ids).astype("string")
    brand = np.append(id_codes, -1)[codes]  # row → distinct stripped id (-1: missing)
    bad_brand = np.append(~slug_ok, True)[codes]
    flag(
        bad_brand,
        lambda m: (
            "brand_id "
            + _at(stripped, codes, m).fillna("<empty>").str.slice(0, 40).map(repr)
            + " is not a slug [a-z0-9-]"
        ),
    )

    raw_date = raw["date"]
    if pd.api.types.is_datetime64_any_dtype(raw_date):
        dates = raw_date.dt.tz_localize(None) if getattr(raw_date.dt, "tz", None) is not None else raw_date
        dates = dates.dt.normalize()
    else:
        date_codes, date_text = _distinct(raw_date)
        parsed = pd.to_datetime(date_text.str.strip(), errors="coerce", format="ISO8601").dt.normalize()
        dates = pd.Series(parsed.array.take(date_codes, allow_fill=True), copy=False)
    bad_date = dates.isna().to_numpy()

    def unreadable(m: np.ndarray, raw_date: pd.Series = raw_date) -> pd.Series:
        return (
            "date "
            + raw_date[m].astype("string").fillna("<empty>").str.slice(0, 30).map(repr)
            + " is not a date (use YYYY-MM-DD)"
        )

    def in_future(m: np.ndarray, dates: pd.Series = dates) -> pd.Series:
        shown: pd.Series = dates[m].dt.strftime("%Y-%m-%d").fillna("")
        return "date " + shown + " is in the future"

    flag(bad_date, unreadable)
    del raw_date, unreadable  # raw's date column can go now
    drop("date")
    future = (dates > pd.Timestamp(today)).to_numpy(dtype=bool)
    flag(future, in_future)
    del in_future

    # Each column's values: the raw Series itself while nothing had to change (shared, not copied).
    values: dict[str, pd.Series | np.ndarray] = {}
    for col in BASE_COLUMNS:
        if col not in raw.columns:
            continue
        series = raw[col]
        drop(col)
        if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            text = series.astype("string").str.strip().str.replace(",", "", regex=False)
            num = pd.to_numeric(text, errors="coerce")
            not_number = (num.isna() & text.notna() & (text != "")).to_numpy(dtype=bool)

            def not_a_number(m: np.ndarray, text: pd.Series = text, col: str = col) -> pd.Series:
                return f"{col}: " + text[m].str.slice(0, 30).map(repr) + " is not a number"

            flag(not_number, not_a_number)
            del text, not_a_number
            series = num
        if series.dtype == np.float64:
            arr = series.to_numpy()  # a read-only view; NaN is already "missing"
            kept: pd.Series | np.ndarray = series
        else:
            arr = kept = series.to_numpy(dtype="float64", na_value=np.nan)
        del series
        # The smallest and largest value (NaN ignored) rule most checks out in two passes; the
        # row masks are built only for a check that can fail.
        lo, hi = np.fmin.reduce(arr), np.fmax.reduce(arr)
        if np.isinf(lo) or np.isinf(hi):
            infinite = np.isinf(arr)
            flag(infinite, f"{col}: infinite value")
            arr = kept = np.where(infinite, np.nan, arr)
            lo, hi = np.fmin.reduce(arr), np.fmax.reduce(arr)
            del infinite

        def shown(m: np.ndarray, arr: np.ndarray = arr) -> pd.Series:
            return pd.Series(arr[m]).map("{:g}".format)

        def said(
            head: str, tail: str = "", shown: Callable[[np.ndarray], pd.Series] = shown
        ) -> Callable[[np.ndarray], pd.Series]:
            return lambda m: head + shown(m) + tail

        if lo < 0:
            flag(arr < 0, said(f"{col}: negative value "))
        if hi > IMPLAUSIBLE_VALUE:
            flag(arr > IMPLAUSIBLE_VALUE, said(f"{col}: implausibly large value "))
        if col == "store_rating" and hi > 5:
            flag(arr > 5, said("store_rating ", " is above 5"))
        values[col] = kept
        del arr, kept, shown, said

    # Neither copy of a duplicated brand/day can be trusted over the other: both go.
    flag(_duplicated(brand, dates, ~bad_brand & ~bad_date), "duplicate row for this brand and day")

    # A date range ending on as_of limits the cycle's view after validation, so a malformed
    # row is reported even when its date cannot be read.
    in_range = (dates <= pd.Timestamp(as_of)).to_numpy(dtype=bool, copy=True)
    if start is not None:
        in_range &= (dates >= pd.Timestamp(start)).to_numpy(dtype=bool)
    in_range |= bad_date
    q_mask = bad & in_range | bad & future
    if q_mask.any():
        assert reasons is not None
        rows = np.flatnonzero(q_mask)
        quarantine = pd.DataFrame(
            {
                "source": raw["_source"].iloc[rows].to_numpy() if "_source" in raw else "",
                "row": raw["_row"].to_numpy()[rows] if "_row" in raw else rows + 1,
                "brand_id": _at(stripped, codes, rows).to_numpy(),
                "date": dates.iloc[rows].dt.strftime("%Y-%m-%d").to_numpy(),
                "reason": pd.Series(reasons[rows], dtype=object).str.rstrip("; ").to_numpy(),
            }
        )
    else:
        quarantine = _empty_quarantine()

    keep = ~bad & in_range
    every = bool(keep.all())

    def column(v: pd.Series | np.ndarray) -> pd.Series | np.ndarray:
        if isinstance(v, pd.Series):  # unchanged raw values: shared while every row is kept
            return v.reset_index(drop=True) if every else v.to_numpy()[keep]
        return v if every else v[keep]

    daily_columns: dict[str, pd.Series | np.ndarray | pd.Categorical[str]] = {
        "brand_id": _categorical_ids(ids, brand if every else brand[keep]),
        "date": column(dates),
    }
    del brand, dates
    nothing = np.full(int(keep.sum()), np.nan)
    for col in BASE_COLUMNS:
        daily_columns[col] = column(values.pop(col)) if col in values else nothing.copy()
        if consume and not every:
            _release_arrow_memory()  # the raw column just copied from was Arrow's (Parquet)
    uv = [np.asarray(daily_columns[c], dtype=np.float64) for c in UV_COLUMNS]
    # visitors are measured only when all three parts are (same sum, left to right, as pandas' row sum)
    daily_columns["uv"] = uv[0] + uv[1] + uv[2]
    daily = pd.DataFrame(daily_columns, copy=False)
    return MetricsBatch(daily, quarantine, missing_columns, unknown)


def load_metrics(source: MetricsSource, *, as_of: date, today: date, start: date | None = None) -> MetricsBatch:
    """Read and validate the rows from start (if given) up to as_of."""
    raw, sources, all_columns = read_raw(source, start, as_of)
    try:
        # consume: raw's columns go as the valid frame takes them (one copy of 3.5M rows, not two)
        batch = _validate(raw, as_of=as_of, today=today, start=start, all_columns=all_columns, consume=True)
    except MetricsReadError as exc:
        hint = ""
        if any(h in str(c) for c in all_columns for h in _KUAISHOU_HINTS):
            hint = " (this looks like a Kuaishou 生意通 export: convert it with `brandsteps import-kuaishou FILE --brand ID`)"
        raise MetricsReadError(f"{', '.join(sources)}: {exc}{hint}") from None
    batch.sources = sources
    return batch
