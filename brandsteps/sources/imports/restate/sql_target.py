"""Restate into an SQL table: updates, inserts, revisions and log lines in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from brandsteps.catalogue import BASE_COLUMNS
from brandsteps.sources.imports import filestore as fs
from brandsteps.sources.imports.model import ImportedFile
from brandsteps.sources.imports.records import (
    sql_tables,
)
from brandsteps.sources.imports.restate.held import Held, held_keys
from brandsteps.sources.imports.restate.planning import Plan, as_records, fresh_files, make_plan
from brandsteps.sources.imports.restate.result import RestateError, RestateResult
from brandsteps.sources.imports.restate.screening import Screened
from brandsteps.sources.metrics_source import MetricsSource

_IN_CHUNK = 500  # brand ids (or digests) per SQL IN (...) list


def restate_sql(
    target: MetricsSource, files: Sequence[ImportedFile], screened: Screened, at: datetime
) -> list[RestateResult]:
    from brandsteps.ledger import redact

    if not screened.ok:  # no file can be stored: the database is not touched
        return make_plan(target, files, screened, {}, None, at).results
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
    conn: sa.Connection, target: MetricsSource, files: Sequence[ImportedFile], screened: Screened, at: datetime
) -> Plan:
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
    fresh = fresh_files(files, screened, earlier)
    table = _reflected(conn, name, schema) if fresh else None
    existing = pd.DataFrame({"k_brand": pd.Series(dtype=object), "k_date": pd.Series(dtype=object)})
    if table is not None:
        brands = sorted(set(screened.stack.brand[np.isin(screened.stack.seq, fresh)].tolist()))
        carried = [c for c in dict.fromkeys(c for i in fresh for c in files[i].columns) if c in table.c]
        existing = _existing_rows(conn, table, brands, carried)
    plan = make_plan(target, files, screened, earlier, _sql_held(existing, target.describe()) if fresh else None, at)
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
        conn.execute(revisions.insert(), as_records(revised))
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


def _sql_held(existing: pd.DataFrame, where: str) -> Held:
    def cells(locs: np.ndarray, column: str) -> tuple[np.ndarray, np.ndarray]:
        if column not in existing.columns:  # a column the table lacks: added when the rows are stored
            return np.full(len(locs), np.nan), np.zeros(len(locs), dtype=bool)
        return fs.numbers(existing[column].iloc[locs])

    def places(locs: np.ndarray) -> np.ndarray:
        return np.asarray(["row " + str(loc) for loc in locs.tolist()], dtype=object)

    return Held(held_keys([existing["k_brand"]], [existing["k_date"]]), cells, places, where)


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
    """The metrics table, created when missing; the carried columns it lacks are added.

    Column names come from BASE_COLUMNS, never from data.
    """
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
    """One UPDATE per restated row setting its changed cells; rows changing the same columns go as one executemany."""
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
        conn.execute(statement, as_records(params))


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
    conn.execute(table.insert(), as_records(values))
