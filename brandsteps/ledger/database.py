"""Reaching the ledger's database: its URL resolved and masked, SQLite's locking set up for one writer at a time."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

WRITER = "brandsteps_writer"  # execution option of the connections that write


def mask_url(url: str | URL) -> str:
    """The URL as it may be shown anywhere: the password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


def resolve_ledger_url(url: str, root: Path | None = None) -> URL:
    """Resolve a relative SQLite path against root and add the password from the environment."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        db = Path(parsed.database).expanduser()
        if not db.is_absolute() and root is not None:
            db = root / db
        db.parent.mkdir(parents=True, exist_ok=True)
        parsed = parsed.set(database=str(db))
    password = os.environ.get("BRANDSTEPS_LEDGER_PASSWORD")
    if password and parsed.password is None and parsed.get_backend_name() != "sqlite":
        parsed = parsed.set(password=password)
    return parsed


def sqlite_begin_immediate(engine: Engine) -> None:
    """Writers take SQLite's write lock at BEGIN and wait for it instead of failing 'locked'.

    Readers begin a plain transaction: in WAL mode a reader sees the last committed state and
    neither waits for a writer nor holds one up (`status` during a cycle's write).
    """

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=120000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITER) else "BEGIN")
