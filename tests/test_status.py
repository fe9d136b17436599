"""Portfolio status: configured brands joined with the ledger, including brands never decided."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

import brandsteps.reports.status as status_module
from brandsteps.config import Portfolio, load_portfolio
from brandsteps.engine.cycle import run_day
from brandsteps.ledger import Ledger
from brandsteps.reports.roster import load_roster
from brandsteps.reports.status import portfolio_status
from brandsteps.sources.metrics_source import validate
from tests.conftest import simple_playbook, write_configs
from tests.ledger_checks import history, pg_database  # noqa: F401 - a fixture


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
    write_configs(
        tmp_path,
        {"a": {}, "b": {}, "late": {"start_date": "2026-02-01", "stage": "self_broadcast"}},
        playbook=simple_playbook(),
    )
    portfolio, ledger = _three_days(tmp_path)
    status = portfolio_status(load_roster(tmp_path / "configs", apply_env=False).brands, ledger)
    # a and b advanced on day 3 (2 passes after the 2-day minimum); "late" has no decision and sits in its configured stage
    assert status["funnel"]["public_traffic"] == 2 and status["funnel"]["self_broadcast"] == 1
    rows = {r["brand_id"]: r for r in status["brands"]}
    assert (rows["a"]["action"], rows["a"]["last_as_of"]) == ("advance", "2026-01-03")
    assert (rows["late"]["stage"], rows["late"]["verdict"], rows["late"]["last_as_of"]) == (
        "self_broadcast",
        None,
        None,
    )
    assert [r["brand_id"] for r in status["brands"]] == ["a", "b", "late"]  # by stage order, then id


# Each brand's last stage change (status): the newest id per brand read from the (brand_id, id) index alone, not the table;
# stage changes are the moves only, far fewer than decisions, and the rows themselves are then found by primary key.
LAST_CHANGE_IDS = "SCAN stage_changes USING COVERING INDEX ix_stage_changes_brand"


@pytest.mark.parametrize(
    ("day_read_min", "expected_scans", "as_of_searches", "brand_day_searches"),
    [
        # the daily case: both brands last decided on day 3, read through the as_of index; the unique
        # (brand_id, as_of) index serves explain's two decision lookups
        pytest.param(
            1, ["SCAN brand_state", LAST_CHANGE_IDS, "SCAN cycles USING INDEX ix_cycles_as_of"], 1, 2, id="day-read"
        ),
        # no day with enough brands: the state joined with one unique-index search per brand, and explain's two
        pytest.param(
            10_000,
            ["SCAN brand_state", "SCAN brand_state", LAST_CHANGE_IDS, "SCAN cycles USING INDEX ix_cycles_as_of"],
            0,
            3,
            id="brands-joined",
        ),
    ],
)
def test_status_and_explain_reads_use_indexes(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    day_read_min: int,
    expected_scans: list[str],
    as_of_searches: int,
    brand_day_searches: int,
) -> None:
    # At 35 days x 100,000 brands a scan of decisions or stage_changes costs seconds; every lookup must be an index search.
    import sqlalchemy as sa

    monkeypatch.setattr(status_module, "DAY_READ_MIN_BRANDS", day_read_min)
    write_configs(tmp_path, {"a": {}, "b": {}}, playbook=simple_playbook())
    portfolio, ledger = _three_days(tmp_path)
    selects: list[tuple[str, object]] = []

    def record(_conn, _cursor, sql: str, params: object, _context, _many) -> None:
        if sql.lstrip().upper().startswith("SELECT"):
            selects.append((sql, params))

    sa.event.listen(ledger.engine, "before_cursor_execute", record)
    portfolio_status(load_roster(tmp_path / "configs", apply_env=False).brands, ledger)  # status
    (
        ledger.decision("a"),
        ledger.decision("a", date(2026, 1, 2)),
        ledger.history("a"),
    )  # explain: latest, one day, history
    sa.event.remove(ledger.engine, "before_cursor_execute", record)
    plans = []
    with ledger.engine.connect() as conn:
        for sql, params in selects:
            plans += [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params).all()]
    # status: the states, the decisions (one day, or the join), the last stage changes and the last cycle; explain: three lookups
    assert len(selects) == 7
    # status reads every brand's state (it shows every brand) and walks the cycles by their as_of index; nothing scans decisions
    assert [p for p in plans if p.startswith("SCAN")] == expected_scans, plans
    assert sum(p.startswith("SEARCH decisions USING INDEX ix_decisions_as_of") for p in plans) == as_of_searches
    assert sum("decisions USING INDEX sqlite_autoindex_decisions_1" in p for p in plans) == brand_day_searches
    assert any(p.startswith("SEARCH stage_changes USING INDEX ix_stage_changes_brand") for p in plans)
    assert "SEARCH stage_changes USING INTEGER PRIMARY KEY (rowid=?)" in plans  # the last changes' rows, by key


@pytest.mark.parametrize(
    "backend",
    [pytest.param("sqlite", id="sqlite"), pytest.param("postgresql", marks=pytest.mark.integration, id="postgresql")],
)
@pytest.mark.parametrize(
    "day_read_min",
    [
        # days 3 (c) and 4 (a and b) each have a brand: both days are read whole
        pytest.param(1, id="every-day-whole"),
        # only day 4 has two brands: it is read whole, and c (last decided on day 3) joined on its own
        pytest.param(2, id="one-day-whole"),
        # no day has that many brands: every brand is joined on its own
        pytest.param(10_000, id="every-brand-joined"),
    ],
)
def test_status_reads_each_brands_latest_decision_whatever_day_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, day_read_min: int, backend: str
) -> None:
    from dataclasses import replace

    monkeypatch.setattr(status_module, "DAY_READ_MIN_BRANDS", day_read_min)
    write_configs(tmp_path, {"a": {}, "b": {}, "c": {}}, playbook=simple_playbook())
    portfolio = load_portfolio(tmp_path / "configs", apply_env=False)
    # dates come back as text from SQLite and as dates from PostgreSQL: both are bound back as dates
    ledger = Ledger(
        request.getfixturevalue("pg_database") if backend == "postgresql" else f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    )
    ledger.create()
    batch = validate(history(["a", "b", "c"], 5), as_of=date(2026, 1, 5), today=date(2026, 2, 1))
    for day in range(1, 4):
        run_day(portfolio, batch, ledger, date(2026, 1, day), None)
    a_and_b = replace(portfolio, brands={k: portfolio.brands[k] for k in ("a", "b")}, brand_versions={})
    run_day(a_and_b, batch, ledger, date(2026, 1, 4), None)
    rows = {
        r["brand_id"]: r
        for r in portfolio_status(load_roster(tmp_path / "configs", apply_env=False).brands, ledger)["brands"]
    }
    # a and b were decided again on day 4 in public_traffic, entered that day (1 day in stage < min 2: held), so their
    # day-3 advance (also among the day-3 rows read whole) is not their latest; c's latest is still day 3's advance
    for brand in ("a", "b"):
        assert (rows[brand]["last_as_of"], rows[brand]["verdict"], rows[brand]["action"]) == (
            "2026-01-04",
            "INCONCLUSIVE",
            "hold",
        )
    assert (rows["c"]["last_as_of"], rows["c"]["verdict"], rows["c"]["action"]) == ("2026-01-03", "PASS", "advance")


def test_an_approved_brand_is_not_shown_overdue_in_the_stage_it_left(tmp_path: Path) -> None:
    # affiliate_trial: one pass moves the brand, with approval, and one day is its SLA
    playbook = simple_playbook(
        affiliate_trial={
            "min_days_in_stage": 1,
            "consecutive_passes": 1,
            "max_days_in_stage": 1,
            "requires_approval": True,
        }
    )
    write_configs(tmp_path, {"a": {}}, playbook=playbook)
    portfolio, ledger = _three_days(tmp_path)
    roster = load_roster(tmp_path / "configs", apply_env=False).brands
    before = {r["brand_id"]: r for r in portfolio_status(roster, ledger)["brands"]}["a"]
    # awaiting approval since day 1 and past its one-day SLA on day 3: both flags stand
    assert (before["stage"], before["action"], before["awaiting"], before["overdue"]) == (
        "affiliate_trial",
        "await_approval",
        True,
        True,
    )
    ledger.resolve_approval("a", by="王芳 Wang Fang", reason="checked", approve=True)
    after = {r["brand_id"]: r for r in portfolio_status(roster, ledger)["brands"]}["a"]
    # the approval moved the brand: day 3's decision still reads await_approval (it is the latest decision),
    # but the SLA it was past was affiliate_trial's, not public_traffic's
    assert (after["stage"], after["action"], after["awaiting"], after["overdue"]) == (
        "public_traffic",
        "await_approval",
        False,
        False,
    )
