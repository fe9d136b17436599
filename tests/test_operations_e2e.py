"""End to end on a real `prefect server start` and `brandsteps serve`: schedules, runs, reviews, events, the UI in Chromium."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.conftest import simple_playbook, write_configs
from tests.imports_helpers import FIXTURES, KUAISHOU_FIXTURES
from tests.prefect_process import (
    BIN,
    CHROMIUM,
    api_client,
    api_post,
    background,
    chromium_page,
    drain_prefect_workers,
    flow_runs_of,
    free_port,
    latest_artifact,
    prefect_server,
    quiet_env,
    tracebacks_in_logs,
    tracebacks_in_run_logs,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]
DEPLOYMENTS = ("onboarding-cycle", "onboard-brand", "review-brand", "backtest", "import-exports")


def _portfolio(root: Path) -> Path:
    """Three brands on the tiny playbook (2 passes in a row advance; 2 days allowed in affiliate_trial).

    riser: GMV 500 a day passes gmv >= 300 on days 2 and 3, so it advances on 2026-01-03.
    approver and waiter: the same numbers but affiliate_trial needs approval: both await it from 2026-01-03.
    laggard (拖后腿): GMV 50 a day (window sum at most 150) fails every day, past max_days_in_stage 2 on day 3: newly overdue then.
    """
    playbook = simple_playbook(affiliate_trial={"max_days_in_stage": 2})
    brands = {
        "riser": {"name": "快手美妆 Riser"},
        "approver": {"name": "Approver", "requires_approval": ["affiliate_trial"]},
        "waiter": {"name": "Waiter", "requires_approval": ["affiliate_trial"]},
        "laggard": {"name": "拖后腿"},
    }
    configs = write_configs(
        root,
        brands,
        playbook=playbook,
        onboarding={"metrics": "data/metrics.csv", "ledger": "sqlite:///data/ledger.sqlite", "schedule": "30 8 * * *"},
    )
    days = pd.date_range("2026-01-01", "2026-01-04")
    rows = [
        {"brand_id": b, "date": d.date(), "gmv": 50.0 if b == "laggard" else 500.0, "orders": 5.0}
        for b in brands
        for d in days
    ]
    (root / "data").mkdir(exist_ok=True)
    pd.DataFrame(rows).to_csv(root / "data" / "metrics.csv", index=False)
    return configs


class _Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        _Hook.received.append(json.loads(body or b"{}"))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@dataclass
class Stack:
    api: str
    root: Path
    configs: Path
    env: dict[str, str]
    serve_log: Path
    hook: list[dict[str, Any]]


def _deployments_ready(api: str) -> bool:
    found = api_post(api, "/deployments/filter", {})
    return {d["name"] for d in found} >= set(DEPLOYMENTS)


def _serve(stack: Stack) -> Any:
    hook_url = stack.env["HOOK_URL"]
    return background(
        [str(BIN / "brandsteps"), "serve", "--configs", str(stack.configs), "--overdue-webhook", hook_url],
        stack.env,
        stack.serve_log,
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not Path(CHROMIUM).exists() and os.environ.get("CI") != "true":
        pytest.skip("Chromium not installed (apt-get install chromium); .ci/run installs it")
    root = tmp_path_factory.mktemp("e2e")
    configs = _portfolio(root)
    _Hook.received = []
    hook_port = free_port()
    hook = HTTPServer(("127.0.0.1", hook_port), _Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    try:
        with prefect_server(root / "prefect-home") as api:
            env = quiet_env(root / "prefect-home", api, HOOK_URL=f"http://127.0.0.1:{hook_port}/hook")
            yield Stack(api, root, configs, env, root / "serve.log", _Hook.received)
            # an operator reads these logs too: a traceback in any of them fails the test, whatever it asserted
            assert (
                tracebacks_in_logs(root / "prefect-home" / "server.log", root / "serve.log")
                + tracebacks_in_run_logs(api)
                == []
            )
    finally:
        hook.shutdown()


def _run_deployment(stack: Stack, name: str, parameters: dict[str, Any], timeout: float = 180) -> Any:
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: stack.api}):
        return run_deployment(name, parameters=parameters, timeout=timeout, as_subflow=False)


def _ledger(stack: Stack, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(stack.root / "data" / "ledger.sqlite") as conn:
        return conn.execute(sql, params).fetchall()


def test_operator_desk_end_to_end(stack: Stack) -> None:
    # 1. serve: all five deployments, the cycle on onboarding.yaml's cron in its timezone, with a slug
    with _serve(stack) as proc:
        wait_for("deployments", lambda: _deployments_ready(stack.api) or proc.poll() is not None)
        assert proc.poll() is None, stack.serve_log.read_text()
        with api_client(stack.api) as client:
            cycle = client.read_deployment_by_name("onboarding-cycle/onboarding-cycle")
        assert [(s.schedule.cron, s.schedule.timezone, s.slug, s.active) for s in cycle.schedules] == [
            ("30 8 * * *", "Asia/Shanghai", "daily-onboarding-cycle", True)  # from this portfolio's onboarding.yaml
        ]
    # 2. a restart keeps exactly one active schedule (not paused on shutdown, not duplicated by the slug)
    with api_client(stack.api) as client:
        after_stop = client.read_deployment_by_name("onboarding-cycle/onboarding-cycle")
    assert [s.active for s in after_stop.schedules] == [True] and not after_stop.paused
    with _serve(stack) as proc:
        time.sleep(3)
        wait_for("deployments", lambda: _deployments_ready(stack.api))
        with api_client(stack.api) as client:
            again = client.read_deployment_by_name("onboarding-cycle/onboarding-cycle")
        assert len(again.schedules) == 1 and again.schedules[0].active

        # 3. invalid parameters: the server refuses them before a run starts, naming the parameter
        from prefect.deployments import run_deployment
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: stack.api}):
            for deployment, parameters, named in [
                ("review-brand/review-brand", {"brand_id": "../etc/passwd"}, "brand_id"),
                ("onboarding-cycle/onboarding-cycle", {"as_of": "the 3rd of January"}, "as_of"),
                ("onboarding-cycle/onboarding-cycle", {"shards": 0}, "shards"),
            ]:
                with pytest.raises(Exception, match=f"Validation failed for field '{named}'"):
                    run_deployment(deployment, parameters=parameters, timeout=0)
        started = [
            r["name"]
            for flow in ("onboarding-cycle", "review-brand")
            for r in flow_runs_of(stack.api, flow)
            if not r["auto_scheduled"]
        ]
        assert started == []  # only the scheduler's upcoming runs exist
        assert not (stack.root / "data" / "ledger.sqlite").exists()  # nothing was decided

        # 4. three daily runs through the deployment; the third moves brands
        runs = {}
        for day in ("2026-01-01", "2026-01-02", "2026-01-03"):
            runs[day] = run = _run_deployment(stack, "onboarding-cycle/onboarding-cycle", {"as_of": day})
            assert run.state.is_completed(), (day, run.state, stack.serve_log.read_text()[-3000:])
        # the schedule firing twice for the same day decides nothing twice
        rerun = _run_deployment(stack, "onboarding-cycle/onboarding-cycle", {"as_of": "2026-01-03"})
        assert rerun.state.is_completed()
        assert _ledger(stack, "SELECT count(*), count(DISTINCT brand_id || as_of) FROM decisions") == [
            (12, 12)
        ]  # 4 brands × 3 days, once each
        assert _ledger(
            stack, "SELECT brand_id, action FROM decisions WHERE as_of = '2026-01-03' ORDER BY brand_id"
        ) == [
            ("approver", "await_approval"),
            ("laggard", "hold"),
            ("riser", "advance"),
            ("waiter", "await_approval"),
        ]

        # 5. events: one per change, the brand as resource, the decision as payload
        events = api_post(
            stack.api, "/events/filter", {"filter": {"event": {"prefix": ["brandsteps.brand."]}}, "limit": 50}
        )["events"]
        seen = sorted((e["event"], e["resource"]["prefect.resource.id"]) for e in events)
        assert seen == [
            ("brandsteps.brand.advanced", "brandsteps.brand.riser"),
            ("brandsteps.brand.awaiting-approval", "brandsteps.brand.approver"),
            ("brandsteps.brand.awaiting-approval", "brandsteps.brand.waiter"),
            # day 3 > max_days_in_stage 2 and still in the stage (waiting for approval counts): first day overdue.
            # The rerun of 2026-01-03 wrote nothing, so it announced nothing again.
            ("brandsteps.brand.overdue", "brandsteps.brand.approver"),
            ("brandsteps.brand.overdue", "brandsteps.brand.laggard"),
            ("brandsteps.brand.overdue", "brandsteps.brand.waiter"),
        ]
        advanced = next(e for e in events if e["event"] == "brandsteps.brand.advanced")
        assert (
            advanced["payload"]["to_stage"] == "public_traffic"
            and advanced["resource"]["prefect.resource.name"] == "快手美妆 Riser"
        )
        # the overdue automation called the webhook
        wait_for(
            "overdue webhook",
            lambda: any("拖后腿" in json.dumps(h, ensure_ascii=False) for h in stack.hook),
            timeout=120,
        )

        # 6. artifacts an operator reads: funnel, changes, overdue, awaiting approval
        funnel = json.loads(latest_artifact(stack.api, "stage-funnel")["data"])
        assert [(r["stage"], r["brands"]) for r in funnel][:2] == [("1 Affiliate trial", 3), ("2 Public traffic", 1)]
        assert [r["brand"] for r in json.loads(latest_artifact(stack.api, "overdue-brands")["data"])] == [
            "approver Approver",
            "laggard 拖后腿",
            "waiter Waiter",
        ]
        assert [r["brand"] for r in json.loads(latest_artifact(stack.api, "awaiting-approval")["data"])] == [
            "approver Approver",
            "waiter Waiter",
        ]

        # 7. the cycle started one review per newly waiting brand, never two for the same wait
        def paused_reviews() -> list[dict[str, Any]] | None:
            runs = flow_runs_of(stack.api, "review-brand")
            assert not [r for r in runs if r["state_type"] in {"FAILED", "CRASHED"}], [
                (r["name"], r["state"]["message"]) for r in runs
            ]
            paused = [r for r in runs if r["state_type"] == "PAUSED"]
            return paused if len(paused) == 2 else None

        reviews = wait_for("two paused reviews", paused_reviews, timeout=120)
        assert len(flow_runs_of(stack.api, "review-brand")) == 2  # the rerun of 2026-01-03 started none
        by_brand = {r["parameters"]["brand_id"]: r for r in reviews}
        from prefect.flow_runs import resume_flow_run

        with temporary_settings({PREFECT_API_URL: stack.api}):
            with pytest.raises(RuntimeError):  # no reason given: the form refuses it, the run stays paused
                resume_flow_run(by_brand["approver"]["id"], run_input={"decision": "approve", "reviewer": "Li Wei"})
            resume_flow_run(
                by_brand["approver"]["id"],
                run_input={"decision": "approve", "reviewer": "Li Wei", "reason": "GMV holds at 500 a day"},
            )
        wait_for(
            "approved review",
            lambda: (
                next(r for r in flow_runs_of(stack.api, "review-brand") if r["id"] == by_brand["approver"]["id"])[
                    "state_type"
                ]
                == "COMPLETED"
            ),
        )
        assert _ledger(stack, "SELECT stage, awaiting FROM brand_state WHERE brand_id = 'approver'") == [
            ("public_traffic", 0)
        ]
        assert _ledger(
            stack, "SELECT cause, actor, to_stage FROM stage_changes WHERE brand_id = 'approver' AND cause = 'approval'"
        ) == [("approval", "Li Wei", "public_traffic")]

        # 8. an unanswered review ends with the recorded default, hold; the brand keeps waiting
        late = _run_deployment(
            stack, "review-brand/review-brand", {"brand_id": "waiter", "timeout_hours": 0.0003}, timeout=0
        )

        def late_state() -> str | None:
            # Prefect's server marks an expired pause Failed a moment before the run records its default and completes.
            run = next(r for r in flow_runs_of(stack.api, "review-brand") if r["id"] == str(late.id))
            return run["state_type"] if run["state_type"] == "COMPLETED" else None

        assert wait_for("timed-out review to complete", late_state, timeout=120) == "COMPLETED"
        assert _ledger(
            stack, "SELECT action, cause FROM stage_changes WHERE brand_id = 'waiter' AND cause = 'review_timeout'"
        ) == [("hold", "review_timeout")]
        assert _ledger(stack, "SELECT stage, awaiting FROM brand_state WHERE brand_id = 'waiter'") == [
            ("affiliate_trial", 1)
        ]

        # 9. the one-brand report from onboard-brand
        report = _run_deployment(stack, "onboard-brand/onboard-brand", {"brand_id": "riser", "as_of": "2026-01-03"})
        assert report.state.is_completed()
        assert "gmv" in latest_artifact(stack.api, "brand-report-riser")["data"]

        # 10. what a person sees: the flow run page and the changes artifact in the UI, in Chromium
        ui = stack.api.removesuffix("/api")
        changes = latest_artifact(stack.api, "decision-changes")
        shots = stack.root / "screenshots"
        shots.mkdir(exist_ok=True)
        run_page = chromium_page(f"{ui}/runs/flow-run/{runs['2026-01-03'].id}", shots / "flow-run.png")
        # the run's log lines name each stage gate and what it decided
        assert "onboarding-cycle" in run_page and "affiliate_trial: 4 brands decided" in run_page
        funnel_page = chromium_page(
            f"{ui}/artifacts/artifact/{latest_artifact(stack.api, 'stage-funnel')['id']}", shots / "stage-funnel.png"
        )
        assert all(
            title in funnel_page
            for title in ("1 Affiliate trial", "2 Public traffic", "5 Channel exclusive", "Graduated")
        )
        artifact_page = chromium_page(f"{ui}/artifacts/artifact/{changes['id']}", shots / "decision-changes.png")
        assert "快手美妆 Riser" in artifact_page and "advance" in artifact_page and "public_traffic" in artifact_page
        assert (shots / "decision-changes.png").stat().st_size > 10_000  # a real picture, not an empty page
        drain_prefect_workers()
    assert proc.poll() is not None  # serve and its runs are gone


def test_inbox_files_are_imported_once_by_the_served_deployment(stack: Stack) -> None:
    """An operator drops exports in the inbox; import-exports (served, on demand here) imports each once and announces it."""
    inbox = stack.root / "inbox"
    (inbox / "riser").mkdir(parents=True)
    shutil.copy(
        KUAISHOU_FIXTURES / "daily_week_utf8bom.csv", inbox / "riser" / "全店-7月.csv"
    )  # 全店成交分析: riser's by its folder
    shutil.copy(FIXTURES / "cililiujin_bad_cell.csv", inbox / "磁力金牛-坏.csv")  # an unreadable cell: rejected
    old = time.time() - 60  # at rest: not a file still being copied in
    for path in (inbox / "riser" / "全店-7月.csv", inbox / "磁力金牛-坏.csv"):
        os.utime(path, (old, old))
    with _serve(stack) as proc:
        wait_for("deployments", lambda: _deployments_ready(stack.api) or proc.poll() is not None)
        first = _run_deployment(stack, "import-exports/import-exports", {"inbox": str(inbox)})
        assert first.state.is_completed(), stack.serve_log.read_text()[-3000:]
        rows = json.loads(latest_artifact(stack.api, "imported-exports")["data"])
        assert [(r["file"], r["outcome"], r["moved to"]) for r in rows] == [
            ("riser/全店-7月.csv", "imported", "riser/done/全店-7月.csv"),
            ("磁力金牛-坏.csv", "rejected", "rejected/磁力金牛-坏.csv"),
        ]
        assert (
            (inbox / "rejected" / "磁力金牛-坏.csv.reason.txt")
            .read_text(encoding="utf-8")
            .startswith(str(inbox / "磁力金牛-坏.csv"))
        )
        # the same export dropped again: filed, nothing imported twice, nothing announced twice
        shutil.copy(inbox / "riser" / "done" / "全店-7月.csv", inbox / "riser" / "全店-7月-again.csv")
        os.utime(inbox / "riser" / "全店-7月-again.csv", (old, old))
        second = _run_deployment(stack, "import-exports/import-exports", {"inbox": str(inbox)})
        assert second.state.is_completed()
        again = json.loads(latest_artifact(stack.api, "imported-exports")["data"])
        assert [(r["file"], r["outcome"]) for r in again] == [("riser/全店-7月-again.csv", "already imported")]
        drain_prefect_workers()

        def imported_events() -> list[dict[str, Any]]:
            return api_post(
                stack.api,
                "/events/filter",
                {"filter": {"event": {"name": ["brandsteps.metrics.imported"]}}, "limit": 50},
            )["events"]

        events = wait_for("the imported event", imported_events, timeout=60)
        assert (
            len(events) == 1
            and events[0]["payload"]["brands"] == ["riser"]
            and events[0]["payload"]["files"] == ["riser/全店-7月.csv"]
        )
        assert (
            events[0]["payload"]["days"][0].startswith("20") and len(events[0]["payload"]["days"]) == 7
        )  # the export's week
