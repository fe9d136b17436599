"""Store imported exports in the metrics: a brand and day imported again replaces the columns the file carries.

Operators re-export the trailing 30–45 days every day (refunds by payment date, affiliate orders
and ad GMV are restated for weeks), so a day the metrics already have is the normal case:

- a brand-day the target has: the file's columns take the file's values, its other columns stay
  (a 磁力金牛 file replaces ad_spend and ad_gmv and leaves gmv alone);
- a brand-day the target lacks: added, its other columns missing (not measured, never 0);
- a value replaced by a different one, or removed (the newer export has none), is kept in the
  revision record with the file, its digest and the time (records.py says where). A value
  appearing where none was is not a revision (nothing is lost), nor is the same value again;
- a file whose digest the target's import log already holds changes nothing ("already imported on …");
- a failing import writes nothing: a file target's files are replaced together (the ones already
  replaced are put back if a later one fails), an SQL target is one transaction.

Many files at once (`restate_many`, what `brandsteps import a.csv b.csv …` does) read the target
once, apply the files in order in memory and write the target once. The outcome is exactly that
of restating each file after the one before it: a later file wins for a brand-day and column, each
file's revisions and counts are against what the files before it left, and a file whose contents
an earlier file of the call already brought is "already imported". A file whose rows cannot be
stored is reported in its own result (`RestateResult.error`) and changes nothing; the others are stored.

Where rows go: a CSV or Parquet file target is rewritten with its rows updated and the new
brand-days appended. In a folder, a brand-day some file already holds is updated in that file and
a new one goes to `imported/<brand_id>.parquet`, so no brand-day is ever in two files (the reader
would quarantine both); only the files whose rows change are rewritten. An SQL table gets UPDATEs
and INSERTs, and is created if missing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import sqlalchemy as sa

from brandsteps.catalogue import BASE_COLUMNS, KEY_COLUMNS
from brandsteps.config import BRAND_ID_PATTERN
from brandsteps.sources.imports import filestore as fs
from brandsteps.sources.imports.model import ImportedFile
from brandsteps.sources.imports.records import (
    IMPORT_COLUMNS,
    FileRecords,
    file_records,
    is_folder,
    read_jsonl,
    record_location,
    revised_after,
    sql_tables,
)
from brandsteps.sources.metrics_source import MetricsSource
from brandsteps.wording import counted

__all__ = ["IMPORTED_FOLDER", "RestateError", "RestateResult", "restate", "restate_many", "revised_after"]

IMPORTED_FOLDER = "imported"  # inside a metrics folder: one Parquet file per brand for the brand-days no file had
_SHOWN = 10  # brand-days named in one error
_IN_CHUNK = 500  # brand ids (or digests) per SQL IN (...) list
_WHOLE_BYTES = 1 << 20  # a folder's files up to this size are read whole at once, bigger ones their keys first


class RestateError(ValueError):
    """The file cannot be stored; nothing was written. The message names the file or target and why."""


@dataclass(frozen=True)
class RestateResult:
    """What one import did to a target, in counts, and its line for the terminal."""

    file: Path
    target: str
    record: str  # where the revisions are kept
    brands: int
    days: int
    columns: tuple[str, ...]
    new_rows: int = 0  # brand-days added
    replaced_cells: int = 0  # cells of brand-days already there that took another value (changed, removed or filled in)
    unchanged_cells: int = 0  # cells that already held the file's value (both missing included)
    revisions: int = 0  # replaced values kept in the record (changed or removed; filled-in ones replace nothing)
    already_imported: bool = False
    imported_at: datetime | None = None  # this import's time, or the earlier import's when already_imported
    error: str | None = (
        None  # why the file was not stored (a RestateError's message; counts 0): nothing of it was written
    )

    @property
    def filled_cells(self) -> int:
        return self.replaced_cells - self.revisions

    def lines(self) -> list[str]:
        if self.error is not None:  # named by its file (a target's own reason names the target)
            return [self.error if self.error.startswith(f"{self.file}: ") else f"{self.file}: {self.error}"]
        if self.already_imported:
            when = f"{self.imported_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if self.imported_at else "an earlier run"
            return [f"{self.file}: already imported on {when} (same contents): nothing changed"]
        head = f"{self.file}: {counted(self.brands, 'brand')} × {counted(self.days, 'day')} × {counted(len(self.columns), 'column')}"
        kept = f" (kept in {self.record})" if self.revisions else ""
        parts = [counted(self.new_rows, "new brand-day"), f"{counted(self.revisions, 'value')} restated{kept}"]
        if self.filled_cells:
            parts.append(f"{counted(self.filled_cells, 'value')} filled in where none was")
        if self.unchanged_cells:
            parts.append(f"{self.unchanged_cells:,} unchanged")
        return [f"{head}; {', '.join(parts)}"]


def restate(target: MetricsSource, imported: ImportedFile, at: datetime | None = None) -> RestateResult:
    """Store the file's rows in the target, replacing the columns it carries for brand-days already there.

    at: the time recorded for this import and its revisions (default now; a naive time is UTC).
    Raises RestateError, with nothing written, when the rows or the target do not allow it.
    """
    result = restate_many(target, [imported], at)[0]
    if result.error is not None:
        raise RestateError(result.error)
    return result


def restate_many(
    target: MetricsSource, files: Sequence[ImportedFile], at: datetime | None = None
) -> list[RestateResult]:
    """Store the files in the target in the order given, reading the target once and writing it once.

    The outcome is that of restating each file after the one before it: a later file's value wins
    for a brand-day and column; each file's counts and revisions are against what the target held
    after the files before it; a file whose digest the target's import log holds, or an earlier
    file of this call that was stored, is `already_imported` and changes nothing.

    Returns one result per file, in the order given. A file whose rows cannot be stored (a column
    that is not a base column, a row without a brand id or date, a brand-day twice in the file, a
    brand-day the target holds more than once) gets a result with `error` set to the reason and
    counts 0, and changes nothing; the other files are stored. (`restate` raises that reason as a
    RestateError.) at: the time recorded for these imports and their revisions (default now; a
    naive time is UTC).

    Raises, with nothing written: RestateError when the target itself cannot take any of them (a
    metrics file that cannot be read, a file target that is not .csv or .parquet, a database
    error); OSError when writing a file target fails (what was already replaced is put back).
    """
    when = datetime.now(UTC) if at is None else at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    screened = _screen(files)
    if target.url is not None:
        return _restate_sql(target, files, screened, when)
    assert target.path is not None
    return _restate_files(target, files, screened, when)


# ---------------------------------------------------------------- the rows and what they change


def _column_problem(imported: ImportedFile) -> str | None:
    """Why the file's columns cannot be stored, if they cannot."""
    where, columns, rows = imported.path, tuple(imported.columns), imported.rows
    unknown = [c for c in columns if c not in BASE_COLUMNS]
    if unknown or len(set(columns)) != len(columns):
        return f"{where}: columns {', '.join(columns)}: each must be a base column of the metrics, once"
    if sorted(map(str, rows.columns)) != sorted([*KEY_COLUMNS, *columns]):
        return (
            f"{where}: the rows hold {', '.join(map(str, rows.columns))}; expected brand_id, date, {', '.join(columns)}"
        )
    return None


@dataclass(frozen=True)
class _Stack:
    """The rows of several files, one under the other in call order; values and carried are (rows, columns)."""

    seq: np.ndarray  # the file (its position in the call) of each row
    pos: np.ndarray  # the row's position in its file's rows
    brand: np.ndarray  # object (str)
    day: np.ndarray  # datetime64[ns] midnight
    values: np.ndarray  # float64, NaN where none or not carried
    carried: np.ndarray  # bool: the row's file carries the column
    columns: list[str]  # every column some file carries, in the order they first come

    def only(self, keep: np.ndarray) -> _Stack:
        return _Stack(
            self.seq[keep],
            self.pos[keep],
            self.brand[keep],
            self.day[keep],
            self.values[keep],
            self.carried[keep],
            self.columns,
        )

    def rows_of(self, i: int) -> pd.DataFrame:
        """File i's rows (brand_id, date), by position in the file."""
        mine = self.seq == i
        return pd.DataFrame({"brand_id": self.brand[mine], "date": self.day[mine]}, index=self.pos[mine])


def _stack(files: Sequence[ImportedFile], picked: list[int]) -> _Stack:
    """The picked files' rows as restate stores them: brand ids as text, days at midnight, the carried columns as float64."""
    columns = list(dict.fromkeys(c for i in picked for c in files[i].columns))
    sizes = np.asarray([len(files[i].rows) for i in picked], dtype=np.int64)
    total = int(sizes.sum())
    # one frame of every row (a column a file lacks is NaN there), read a column at a time: never a file or a row at a time
    both = (
        pd.concat([files[i].rows for i in picked], ignore_index=True)
        if total
        else pd.DataFrame({c: [] for c in [*KEY_COLUMNS, *columns]})
    )
    day = both["date"] if pd.api.types.is_datetime64_dtype(both["date"]) else pd.to_datetime(both["date"])
    carried = np.asarray([[c in files[i].columns for c in columns] for i in picked], dtype=bool).reshape(
        len(picked), len(columns)
    )
    return _Stack(
        seq=np.repeat(np.asarray(picked, dtype=np.int64), sizes),
        pos=np.arange(total) - np.repeat(np.cumsum(sizes) - sizes, sizes),
        brand=both["brand_id"].astype("string").to_numpy(dtype=object),  # <NA> only in rows the screening refuses
        day=day.to_numpy(dtype="datetime64[ns]")
        .astype("datetime64[D]")
        .astype("datetime64[ns]"),  # the day of a timestamp (NaT stays NaT)
        values=np.column_stack([both[c].to_numpy(dtype="float64", na_value=np.nan) for c in columns])
        if columns
        else np.zeros((total, 0)),
        carried=np.repeat(carried, sizes, axis=0),
        columns=columns,
    )


@dataclass(frozen=True)
class _Summary:
    """A file's rows in brief: the counts of its result and the fields of its import log line."""

    brands: int = 0
    days: int = 0
    brand_ids: str = ""  # sorted, comma-separated
    first_day: str | None = None
    last_day: str | None = None


@dataclass(frozen=True)
class _Screened:
    """The rows of the files that can be stored (stacked in call order), and why each other file cannot be stored."""

    stack: _Stack
    errors: dict[int, str]
    summaries: dict[int, _Summary]  # by position in the call, every file that can be stored

    @property
    def ok(self) -> list[int]:
        return list(self.summaries)


def _screen(files: Sequence[ImportedFile]) -> _Screened:
    """Every file's own checks, all files at once (they need nothing of the target)."""
    errors = {i: problem for i, f in enumerate(files) if (problem := _column_problem(f)) is not None}
    stack = _stack(files, [i for i in range(len(files)) if i not in errors])
    brand = pd.Series(stack.brand, dtype="string")
    # brand ids name files of a metrics folder: only slugs
    bad = ~brand.fillna("").str.fullmatch(BRAND_ID_PATTERN[1:-1]).to_numpy(dtype=bool) | np.isnat(stack.day)
    for i, count in zip(*np.unique(stack.seq[bad], return_counts=True), strict=True):
        errors[int(i)] = (
            f"{files[int(i)].path}: {int(count)} row(s) without a brand id (slug) or a date: nothing written"
        )
    keys = pd.DataFrame({"seq": stack.seq, "brand_id": brand, "date": stack.day})
    twice = keys.duplicated(keep=False).to_numpy() & ~np.isin(stack.seq, list(errors))
    for i in np.unique(stack.seq[twice]).tolist():
        named = keys[twice & (stack.seq == i)].drop_duplicates().head(_SHOWN)
        shown = ", ".join(named["brand_id"] + " on " + named["date"].dt.strftime("%Y-%m-%d"))
        errors[i] = f"{files[i].path}: more than one row for {shown}: nothing written"
    stack = stack.only(~np.isin(stack.seq, list(errors)))
    return _Screened(
        stack, dict(sorted(errors.items())), _summaries(stack, [i for i in range(len(files)) if i not in errors])
    )


def _summaries(stack: _Stack, ok: list[int]) -> dict[int, _Summary]:
    rows = pd.DataFrame({"seq": stack.seq, "brand_id": stack.brand, "date": stack.day})
    distinct = rows.drop_duplicates(["seq", "brand_id"]).sort_values(["seq", "brand_id"], kind="stable")
    named, counts = distinct.groupby("seq")["brand_id"].agg(",".join), distinct.groupby("seq").size()
    days = rows.groupby("seq")["date"].agg(["nunique", "min", "max"])  # the same files, in the same order
    out = {i: _Summary() for i in ok}  # a file without rows keeps these
    for i, brand_ids, brands, n, first, last in zip(
        days.index.tolist(),
        named.tolist(),
        counts.tolist(),
        days["nunique"].tolist(),
        days["min"].tolist(),
        days["max"].tolist(),
        strict=True,
    ):
        out[i] = _Summary(brands, n, brand_ids, f"{first:%Y-%m-%d}", f"{last:%Y-%m-%d}")
    return out


def _fresh(files: Sequence[ImportedFile], screened: _Screened, earlier: dict[str, datetime]) -> list[int]:
    """The files that may change the target: their rows can be stored and the import log lacks their digest."""
    return [i for i in screened.ok if files[i].digest not in earlier]


@dataclass(frozen=True)
class _Held:
    """The brand-days a target holds: keys (brand_id string, date, loc: where it is), and how to read a cell and name a place."""

    keys: pd.DataFrame
    cells: Callable[
        [np.ndarray, str], tuple[np.ndarray, np.ndarray]
    ]  # (locs, column) → (numbers, whether each cell held anything)
    places: Callable[[np.ndarray], np.ndarray]  # locs → "FILE row N" as the metrics reader names rows
    where: str


@dataclass(frozen=True)
class _Located:
    """Each stacked row's brand-day (key: 0, 1, … in the order they first come), where the target holds it (-1: it does not)."""

    key: np.ndarray
    loc: np.ndarray  # by key; -1 also for a brand-day the target holds more than once
    twice: pd.DataFrame  # key, loc: every place of the brand-days the target holds more than once

    @classmethod
    def nothing(cls) -> _Located:
        none = np.zeros(0, dtype=np.int64)
        return cls(none, none, pd.DataFrame({"key": none, "loc": none}))


def _locate(stack: _Stack, held: _Held) -> _Located:
    calls = pd.DataFrame({"brand_id": pd.array(stack.brand, dtype="string"), "date": stack.day})
    key = calls.groupby(list(KEY_COLUMNS), sort=False).ngroup().to_numpy(dtype=np.int64)
    first = np.unique(key, return_index=True)[1]
    keys = calls.iloc[first].assign(key=key[first])
    hits = keys.merge(held.keys, on=list(KEY_COLUMNS))[["key", "loc"]]
    count = np.bincount(hits["key"].to_numpy(), minlength=len(first))
    loc = np.full(len(first), -1, dtype=np.int64)
    once = count[hits["key"].to_numpy()] == 1
    loc[hits["key"].to_numpy()[once]] = hits["loc"].to_numpy()[once]
    return _Located(key, loc, hits[~once].reset_index(drop=True))


def _plan(
    target: MetricsSource,
    files: Sequence[ImportedFile],
    screened: _Screened,
    earlier: dict[str, datetime],
    held: _Held | None,
    at: datetime,
) -> _Plan:
    """Which files are stored, and what storing them in order changes: decided in memory, nothing written."""
    fresh = _fresh(files, screened, earlier)
    stack = screened.stack.only(np.isin(screened.stack.seq, fresh))
    located = _locate(stack, held) if held is not None and fresh else _Located.nothing()
    blocked = set(np.unique(stack.seq[np.isin(located.key, located.twice["key"].to_numpy())]).tolist())
    results: list[RestateResult | None] = []
    stored: list[int] = []
    seen: set[str] = set()
    for i, imported in enumerate(files):  # in order: a digest counts as imported once a file before it was stored
        if i in screened.errors:
            results.append(_failed(target, imported, screened.errors[i]))
        elif imported.digest in earlier or imported.digest in seen:
            when = earlier.get(imported.digest, at)
            results.append(replace(_result(target, imported, screened.summaries[i], when), already_imported=True))
        elif i in blocked:
            assert held is not None
            results.append(_failed(target, imported, _twice_for(i, stack, located, held)))
        else:
            results.append(None)
            stored.append(i)
            seen.add(imported.digest)
    keep = np.isin(stack.seq, stored)
    change = _changes(files, stack.only(keep), located.key[keep], located.loc, held, at)
    logged = []
    for i in stored:
        imported, summary = files[i], screened.summaries[i]
        new_rows, revisions = int(change.new_rows[i]), int(change.revisions[i])
        replaced, unchanged = int(change.replaced[i]), int(change.unchanged[i])
        results[i] = replace(
            _result(target, imported, summary, at),
            new_rows=new_rows,
            revisions=revisions,
            replaced_cells=replaced,
            unchanged_cells=unchanged,
        )
        logged.append(_import_record(imported, summary, at, new_rows, revisions))
    done = [r for r in results if r is not None]
    assert len(done) == len(files)
    return _Plan(done, stored, change.revision_rows, logged, change.updates, change.new, change.written)


@dataclass(frozen=True)
class _Plan:
    """What a call stores: the results, revisions and log lines, the cells of held brand-days to set, and the new brand-days."""

    results: list[RestateResult]
    stored: list[int]  # the files stored, by position in the call
    revisions: pd.DataFrame  # records.REVISION_COLUMNS; date and recorded_at as ISO text
    logged: list[dict[str, Any]]  # a line of the import log per stored file
    updates: (
        pd.DataFrame
    )  # loc, column, value: cells of brand-days the target holds that take another value (the last file's)
    new: (
        pd.DataFrame
    )  # brand_id, date, then the columns: brand-days the target lacks, in the order the files bring them
    written: np.ndarray  # (new rows, columns) bool: the cells of new some file filled (the others stay missing)


@dataclass(frozen=True)
class _Change:
    """Counts per file (indexed by position in the call) and what the stored files change, all files together."""

    new_rows: np.ndarray
    replaced: np.ndarray
    unchanged: np.ndarray
    revisions: np.ndarray
    revision_rows: pd.DataFrame
    updates: pd.DataFrame
    new: pd.DataFrame
    written: np.ndarray


def _changes(
    files: Sequence[ImportedFile], stack: _Stack, key: np.ndarray, loc: np.ndarray, held: _Held | None, at: datetime
) -> _Change:
    """Cell by cell, as arrays: each file's value against the value before it (an earlier file's in this call, else the target's).

    A cell is a brand-day (key) and a column; its writes, ordered by file, are a run in the sorted
    cells. The first write of a run compares with the target's cell (none if the target lacks the
    brand-day), every later one with the write before it: what restating the files one by one would find.
    """
    n, width = len(files), len(stack.columns)
    held_day = loc[key] >= 0 if len(key) else np.zeros(0, dtype=bool)
    first = np.zeros(len(key), dtype=bool)
    first[np.unique(key, return_index=True)[1]] = True
    adds = first & ~held_day  # the row that adds its brand-day: the first file bringing a day the target lacks
    r, c = np.nonzero(stack.carried)
    order = np.lexsort((r, c, key[r]))  # rows are in call order: within a run, files in order
    r, c = r[order], c[order]
    k, v = key[r], stack.values[r, c]
    start = np.ones(len(r), dtype=bool)
    start[1:] = (k[1:] != k[:-1]) | (c[1:] != c[:-1])
    old = np.full(len(r), np.nan)
    old[1:] = v[:-1]
    old[start] = np.nan
    had = ~np.isnan(old)
    from_target = start & (loc[k] >= 0) if len(r) else np.zeros(0, dtype=bool)
    for j in np.unique(
        c[from_target]
    ).tolist():  # a column at a time; the target reads each of its files' cells at once
        sel = np.flatnonzero(from_target & (c == j))
        assert held is not None
        old[sel], had[sel] = held.cells(loc[k[sel]], stack.columns[j])
    has = ~np.isnan(v)
    with np.errstate(invalid="ignore"):
        same = (had & has & (old == v)) | (~had & ~has)
    compared = ~adds[r]  # a new brand-day's own cells replace nothing
    changed = compared & ~same
    revised = changed & had  # a value changed or removed is a revision; one appearing where none was replaces nothing
    by_file = stack.seq[r]

    def per_file(mask: np.ndarray) -> np.ndarray:
        return np.bincount(by_file[mask], minlength=n)

    # a run's last write is the cell's value: set when some write of the run changed the cell
    run = np.cumsum(start) - 1
    ends = np.append(np.flatnonzero(start)[1:] - 1, len(r) - 1) if len(r) else np.zeros(0, dtype=np.int64)
    touched = np.bincount(run, weights=changed, minlength=len(ends)) > 0
    last_k, last_c, last_v = k[ends], c[ends], v[ends]
    in_target = loc[last_k] >= 0 if len(ends) else np.zeros(0, dtype=bool)
    names = np.asarray(stack.columns, dtype=object)
    set_cells = in_target & touched
    updates = pd.DataFrame(
        {"loc": loc[last_k[set_cells]], "column": names[last_c[set_cells]], "value": last_v[set_cells]}
    )
    slot = np.full(len(loc), -1, dtype=np.int64)
    slot[key[adds]] = np.arange(int(adds.sum()))
    filled = np.full((int(adds.sum()), width), np.nan)
    written = np.zeros((int(adds.sum()), width), dtype=bool)
    filled[slot[last_k[~in_target]], last_c[~in_target]] = last_v[~in_target]
    written[slot[last_k[~in_target]], last_c[~in_target]] = True
    new = pd.DataFrame(
        {
            "brand_id": stack.brand[adds],
            "date": stack.day[adds],
            **{col: filled[:, j] for j, col in enumerate(stack.columns)},
        }
    )
    return _Change(
        new_rows=np.bincount(stack.seq[adds], minlength=n),
        replaced=per_file(changed),
        unchanged=per_file(compared & same),
        revisions=per_file(revised),
        revision_rows=_revision_rows(files, stack, r[revised], c[revised], old[revised], v[revised], at),
        updates=updates,
        new=new,
        written=written,
    )


def _revision_rows(
    files: Sequence[ImportedFile],
    stack: _Stack,
    rows: np.ndarray,
    columns: np.ndarray,
    old: np.ndarray,
    new: np.ndarray,
    at: datetime,
) -> pd.DataFrame:
    """The revision record's lines: file by file, then by brand and day, a day's columns in its file's order."""
    seq = stack.seq[rows]
    in_file = np.asarray(
        [[f.columns.index(c) if c in f.columns else -1 for c in stack.columns] for f in files] or [[]], dtype=np.int64
    )
    order = (
        pd.DataFrame(
            {
                "seq": seq,
                "brand_id": stack.brand[rows],
                "date": stack.day[rows],
                "place": in_file[seq, columns] if len(seq) else np.zeros(0, dtype=np.int64),
            }
        )
        .sort_values(["seq", "brand_id", "date", "place"], kind="stable")
        .index.to_numpy()
    )
    seq, rows, columns = seq[order], rows[order], columns[order]
    return pd.DataFrame(
        {
            "file": np.asarray([str(f.path) for f in files] or [""], dtype=object)[seq],
            "digest": np.asarray([f.digest for f in files] or [""], dtype=object)[seq],
            "recorded_at": at.isoformat(),
            "brand_id": stack.brand[rows],
            "date": pd.DatetimeIndex(stack.day[rows]).strftime("%Y-%m-%d").to_numpy(dtype=object),
            "column_name": np.asarray(stack.columns, dtype=object)[columns]
            if len(columns)
            else np.zeros(0, dtype=object),
            "old_value": old[order],
            "new_value": new[order],
        },
        index=pd.RangeIndex(len(rows)),
    )


def _days(column: pd.Series) -> pd.Series:
    """Days as the metrics reader reads them (validate): a timestamp's day, or ISO text; NaT where unreadable."""
    if pd.api.types.is_datetime64_any_dtype(column):
        days: pd.Series = column.dt.tz_localize(None) if getattr(column.dt, "tz", None) is not None else column
    else:
        days = pd.to_datetime(column.astype("string").str.strip(), errors="coerce", format="ISO8601")
    normalised: pd.Series = days.dt.normalize().astype("datetime64[ns]")
    return normalised


def _held_keys(brands: list[pd.Series], days: list[pd.Series]) -> pd.DataFrame:
    """A target's brand-days, part after part (its files), as the files' rows are matched against them; loc: their position."""
    brand = pd.Series(
        np.concatenate([np.zeros(0, dtype=object), *[b.to_numpy(dtype=object) for b in brands]]), dtype=object
    )
    day = np.concatenate(
        [np.zeros(0, dtype="datetime64[ns]"), *[_days(d).to_numpy(dtype="datetime64[ns]") for d in days]]
    )
    keys = pd.DataFrame(
        {"brand_id": brand.astype("string").str.strip(), "date": day, "loc": np.arange(len(brand))}
    )  # text handled once, not per file
    return keys.astype({"brand_id": "string"})


def _twice_for(i: int, stack: _Stack, located: _Located, held: _Held) -> str:
    """Why file i cannot be stored: brand-days of it that the target holds more than once."""
    mine = np.flatnonzero(stack.seq == i)
    hits = pd.DataFrame({"key": located.key[mine], "pos": stack.pos[mine]}).merge(located.twice, on="key")
    return _twice_message(hits.assign(place=held.places(hits["loc"].to_numpy())), stack.rows_of(i), held.where)


def _twice_message(hits: pd.DataFrame, rows: pd.DataFrame, where: str) -> str:
    """The brand-days the target holds more than once: which one would be replaced cannot be told."""
    twice = hits[hits.duplicated("pos", keep=False)].sort_values(["pos", "place"], kind="stable")
    places = twice.groupby("pos", sort=True)["place"].agg(", ".join).head(_SHOWN)
    picked = rows.loc[places.index.to_numpy()]
    named = (
        picked["brand_id"].astype(str)
        + " on "
        + picked["date"].dt.strftime("%Y-%m-%d")
        + " ("
        + places.to_numpy()
        + ")"
    )
    return f"{where} already holds {'; '.join(named)} more than once: nothing written (the metrics reader quarantines every copy; keep one and import again)"


def _result(target: MetricsSource, imported: ImportedFile, summary: _Summary, at: datetime) -> RestateResult:
    """The result of storing the file at `at`, counts 0 (those of an import that changed nothing)."""
    return RestateResult(
        imported.path,
        target.describe(),
        record_location(target),
        summary.brands,
        summary.days,
        tuple(imported.columns),
        imported_at=at,
    )


def _failed(target: MetricsSource, imported: ImportedFile, error: str) -> RestateResult:
    return RestateResult(
        imported.path, target.describe(), record_location(target), 0, 0, tuple(imported.columns), error=error
    )


def _import_record(
    imported: ImportedFile, summary: _Summary, at: datetime, new_rows: int, revisions: int
) -> dict[str, Any]:
    """One line of the import log (records.IMPORT_COLUMNS)."""
    return {
        "file": str(imported.path),
        "digest": imported.digest,
        "profile": imported.profile,
        "imported_at": at.isoformat(),
        "brands": summary.brand_ids,
        "days": summary.days,
        "first_day": summary.first_day,
        "last_day": summary.last_day,
        "columns": ",".join(imported.columns),
        "new_rows": new_rows,
        "revisions": revisions,
    }


# ---------------------------------------------------------------- a file or a folder


def _restate_files(
    target: MetricsSource, files: Sequence[ImportedFile], screened: _Screened, at: datetime
) -> list[RestateResult]:
    assert target.path is not None
    path = target.path
    folder = is_folder(path)
    if not folder and path.suffix.lower() not in fs.METRIC_SUFFIXES:
        raise RestateError(f"{path}: the metrics file must be .csv or .parquet to import into it")
    if not screened.ok:  # no file can be stored: nothing of the target is read, locked or created
        return _plan(target, files, screened, {}, None, at).results
    records = file_records(path)
    with fs.locked(records.lock):
        earlier = _earlier_file_imports(records)
        held = _FilesHeld(path, folder) if _fresh(files, screened, earlier) else None
        plan = _plan(target, files, screened, earlier, held.held if held is not None else None, at)
        if plan.stored:
            assert held is not None
            touched = held.updated(plan.updates)
            _add_new_rows(touched, held, path, folder, plan.new, plan.written)
            _write_all(records, touched, plan.revisions, plan.logged)
    return plan.results


def _earlier_file_imports(records: FileRecords) -> dict[str, datetime]:
    """Each digest of the import log, with the time of its first import."""
    log = read_jsonl(records.imports, IMPORT_COLUMNS)
    first = log.drop_duplicates("digest", keep="first")
    return {str(d): datetime.fromisoformat(str(t)) for d, t in zip(first["digest"], first["imported_at"], strict=True)}


def _read(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    try:
        return fs.read_metrics_file(path, columns)
    except fs.FileStoreError as exc:
        raise RestateError(f"{exc}: nothing written") from None
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise RestateError(
            f"{path}: not a readable metrics file ({type(exc).__name__}: {exc}): nothing written"
        ) from None


class _FilesHeld:
    """A file target's or folder's files: every file's brand-days read once (their keys), a whole file only when its rows are needed."""

    def __init__(self, path: Path, folder: bool) -> None:
        self.files = fs.metric_files(path) if folder else [path] if path.exists() else []
        self.index = {f: i for i, f in enumerate(self.files)}
        self.frames: dict[int, pd.DataFrame] = {}
        brands, days, owner, rows = [], [], [], []
        for i in range(len(self.files)):  # one read per file, vectorised within
            keys = self.keys(i, folder)
            if not set(KEY_COLUMNS) <= set(keys.columns):
                continue  # not a metrics table at all: the reader reports it; the import cannot match rows in it
            brands.append(keys["brand_id"])
            days.append(keys["date"])
            owner.append(np.full(len(keys), i, dtype=np.int64))
            rows.append(np.arange(len(keys)))
        self.file_of = np.concatenate([np.zeros(0, dtype=np.int64), *owner])
        self.row_of = np.concatenate([np.zeros(0, dtype=np.int64), *rows])
        self.first_row = np.asarray([fs.row_number(f, 0) for f in self.files] or [0], dtype=np.int64)
        self.names = np.asarray([str(f) for f in self.files] or [""], dtype=object)
        self.held = _Held(_held_keys(brands, days), self.cells, self.places, str(path))

    def keys(self, i: int, folder: bool) -> pd.DataFrame:
        """The file's rows, at least brand_id and date: a file target, and a folder's small files, are read whole at once
        (a brand's file is mostly read whole later); a big one only its keys (the rest only if its rows are needed)."""
        if not folder:
            return self.frame(i)
        if self.files[i].stat().st_size <= _WHOLE_BYTES:
            try:
                return self.frame(i)
            except RestateError:
                pass  # a column that cannot be read: its keys may still be, and the rest is never needed unless its rows are
        return _read(self.files[i], list(KEY_COLUMNS))

    def frame(self, i: int) -> pd.DataFrame:
        if i not in self.frames:
            self.frames[i] = _read(self.files[i])
        return self.frames[i]

    def frame_at(self, path: Path) -> pd.DataFrame | None:
        """The file's rows as found (None when there is no such file)."""
        if path in self.index:
            return self.frame(self.index[path])
        return _read(path) if path.exists() else None

    def by_file(self, locs: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """(file, positions in locs) for each file holding some of the locs, in file order."""
        owner = self.file_of[locs]
        order = np.argsort(owner, kind="stable")
        parts = np.split(order, np.flatnonzero(np.diff(owner[order])) + 1) if len(order) else []
        return [(int(owner[part[0]]), part) for part in parts]

    def cells(self, locs: np.ndarray, column: str) -> tuple[np.ndarray, np.ndarray]:
        values, had = np.full(len(locs), np.nan), np.zeros(len(locs), dtype=bool)
        for i, sel in self.by_file(locs):  # a file at a time
            frame = self.frame(i)
            if column in frame.columns:
                values[sel], had[sel] = fs.numbers(frame[column].iloc[self.row_of[locs[sel]]])
        return values, had

    def places(self, locs: np.ndarray) -> np.ndarray:
        owner = self.file_of[locs]
        return np.asarray(
            self.names[owner] + " row " + (self.row_of[locs] + self.first_row[owner]).astype(str), dtype=object
        )

    def updated(self, updates: pd.DataFrame) -> dict[Path, pd.DataFrame]:
        """The files whose cells change, with the values put in: only the changed cells are written (the rest stay as found)."""
        touched: dict[Path, pd.DataFrame] = {}
        locs = updates["loc"].to_numpy(dtype=np.int64)
        column, value = updates["column"].to_numpy(dtype=object), updates["value"].to_numpy(dtype="float64")
        for i, sel in self.by_file(locs):  # a file at a time, a column at a time within
            cells = {
                str(c): (self.row_of[locs[sel][column[sel] == c]], value[sel][column[sel] == c])
                for c in dict.fromkeys(column[sel].tolist())
            }
            touched[self.files[i]] = fs.put_values(self.frame(i), cells, fs.is_text(self.files[i]))
        return touched


def _add_new_rows(
    touched: dict[Path, pd.DataFrame],
    held: _FilesHeld,
    path: Path,
    folder: bool,
    new: pd.DataFrame,
    written: np.ndarray,
) -> None:
    """New brand-days into their file: the file target itself, or the brand's file under imported/ in a folder.

    A brand's own file reads best in date order; a user's file keeps its order, new days last.
    """
    if not len(new):
        return
    names = list(new.columns[2:])
    if not folder:
        _append(touched, held, path, new, names, written, sort=False)
        return
    order = np.lexsort((new["date"].to_numpy(), new["brand_id"].to_numpy(dtype=object)))  # by brand, then day
    brand = new["brand_id"].to_numpy(dtype=object)[order]
    starts = np.flatnonzero(np.r_[True, brand[1:] != brand[:-1]])
    homes = [
        (path / IMPORTED_FOLDER / f"{brand[a]}.parquet", order[a:b])
        for a, b in zip(starts, [*starts[1:], len(order)], strict=True)
    ]
    alone = [(home, at) for home, at in homes if home not in touched and held.frame_at(home) is None]
    lonely = {home for home, _ in alone}
    for home, at in homes:
        if home not in lonely:
            _append(touched, held, home, new.iloc[at], names, written[at], sort=True)
    # the brands without a file yet: their new files made together, a brand's rows a slice of them
    by_columns: dict[tuple[str, ...], list[tuple[Path, np.ndarray]]] = {}
    for home, at in alone:
        by_columns.setdefault(tuple(c for j, c in enumerate(names) if written[at, j].any()), []).append((home, at))
    for columns, group in by_columns.items():
        added = fs.new_rows_like(None, new.iloc[np.concatenate([at for _, at in group])], columns, False)
        ends = np.cumsum([len(at) for _, at in group])
        for (home, _), end, size in zip(group, ends.tolist(), [len(at) for _, at in group], strict=True):
            touched[home] = added.iloc[end - size : end].reset_index(drop=True)


def _append(
    touched: dict[Path, pd.DataFrame],
    held: _FilesHeld,
    home: Path,
    new: pd.DataFrame,
    names: list[str],
    written: np.ndarray,
    sort: bool,
) -> None:
    """New rows after the file's rows (as changed so far, or as found), in the file's shape."""
    frame = touched.get(home)
    if frame is None:
        frame = held.frame_at(home)
    columns = tuple(c for j, c in enumerate(names) if written[:, j].any())  # only the columns these rows' files carry
    added = fs.new_rows_like(frame, new, columns, fs.is_text(home))
    merged = added if frame is None else pd.concat([frame, added], ignore_index=True)
    touched[home] = merged.sort_values("date", kind="stable", ignore_index=True) if sort else merged


def _jsonl(records: list[dict[str, Any]]) -> bytes:
    # json.dumps, not DataFrame.to_json: a float keeps every digit (to_json rounds to 10 by default)
    return "".join(json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n" for r in records).encode("utf-8")


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts of Python values, None for missing (what json and the database driver take)."""
    return cast(list[dict[str, Any]], frame.astype(object).where(frame.notna(), None).to_dict("records"))


def _write_all(
    records: FileRecords, touched: dict[Path, pd.DataFrame], revisions: pd.DataFrame, logged: list[dict[str, Any]]
) -> None:
    """Every file written beside its place first; then revisions, files and the log lines land in that order, or none does.

    Revisions go first and the import log last: a crash in between leaves at worst a revision
    recorded twice (the file imported again records it again), never a value replaced unrecorded.
    """
    commit = fs.FileCommit()
    temps = [(fs.temp_for(final, commit.token), final) for final in touched]
    try:
        for tmp, final in temps:
            fs.write_frame(touched[final], tmp, final)
        try:
            commit.append(records.revisions, _jsonl(_records(revisions)))
            for tmp, final in temps:
                commit.replace(tmp, final)
            commit.append(records.imports, _jsonl(logged))
        except BaseException:
            commit.rollback()
            raise
    finally:
        commit.close()
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------- an SQL table


def _restate_sql(
    target: MetricsSource, files: Sequence[ImportedFile], screened: _Screened, at: datetime
) -> list[RestateResult]:
    from brandsteps.ledger import redact

    if not screened.ok:  # no file can be stored: the database is not touched
        return _plan(target, files, screened, {}, None, at).results
    url = sa.engine.make_url(target.url or "")
    sqlite = url.get_backend_name() == "sqlite"
    # SQLite: wait for another import's write lock (as the ledger does) rather than fail after 5 s
    engine = sa.create_engine(url, connect_args={"timeout": 120} if sqlite else {})
    if sqlite:
        _sqlite_write_lock_at_begin(engine)
    try:
        with engine.connect() as conn, conn.begin() as transaction:
            # one transaction: the updates, inserts, revisions and log lines commit together or not at all
            plan = _restate_in(conn, target, files, screened, at)
            if not plan.stored:
                transaction.rollback()  # nothing to store: not even the record tables are created
            return plan.results
    except sa.exc.SQLAlchemyError as exc:
        first = str(getattr(exc, "orig", exc)).strip().splitlines()
        raise RestateError(
            redact(f"{target.describe()}: {first[0] if first else type(exc).__name__}: nothing written")
        ) from None
    finally:
        engine.dispose()


def _sqlite_write_lock_at_begin(engine: sa.Engine) -> None:
    """SQLite: take the write lock at BEGIN, so a second import waits and then reads what the first wrote."""

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy's BEGIN below, not the driver's own

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _restate_in(
    conn: sa.Connection, target: MetricsSource, files: Sequence[ImportedFile], screened: _Screened, at: datetime
) -> _Plan:
    schema_name, _, name = target.table.rpartition(".")
    schema = schema_name or None
    if conn.dialect.name == "postgresql":
        # one import into this table at a time (released at commit): each reads what the last one wrote
        conn.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"brandsteps restate {target.table}"}
        )
    revisions, imports = sql_tables(schema)
    revisions.metadata.create_all(conn)
    earlier = _earlier_sql_imports(conn, imports, sorted({files[i].digest for i in screened.ok}))
    fresh = _fresh(files, screened, earlier)
    table = _reflected(conn, name, schema) if fresh else None
    existing = pd.DataFrame({"k_brand": pd.Series(dtype=object), "k_date": pd.Series(dtype=object)})
    if table is not None:
        brands = sorted(set(screened.stack.brand[np.isin(screened.stack.seq, fresh)].tolist()))
        carried = [c for c in dict.fromkeys(c for i in fresh for c in files[i].columns) if c in table.c]
        existing = _existing_rows(conn, table, brands, carried)
    plan = _plan(target, files, screened, earlier, _sql_held(existing, target.describe()) if fresh else None, at)
    if not plan.stored:
        return plan
    table = _metrics_table(
        conn, table, name, schema, tuple(dict.fromkeys(c for i in plan.stored for c in files[i].columns))
    )
    _update_rows(conn, table, existing, plan.updates)
    written = [c for j, c in enumerate(plan.new.columns[2:]) if plan.written[:, j].any()]
    _insert_rows(conn, table, plan.new[["brand_id", "date", *written]], tuple(written))
    if len(plan.revisions):
        revised = plan.revisions.assign(recorded_at=at, date=pd.to_datetime(plan.revisions["date"]).dt.date)
        conn.execute(revisions.insert(), _records(revised))
    logged = [
        {**line, "imported_at": at, "first_day": _day(line["first_day"]), "last_day": _day(line["last_day"])}
        for line in plan.logged
    ]
    conn.execute(imports.insert(), logged)
    return plan


def _day(text: str | None) -> Any:
    return None if text is None else datetime.fromisoformat(text).date()


def _earlier_sql_imports(conn: sa.Connection, imports: sa.Table, digests: list[str]) -> dict[str, datetime]:
    """Each of these digests the import log holds, with the time of its first import."""
    found: dict[str, datetime] = {}
    for start in range(0, len(digests), _IN_CHUNK):
        query = (
            sa.select(imports.c.digest, sa.func.min(imports.c.imported_at))
            .where(imports.c.digest.in_(digests[start : start + _IN_CHUNK]))
            .group_by(imports.c.digest)
        )
        for digest, when in conn.execute(query):
            found[digest] = (
                when if when.tzinfo is not None else when.replace(tzinfo=UTC)
            )  # SQLite gives UTC back without its zone
    return found


def _sql_held(existing: pd.DataFrame, where: str) -> _Held:
    def cells(locs: np.ndarray, column: str) -> tuple[np.ndarray, np.ndarray]:
        if column not in existing.columns:  # a column the table lacks: added when the rows are stored
            return np.full(len(locs), np.nan), np.zeros(len(locs), dtype=bool)
        return fs.numbers(existing[column].iloc[locs])

    def places(locs: np.ndarray) -> np.ndarray:
        return np.asarray(["row " + str(loc) for loc in locs.tolist()], dtype=object)

    return _Held(_held_keys([existing["k_brand"]], [existing["k_date"]]), cells, places, where)


def _reflected(conn: sa.Connection, name: str, schema: str | None) -> sa.Table | None:
    """The metrics table as it is, or None when there is none yet."""
    if not sa.inspect(conn).has_table(name, schema=schema):
        return None
    table = sa.Table(name, sa.MetaData(schema=schema), autoload_with=conn)
    if "brand_id" not in table.c or "date" not in table.c:
        raise RestateError(f"table {name!r} has no brand_id or date column: not a metrics table")
    return table


def _metrics_table(
    conn: sa.Connection, table: sa.Table | None, name: str, schema: str | None, columns: tuple[str, ...]
) -> sa.Table:
    """The metrics table, created when missing; the carried columns it lacks are added (names from BASE_COLUMNS, never from data)."""
    if table is None:
        table = sa.Table(
            name,
            sa.MetaData(schema=schema),
            sa.Column("brand_id", sa.String(64), nullable=False),
            sa.Column("date", sa.Date, nullable=False),
            *[sa.Column(c, sa.Float) for c in BASE_COLUMNS],
            sa.PrimaryKeyConstraint("brand_id", "date"),
        )
        table.create(conn)
        return table
    lacking = [c for c in columns if c not in table.c]
    if lacking:
        quote = conn.dialect.identifier_preparer
        float_type = sa.Float().compile(dialect=conn.dialect)
        for column in lacking:
            conn.execute(
                sa.text(f"ALTER TABLE {quote.format_table(table)} ADD COLUMN {quote.quote(column)} {float_type}")
            )
        table = sa.Table(name, sa.MetaData(schema=schema), autoload_with=conn)
    return table


def _existing_rows(conn: sa.Connection, table: sa.Table, brands: list[str], columns: list[str]) -> pd.DataFrame:
    """The brands' rows: k_brand and k_date as stored (so an UPDATE finds them again), then these columns."""
    fetched: list[Any] = []
    for start in range(0, len(brands), _IN_CHUNK):  # bound parameters, a chunk of brands at a time
        query = sa.select(table.c.brand_id, table.c.date, *[table.c[c] for c in columns]).where(
            table.c.brand_id.in_(brands[start : start + _IN_CHUNK])
        )
        fetched += conn.execute(query).all()
    frame = pd.DataFrame.from_records(fetched, columns=["k_brand", "k_date", *columns], coerce_float=False)
    return frame.astype({"k_brand": object, "k_date": object})


def _update_rows(conn: sa.Connection, table: sa.Table, existing: pd.DataFrame, updates: pd.DataFrame) -> None:
    """One UPDATE per restated row setting its changed cells; the rows that change the same columns go as one executemany."""
    if not len(updates):
        return
    locs, row = np.unique(updates["loc"].to_numpy(dtype=np.int64), return_inverse=True)
    columns = list(dict.fromkeys(updates["column"].tolist()))
    col = pd.Index(columns).get_indexer(updates["column"])
    values = np.full((len(locs), len(columns)), np.nan)
    changed = np.zeros((len(locs), len(columns)), dtype=bool)
    values[row, col], changed[row, col] = updates["value"].to_numpy(dtype="float64"), True
    patterns, which = np.unique(changed, axis=0, return_inverse=True)
    for p, pattern in enumerate(patterns):
        sel = np.flatnonzero(which.reshape(-1) == p)
        setting = [columns[j] for j in np.flatnonzero(pattern)]
        params = pd.DataFrame(
            {
                "k_brand": existing["k_brand"].to_numpy(dtype=object)[locs[sel]],
                "k_date": existing["k_date"].to_numpy(dtype=object)[locs[sel]],
                **{f"v_{c}": values[sel, columns.index(c)] for c in setting},
            }
        )
        statement = (
            table.update()
            .where(table.c.brand_id == sa.bindparam("k_brand"), table.c.date == sa.bindparam("k_date"))
            .values({c: sa.bindparam(f"v_{c}") for c in setting})
        )
        conn.execute(statement, _records(params))


def _insert_rows(conn: sa.Connection, table: sa.Table, new: pd.DataFrame, columns: tuple[str, ...]) -> None:
    if not len(new):
        return
    days = new["date"]
    kind = table.c.date.type
    # the date as the column stores it: a DateTime column takes datetimes, a Date column dates, text ISO days
    stored = (
        days.dt.to_pydatetime()
        if isinstance(kind, sa.DateTime)
        else days.dt.date.to_numpy()
        if isinstance(kind, sa.Date)
        else days.dt.strftime("%Y-%m-%d").to_numpy()
    )
    values = pd.DataFrame(
        {
            "brand_id": new["brand_id"].astype(str).to_numpy(),
            "date": list(stored),
            **{c: new[c].to_numpy() for c in columns},
        }
    )
    conn.execute(table.insert(), _records(values))
