"""A cycle's write: its decisions, the brands' new states and their stage changes, inside one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from brandsteps.catalogue import GUARD_COLUMNS, MOVING_ACTIONS
from brandsteps.ledger.bulk import bulk_insert
from brandsteps.ledger.ids import among
from brandsteps.ledger.schema import DECISION_COLUMNS, brand_state, cycles, decisions, stage_changes


@dataclass
class WriteResult:
    cycle_id: str
    written: int
    already_decided: int
    conflicts: int
    written_ids: frozenset[str] = frozenset()


@dataclass(frozen=True)
class CycleRow:
    """What the cycles row says of the write besides its counts."""

    cycle_id: str
    as_of: date
    flow_run_id: str | None
    quarantined: int
    kind: str
    now: datetime


def check_one_day(frame: pd.DataFrame, as_of: date) -> None:
    """A cycle's write holds the decisions of as_of only."""
    if len(frame) and (pd.to_datetime(frame["as_of"]) != pd.Timestamp(as_of)).any():
        raise ValueError(f"decisions of another day than {as_of} in one cycle's write")


def write_cycle(conn: sa.Connection, frame: pd.DataFrame, expected_last: pd.Series, row: CycleRow) -> WriteResult:
    """Write the decisions of brands not yet decided for the day whose state is still the one the cycle read.

    A brand already decided for the day is left alone (an idempotent rerun); a brand whose state changed
    since the cycle read it (a concurrent cycle) is skipped and counted as a conflict.
    """
    as_of = row.as_of
    decided = {r[0] for r in conn.execute(sa.select(decisions.c.brand_id).where(decisions.c.as_of == as_of))}
    current = (
        dict(conn.execute(sa.select(brand_state.c.brand_id, brand_state.c.last_as_of)).all()) if len(frame) else {}
    )
    ids = frame["brand_id"].to_numpy(dtype=object) if len(frame) else np.array([], dtype=object)
    already = among(ids, decided)
    now_last = pd.Series(current, dtype=object).reindex(ids)
    expect = expected_last.reindex(ids)
    same = (now_last.isna() & expect.isna()) | (pd.to_datetime(now_last) == pd.to_datetime(expect))
    conflict = ~already & ~same.to_numpy(dtype=bool)
    todo = frame[~already & ~conflict]
    if len(todo):
        insert_decisions(conn, todo, row)
        upsert_state(conn, todo, as_of, row.now)
        insert_changes(conn, todo, row)
    conn.execute(
        cycles.insert().values(
            cycle_id=row.cycle_id,
            as_of=as_of,
            flow_run_id=row.flow_run_id,
            decided=len(todo),
            skipped=int(already.sum() + conflict.sum()),
            quarantined=row.quarantined,
            recorded_at=row.now,
            kind=row.kind,
        )
    )
    return WriteResult(
        row.cycle_id,
        len(todo),
        int(already.sum()),
        int(conflict.sum()),
        frozenset(todo["brand_id"]) if len(todo) else frozenset(),
    )


def insert_decisions(conn: sa.Connection, todo: pd.DataFrame, row: CycleRow) -> None:
    values: dict[str, Any] = {c: todo[c] for c in DECISION_COLUMNS if c in todo.columns}
    values.update(cycle_id=row.cycle_id, flow_run_id=row.flow_run_id, decided_at=row.now, as_of=row.as_of)
    bulk_insert(conn, decisions, values, len(todo))


def upsert_state(conn: sa.Connection, todo: pd.DataFrame, as_of: date, now: datetime) -> None:
    values: dict[str, Any] = {
        "brand_id": todo["brand_id"],
        "stage": todo["to_stage"],
        "stage_entered_on": pd.to_datetime(todo["stage_entered_on"]).dt.date,
        "pass_streak": todo["pass_streak"].astype(int),
        "awaiting": todo["awaiting"].astype(bool),
        "awaiting_since": todo["awaiting_since"],
        **{c: todo[c].astype(int) for c in GUARD_COLUMNS},
        "last_as_of": as_of,
        "updated_at": now,
    }
    bulk_insert(conn, brand_state, values, len(todo), replace_key="brand_id")


def insert_changes(conn: sa.Connection, todo: pd.DataFrame, row: CycleRow) -> None:
    moved = todo[todo["action"].isin(list(MOVING_ACTIONS))]
    if moved.empty:
        return
    values: dict[str, Any] = {
        "brand_id": moved["brand_id"],
        "as_of": row.as_of,
        "from_stage": moved["stage"],
        "to_stage": moved["to_stage"],
        "action": moved["action"],
        "cause": "decision",
        "actor": None,
        "reason": moved["action_reason"],
        "cycle_id": row.cycle_id,
        "recorded_at": row.now,
    }
    bulk_insert(conn, stage_changes, values, len(moved))
