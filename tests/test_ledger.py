"""Ledger: one decision per brand and day, idempotent reruns, atomic writes, history, approvals."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from brandsteps.config import load_portfolio
from brandsteps.engine.cycle import run_day
from brandsteps.ledger import Ledger, LedgerError, mask_url
from brandsteps.sources.metrics_source import validate
from tests.conftest import simple_playbook, write_configs
from tests.ledger_checks import history, pg_database  # noqa: F401 - a fixture


@pytest.fixture
def setup(tmp_path: Path):
    write_configs(
        tmp_path, {"a": {}, "b": {}, "c": {"requires_approval": ["affiliate_trial"]}}, playbook=simple_playbook()
    )
    portfolio = load_portfolio(tmp_path / "configs", apply_env=False)
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    ledger.create()
    batch = validate(history(["a", "b", "c"], 30), as_of=date(2026, 1, 30), today=date(2026, 2, 1))
    return portfolio, ledger, batch


def test_rerun_of_a_day_changes_nothing(setup) -> None:
    portfolio, ledger, batch = setup
    first = run_day(portfolio, batch, ledger, date(2026, 1, 2), "run-1")
    before = ledger.decisions_for(date(2026, 1, 2))
    again = run_day(portfolio, batch, ledger, date(2026, 1, 2), "run-2")
    after = ledger.decisions_for(date(2026, 1, 2))
    assert (first.decided, again.decided, again.already_decided) == (3, 0, 3)
    pd.testing.assert_frame_equal(before, after)
    assert set(after["flow_run_id"]) == {"run-1"}


def test_days_in_order_advance_and_record_history(setup) -> None:
    portfolio, ledger, batch = setup
    for day in range(1, 6):
        run_day(portfolio, batch, ledger, date(2026, 1, day), None)
    # day 1: 1 day in stage < 2 → INCONCLUSIVE; days 2 and 3 pass → advance on the 3rd
    changes = ledger.history("a")
    assert list(changes[["as_of", "from_stage", "to_stage", "action"]].itertuples(index=False, name=None)) == [
        (date(2026, 1, 3), "affiliate_trial", "public_traffic", "advance")
    ]
    assert ledger.decision("c", date(2026, 1, 3))["action"] == "await_approval"
    assert ledger.count_decisions() == 15  # 3 brands × 5 days, exactly one each


def test_a_day_before_the_last_decided_is_skipped(setup) -> None:
    portfolio, ledger, batch = setup
    run_day(portfolio, batch, ledger, date(2026, 1, 5), None)
    late = run_day(portfolio, batch, ledger, date(2026, 1, 4), None)
    assert (late.decided, late.later_decided) == (0, 3)


def test_approval_and_rejection(setup) -> None:
    portfolio, ledger, batch = setup
    for day in range(1, 4):
        run_day(portfolio, batch, ledger, date(2026, 1, day), None)
    with pytest.raises(LedgerError, match="a is not awaiting approval"):
        ledger.resolve_approval("a", by="Li", reason="ok", approve=True)
    change = ledger.resolve_approval("c", by="王敏", reason="numbers hold", approve=True)
    assert (change["from_stage"], change["to_stage"], change["actor"]) == ("affiliate_trial", "public_traffic", "王敏")
    state = ledger.read_state().loc["c"]
    # the new stage starts the day after the last decided day
    assert (state["stage"], str(state["stage_entered_on"]), bool(state["awaiting"])) == (
        "public_traffic",
        "2026-01-04",
        False,
    )


def test_failed_write_leaves_no_partial_cycle(setup, monkeypatch: pytest.MonkeyPatch) -> None:
    portfolio, ledger, batch = setup

    def broken(*_args: object, **_kw: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr("brandsteps.ledger.cycle_writes.insert_changes", broken)
    with pytest.raises(RuntimeError):
        run_day(portfolio, batch, ledger, date(2026, 1, 1), None)
    assert ledger.count_decisions() == 0 and ledger.read_state().empty and ledger.last_cycle() is None


def test_passwords_are_masked() -> None:
    assert mask_url("postgresql://app:s3cret@db:5432/ledger") == "postgresql://app:***@db:5432/ledger"


def test_readers_neither_wait_for_a_write_nor_see_it_before_it_commits(setup) -> None:
    import sqlite3
    import threading

    portfolio, ledger, batch = setup
    run_day(portfolio, batch, ledger, date(2026, 1, 2), "run-1")
    writer = sqlite3.connect(ledger.url.database, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a cycle's write in progress: SQLite's write lock is held
    writer.execute("UPDATE brand_state SET stage = 'public_traffic' WHERE brand_id = 'a'")
    seen: list[object] = []

    def read() -> None:
        other = Ledger(ledger.url)  # what `status` does: open (tables exist), then read
        other.create()
        seen.append(other.read_state().loc["a", "stage"])

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=10)  # before: BEGIN IMMEDIATE on every transaction, so this waited up to the 120 s busy timeout
    writer.execute("ROLLBACK")
    writer.close()
    assert not reader.is_alive()
    assert seen == ["affiliate_trial"]  # the last committed state, not the write in progress


@pytest.mark.parametrize(
    "backend",
    [pytest.param("sqlite", id="sqlite"), pytest.param("postgresql", marks=pytest.mark.integration, id="postgresql")],
)
def test_a_ledger_without_cycle_kinds_is_upgraded_and_one_brand_runs_are_not_the_last_cycle(
    setup, tmp_path: Path, request: pytest.FixtureRequest, backend: str
) -> None:
    from dataclasses import replace

    import sqlalchemy as sa

    from brandsteps.engine.cycle import decide_all, expected_versions, prepare_cohorts, slice_batch, window_metrics_for
    from brandsteps.ledger import BRAND_RUN, CYCLE

    portfolio, ledger, batch = setup
    if backend == "postgresql":
        ledger = Ledger(request.getfixturevalue("pg_database"))
        ledger.create()
    run_day(portfolio, batch, ledger, date(2026, 1, 1), "cycle-1")
    with ledger.engine.begin() as conn:  # the ledger as written before cycles had a kind: its day-1 cycle row stays
        conn.execute(sa.text("ALTER TABLE cycles DROP COLUMN kind"))
    upgraded = Ledger(ledger.url)
    upgraded.create()  # what every command does first: the column is added, existing rows are cycles
    assert upgraded.last_cycle()["kind"] == CYCLE and upgraded.last_cycle()["flow_run_id"] == "cycle-1"
    upgraded.create()  # and again: nothing left to add
    # onboard-brand's run for brand a on day 2 (run_cycle_steps' steps over the portfolio narrowed to a) records its row
    # as kind brand: the portfolio's last cycle is still day 1
    only_a = replace(portfolio, brands={"a": portfolio.brands["a"]}, brand_versions={})
    day = date(2026, 1, 2)
    cohorts = prepare_cohorts(only_a, upgraded.read_state(), day)
    day_batch = slice_batch(batch, day)
    decided = decide_all(only_a, cohorts, day_batch, window_metrics_for(only_a, day_batch, cohorts), day)
    assert upgraded.record_cycle(decided, day, "brand-run", expected_versions(cohorts), kind=BRAND_RUN).written == 1
    last = upgraded.last_cycle()
    assert (last["as_of"], last["flow_run_id"], last["kind"]) == (date(2026, 1, 1), "cycle-1", CYCLE)
    run_day(portfolio, batch, upgraded, date(2026, 1, 3), "cycle-3")
    assert upgraded.last_cycle()["flow_run_id"] == "cycle-3"


def test_added_columns_ddl_is_the_metadatas_on_sqlite_and_postgresql() -> None:
    # create() adds these to older ledgers as written: the same column the metadata creates in a new ledger
    import sqlalchemy as sa
    from sqlalchemy.dialects import postgresql, sqlite

    from brandsteps.ledger import ADDED_COLUMNS, metadata

    for table, column, ddl in ADDED_COLUMNS:
        for dialect in (sqlite.dialect(), postgresql.dialect()):
            assert str(sa.schema.CreateColumn(metadata.tables[table].c[column]).compile(dialect=dialect)) == ddl
