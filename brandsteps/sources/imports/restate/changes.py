"""Cell by cell, each file's value against the one before it: counts, revisions, updates and new rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from brandsteps.sources.imports.model import ImportedFile
from brandsteps.sources.imports.restate.held import Held
from brandsteps.sources.imports.restate.screening import Stack


@dataclass(frozen=True)
class Change:
    """Counts per file (indexed by position in the call) and what the stored files change, all files together."""

    new_rows: np.ndarray
    replaced: np.ndarray
    unchanged: np.ndarray
    revisions: np.ndarray
    revision_rows: pd.DataFrame
    updates: pd.DataFrame
    new: pd.DataFrame
    written: np.ndarray


def cell_changes(
    files: Sequence[ImportedFile], stack: Stack, key: np.ndarray, loc: np.ndarray, held: Held | None, at: datetime
) -> Change:
    """Cell by cell, as arrays: each file's value against the value before it.

    The value before it is an earlier file's in this call, else the target's.

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
    return Change(
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
    stack: Stack,
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
