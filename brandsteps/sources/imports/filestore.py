"""Metrics files as restating reads and writes them: cells kept as found, files replaced together or not at all.

A CSV file is read as text (every cell as written: unchanged cells are written back byte for
byte); a Parquet file with its types. Values the import puts in are numbers in a numeric
column and shortest-form text (`402`, `1388.5`) in a text column.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "METRIC_SUFFIXES",
    "FileCommit",
    "FileStoreError",
    "as_text",
    "is_text",
    "locked",
    "metric_files",
    "new_rows_like",
    "numbers",
    "put_values",
    "read_metrics_file",
    "row_number",
    "temp_for",
    "write_frame",
]

# The files a metrics folder reads (metrics_source.read_raw): anything else in the folder is never metrics.
METRIC_SUFFIXES = frozenset({".csv", ".parquet", ".pq"})


class FileStoreError(Exception):
    """A metrics file that cannot be read or has no place for the rows."""


def metric_files(folder: Path) -> list[Path]:
    """The files of a metrics folder, in the order the metrics reader stacks them."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in METRIC_SUFFIXES)


def is_text(path: Path) -> bool:
    """CSV files are kept as text; Parquet files keep their types."""
    return path.suffix.lower() == ".csv"


def row_number(path: Path, position: int) -> int:
    """A row as the metrics reader numbers it in quarantine messages: a CSV's line (the header's is 1), a Parquet row
    counted from 1."""
    return position + (2 if is_text(path) else 1)


def read_metrics_file(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """The file's rows (only these columns, those it has, when given); a CSV as text, missing cells as ''."""
    if not is_text(path):
        if columns is None:
            return pd.read_parquet(path)
        import pyarrow.parquet as pq

        have = set(pq.read_schema(path).names)
        return pd.read_parquet(path, columns=[c for c in columns if c in have])
    with path.open("rb") as handle:
        bom = handle.read(2)
    # the encodings the metrics reader accepts; the rewritten file is UTF-8
    encodings = ("utf-16",) if bom in (b"\xff\xfe", b"\xfe\xff") else ("utf-8-sig", "gb18030")
    usecols = None if columns is None else (lambda c: c in columns)
    for encoding in encodings:
        try:
            return pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding, usecols=usecols)
        except UnicodeDecodeError:
            continue
        except (pd.errors.EmptyDataError, pd.errors.ParserError) as exc:
            raise FileStoreError(f"{path}: not a readable CSV file ({str(exc).strip()})") from None
    raise FileStoreError(f"{path}: unknown text encoding (use UTF-8)")


def numbers(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The cells as the metrics reader reads them: (values as float64, NaN where none or unreadable; whether a cell
    holds anything)."""
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        values = column.to_numpy(dtype="float64", na_value=np.nan)
        return values, ~np.isnan(values)
    text = column.astype("string").str.strip()
    present = (text.notna() & (text != "")).to_numpy(dtype=bool)
    # "1,204" is 1204 to the metrics reader (validate strips thousands separators)
    parsed = pd.to_numeric(text.str.replace(",", "", regex=False), errors="coerce")
    return parsed.to_numpy(dtype="float64", na_value=np.nan), present


def as_text(values: np.ndarray) -> np.ndarray:
    """Numbers as a CSV cell shows them: whole ones without '.0' (402), others in shortest form (1388.5), '' if none."""
    out = np.full(len(values), "", dtype=object)
    has = ~np.isnan(values)
    whole = has & (np.abs(values) < 2.0**53)
    whole[whole] = np.mod(values[whole], 1) == 0
    out[whole] = values[whole].astype(np.int64).astype(str)
    rest = has & ~whole
    out[rest] = values[rest].astype(str)
    return out


def _text_column(frame: pd.DataFrame, column: str, text: bool) -> bool:
    """Whether the column takes text: every column of a CSV, and a Parquet column of text that already holds some."""
    if text:
        return True
    series = frame[column]
    numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    return not numeric and bool(series.notna().any())


def put_values(frame: pd.DataFrame, cells: Mapping[str, tuple[np.ndarray, np.ndarray]], text: bool) -> pd.DataFrame:
    """A new frame with these cells set: column → (positions, values), NaN: none.

    A column the file lacks is added after its others.

    A column that takes text gets shortest-form text; any other becomes float64 (an all-empty or
    integer column takes fractions and NaN). The frame itself is left as it was.
    """
    changed: dict[str, np.ndarray] = {}
    for column, (positions, values) in cells.items():  # a column at a time, its cells at once
        if column not in frame.columns:
            current, takes_text = (
                (np.full(len(frame), "", dtype=object), True) if text else (np.full(len(frame), np.nan), False)
            )
        elif _text_column(frame, column, text):
            current, takes_text = frame[column].to_numpy(dtype=object, copy=True), True
        else:
            current, takes_text = pd.to_numeric(frame[column]).to_numpy(dtype="float64", copy=True), False
        current[positions] = as_text(values) if takes_text else values
        changed[column] = current
    names = [*frame.columns, *[c for c in changed if c not in frame.columns]]
    return pd.DataFrame({c: changed[c] if c in changed else frame[c] for c in names}, index=frame.index)


def new_rows_like(frame: pd.DataFrame | None, rows: pd.DataFrame, columns: tuple[str, ...], text: bool) -> pd.DataFrame:
    """rows (brand_id, date, columns) in the shape of the file's frame.

    Its date form, text where it keeps text, its other columns empty.
    """
    days = rows["date"]
    out: dict[str, object] = {"brand_id": rows["brand_id"].astype(str).to_numpy()}
    existing = frame["date"] if frame is not None and "date" in frame.columns else None
    if text or (existing is not None and pd.api.types.is_string_dtype(existing)):
        out["date"] = days.dt.strftime("%Y-%m-%d").to_numpy()
    elif existing is not None and existing.dtype == object:  # datetime.date objects (a date32 Parquet column)
        out["date"] = days.dt.date.to_numpy()
    elif existing is not None and getattr(existing.dt, "tz", None) is not None:
        out["date"] = days.dt.tz_localize(existing.dt.tz).to_numpy()
    else:
        out["date"] = days.to_numpy()
    for column in columns:
        values = rows[column].to_numpy(dtype="float64")
        takes_text = frame is not None and column in frame.columns and _text_column(frame, column, text)
        out[column] = as_text(values) if text or takes_text else values
    if frame is not None:  # the file's other columns, empty
        size = len(rows)
        out.update({c: np.full(size, "" if text else None, dtype=object) for c in frame.columns if c not in out})
    return pd.DataFrame(out)


def temp_for(final: Path, token: str) -> Path:
    """A temporary file beside final, never read as metrics (suffix .tmp), moved onto final once all are written."""
    return final.with_name(f".{final.name}.{token}.tmp")


def write_frame(frame: pd.DataFrame, tmp: Path, final: Path) -> None:
    """The frame written to tmp in final's format."""
    final.parent.mkdir(parents=True, exist_ok=True)
    if is_text(final):
        frame.to_csv(tmp, index=False, encoding="utf-8")
    else:
        frame.to_parquet(tmp, index=False)


@contextmanager
def locked(lock: Path) -> Iterator[None]:
    """One import into a target at a time: two at once would each rewrite the files the other just read."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # the kernel releases it if the process dies
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class FileCommit:
    """Appends and replacements, undone in reverse order if a later one fails: an import lands whole or not at all."""

    def __init__(self) -> None:
        self.token = uuid.uuid4().hex[:12]
        self._undo: list[Callable[[], None]] = []
        self._backups: list[Path] = []

    def append(self, path: Path, data: bytes) -> None:
        if not data:
            return
        size = path.stat().st_size if path.exists() else None
        self._undo.append(lambda: _truncate(path, size))  # before writing: a half-written append is undone too
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())

    def replace(self, tmp: Path, final: Path) -> None:
        backup = final.with_name(f".{final.name}.{self.token}.bak") if final.exists() else None
        if backup is not None:
            try:
                os.link(final, backup)  # the old file stays reachable while the new one takes its name
            except OSError:
                shutil.copy2(final, backup)
            self._backups.append(backup)
        self._undo.append(lambda: _restore(final, backup))
        os.replace(tmp, final)

    def rollback(self) -> None:
        for step in reversed(self._undo):
            step()
        self._undo.clear()

    def close(self) -> None:
        for backup in self._backups:
            backup.unlink(missing_ok=True)


def _truncate(path: Path, size: int | None) -> None:
    if size is None:
        path.unlink(missing_ok=True)
    else:
        os.truncate(path, size)


def _restore(final: Path, backup: Path | None) -> None:
    if backup is None:
        final.unlink(missing_ok=True)  # a file this import created
    else:
        os.replace(backup, final)
