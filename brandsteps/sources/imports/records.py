"""Where a metrics target keeps its revision record and import log, and reading them back (explain's note).

File targets keep two JSON-lines files, never read as metrics (a metrics folder reads only
.csv/.parquet/.pq files):

- a folder: `revisions.jsonl` and `imports.jsonl` inside it;
- a file `data/metrics.csv`: `data/metrics.csv.revisions.jsonl` and `data/metrics.csv.imports.jsonl` beside it.

An SQL target keeps the tables `metric_revisions` and `metric_imports` next to its metrics table
(same database and schema).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from brandsteps.catalogue import UV_COLUMNS
from brandsteps.sources.metrics_source import MetricsSource

__all__ = [
    "IMPORT_COLUMNS",
    "IMPORTS_TABLE",
    "REVISION_COLUMNS",
    "REVISIONS_TABLE",
    "FileRecords",
    "decision_window",
    "as_known",
    "file_records",
    "is_folder",
    "read_jsonl",
    "read_revisions",
    "record_location",
    "revised_after",
    "revised_inputs",
    "sql_tables",
]

# One replaced value: which import (file, digest, when) replaced which cell, and what it was and became.
# old_value empty: the cell held text that was not a number; new_value empty: the newer export has no value.
REVISION_COLUMNS: tuple[str, ...] = (
    "file",
    "digest",
    "recorded_at",
    "brand_id",
    "date",
    "column_name",
    "old_value",
    "new_value",
)
# One import: a digest recorded here is never applied to this target again.
IMPORT_COLUMNS: tuple[str, ...] = (
    "file", "digest", "profile", "imported_at", "brands", "days", "first_day", "last_day", "columns",
    "new_rows", "revisions",
)  # fmt: skip
REVISIONS_TABLE, IMPORTS_TABLE = "metric_revisions", "metric_imports"


@dataclass(frozen=True)
class FileRecords:
    """The record files of a file or folder target, and the lock file imports into it take."""

    revisions: Path
    imports: Path
    lock: Path


def is_folder(path: Path) -> bool:
    """A folder target: an existing folder, or a path without a suffix (created on first import)."""
    return path.is_dir() or not path.suffix


def file_records(path: Path) -> FileRecords:
    if is_folder(path):
        return FileRecords(path / "revisions.jsonl", path / "imports.jsonl", path / ".restate.lock")
    # the whole name: metrics.csv and metrics.parquet side by side are two targets with two records
    name = path.name
    return FileRecords(
        path.with_name(f"{name}.revisions.jsonl"),
        path.with_name(f"{name}.imports.jsonl"),
        path.with_name(f".{name}.restate.lock"),
    )


def sql_tables(schema: str | None) -> tuple[sa.Table, sa.Table]:
    """metric_revisions and metric_imports in the metrics table's schema (their own MetaData: one per schema)."""
    meta = sa.MetaData(schema=schema)
    revisions = sa.Table(
        REVISIONS_TABLE,
        meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("file", sa.Text, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("brand_id", sa.String(64), nullable=False),
        sa.Column("date", sa.Date, nullable=False),
        sa.Column("column_name", sa.String(32), nullable=False),
        sa.Column("old_value", sa.Float),
        sa.Column("new_value", sa.Float),
        sa.Index(f"ix_{REVISIONS_TABLE}_brand_date", "brand_id", "date"),
    )
    imports = sa.Table(
        IMPORTS_TABLE,
        meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("file", sa.Text, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("profile", sa.String(64), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("brands", sa.Text, nullable=False),
        sa.Column("days", sa.Integer, nullable=False),
        sa.Column("first_day", sa.Date),
        sa.Column("last_day", sa.Date),
        sa.Column("columns", sa.Text, nullable=False),
        sa.Column("new_rows", sa.Integer, nullable=False),
        sa.Column("revisions", sa.Integer, nullable=False),
        sa.Index(f"ix_{IMPORTS_TABLE}_digest", "digest"),
    )
    return revisions, imports


def read_jsonl(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """A JSON-lines record as a frame of these columns (object values as written); empty when there is no file."""
    if not path.exists():
        return _empty_record(columns)
    # json, not pd.read_json: values stay as written (a digest of digits stays text, no date guessing)
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return pd.DataFrame.from_records(records, columns=list(columns)).astype(object)


def record_location(source: MetricsSource) -> str:
    """Where the source's revisions are kept, as the terminal names it."""
    if source.path is not None:
        return str(file_records(source.path).revisions)
    schema, _, _ = source.table.rpartition(".")
    return f"table {schema + '.' if schema else ''}{REVISIONS_TABLE}"


def decision_window(as_of: date, days_in_stage: int, window_days: int) -> tuple[date, date]:
    """The days a decision read: its stage's window ending on as_of, never before the brand entered the stage.

    The cycle's own rule (cycle.prepare_cohorts), from what the decision keeps (as_of, days_in_stage)
    and the stage's window_days as configured now.
    """
    earliest = as_of - timedelta(days=window_days - 1)
    entered = as_of - timedelta(days=days_in_stage - 1)
    return max(earliest, entered), as_of


def revised_after(
    source: MetricsSource, brand_id: str, first_day: date, last_day: date, decided_at: datetime
) -> pd.DataFrame:
    """Revisions of the brand's values from first_day to last_day recorded after decided_at, oldest day first.

    Columns REVISION_COLUMNS; date and recorded_at as timestamps (recorded_at in UTC), old/new
    values as floats (NaN: none). Empty when the source has no revision record yet.
    """
    decided = pd.Timestamp(decided_at if decided_at.tzinfo is not None else decided_at.replace(tzinfo=UTC))
    frame = read_revisions(source, brand_id, first_day, last_day)
    keep = (
        (frame["brand_id"] == brand_id)
        & (frame["date"] >= pd.Timestamp(first_day))
        & (frame["date"] <= pd.Timestamp(last_day))
        & (frame["recorded_at"] > decided)
    )
    out = frame[keep.to_numpy(dtype=bool)].sort_values(["date", "column_name", "recorded_at"], kind="stable")
    return out.reset_index(drop=True)[list(REVISION_COLUMNS)]


def read_revisions(
    source: MetricsSource, brand_id: str | None = None, first_day: date | None = None, last_day: date | None = None
) -> pd.DataFrame:
    """The source's revision record (a SQL target's narrowed to the brand and days given), typed: date and recorded_at
    (UTC) as timestamps, old and new values as floats (NaN: none). Empty when there is no record yet."""
    if source.path is not None:
        frame = read_jsonl(file_records(source.path).revisions, REVISION_COLUMNS)
    else:
        frame = _read_revisions_sql(source, brand_id, first_day, last_day)
    return frame.assign(
        date=pd.to_datetime(frame["date"], format="ISO8601").astype("datetime64[ns]"),
        # a naive time (SQLite gives back the UTC times it was given without their zone) is UTC
        recorded_at=pd.to_datetime(frame["recorded_at"], utc=True, format="ISO8601").astype("datetime64[ns, UTC]"),
        old_value=pd.to_numeric(frame["old_value"]).astype("float64"),
        new_value=pd.to_numeric(frame["new_value"]).astype("float64"),
    )


def as_known(daily: pd.DataFrame, revisions: pd.DataFrame, moment: datetime) -> pd.DataFrame:
    """The daily rows as they stood at `moment`: every value revised after it reads as it was before its first later
    revision (that revision's old value). Rows first imported after `moment` are not known to the record: they stay.

    daily: brand_id, date and base columns; revisions: read_revisions' frame. Returns a new frame (daily is left as
    it was).
    """
    later = revisions[revisions["recorded_at"] > pd.Timestamp(moment)]
    if later.empty:
        return daily
    first = later.sort_values("recorded_at", kind="stable").drop_duplicates(
        ["brand_id", "date", "column_name"], keep="first"
    )
    keys = pd.MultiIndex.from_arrays(
        [daily["brand_id"].astype(str).to_numpy(), daily["date"].to_numpy(dtype="datetime64[ns]")]
    )
    out = daily.copy()
    for column, group in first.groupby("column_name", sort=False):  # the few restated columns, each at once
        if column not in out.columns:
            continue
        rows = keys.get_indexer(
            pd.MultiIndex.from_arrays([group["brand_id"].astype(str).to_numpy(), group["date"].to_numpy()])
        )
        hit = rows >= 0
        values = out[column].to_numpy(dtype=float, copy=True)
        values[rows[hit]] = group["old_value"].to_numpy(dtype=float)[hit]
        out[column] = values
    if "uv" in out.columns and set(UV_COLUMNS) & set(first["column_name"]):
        out["uv"] = out[list(UV_COLUMNS)].sum(axis=1, min_count=len(UV_COLUMNS))  # uv is their sum, as loading makes it
    return out


def _empty_record(columns: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


def _read_revisions_sql(
    source: MetricsSource, brand_id: str | None, first_day: date | None, last_day: date | None
) -> pd.DataFrame:
    """The revisions table, narrowed to a brand and days where given.

    explain reads one brand's window, a backtest all of it.
    """
    engine = sa.create_engine(source.url or "")
    try:
        schema, _, _ = source.table.rpartition(".")
        revisions, _ = sql_tables(schema or None)
        if not sa.inspect(engine).has_table(REVISIONS_TABLE, schema=schema or None):
            return _empty_record(REVISION_COLUMNS)
        query = sa.select(*[revisions.c[c] for c in REVISION_COLUMNS])
        if brand_id is not None:
            query = query.where(revisions.c.brand_id == brand_id)
        if first_day is not None:
            query = query.where(revisions.c.date >= first_day)
        if last_day is not None:
            query = query.where(revisions.c.date <= last_day)
        with engine.connect() as conn:
            rows = [tuple(r) for r in conn.execute(query)]
        return pd.DataFrame.from_records(rows, columns=list(REVISION_COLUMNS)).astype(object)
    finally:
        engine.dispose()


def revised_inputs(source: MetricsSource, decision: Mapping[str, Any], window_days: int) -> pd.DataFrame:
    """revised_after for a ledger decision (brand_id, as_of, days_in_stage, decided_at) over its decision_window."""
    first, last = decision_window(decision["as_of"], int(decision["days_in_stage"]), window_days)
    first = min([first, *_criteria_starts(decision.get("criteria"))])  # a lagged criterion read earlier days
    return revised_after(source, str(decision["brand_id"]), first, last, decision["decided_at"])


def _criteria_starts(criteria: object) -> list[date]:
    """The first day of each criterion's recorded window ('2026-11-16..2026-11-29'); none for a record without."""
    if not isinstance(criteria, str):
        return []
    windows = [c.get("window") or "" for c in json.loads(criteria or "[]")]
    return [date.fromisoformat(w.split("..")[0]) for w in windows if ".." in w]
