"""Portfolio status: configured brands joined with the ledger, including brands never decided."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from brandsteps.config import load_portfolio
from brandsteps.cycle import run_day
from brandsteps.ledger import Ledger
from brandsteps.metrics_source import validate
from brandsteps.status import portfolio_status
from tests.conftest import simple_playbook, write_configs
from tests.test_ledger import history


def test_status_counts_every_configured_brand(tmp_path: Path) -> None:
    write_configs(tmp_path, {"a": {}, "b": {}, "late": {"start_date": "2026-02-01", "stage": "self_broadcast"}}, playbook=simple_playbook())
    portfolio = load_portfolio(tmp_path / "configs", apply_env=False)
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    ledger.create()
    batch = validate(history(["a", "b"], 5), as_of=date(2026, 1, 5), today=date(2026, 2, 1))
    for day in range(1, 4):
        run_day(portfolio, batch, ledger, date(2026, 1, day), None)
    status = portfolio_status(portfolio, ledger)
    # a and b advanced on day 3 (2 passes after the 2-day minimum); "late" has no decision and sits in its configured stage
    assert status["funnel"]["public_traffic"] == 2 and status["funnel"]["self_broadcast"] == 1
    rows = {r["brand_id"]: r for r in status["brands"]}
    assert (rows["a"]["action"], rows["a"]["last_as_of"]) == ("advance", "2026-01-03")
    assert (rows["late"]["stage"], rows["late"]["verdict"], rows["late"]["last_as_of"]) == ("self_broadcast", None, None)
    assert [r["brand_id"] for r in status["brands"]] == ["a", "b", "late"]  # by stage order, then id
