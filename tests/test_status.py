"""Portfolio status: configured brands joined with the ledger, including brands never decided."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from brandsteps.config import Portfolio, load_portfolio
from brandsteps.cycle import run_day
from brandsteps.ledger import Ledger
from brandsteps.metrics_source import validate
from brandsteps.roster import load_roster
from brandsteps.status import portfolio_status
from tests.conftest import simple_playbook, write_configs
from tests.test_ledger import history


def _three_days(tmp_path: Path) -> tuple[Portfolio, Ledger]:
    """The configs written under tmp_path, and a ledger with brands a and b decided on 1-3 January 2026."""
    portfolio = load_portfolio(tmp_path / "configs", apply_env=False)
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    ledger.create()
    batch = validate(history(["a", "b"], 5), as_of=date(2026, 1, 5), today=date(2026, 2, 1))
    for day in range(1, 4):
        run_day(portfolio, batch, ledger, date(2026, 1, day), None)
    return portfolio, ledger


def test_status_counts_every_configured_brand(tmp_path: Path) -> None:
    write_configs(tmp_path, {"a": {}, "b": {}, "late": {"start_date": "2026-02-01", "stage": "self_broadcast"}}, playbook=simple_playbook())
    portfolio, ledger = _three_days(tmp_path)
    status = portfolio_status(load_roster(tmp_path / "configs", apply_env=False).brands, ledger)
    # a and b advanced on day 3 (2 passes after the 2-day minimum); "late" has no decision and sits in its configured stage
    assert status["funnel"]["public_traffic"] == 2 and status["funnel"]["self_broadcast"] == 1
    rows = {r["brand_id"]: r for r in status["brands"]}
    assert (rows["a"]["action"], rows["a"]["last_as_of"]) == ("advance", "2026-01-03")
    assert (rows["late"]["stage"], rows["late"]["verdict"], rows["late"]["last_as_of"]) == ("self_broadcast", None, None)
    assert [r["brand_id"] for r in status["brands"]] == ["a", "b", "late"]  # by stage order, then id


def test_status_and_explain_reads_use_indexes(tmp_path: Path) -> None:
    # At 35 days x 100,000 brands a scan of decisions or stage_changes costs seconds; every lookup must be an index search.
    import sqlalchemy as sa

    write_configs(tmp_path, {"a": {}, "b": {}}, playbook=simple_playbook())
    portfolio, ledger = _three_days(tmp_path)
    selects: list[tuple[str, object]] = []

    def record(_conn, _cursor, sql: str, params: object, _context, _many) -> None:
        if sql.lstrip().upper().startswith("SELECT"):
            selects.append((sql, params))

    sa.event.listen(ledger.engine, "before_cursor_execute", record)
    portfolio_status(load_roster(tmp_path / "configs", apply_env=False).brands, ledger)  # status
    ledger.decision("a"), ledger.decision("a", date(2026, 1, 2)), ledger.history("a")  # explain: latest, one day, history
    sa.event.remove(ledger.engine, "before_cursor_execute", record)
    plans = []
    with ledger.engine.connect() as conn:
        for sql, params in selects:
            plans += [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params).all()]
    assert len(selects) == 5  # status: the join and the last cycle; explain: three lookups
    scans = [p for p in plans if p.startswith("SCAN")]
    # status reads every brand's state once (it shows every brand) and walks the cycles by their as_of index
    assert scans == ["SCAN brand_state", "SCAN cycles USING INDEX ix_cycles_as_of"], plans
    assert sum("decisions USING INDEX sqlite_autoindex_decisions_1" in p for p in plans) == 3  # the join and explain's two decision lookups
    assert any(p.startswith("SEARCH stage_changes USING INDEX ix_stage_changes_brand") for p in plans)
