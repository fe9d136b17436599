"""An operator's day on a real Prefect server, in the order they live it.

serve → the schedule fires the daily cycle → artifacts read through the API → review runs pause →
one brand approved in the form, one from the terminal (its form closes), one answered late →
`explain` and `status` → the visual report in Chromium. Any traceback in the server's, serve's or
the runs' logs fails the test, whatever it asserted.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pyotp
import pytest

from tests.conftest import simple_playbook, write_configs
from tests.prefect_process import (
    BIN,
    CHROMIUM,
    api_client,
    background,
    chromium_page,
    drain_prefect_workers,
    flow_runs_of,
    latest_artifact,
    prefect_server,
    quiet_env,
    tracebacks_in_logs,
    tracebacks_in_run_logs,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.journey]
TZ = "Asia/Shanghai"
WAITING = ("approver", "cli-decided", "late-answer")
# Who may approve (configs/approvers.yaml) and their TOTP secrets, given to serve and the CLI in the environment.
TOTP = {
    "Li Wei": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
    "Wang Fang": "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU",
    "Chen Jing": "MFRGGZDFMZTWQ2LKMFRGGZDFMZTWQ2LK",
}


def _secret_env(name: str) -> str:
    return "BRANDSTEPS_TOTP_" + name.upper().replace(" ", "_")


def _code(name: str) -> str:
    return pyotp.TOTP(TOTP[name]).now()


def _first_run_time(now: datetime) -> datetime:
    """A minute boundary 45 to 105 s away: time for serve to register the schedule before it fires."""
    return (now + timedelta(seconds=105)).replace(second=0, microsecond=0)


def _portfolio(root: Path, fire: datetime) -> tuple[Path, str]:
    """Five brands whose first cycle is yesterday (as seen when the schedule fires); returns configs and that day.

    affiliate_trial needs one pass: three brands that require approval await it after the cycle;
    riser advances; laggard's GMV 50 a day (150 in the window) fails gmv >= 300 and holds.
    """
    day = fire.date() - timedelta(days=1)
    playbook = simple_playbook(affiliate_trial={"consecutive_passes": 1})
    start = (day - timedelta(days=2)).isoformat()
    brands: dict[str, dict[str, Any]] = {
        "riser": {"name": "快手美妆 Riser", "start_date": start},
        "laggard": {"name": "拖后腿", "start_date": start},
        **{
            b: {"name": f"待审 {b}", "start_date": start, "owner": "Zhao Min", "requires_approval": ["affiliate_trial"]}
            for b in WAITING
        },
    }
    onboarding = {
        "metrics": "data/metrics.csv",
        "ledger": "sqlite:///data/ledger.sqlite",
        "schedule": f"{fire.minute} {fire.hour} * * *",
        "timezone": TZ,
    }
    configs = write_configs(root, brands, playbook=playbook, onboarding=onboarding)
    (configs / "approvers.yaml").write_text(
        "approvers:\n" + "".join(f"  - {{name: {name}, totp_secret_env: {_secret_env(name)}}}\n" for name in TOTP),
        encoding="utf-8",
    )
    days = pd.date_range(start, day)
    rows = [
        {"brand_id": b, "date": d.date(), "gmv": 50.0 if b == "laggard" else 500.0, "orders": 5.0}
        for b in brands
        for d in days
    ]
    (root / "data").mkdir(exist_ok=True)
    pd.DataFrame(rows).to_csv(root / "data" / "metrics.csv", index=False)
    return configs, day.isoformat()


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "brandsteps"), *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def _ledger(root: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(root / "data" / "ledger.sqlite") as conn:
        return conn.execute(sql, params).fetchall()


def _run_logs(api: str, run_id: str) -> str:
    """The run's log lines as the server has them (they arrive in batches, a moment after the run's state)."""
    with api_client(api) as client:
        response = client._client.post(
            "/logs/filter", json={"logs": {"flow_run_id": {"any_": [run_id]}}, "sort": "TIMESTAMP_ASC", "limit": 200}
        )
        response.raise_for_status()
        return "\n".join(log["message"] for log in response.json())


def test_an_operators_day(tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists() and os.environ.get("CI") != "true":
        pytest.skip("Chromium not installed (apt-get install chromium fonts-wqy-zenhei); .ci/run installs it")
    fire = _first_run_time(datetime.now(ZoneInfo(TZ)))
    configs, day = _portfolio(tmp_path, fire)
    home = tmp_path / "prefect-home"
    # the scheduler service looks every 5 s instead of every 60 s: the same code path, a shorter test
    with prefect_server(home, PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="5") as api:
        env = quiet_env(home, api, **{_secret_env(name): secret for name, secret in TOTP.items()})
        serve_log = tmp_path / "serve.log"
        serve_cmd = [
            str(BIN / "brandsteps"),
            "serve",
            "--configs",
            str(configs),
            "--report-dir",
            str(tmp_path / "reports"),
        ]
        with background(serve_cmd, env, serve_log, cwd=tmp_path) as serve:
            # 1. the server's scheduler creates the daily cycle's upcoming runs
            def upcoming() -> list[dict[str, Any]]:
                assert serve.poll() is None, serve_log.read_text()
                return [
                    r
                    for r in flow_runs_of(api, "onboarding-cycle")
                    if r["state_type"] == "SCHEDULED" and r["auto_scheduled"]
                ]

            scheduled = wait_for("the scheduler's upcoming cycle runs", upcoming, timeout=90)
            first = min(datetime.fromisoformat(r["expected_start_time"]) for r in scheduled)
            assert first == fire.astimezone(first.tzinfo)  # onboarding.yaml's cron in its timezone
            for command in (["deployment", "ls"], ["flow-run", "ls"]):  # the client's own default queries work
                done = subprocess.run(
                    [str(BIN / "prefect"), *command], env=env, capture_output=True, text=True, timeout=120, check=False
                )
                assert done.returncode == 0, done.stdout + done.stderr

            # 2. the schedule fires: serve runs the cycle for yesterday, named for its day, decisions in the ledger
            def fired() -> dict[str, Any] | None:
                runs = [
                    r
                    for r in flow_runs_of(api, "onboarding-cycle")
                    if r["state_type"] not in {"SCHEDULED", "PENDING", "RUNNING"}
                ]
                return runs[0] if runs else None

            cycle = wait_for("the scheduled cycle to finish", fired, timeout=240, every=2)
            assert (cycle["state_type"], cycle["name"], cycle["auto_scheduled"]) == (
                "COMPLETED",
                f"cycle-{day}",
                True,
            ), serve_log.read_text()[-3000:]
            assert _ledger(
                tmp_path, "SELECT brand_id, action FROM decisions WHERE as_of = ? ORDER BY brand_id", day
            ) == [
                ("approver", "await_approval"),
                ("cli-decided", "await_approval"),
                ("laggard", "hold"),
                ("late-answer", "await_approval"),
                ("riser", "advance"),
            ]

            # 3. the artifacts an operator opens, read through the API
            summary = latest_artifact(api, "cycle-summary")
            assert summary["flow_run_id"] == cycle["id"]
            # 5 brands: 4 passed gmv >= 300 (3 of them need approval, riser advances), laggard failed it and holds
            assert summary["data"].splitlines()[:4] == [
                f"# Onboarding cycle {day}",
                "",
                "- Decided 5 brands: PASS 4, FAIL 1.",
                "- Moves: advance 1, await_approval 3 (1 brand hold).",
            ], summary["data"]
            changes = json.loads(latest_artifact(api, "decision-changes")["data"])
            assert [list(row)[:2] for row in changes] == [["brand", "why"]] * len(
                changes
            )  # why comes right after the brand
            waiting = json.loads(latest_artifact(api, "awaiting-approval")["data"])
            assert sorted(r["brand"] for r in waiting) == [f"{b} 待审 {b}" for b in sorted(WAITING)]

            # 4. the cycle started one review per waiting brand, each paused on its form, named for brand and stage
            def paused() -> dict[str, dict[str, Any]] | None:
                runs = {
                    r["parameters"]["brand_id"]: r
                    for r in flow_runs_of(api, "review-brand")
                    if r["state_type"] == "PAUSED"
                }
                return runs if len(runs) == len(WAITING) else None

            reviews = wait_for("three paused reviews", paused, timeout=120)
            assert {b: r["name"] for b, r in reviews.items()} == {b: f"review-{b}-affiliate_trial" for b in WAITING}
            # once the reviews run, the awaiting-approval table links each brand to its form
            ui = api.removesuffix("/api")
            linked = wait_for(
                "review links in awaiting-approval",
                lambda: {
                    r["brand"]: r["review"]
                    for r in json.loads(latest_artifact(api, "awaiting-approval")["data"])
                    if r["review"].startswith("http")
                },
            )
            assert linked == {f"{b} 待审 {b}": f"{ui}/runs/flow-run/{r['id']}" for b, r in reviews.items()}
            assert {(r["owner"], r["days waiting"]) for r in waiting} == {
                ("Zhao Min", 0)
            }  # they began waiting on the cycle's day

            from prefect.flow_runs import resume_flow_run
            from prefect.settings import PREFECT_API_URL, temporary_settings

            def finished(run_id: str) -> dict[str, Any] | None:
                run = next(r for r in flow_runs_of(api, "review-brand") if r["id"] == run_id)
                return run if run["state_type"] not in {"PAUSED", "RUNNING", "PENDING", "SCHEDULED"} else None

            # 5a. the owner answers the form: refused (four eyes), recorded, and the form waits again; then approved with a code
            with temporary_settings({PREFECT_API_URL: api}):
                resume_flow_run(
                    reviews["approver"]["id"],
                    run_input={
                        "decision": "approve",
                        "reviewer": "Zhao Min",
                        "reason": "my brand, fine",
                        "code": "123456",
                    },
                )

            def paused_again() -> bool:
                run = next(r for r in flow_runs_of(api, "review-brand") if r["id"] == reviews["approver"]["id"])
                return run["state_type"] == "PAUSED" and run["state"]["state_details"]["pause_key"].endswith("-2")

            wait_for("the form open again after the refused answer", paused_again, timeout=60)
            with temporary_settings({PREFECT_API_URL: api}):
                resume_flow_run(
                    reviews["approver"]["id"],
                    run_input={
                        "decision": "approve",
                        "reviewer": "Li Wei",
                        "reason": "GMV holds at 500 a day",
                        "code": _code("Li Wei"),
                    },
                )
            assert (
                wait_for("the approved review", lambda: finished(reviews["approver"]["id"]))["state_type"]
                == "COMPLETED"
            )
            # 5b. decided from the terminal: the paused form is answered and completes saying who decided
            out = _cli(
                env,
                "approve",
                "cli-decided",
                "--by",
                "Wang Fang",
                "--reason",
                "checked the refunds by hand",
                "--code",
                _code("Wang Fang"),
                "--configs",
                str(configs),
            )
            assert out.returncode == 0, out.stderr
            assert "review run review-cli-decided-affiliate_trial: answered" in out.stdout
            assert (
                wait_for("the closed review", lambda: finished(reviews["cli-decided"]["id"]))["state_type"]
                == "COMPLETED"
            )
            wait_for(
                "its message",
                lambda: (
                    "cli-decided was already decided by Wang Fang at " in _run_logs(api, reviews["cli-decided"]["id"])
                ),
                timeout=30,
            )
            # 5c. decided from a terminal without the server, then the form answered late: a message, never a traceback
            offline = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
            assert (
                _cli(
                    offline,
                    "approve",
                    "late-answer",
                    "--by",
                    "Chen Jing",
                    "--reject",
                    "--reason",
                    "refunds too high",
                    "--code",
                    _code("Chen Jing"),
                    "--configs",
                    str(configs),
                ).returncode
                == 0
            )
            with temporary_settings({PREFECT_API_URL: api}):
                resume_flow_run(
                    reviews["late-answer"]["id"],
                    run_input={
                        "decision": "approve",
                        "reviewer": "Li Wei",
                        "reason": "looks fine to me",
                        "code": "000000",
                    },
                )  # not checked: the brand was decided elsewhere
            assert (
                wait_for("the late review", lambda: finished(reviews["late-answer"]["id"]))["state_type"] == "COMPLETED"
            )
            wait_for(
                "its message",
                lambda: (
                    "late-answer was already decided by Chen Jing at " in _run_logs(api, reviews["late-answer"]["id"])
                ),
                timeout=30,
            )
            assert _ledger(
                tmp_path,
                "SELECT brand_id, cause, actor, to_stage FROM stage_changes WHERE cause != 'decision' ORDER BY brand_id",
            ) == [
                ("approver", "approval", "Li Wei", "public_traffic"),  # the form's answer
                ("cli-decided", "approval", "Wang Fang", "public_traffic"),  # the terminal's; the form added nothing
                ("late-answer", "rejection", "Chen Jing", "affiliate_trial"),  # the first answer stands
            ]
            # the audit has the refused answer beside the approvals: who, through which door, why
            audit = json.loads(_cli(env, "audit", "approver", "--format", "json", "--configs", str(configs)).stdout)
            assert [(a["event"], a["actor"], a["channel"], a["reason"]) for a in audit] == [
                ("refused", "Zhao Min", "form", "a brand's owner may not approve it (four eyes)"),
                ("approval", "Li Wei", None, f"GMV holds at 500 a day (review-brand run {reviews['approver']['id']})"),
            ]

            # 6. explain and status tell the story, text and JSON
            explain = _cli(env, "explain", "approver", "--configs", str(configs))
            assert explain.returncode == 0, explain.stderr
            approval = [line for line in explain.stdout.splitlines() if "Li Wei" in line]
            assert len(approval) == 1 and "approval" in approval[0] and "GMV holds at 500 a day" in approval[0], (
                explain.stdout
            )
            as_json = _cli(env, "explain", "approver", "--format", "json", "--configs", str(configs))
            history = json.loads(as_json.stdout)["stage_history"]
            assert [(h["cause"], h["actor"]) for h in history] == [("approval", "Li Wei")]
            status = _cli(env, "status", "--format", "json", "--configs", str(configs))
            assert status.returncode == 0, status.stderr
            stages = {b["brand_id"]: b["stage"] for b in json.loads(status.stdout)["brands"]}
            assert stages == {
                "approver": "public_traffic",
                "cli-decided": "public_traffic",
                "laggard": "affiliate_trial",
                "late-answer": "affiliate_trial",
                "riser": "public_traffic",
            }
            assert json.loads(status.stdout)["last_cycle"]["as_of"] == day

            # 7. the visual report, from the cycle's artifact, over HTTP, in Chromium
            link = latest_artifact(api, "visual-report")
            url = re.fullmatch(
                r"\[STEPS report (\S+)\]\((http://127\.0\.0\.1:\d+/\S+)\)", link["data"]
            )  # a link artifact is markdown
            assert (
                link["flow_run_id"] == cycle["id"] and url and url[1] == day and url[2].endswith(f"/{day}/index.html")
            ), link["data"]
            page = chromium_page(url[2], tmp_path / "report.png")
            assert all(name in page for name in ("快手美妆 Riser", "拖后腿")), page[:2000]
            assert (tmp_path / "report.png").stat().st_size > 10_000  # a drawn page, not an error
            drain_prefect_workers()
        # an operator reads these logs too
        assert tracebacks_in_logs(home / "server.log", serve_log) + tracebacks_in_run_logs(api) == []
