"""What storing the files in order changes, decided in memory against what the target holds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, cast

import numpy as np
import pandas as pd

from brandsteps.catalogue import KEY_COLUMNS
from brandsteps.sources.imports.model import ImportedFile
from brandsteps.sources.imports.records import (
    record_location,
)
from brandsteps.sources.imports.restate.changes import cell_changes
from brandsteps.sources.imports.restate.held import Held
from brandsteps.sources.imports.restate.result import RestateResult
from brandsteps.sources.imports.restate.screening import SHOWN, Screened, Stack, Summary
from brandsteps.sources.metrics_source import MetricsSource


def fresh_files(files: Sequence[ImportedFile], screened: Screened, earlier: dict[str, datetime]) -> list[int]:
    """The files that may change the target: their rows can be stored and the import log lacks their digest."""
    return [i for i in screened.ok if files[i].digest not in earlier]


@dataclass(frozen=True)
class _Located:
    """Each stacked row's brand-day, and where the target holds it.

    key: 0, 1, … in the order the brand-days first come; loc: -1 where the target does not hold it.
    """

    key: np.ndarray
    loc: np.ndarray  # by key; -1 also for a brand-day the target holds more than once
    twice: pd.DataFrame  # key, loc: every place of the brand-days the target holds more than once

    @classmethod
    def nothing(cls) -> _Located:
        none = np.zeros(0, dtype=np.int64)
        return cls(none, none, pd.DataFrame({"key": none, "loc": none}))


def _locate(stack: Stack, held: Held) -> _Located:
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


def make_plan(
    target: MetricsSource,
    files: Sequence[ImportedFile],
    screened: Screened,
    earlier: dict[str, datetime],
    held: Held | None,
    at: datetime,
) -> Plan:
    """Which files are stored, and what storing them in order changes: decided in memory, nothing written."""
    fresh = fresh_files(files, screened, earlier)
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
    change = cell_changes(files, stack.only(keep), located.key[keep], located.loc, held, at)
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
    return Plan(done, stored, change.revision_rows, logged, change.updates, change.new, change.written)


@dataclass(frozen=True)
class Plan:
    """What a call stores: results, revisions and log lines, the cells of held brand-days to set, and new brand-days."""

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


def _twice_for(i: int, stack: Stack, located: _Located, held: Held) -> str:
    """Why file i cannot be stored: brand-days of it that the target holds more than once."""
    mine = np.flatnonzero(stack.seq == i)
    hits = pd.DataFrame({"key": located.key[mine], "pos": stack.pos[mine]}).merge(located.twice, on="key")
    return _twice_message(hits.assign(place=held.places(hits["loc"].to_numpy())), stack.rows_of(i), held.where)


def _twice_message(hits: pd.DataFrame, rows: pd.DataFrame, where: str) -> str:
    """The brand-days the target holds more than once: which one would be replaced cannot be told."""
    twice = hits[hits.duplicated("pos", keep=False)].sort_values(["pos", "place"], kind="stable")
    places = twice.groupby("pos", sort=True)["place"].agg(", ".join).head(SHOWN)
    picked = rows.loc[places.index.to_numpy()]
    named = (
        picked["brand_id"].astype(str)
        + " on "
        + picked["date"].dt.strftime("%Y-%m-%d")
        + " ("
        + places.to_numpy()
        + ")"
    )
    return (
        f"{where} already holds {'; '.join(named)} more than once: "
        "nothing written (the metrics reader quarantines every copy; keep one and import again)"
    )


def _result(target: MetricsSource, imported: ImportedFile, summary: Summary, at: datetime) -> RestateResult:
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
    imported: ImportedFile, summary: Summary, at: datetime, new_rows: int, revisions: int
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


def as_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts of Python values, None for missing (what json and the database driver take)."""
    return cast(list[dict[str, Any]], frame.astype(object).where(frame.notna(), None).to_dict("records"))
