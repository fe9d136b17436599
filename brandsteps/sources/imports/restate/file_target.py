"""Restate into a CSV or Parquet file, or a folder of them: its files replaced together or not at all."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brandsteps.catalogue import KEY_COLUMNS
from brandsteps.sources.imports import filestore as fs
from brandsteps.sources.imports.model import ImportedFile
from brandsteps.sources.imports.records import (
    IMPORT_COLUMNS,
    FileRecords,
    file_records,
    is_folder,
    read_jsonl,
)
from brandsteps.sources.imports.restate.held import Held, held_keys
from brandsteps.sources.imports.restate.planning import as_records, fresh_files, make_plan
from brandsteps.sources.imports.restate.result import RestateError, RestateResult
from brandsteps.sources.imports.restate.screening import Screened
from brandsteps.sources.metrics_source import MetricsSource

IMPORTED_FOLDER = "imported"  # inside a metrics folder: one Parquet file per brand for the brand-days no file had
_WHOLE_BYTES = 1 << 20  # a folder's files up to this size are read whole at once, bigger ones their keys first


def restate_files(
    target: MetricsSource, files: Sequence[ImportedFile], screened: Screened, at: datetime
) -> list[RestateResult]:
    assert target.path is not None
    path = target.path
    folder = is_folder(path)
    if not folder and path.suffix.lower() not in fs.METRIC_SUFFIXES:
        raise RestateError(f"{path}: the metrics file must be .csv or .parquet to import into it")
    if not screened.ok:  # no file can be stored: nothing of the target is read, locked or created
        return make_plan(target, files, screened, {}, None, at).results
    records = file_records(path)
    with fs.locked(records.lock):
        earlier = _earlier_file_imports(records)
        held = _FilesHeld(path, folder) if fresh_files(files, screened, earlier) else None
        plan = make_plan(target, files, screened, earlier, held.held if held is not None else None, at)
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
    """A file target's or folder's files: every file's brand-days read once (their keys).

    A whole file is read only when its rows are needed.
    """

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
        self.held = Held(held_keys(brands, days), self.cells, self.places, str(path))

    def keys(self, i: int, folder: bool) -> pd.DataFrame:
        """The file's rows, at least brand_id and date.

        A file target, and a folder's small files, are read whole at once (a brand's file is mostly read whole
        later); a big one only its keys (the rest only if its rows are needed).
        """
        if not folder:
            return self.frame(i)
        if self.files[i].stat().st_size <= _WHOLE_BYTES:
            try:
                return self.frame(i)
            except RestateError:
                # a column that cannot be read: its keys may still be, and the rest is needed only for its rows
                pass
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
        """The files whose cells change, with the values put in: only those cells change (the rest stay as found)."""
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


def _write_all(
    records: FileRecords, touched: dict[Path, pd.DataFrame], revisions: pd.DataFrame, logged: list[dict[str, Any]]
) -> None:
    """Every file written beside its place first; then revisions, files and log lines land in that order, or none does.

    Revisions go first and the import log last: a crash in between leaves at worst a revision
    recorded twice (the file imported again records it again), never a value replaced unrecorded.
    """
    commit = fs.FileCommit()
    temps = [(fs.temp_for(final, commit.token), final) for final in touched]
    try:
        for tmp, final in temps:
            fs.write_frame(touched[final], tmp, final)
        try:
            commit.append(records.revisions, _jsonl(as_records(revisions)))
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
