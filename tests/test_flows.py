"""Prefect flows on a real (temporary) Prefect API: task count, artifacts, the one-brand report."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import simple_playbook, write_configs

pytestmark = pytest.mark.integration
AS_OF = date(2026, 1, 5)


def portfolio_dir(tmp_path: Path, n: int) -> Path:
    brands = {f"b{i:05d}": {"name": f"品牌 {i}"} for i in range(n)}
    configs = write_configs(tmp_path, brands, playbook=simple_playbook())
    dates = pd.date_range("2026-01-01", AS_OF)
    rows = pd.DataFrame([{"brand_id": b, "date": d, "gmv": 100.0 + 500 * (i % 2), "orders": 5.0} for i, b in enumerate(brands) for d in dates])
    (tmp_path / "data").mkdir(exist_ok=True)
    rows.to_csv(tmp_path / "data" / "metrics.csv", index=False)
    return configs


async def _post(path: str, body: dict) -> list[dict]:
    """The REST API with a complete body (this client version sends nulls the server refuses)."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        response = await client._client.post(path, json={"offset": 0, "limit": 200, **body})
        response.raise_for_status()
        return response.json()


async def _task_runs(flow_run_id: str) -> list[str]:
    runs = await _post("/task_runs/filter", {"flow_runs": {"id": {"any_": [flow_run_id]}}, "sort": "EXPECTED_START_TIME_ASC"})
    return sorted(r["name"].rsplit("-", 1)[0] for r in runs)


def _recorded_task_runs(flow_run_id: str, timeout_s: float = 30.0) -> list[str]:
    """The flow run's task runs once the server has recorded them all.

    Task runs reach the server as events, sent in the background and taken in asynchronously: read
    at once after the flow returns, the last few may not be there yet. The queued events are sent,
    then the list is read until two reads half a second apart agree.
    """
    import time

    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all()
    deadline = time.monotonic() + timeout_s
    last = asyncio.run(_task_runs(flow_run_id))
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = asyncio.run(_task_runs(flow_run_id))
        if now == last and now:
            return now
        last = now
    return last


async def _artifact_keys(flow_run_id: str) -> dict[str, object]:
    arts = await _post("/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}, "sort": "CREATED_DESC"})
    return {a["key"]: a["data"] for a in arts}


def test_task_count_does_not_grow_with_brands(prefect_server: None, tmp_path: Path) -> None:
    from flows.onboarding_cycle import onboarding_cycle

    names = {}
    for n in (3, 60):
        configs = portfolio_dir(tmp_path / str(n), n)
        state = onboarding_cycle(as_of=AS_OF, configs=str(configs), return_state=True)
        summary = state.result()
        assert summary["decided"] == n  # one decision per brand
        names[n] = _recorded_task_runs(str(state.state_details.flow_run_id))
    # same tasks for 3 and 60 brands: one per stage, not one per brand
    assert names[3] == names[60]
    for stage in ("affiliate_trial", "public_traffic", "self_broadcast", "private_repurchase", "channel_exclusive"):
        assert stage in names[60]


def test_cycle_publishes_keyed_artifacts_and_is_idempotent(prefect_server: None, tmp_path: Path) -> None:
    from flows.onboarding_cycle import onboarding_cycle

    configs = portfolio_dir(tmp_path, 4)
    state = onboarding_cycle(as_of=AS_OF, configs=str(configs), return_state=True)
    keys = asyncio.run(_artifact_keys(str(state.state_details.flow_run_id)))
    assert {"cycle-summary", "stage-funnel", "decision-changes", "quarantined-rows"} <= set(keys)
    again = onboarding_cycle(as_of=AS_OF, configs=str(configs))
    assert (again["decided"], again["already_decided"]) == (0, 4)


def test_onboard_brand_publishes_a_report(prefect_server: None, tmp_path: Path) -> None:
    from flows.onboard_brand import onboard_brand

    configs = portfolio_dir(tmp_path, 3)
    state = onboard_brand(brand_id="b00001", as_of=AS_OF, configs=str(configs), return_state=True)
    assert state.result()["decided"] == 1  # only that brand
    keys = asyncio.run(_artifact_keys(str(state.state_details.flow_run_id)))
    report = str(keys["brand-report-b00001"])
    assert "品牌 1 (b00001)" in report and "| gmv | must |" in report and "GMV = UV" in report


def test_unreadable_metrics_fail_the_run_and_leave_the_ledger_alone(prefect_server: None, tmp_path: Path) -> None:
    from brandsteps.ledger import Ledger
    from brandsteps.metrics_source import MetricsReadError
    from flows.onboarding_cycle import onboarding_cycle

    configs = portfolio_dir(tmp_path, 2)
    (tmp_path / "data" / "metrics.csv").write_text("", encoding="utf-8")
    with pytest.raises(MetricsReadError, match="empty file"):
        onboarding_cycle(as_of=AS_OF, configs=str(configs))
    ledger = Ledger(f"sqlite:///{tmp_path / 'data' / 'ledger.sqlite'}")
    ledger.create()
    assert ledger.count_decisions() == 0


def test_replay_decides_every_day_in_chunks_of_days(prefect_server: None, tmp_path: Path) -> None:
    from brandsteps.ledger import Ledger
    from flows.onboarding_replay import DAYS_PER_TASK, onboarding_replay

    configs = portfolio_dir(tmp_path, 5)
    state = onboarding_replay(start=date(2026, 1, 1), end=AS_OF, configs=str(configs), return_state=True)
    summaries = state.result()
    assert [s["decided"] for s in summaries] == [5] * 5  # 5 brands on each of the 5 days
    ledger = Ledger(f"sqlite:///{tmp_path / 'data' / 'ledger.sqlite'}")
    assert ledger.count_decisions() == 25
    # one task per DAYS_PER_TASK days (5 days: one chunk), plus loading configs and metrics
    runs = asyncio.run(_post("/task_runs/filter", {"flow_runs": {"id": {"any_": [str(state.state_details.flow_run_id)]}}, "sort": "EXPECTED_START_TIME_ASC"}))
    assert DAYS_PER_TASK >= 5 and [r["name"] for r in runs if r["name"].startswith("cycle-")] == ["cycle-2026-01-01-to-2026-01-05"]
    keys = asyncio.run(_artifact_keys(str(state.state_details.flow_run_id)))
    assert "replay-progress" in keys


def test_demo_command_runs_a_small_portfolio(prefect_server: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from brandsteps.cli import main

    assert main(["demo", "--dir", str(tmp_path / "demo"), "--brands", "12", "--days", "40", "--end", "2026-03-01"]) == 0
    out = capsys.readouterr().out
    assert "Demo portfolio on 2026-03-01: 12 brands" in out and "Brands per stage:" in out
    days = sqlite3.connect(tmp_path / "demo" / "data" / "ledger.sqlite").execute("SELECT count(DISTINCT as_of), count(*) FROM cycles").fetchone()
    assert days == (40, 40)  # one cycle for each day of the period: 39 replayed in process, the last by the flow


@pytest.mark.parametrize(
    ("clock", "expected"),
    [
        # every step within the first second: only the end is reported (one call, not ten)
        ([0.0, 0.1, 0.2, 0.3, 0.4], [100.0]),
        # a step 1.5 s after the start is reported; the next, 0.5 s after that one, is not; the end always is
        ([0.0, 1.5, 2.0, 2.1, 2.2], [25.0, 100.0]),
    ],
)
def test_cycle_progress_reports_at_most_once_a_second_and_always_the_end(monkeypatch: pytest.MonkeyPatch, clock: list[float], expected: list[float]) -> None:
    import flows.onboarding_cycle as module

    ticks = iter(clock)
    reported: list[float] = []
    monkeypatch.setattr(module.time, "monotonic", lambda: next(ticks))
    monkeypatch.setattr(module, "create_progress_artifact", lambda **_: "artifact-id")
    monkeypatch.setattr(module, "update_progress_artifact", lambda artifact_id, progress: reported.append(progress))
    progress = module.CycleProgress(AS_OF, total=4, show=True)  # clock[0]: created
    for done in (1, 2, 3, 4):  # clock[1..4]: one reading per step
        progress.step(done)
    assert reported == expected
