"""Ledger invariants, comparable dumps and simple metrics histories, shared by the ledger's tests."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa

from brandsteps.catalogue import MOVING_ACTIONS
from brandsteps.ledger import Ledger, brand_state, cycles, decisions, stage_changes

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
# Columns that differ between two runs of the same decisions: ids, run ids and clocks.
VOLATILE = {"id", "cycle_id", "flow_run_id", "decided_at", "updated_at", "recorded_at"}


def history(brands: list[str], days: int, gmv: float = 500.0) -> pd.DataFrame:
    """Daily metrics rows from 2026-01-01: every brand sells gmv in 10 orders every day."""
    dates = pd.date_range("2026-01-01", periods=days)
    return pd.DataFrame([{"brand_id": b, "date": d, "gmv": gmv, "orders": 10.0} for b in brands for d in dates])


def comparable(ledger: Ledger) -> dict[str, list[tuple]]:
    """Decisions, states and stage changes without run-specific columns, sorted: equal for equal ledgers."""
    out = {}
    with ledger.engine.connect() as conn:
        for table in (decisions, brand_state, stage_changes):
            cols = [c for c in table.columns if c.name not in VOLATILE]
            rows = conn.execute(sa.select(*cols)).all()
            out[table.name] = sorted(tuple(str(v) for v in r) for r in rows)
    return out


def check_invariants(ledger: Ledger, n_brands: int) -> dict[str, int]:
    """The ledger's promises, checked on whatever state it is in (after a crash too).

    1. exactly one decision per brand and as_of; 2. a day is decided for every brand or for none
    (no partial cycle); 3. each cycle's decisions match its cycles row; 4. replaying each brand's
    decisions in date order gives its current stage and last day; 5. one stage change per moving
    decision, none other.
    """
    with ledger.engine.connect() as conn:
        d = pd.read_sql(
            sa.select(
                decisions.c.brand_id,
                decisions.c.as_of,
                decisions.c.stage,
                decisions.c.action,
                decisions.c.to_stage,
                decisions.c.cycle_id,
            ),
            conn,
        )
        s = pd.read_sql(sa.select(brand_state.c.brand_id, brand_state.c.stage, brand_state.c.last_as_of), conn)
        c = pd.read_sql(sa.select(cycles.c.cycle_id, cycles.c.as_of, cycles.c.decided), conn)
        ch = pd.read_sql(sa.select(stage_changes.c.brand_id, stage_changes.c.as_of, stage_changes.c.cause), conn)
    assert not d.duplicated(["brand_id", "as_of"]).any(), "two decisions for one brand and day"
    per_day = d.groupby("as_of").size()
    assert (per_day == n_brands).all(), f"partial cycle visible: {per_day.to_dict()}"
    per_cycle = d.groupby("cycle_id").size()
    recorded = c.set_index("cycle_id")["decided"]
    assert per_cycle.index.isin(recorded.index).all(), "decisions without their cycle row"
    assert (recorded.reindex(per_cycle.index) == per_cycle).all(), "a cycle row disagrees with its decisions"
    assert (recorded.drop(per_cycle.index) == 0).all(), "a cycle row claims decisions that are not there"
    d = d.sort_values(["brand_id", "as_of"])
    nxt = d.groupby("brand_id")["stage"].shift(-1)
    chained = nxt.isna() | (nxt == d["to_stage"])
    assert chained.all(), "a decision starts from a stage its predecessor did not leave the brand in"
    last = d.groupby("brand_id").tail(1).set_index("brand_id")
    state = s.set_index("brand_id").reindex(last.index)
    assert (state["stage"] == last["to_stage"]).all(), "current stage differs from the replayed history"
    assert (pd.to_datetime(state["last_as_of"]) == pd.to_datetime(last["as_of"])).all()
    assert len(s) == len(last), "a brand state without decisions"
    moving = d[d["action"].isin(list(MOVING_ACTIONS))]
    assert len(ch[ch["cause"] == "decision"]) == len(moving), "stage changes differ from the moving decisions"
    return {"days": len(per_day), "decisions": len(d), "moves": len(moving)}


def reference(configs: str, metrics: str, url: str, days: list[date]) -> Ledger:
    """The same days decided once, in order, in this process: what every test run must equal."""
    from pathlib import Path

    from brandsteps.config import load_portfolio
    from brandsteps.engine.cycle import run_day
    from brandsteps.sources.metrics_source import MetricsSource, load_metrics

    portfolio = load_portfolio(configs, apply_env=False)
    ledger = Ledger(url)
    ledger.create()
    history = load_metrics(MetricsSource(path=Path(metrics)), as_of=max(days), today=max(days))
    for day in days:
        run_day(portfolio, history, ledger, day, None)
    return ledger


def postgres_reachable() -> str | None:
    """None when the server answers, else why not."""
    try:
        engine = sa.create_engine(PG_ADMIN, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:150]}"


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database (brandsteps_t5_*), dropped afterwards; skipped without a server, failed on CI."""
    why = postgres_reachable()
    if why is not None:
        message = f"PostgreSQL at 127.0.0.1:5432 (user postgres) is not reachable: {why}"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true: PostgreSQL tests must run)")
        pytest.skip(message)
    name = f"brandsteps_t5_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))  # a generated name, never user input
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
