"""Store an imported export in the metrics: a brand and day imported again replaces the columns the file carries.

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

Where rows go: a CSV or Parquet file target is rewritten with its rows updated and the new
brand-days appended. In a folder, a brand-day some file already holds is updated in that file and
a new one goes to `imported/<brand_id>.parquet`, so no brand-day is ever in two files (the reader
would quarantine both). An SQL table gets UPDATEs and INSERTs, and is created if missing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import sqlalchemy as sa

from brandsteps.catalogue import BASE_COLUMNS, KEY_COLUMNS
from brandsteps.config import BRAND_ID_PATTERN
from brandsteps.imports import filestore as fs
from brandsteps.imports.model import ImportedFile
from brandsteps.imports.records import IMPORT_COLUMNS, FileRecords, file_records, is_folder, read_jsonl, record_location, revised_after, sql_tables
from brandsteps.metrics_source import MetricsSource

__all__ = ["IMPORTED_FOLDER", "RestateError", "RestateResult", "restate", "revised_after"]

IMPORTED_FOLDER = "imported"  # inside a metrics folder: one Parquet file per brand for the brand-days no file had
_SHOWN = 10  # brand-days named in one error
_IN_CHUNK = 500  # brand ids per SQL IN (...) list


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

    @property
    def filled_cells(self) -> int:
        return self.replaced_cells - self.revisions

    def lines(self) -> list[str]:
        if self.already_imported:
            when = f"{self.imported_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if self.imported_at else "an earlier run"
            return [f"{self.file}: already imported on {when} (same contents): nothing changed"]
        head = f"{self.file}: {_n(self.brands, 'brand')} × {_n(self.days, 'day')} × {_n(len(self.columns), 'column')}"
        kept = f" (kept in {self.record})" if self.revisions else ""
        parts = [_n(self.new_rows, "new brand-day"), f"{_n(self.revisions, 'value')} restated{kept}"]
        if self.filled_cells:
            parts.append(f"{_n(self.filled_cells, 'value')} filled in where none was")
        if self.unchanged_cells:
            parts.append(f"{self.unchanged_cells:,} unchanged")
        return [f"{head}; {', '.join(parts)}"]


def _n(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def restate(target: MetricsSource, imported: ImportedFile, at: datetime | None = None) -> RestateResult:
    """Store the file's rows in the target, replacing the columns it carries for brand-days already there.

    at: the time recorded for this import and its revisions (default now; a naive time is UTC).
    Raises RestateError, with nothing written, when the rows or the target do not allow it.
    """
    rows = _checked_rows(imported)
    when = datetime.now(UTC) if at is None else at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    if target.url is not None:
        return _restate_sql(target, imported, rows, when)
    assert target.path is not None
    return _restate_files(target, imported, rows, when)


# ---------------------------------------------------------------- the rows and what they change


def _checked_rows(imported: ImportedFile) -> pd.DataFrame:
    """brand_id (string), date (datetime64[ns] midnight), the carried columns (float64); RestateError if they cannot be stored."""
    where, columns, rows = imported.path, tuple(imported.columns), imported.rows
    unknown = [c for c in columns if c not in BASE_COLUMNS]
    if unknown or len(set(columns)) != len(columns):
        raise RestateError(f"{where}: columns {', '.join(columns)}: each must be a base column of the metrics, once")
    if sorted(map(str, rows.columns)) != sorted([*KEY_COLUMNS, *columns]):
        raise RestateError(f"{where}: the rows hold {', '.join(map(str, rows.columns))}; expected brand_id, date, {', '.join(columns)}")
    out = pd.DataFrame(
        {
            "brand_id": rows["brand_id"].astype("string").to_numpy(),
            "date": pd.to_datetime(rows["date"]).dt.normalize().astype("datetime64[ns]").to_numpy(),
            **{c: rows[c].to_numpy(dtype="float64", na_value=np.nan) for c in columns},
        }
    ).astype({"brand_id": "string"})
    # brand ids name files of a metrics folder: only slugs
    bad = ~out["brand_id"].fillna("").str.fullmatch(BRAND_ID_PATTERN[1:-1]).to_numpy(dtype=bool) | out["date"].isna().to_numpy()
    if bad.any():
        raise RestateError(f"{where}: {int(bad.sum())} row(s) without a brand id (slug) or a date: nothing written")
    twice = out[out.duplicated(list(KEY_COLUMNS), keep=False)].drop_duplicates(list(KEY_COLUMNS))
    if len(twice):
        shown = ", ".join(twice["brand_id"].head(_SHOWN) + " on " + twice["date"].dt.strftime("%Y-%m-%d").head(_SHOWN))
        raise RestateError(f"{where}: more than one row for {shown}: nothing written")
    return out


@dataclass(frozen=True)
class _Change:
    """What storing the rows changes in the brand-days the target has (matched, in the order of the old cells)."""

    new: np.ndarray  # positions in rows of the brand-days the target lacks
    changed: np.ndarray  # (matched, columns): the cell takes the file's value
    values: np.ndarray  # (matched, columns): the file's values
    revisions: pd.DataFrame  # records.REVISION_COLUMNS; date and recorded_at as ISO text
    unchanged: int


def _compare(
    rows: pd.DataFrame, columns: tuple[str, ...], matched: np.ndarray, old: np.ndarray, had: np.ndarray, imported: ImportedFile, at: datetime
) -> _Change:
    """Cell by cell, as arrays: matched[i] is the row of rows whose old cells are old[i] (had[i]: the cell held something)."""
    values = rows[list(columns)].to_numpy(dtype="float64")[matched].reshape(len(matched), len(columns))
    has = ~np.isnan(values)
    with np.errstate(invalid="ignore"):
        same = (had & has & (old == values)) | (~had & ~has)
    changed = ~same
    # a value changed or removed is a revision; one appearing where none was replaces nothing
    r, c = np.nonzero(changed & had)
    picked = matched[r]
    revisions = pd.DataFrame(
        {
            "file": str(imported.path),
            "digest": imported.digest,
            "recorded_at": at.isoformat(),
            "brand_id": rows["brand_id"].to_numpy(dtype=object)[picked],
            "date": rows["date"].dt.strftime("%Y-%m-%d").to_numpy(dtype=object)[picked],
            "column_name": np.asarray(columns, dtype=object)[c],
            "old_value": old[r, c],
            "new_value": values[r, c],
        },
        index=pd.RangeIndex(len(r)),
    ).sort_values(["brand_id", "date"], kind="stable")  # columns stay in the file's order within a day
    new = np.setdiff1d(np.arange(len(rows)), matched)
    return _Change(new, changed, values, revisions.reset_index(drop=True), int(same.sum()))


def _days(column: pd.Series) -> pd.Series:
    """Days as the metrics reader reads them (validate): a timestamp's day, or ISO text; NaT where unreadable."""
    if pd.api.types.is_datetime64_any_dtype(column):
        days: pd.Series = column.dt.tz_localize(None) if getattr(column.dt, "tz", None) is not None else column
    else:
        days = pd.to_datetime(column.astype("string").str.strip(), errors="coerce", format="ISO8601")
    normalised: pd.Series = days.dt.normalize().astype("datetime64[ns]")
    return normalised


def _matches(brand: pd.Series, day: pd.Series, rows: pd.DataFrame) -> pd.DataFrame:
    """row (position in the target's rows) and pos (position in rows) of every brand-day both have."""
    theirs = pd.DataFrame({"brand_id": brand.astype("string").str.strip().to_numpy(), "date": _days(day).to_numpy(), "row": np.arange(len(brand))})
    keys = pd.DataFrame({"brand_id": rows["brand_id"], "date": rows["date"], "pos": np.arange(len(rows))})
    return theirs.astype({"brand_id": "string"}).merge(keys, on=list(KEY_COLUMNS))[["row", "pos"]]


def _twice_message(hits: pd.DataFrame, rows: pd.DataFrame, where: str) -> str:
    """The brand-days the target holds more than once: which one would be replaced cannot be told."""
    twice = hits[hits.duplicated("pos", keep=False)].sort_values(["pos", "place"], kind="stable")
    places = twice.groupby("pos", sort=True)["place"].agg(", ".join).head(_SHOWN)
    picked = rows.iloc[places.index.to_numpy()]
    named = picked["brand_id"].astype(str) + " on " + picked["date"].dt.strftime("%Y-%m-%d") + " (" + places.to_numpy() + ")"
    return f"{where} already holds {'; '.join(named)} more than once: nothing written (the metrics reader quarantines every copy; keep one and import again)"


def _result(target: MetricsSource, imported: ImportedFile, rows: pd.DataFrame, at: datetime, change: _Change | None = None) -> RestateResult:
    """The result of storing the rows at `at`; without a change, the counts are those of an import that changed nothing."""
    base = RestateResult(
        file=imported.path,
        target=target.describe(),
        record=record_location(target),
        brands=int(rows["brand_id"].nunique()),
        days=int(rows["date"].nunique()),
        columns=tuple(imported.columns),
        imported_at=at,
    )
    if change is None:
        return base
    return replace(base, new_rows=len(change.new), replaced_cells=int(change.changed.sum()), unchanged_cells=change.unchanged, revisions=len(change.revisions))


def _import_record(imported: ImportedFile, rows: pd.DataFrame, at: datetime, change: _Change) -> dict[str, Any]:
    """One line of the import log (records.IMPORT_COLUMNS)."""
    days = rows["date"]
    return {
        "file": str(imported.path),
        "digest": imported.digest,
        "profile": imported.profile,
        "imported_at": at.isoformat(),
        "brands": ",".join(sorted(rows["brand_id"].unique().tolist())),
        "days": int(days.nunique()),
        "first_day": f"{days.min():%Y-%m-%d}" if len(days) else None,
        "last_day": f"{days.max():%Y-%m-%d}" if len(days) else None,
        "columns": ",".join(imported.columns),
        "new_rows": len(change.new),
        "revisions": len(change.revisions),
    }


# ---------------------------------------------------------------- a file or a folder


def _restate_files(target: MetricsSource, imported: ImportedFile, rows: pd.DataFrame, at: datetime) -> RestateResult:
    assert target.path is not None
    path = target.path
    folder = is_folder(path)
    if not folder and path.suffix.lower() not in fs.METRIC_SUFFIXES:
        raise RestateError(f"{path}: the metrics file must be .csv or .parquet to import into it")
    records = file_records(path)
    columns = tuple(imported.columns)
    with fs.locked(records.lock):
        earlier = _earlier_file_import(records, imported.digest)
        if earlier is not None:
            return replace(_result(target, imported, rows, earlier), already_imported=True)
        files = fs.metric_files(path) if folder else [path] if path.exists() else []
        hits = _file_hits(files, rows)
        if hits["pos"].duplicated().any():
            raise RestateError(_twice_message(hits, rows, str(path)))
        frames = {files[i]: _read(files[i]) for i in np.unique(hits["file"]).tolist()}
        old, had = _old_cells(frames, files, hits, columns)
        change = _compare(rows, columns, hits["pos"].to_numpy(), old, had, imported, at)
        touched = _update_cells(frames, files, hits, change, columns)
        _add_new_rows(touched, frames, path, folder, rows.iloc[change.new], columns)
        _write_all(records, touched, change, _import_record(imported, rows, at, change))
    return _result(target, imported, rows, at, change)


def _earlier_file_import(records: FileRecords, digest: str) -> datetime | None:
    log = read_jsonl(records.imports, IMPORT_COLUMNS)
    same = log["imported_at"][log["digest"] == digest]
    return datetime.fromisoformat(str(same.iloc[0])) if len(same) else None


def _read(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    try:
        return fs.read_metrics_file(path, columns)
    except fs.FileStoreError as exc:
        raise RestateError(f"{exc}: nothing written") from None
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise RestateError(f"{path}: not a readable metrics file ({type(exc).__name__}: {exc}): nothing written") from None


def _file_hits(files: list[Path], rows: pd.DataFrame) -> pd.DataFrame:
    """file (index into files), row, pos and place ('file row N') of every brand-day some file holds: keys read first, whole files later."""
    found = [pd.DataFrame({"file": pd.Series(dtype="int64"), "row": pd.Series(dtype="int64"), "pos": pd.Series(dtype="int64")})]
    for i, f in enumerate(files):  # one pass per file, vectorised within
        keys = _read(f, list(KEY_COLUMNS))
        if not set(KEY_COLUMNS) <= set(keys.columns):
            continue  # not a metrics table at all: the reader reports it; the import cannot match rows in it
        found.append(_matches(keys["brand_id"], keys["date"], rows).assign(file=i))
    hits = pd.concat(found, ignore_index=True).astype("int64")
    names = np.asarray([str(f) for f in files] or [""], dtype=object)
    first_row = np.asarray([fs.row_number(f, 0) for f in files] or [0])
    hits["place"] = names[hits["file"]] + " row " + (hits["row"].to_numpy() + first_row[hits["file"]]).astype(str)
    return hits


def _old_cells(frames: dict[Path, pd.DataFrame], files: list[Path], hits: pd.DataFrame, columns: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The carried columns' cells of every hit, as numbers, and whether each held anything."""
    old = np.full((len(hits), len(columns)), np.nan)
    had = np.zeros((len(hits), len(columns)), dtype=bool)
    for path, frame in frames.items():
        sel = np.flatnonzero(hits["file"].to_numpy() == files.index(path))
        at = hits["row"].to_numpy()[sel]
        for j, column in enumerate(columns):
            if column in frame.columns:
                old[sel, j], had[sel, j] = fs.numbers(frame[column].iloc[at])
    return old, had


def _update_cells(
    frames: dict[Path, pd.DataFrame], files: list[Path], hits: pd.DataFrame, change: _Change, columns: tuple[str, ...]
) -> dict[Path, pd.DataFrame]:
    """The files whose cells change, with the file's values put in: only the changed cells are written (the rest stay as found)."""
    touched: dict[Path, pd.DataFrame] = {}
    for path, frame in frames.items():
        sel = np.flatnonzero(hits["file"].to_numpy() == files.index(path))
        at = hits["row"].to_numpy()[sel]
        if not change.changed[sel].any():
            continue  # every cell already holds the file's value: the file is not rewritten
        updated = frame.copy()  # the frame as read stays as read
        for j, column in enumerate(columns):
            mask = change.changed[sel, j]
            if mask.any():
                updated = fs.put_values(updated, column, at[mask], change.values[sel, j][mask], fs.is_text(path))
        touched[path] = updated
    return touched


def _add_new_rows(
    touched: dict[Path, pd.DataFrame], frames: dict[Path, pd.DataFrame], path: Path, folder: bool, new: pd.DataFrame, columns: tuple[str, ...]
) -> None:
    """New brand-days into their file: the file target itself, or the brand's file under imported/ in a folder."""
    if not len(new):
        return
    groups = [(path / IMPORTED_FOLDER / f"{brand}.parquet", part) for brand, part in new.groupby("brand_id", sort=True)] if folder else [(path, new)]
    for home, part in groups:  # one file per brand, not per row
        frame = touched.get(home, frames.get(home))
        if frame is None and home.exists():
            frame = _read(home)
        text = fs.is_text(home)
        added = fs.new_rows_like(frame, part, columns, text)
        merged = added if frame is None else pd.concat([frame, added], ignore_index=True)
        if folder:  # a brand's own file reads best in date order; a user's file keeps its order, new days last
            merged = merged.sort_values("date", kind="stable", ignore_index=True)
        touched[home] = merged


def _jsonl(records: list[dict[str, Any]]) -> bytes:
    # json.dumps, not DataFrame.to_json: a float keeps every digit (to_json rounds to 10 by default)
    return "".join(json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n" for r in records).encode("utf-8")


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts of Python values, None for missing (what json and the database driver take)."""
    return cast(list[dict[str, Any]], frame.astype(object).where(frame.notna(), None).to_dict("records"))


def _write_all(records: FileRecords, touched: dict[Path, pd.DataFrame], change: _Change, logged: dict[str, Any]) -> None:
    """Every file written beside its place first; then revisions, files and the log line land in that order, or none does.

    Revisions go first and the import log last: a crash in between leaves at worst a revision
    recorded twice (the file imported again records it again), never a value replaced unrecorded.
    """
    commit = fs.FileCommit()
    temps = [(fs.temp_for(final, commit.token), final) for final in touched]
    try:
        for tmp, final in temps:
            fs.write_frame(touched[final], tmp, final)
        try:
            commit.append(records.revisions, _jsonl(_records(change.revisions)))
            for tmp, final in temps:
                commit.replace(tmp, final)
            commit.append(records.imports, _jsonl([logged]))
        except BaseException:
            commit.rollback()
            raise
    finally:
        commit.close()
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------- an SQL table


def _restate_sql(target: MetricsSource, imported: ImportedFile, rows: pd.DataFrame, at: datetime) -> RestateResult:
    from brandsteps.ledger import redact

    url = sa.engine.make_url(target.url or "")
    sqlite = url.get_backend_name() == "sqlite"
    # SQLite: wait for another import's write lock (as the ledger does) rather than fail after 5 s
    engine = sa.create_engine(url, connect_args={"timeout": 120} if sqlite else {})
    if sqlite:
        _sqlite_write_lock_at_begin(engine)
    try:
        with engine.begin() as conn:  # one transaction: the updates, inserts, revisions and log line commit together or not at all
            return _restate_in(conn, target, imported, rows, at)
    except sa.exc.SQLAlchemyError as exc:
        first = str(getattr(exc, "orig", exc)).strip().splitlines()
        raise RestateError(redact(f"{target.describe()}: {first[0] if first else type(exc).__name__}: nothing written")) from None
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


def _restate_in(conn: sa.Connection, target: MetricsSource, imported: ImportedFile, rows: pd.DataFrame, at: datetime) -> RestateResult:
    schema_name, _, name = target.table.rpartition(".")
    schema = schema_name or None
    if conn.dialect.name == "postgresql":
        # one import into this table at a time (released at commit): each reads what the last one wrote
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"brandsteps restate {target.table}"})
    revisions, imports = sql_tables(schema)
    revisions.metadata.create_all(conn)
    earlier = conn.execute(sa.select(imports.c.imported_at).where(imports.c.digest == imported.digest).order_by(imports.c.imported_at).limit(1)).scalar()
    if earlier is not None:
        when = earlier if earlier.tzinfo is not None else earlier.replace(tzinfo=UTC)  # SQLite gives UTC back without its zone
        return replace(_result(target, imported, rows, when), already_imported=True)
    columns = tuple(imported.columns)
    table = _metrics_table(conn, name, schema, columns)
    existing = _existing_rows(conn, table, rows, columns)
    hits = _matches(existing["k_brand"], existing["k_date"], rows)
    if hits["pos"].duplicated().any():
        raise RestateError(_twice_message(hits.assign(place="row " + hits["row"].astype(str)), rows, target.describe()))
    cells = [fs.numbers(existing[c].iloc[hits["row"].to_numpy()]) for c in columns]
    old = np.column_stack([v for v, _ in cells]) if cells else np.empty((len(hits), 0))
    had = np.column_stack([p for _, p in cells]) if cells else np.empty((len(hits), 0), dtype=bool)
    change = _compare(rows, columns, hits["pos"].to_numpy(), old, had, imported, at)
    _update_rows(conn, table, existing, hits, change, columns)
    _insert_rows(conn, table, rows.iloc[change.new], columns)
    if len(change.revisions):
        revised = change.revisions.assign(recorded_at=at, date=pd.to_datetime(change.revisions["date"]).dt.date)
        conn.execute(revisions.insert(), _records(revised))
    logged = _import_record(imported, rows, at, change)
    logged.update(
        imported_at=at,
        first_day=rows["date"].min().date() if len(rows) else None,
        last_day=rows["date"].max().date() if len(rows) else None,
    )
    conn.execute(imports.insert().values(**logged))
    return _result(target, imported, rows, at, change)


def _metrics_table(conn: sa.Connection, name: str, schema: str | None, columns: tuple[str, ...]) -> sa.Table:
    """The metrics table, created when missing; the carried columns it lacks are added (names from BASE_COLUMNS, never from data)."""
    if not sa.inspect(conn).has_table(name, schema=schema):
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
    table = sa.Table(name, sa.MetaData(schema=schema), autoload_with=conn)
    if "brand_id" not in table.c or "date" not in table.c:
        raise RestateError(f"table {name!r} has no brand_id or date column: not a metrics table")
    lacking = [c for c in columns if c not in table.c]
    if lacking:
        quote = conn.dialect.identifier_preparer
        float_type = sa.Float().compile(dialect=conn.dialect)
        for column in lacking:
            conn.execute(sa.text(f"ALTER TABLE {quote.format_table(table)} ADD COLUMN {quote.quote(column)} {float_type}"))
        table = sa.Table(name, sa.MetaData(schema=schema), autoload_with=conn)
    return table


def _existing_rows(conn: sa.Connection, table: sa.Table, rows: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """The imported brands' rows: k_brand and k_date as stored (so an UPDATE finds them again), then the carried columns."""
    ids = sorted(rows["brand_id"].unique().tolist())
    fetched: list[Any] = []
    for start in range(0, len(ids), _IN_CHUNK):  # bound parameters, a chunk of brands at a time
        query = sa.select(table.c.brand_id, table.c.date, *[table.c[c] for c in columns]).where(table.c.brand_id.in_(ids[start : start + _IN_CHUNK]))
        fetched += conn.execute(query).all()
    frame = pd.DataFrame.from_records(fetched, columns=["k_brand", "k_date", *columns], coerce_float=False)
    return frame.astype({"k_brand": object, "k_date": object})


def _update_rows(conn: sa.Connection, table: sa.Table, existing: pd.DataFrame, hits: pd.DataFrame, change: _Change, columns: tuple[str, ...]) -> None:
    """One UPDATE per changed row, sent as one executemany: every carried column set to the file's value (the unchanged ones to what they hold)."""
    touched = change.changed.any(axis=1)
    if not touched.any():
        return
    at = hits["row"].to_numpy()[touched]
    params = pd.DataFrame(
        {
            "k_brand": existing["k_brand"].to_numpy(dtype=object)[at],
            "k_date": existing["k_date"].to_numpy(dtype=object)[at],
            **{f"v_{c}": change.values[touched, j] for j, c in enumerate(columns)},
        }
    )
    statement = (
        table.update()
        .where(table.c.brand_id == sa.bindparam("k_brand"), table.c.date == sa.bindparam("k_date"))
        .values({c: sa.bindparam(f"v_{c}") for c in columns})
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
    values = pd.DataFrame({"brand_id": new["brand_id"].astype(str).to_numpy(), "date": list(stored), **{c: new[c].to_numpy() for c in columns}})
    conn.execute(table.insert(), _records(values))
