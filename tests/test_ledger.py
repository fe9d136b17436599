"""Ledger: one decision per brand and day, idempotent reruns, atomic writes, history, approvals."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from brandsteps.config import load_portfolio
from brandsteps.cycle import run_day
from brandsteps.ledger import Ledger, LedgerError, mask_url
from brandsteps.metrics_source import validate
from tests.conftest import simple_playbook, write_configs


def history(brands: list[str], days: int, gmv: float = 500.0) -> pd.DataFrame:
    dates = pd.date_range("2026-01-01", periods=days)
    return pd.DataFrame([{"brand_id": b, "date": d, "gmv": gmv, "orders": 10.0} for b in brands for d in dates])


@pytest.fixture
def setup(tmp_path: Path):
    write_configs(tmp_path, {"a": {}, "b": {}, "c": {"requires_approval": ["affiliate_trial"]}}, playbook=simple_playbook())
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
    assert (state["stage"], str(state["stage_entered_on"]), bool(state["awaiting"])) == ("public_traffic", "2026-01-04", False)


def test_failed_write_leaves_no_partial_cycle(setup, monkeypatch: pytest.MonkeyPatch) -> None:
    portfolio, ledger, batch = setup

    def broken(*_args: object, **_kw: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(Ledger, "_insert_changes", broken)
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
