"""Read the metrics source (CSV, Parquet, a folder of them, or an SQL table) into one raw frame, rows numbered."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from brandsteps.catalogue import BASE_COLUMNS, KEY_COLUMNS
from brandsteps.sources.metrics_source.model import MetricsReadError, MetricsSource

if TYPE_CHECKING:
    import pyarrow as pa

_RENAMED_DUPLICATE = re.compile(r"(.+)\.(\d+)")


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
        release_arrow_memory()
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
    repeated = [m for c in frame.columns if (m := _RENAMED_DUPLICATE.fullmatch(str(c))) and m.group(1) in frame.columns]
    if repeated:
        names = ", ".join(sorted({m.group(1) for m in repeated}))
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
    """_source and _row of the stacked parts (lengths rows each).

    _source is categorical: one category per part rather than its label on millions of rows.
    """
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


def release_arrow_memory() -> None:
    """Hand freed Arrow buffers back to the system: Arrow's allocator keeps them for Arrow, NumPy cannot use them."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
