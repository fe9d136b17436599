"""Many rows into one table in one driver call: COPY on PostgreSQL, executemany elsewhere."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa


def bulk_insert(
    conn: sa.Connection, table: sa.Table, values: dict[str, Any], n: int, replace_key: str | None = None
) -> None:
    """Insert n rows in one driver call (the ORM layer per row costs more than the write itself).

    values: column → one value for every row, or a Series or array of n values.
    replace_key: rows replace any row with the same key (an upsert, in the same transaction).
    Table and column names come from the ledger's metadata, never from data; values are parameters.
    """
    columns = list(values)
    driver = conn.dialect.name == "sqlite" or (conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg")
    rows = list(zip(*(_column_values(conn, table.c[c], values[c], n, driver) for c in columns), strict=True))
    if conn.dialect.name == "postgresql" and driver:
        _copy_rows(conn, table, columns, rows, values, replace_key)
    elif conn.dialect.name == "sqlite":
        _sqlite_rows(conn, table, columns, rows, replace_key)
    else:
        _portable_rows(conn, table, columns, rows, values, replace_key)


def _copy_rows(
    conn: sa.Connection,
    table: sa.Table,
    columns: list[str],
    rows: list[tuple[Any, ...]],
    values: dict[str, Any],
    replace_key: str | None,
) -> None:
    raw: Any = conn.connection.driver_connection
    names = ", ".join(columns)
    with raw.cursor() as cursor:
        if replace_key is not None:
            delete = f"DELETE FROM {table.name} WHERE {replace_key} = ANY(%s)"  # noqa: S608 - names from metadata
            cursor.execute(delete, (list(values[replace_key]),))
        with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def _sqlite_rows(
    conn: sa.Connection, table: sa.Table, columns: list[str], rows: list[tuple[Any, ...]], replace_key: str | None
) -> None:
    names, marks = ", ".join(columns), ", ".join("?" for _ in columns)
    sql = f"INSERT INTO {table.name} ({names}) VALUES ({marks})"  # noqa: S608 - names from metadata
    if replace_key is not None:
        sql += f" ON CONFLICT ({replace_key}) DO UPDATE SET " + ", ".join(
            f"{c} = excluded.{c}" for c in columns if c != replace_key
        )
    conn.exec_driver_sql(sql, rows)


def _portable_rows(
    conn: sa.Connection,
    table: sa.Table,
    columns: list[str],
    rows: list[tuple[Any, ...]],
    values: dict[str, Any],
    replace_key: str | None,
) -> None:
    """Any other database: delete and insert, one portable upsert inside the transaction."""
    if replace_key is not None:
        ids = list(values[replace_key])
        for chunk in range(0, len(ids), 500):
            conn.execute(table.delete().where(table.c[replace_key].in_(ids[chunk : chunk + 500])))
    conn.execute(table.insert(), [dict(zip(columns, row, strict=True)) for row in rows])


def _column_values(conn: sa.Connection, column: sa.Column[Any], value: Any, n: int, driver: bool) -> list[Any]:
    """One column's values as Python scalars, None for missing; for the driver, after SQLAlchemy's own conversions."""
    process = column.type.bind_processor(conn.dialect) if driver else None
    if not isinstance(value, pd.Series | np.ndarray):  # one value for every row: converted once
        if process is None and conn.dialect.name == "sqlite":
            value = _sqlite_text(value)
        return [process(value) if process and value is not None else value] * n
    series = pd.Series(value, copy=False)
    items = (
        series.astype(object).where(series.notna(), None).tolist()
        if series.hasnans or series.dtype == object
        else series.tolist()
    )
    return [process(v) if v is not None else None for v in items] if process else items


def _sqlite_text(value: Any) -> Any:
    """A date or datetime as sqlite3's default adapters write it (done once here, not once per row by the driver)."""
    if isinstance(value, datetime):
        return value.isoformat(" ")
    if isinstance(value, date):
        return value.isoformat()
    return value
