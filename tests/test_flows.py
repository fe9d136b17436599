"""Prefect flows on a real (temporary) Prefect API: task count, artifacts, the one-brand report."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from tests.flow_helpers import AS_OF, artifact_data, portfolio_dir, post_filter

pytestmark = pytest.mark.integration


async def _task_runs(flow_run_id: str) -> list[str]:
    runs = await post_filter(
        "/task_runs/filter", {"flow_runs": {"id": {"any_": [flow_run_id]}}, "sort": "EXPECTED_START_TIME_ASC"}
    )
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


def test_task_count_does_not_grow_with_brands(prefect_server: None, tmp_path: Path) -> None:
    from flows.onboarding_cycle import onboarding_cycle

    names = {}
    for n in (3, 60):
        configs = portfolio_dir(tmp_path / str(n), n)
        state = onboarding_cycle(as_of=AS_OF, configs=str(configs), return_state=True)
        assert state.result().decided == n  # one decision per brand
        names[n] = _recorded_task_runs(str(state.state_details.flow_run_id))
    # the same 18 tasks for 3 and 60 brands, sorted by name: one per evaluated stage (five stages and graduated),
    # not one per brand, and one per step around them; publish-readiness and publish-visual-report run every time
    # and return at once without a data_deadline or a report folder
    assert (
        names[3]
        == names[60]
        == [
            "affiliate_trial",
            "channel_exclusive",
            "check-readiness",
            "emit-events",
            "graduated",
            "load-configs",
            "load-metrics",
            "notify",
            "private_repurchase",
            "public_traffic",
            "publish-artifacts",
            "publish-readiness",
            "publish-visual-report",
            "read-ledger",
            "record-decisions",
            "self_broadcast",
            "start-reviews",
            "window-metrics",
        ]
    )


def test_cycle_publishes_keyed_artifacts_and_is_idempotent(prefect_server: None, tmp_path: Path) -> None:
    from flows.onboarding_cycle import onboarding_cycle

    configs = portfolio_dir(tmp_path, 4)
    state = onboarding_cycle(as_of=AS_OF, configs=str(configs), return_state=True)
    keys = asyncio.run(artifact_data(str(state.state_details.flow_run_id)))
    assert {"cycle-summary", "stage-funnel", "decision-changes", "quarantined-rows", "data-coverage"} <= set(keys)
    assert "none missing" in str(keys["data-coverage"])  # gmv, all the simple playbook reads, is there for every brand
    rerun = onboarding_cycle(as_of=AS_OF, configs=str(configs), return_state=True)
    again = rerun.result()
    assert (again.decided, again.already_decided) == (0, 4)
    # the rerun wrote nothing, and its summary is the day the ledger holds, not "Decided 0 brands"
    summary = str(asyncio.run(artifact_data(str(rerun.state_details.flow_run_id)))["cycle-summary"])
    assert summary.split("\n\n")[1].splitlines() == [
        "- Decided 4 brands: PASS 4.",
        "- Moves: none (4 brands hold).",
        "- 4 of them were decided by an earlier run of this day: this run changed nothing for them.",
    ]


def test_onboard_brand_publishes_a_report(prefect_server: None, tmp_path: Path) -> None:
    from flows.onboard_brand import onboard_brand

    configs = portfolio_dir(tmp_path, 3)
    state = onboard_brand(brand_id="b00001", as_of=AS_OF, configs=str(configs), return_state=True)
    assert state.result().decided == 1  # only that brand
    keys = asyncio.run(artifact_data(str(state.state_details.flow_run_id)))
    report = str(keys["brand-report-b00001"])
    assert "品牌 1 (b00001)" in report and "| gmv | must |" in report and "GMV = UV" in report


def test_onboard_brand_is_not_the_last_cycle(
    prefect_server: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json
    from datetime import timedelta

    from brandsteps.cli import main
    from flows.onboard_brand import onboard_brand
    from flows.onboarding_cycle import onboarding_cycle

    configs = portfolio_dir(tmp_path, 3)
    day_before = AS_OF - timedelta(days=1)
    onboarding_cycle(as_of=day_before, configs=str(configs))
    # one brand, a later day: not a cycle of the portfolio
    onboard_brand(brand_id="b00001", as_of=AS_OF, configs=str(configs))
    capsys.readouterr()
    assert main(["status", "--configs", str(configs), "--format", "json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["last_cycle"]["as_of"], status["last_cycle"]["kind"], status["last_cycle"]["decided"]) == (
        str(day_before),
        "cycle",
        3,
    )
    # its decision is still shown
    assert {b["brand_id"]: b["last_as_of"] for b in status["brands"]}["b00001"] == str(AS_OF)
    assert main(["status", "--configs", str(configs)]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith(f"/data/ledger.sqlite; last cycle {day_before}")


def test_unreadable_metrics_fail_the_run_and_leave_the_ledger_alone(prefect_server: None, tmp_path: Path) -> None:
    from brandsteps.ledger import Ledger
    from brandsteps.sources.metrics_source import MetricsReadError
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
    assert [(s.as_of, s.decided) for s in summaries] == [
        (date(2026, 1, d), 5) for d in range(1, 6)
    ]  # 5 brands on each of the 5 days, in date order
    ledger = Ledger(f"sqlite:///{tmp_path / 'data' / 'ledger.sqlite'}")
    assert ledger.count_decisions() == 25
    # one task per DAYS_PER_TASK days (5 days: one chunk), plus loading configs and metrics
    runs = asyncio.run(
        post_filter(
            "/task_runs/filter",
            {"flow_runs": {"id": {"any_": [str(state.state_details.flow_run_id)]}}, "sort": "EXPECTED_START_TIME_ASC"},
        )
    )
    assert DAYS_PER_TASK >= 5 and [r["name"] for r in runs if r["name"].startswith("cycle-")] == [
        "cycle-2026-01-01-to-2026-01-05"
    ]
    keys = asyncio.run(artifact_data(str(state.state_details.flow_run_id)))
    assert "replay-progress" in keys


def test_demo_command_runs_a_small_portfolio(
    prefect_server: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from brandsteps.cli import main

    assert main(["demo", "--dir", str(tmp_path / "demo"), "--brands", "12", "--days", "40", "--end", "2026-03-01"]) == 0
    out = capsys.readouterr().out
    assert "Demo portfolio on 2026-03-01: 12 brands" in out and "Brands per stage:" in out
    days = (
        sqlite3.connect(tmp_path / "demo" / "data" / "ledger.sqlite")
        .execute("SELECT count(DISTINCT as_of), count(*) FROM cycles")
        .fetchone()
    )
    assert days == (40, 40)  # one cycle for each day of the period: 39 replayed in process, the last by the flow


@pytest.mark.parametrize(
    ("clock", "expected"),
    [
        # every step within the first second: only the end is reported (one call, not ten)
        pytest.param([0.0, 0.1, 0.2, 0.3, 0.4], [100.0], id="all-within-a-second"),
        # a step 1.5 s after the start is reported (1 of 4 steps: 25 %); the next, 0.5 s after that one, is not;
        # the third is 0.6 s after the last report, so not either; the end always is
        pytest.param([0.0, 1.5, 2.0, 2.1, 2.2], [25.0, 100.0], id="one-late-step"),
    ],
)
def test_cycle_progress_reports_at_most_once_a_second_and_always_the_end(
    monkeypatch: pytest.MonkeyPatch, clock: list[float], expected: list[float]
) -> None:
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


def _flow_run_name(state: object) -> str:
    from prefect.client.orchestration import get_client

    async def read() -> str:
        async with get_client() as client:
            return (await client.read_flow_run(state.state_details.flow_run_id)).name  # type: ignore[attr-defined]

    return asyncio.run(read())


def _yesterday_in_shanghai() -> str:
    from brandsteps.config.settings import yesterday_in

    return yesterday_in("Asia/Shanghai").isoformat()


@pytest.mark.parametrize(
    ("flow", "parameters", "expected"),
    [
        pytest.param("onboarding_cycle", {"as_of": AS_OF}, "cycle-2026-01-05", id="cycle"),
        # an empty as_of decides yesterday in onboarding.yaml's timezone (the default, Asia/Shanghai): the name says
        # which day
        pytest.param("onboarding_cycle", {}, f"cycle-{_yesterday_in_shanghai()}", id="cycle-of-yesterday"),
        # shard_index counts from 0, the name from 1, as the shards' artifacts do
        pytest.param(
            "onboarding_cycle",
            {"as_of": AS_OF, "shards": 2, "shard_index": 0},
            "cycle-2026-01-05-shard-1-of-2",
            id="cycle-shard",
        ),
        pytest.param(
            "onboard_brand", {"brand_id": "b00001", "as_of": AS_OF}, "brand-b00001-2026-01-05", id="onboard-brand"
        ),
        pytest.param(
            "onboarding_replay",
            {"start": date(2026, 1, 1), "end": date(2026, 1, 2)},
            "replay-2026-01-01-2026-01-02",
            id="replay",
        ),
        pytest.param(
            "backtest",
            {"date_from": date(2026, 1, 3), "date_to": date(2026, 1, 4)},
            "backtest-2026-01-03-2026-01-04",
            id="backtest",
        ),
    ],
)
def test_runs_are_named_for_what_they_are_about(
    prefect_server: None, tmp_path: Path, flow: str, parameters: dict, expected: str
) -> None:
    import importlib

    configs = portfolio_dir(tmp_path, 2)
    state = getattr(importlib.import_module(f"flows.{flow}"), flow)(
        configs=str(configs), **parameters, return_state=True
    )
    assert state.is_completed(), state
    assert _flow_run_name(state) == expected


def test_review_links_point_at_each_brands_latest_review_run(prefect_server: None) -> None:
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_UI_URL, temporary_settings

    from tasks.artifacts import review_links

    @flow(name="review-brand")
    def review_stand_in() -> None:
        """Stands in for review-brand: only its runs' flow name and run names matter here."""

    from datetime import UTC, datetime, timedelta

    from prefect.states import Scheduled

    with get_client(sync_client=True) as client:
        yesterday = Scheduled(scheduled_time=datetime.now(UTC) - timedelta(days=1))
        older = client.create_flow_run(review_stand_in, name="review-c-affiliate_trial", state=yesterday)
        # a later wait of the same brand and stage
        latest = client.create_flow_run(review_stand_in, name="review-c-affiliate_trial")
    waiting = pd.DataFrame({"brand_id": ["c", "nobody"], "stage": ["affiliate_trial", "affiliate_trial"]})
    with temporary_settings({PREFECT_UI_URL: "http://ui.example:4200"}):
        # c's latest run (not the older one); a brand without a review run gets no link (the table says how to
        # approve instead)
        assert (
            review_links(waiting)
            == {"c": f"http://ui.example:4200/runs/flow-run/{latest.id}"}
            != {"c": f"http://ui.example:4200/runs/flow-run/{older.id}"}
        )
