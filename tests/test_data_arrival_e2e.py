"""Cycles started by data arriving, on a real `prefect server start` and `brandsteps serve`.

Before the data deadline, imports (from terminals, then the inbox) announce brandsteps.metrics.imported;
the onboarding-cycle deployment's trigger starts one cycle for a burst of them, which decides the
brands whose data is now complete; a later import for the same day starts one more run that decides
nothing twice. Any traceback in the server's, serve's, the commands' or the runs' logs fails the test.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import yaml

from tests.conftest import simple_playbook, write_configs
from tests.prefect_process import (
    BIN,
    REPO,
    api_post,
    background,
    drain_prefect_workers,
    flow_runs_of,
    prefect_server,
    quiet_env,
    tracebacks_in_logs,
    tracebacks_in_run_logs,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TZ = "Asia/Shanghai"
EVENT = "brandsteps.metrics.imported"
TRIGGER = "onboarding-cycle-when-data-arrives"
# The repository's trigger, counted over 12 s instead of 240 and starting its run 22 s later instead
# of 300 (still 10 s more than the window, as validate wants): the same counting, a shorter test.
WITHIN, SCHEDULE_AFTER = 12, 22
# yesterday's GMV comes by import; the numbers differ because an export is known by its bytes
LATE = {"late-one": 500, "late-two": 510}
ABSENT = "absent"  # yesterday's row never comes: left for the deadline run
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


@dataclass
class Clock:
    """What serve's cycles see (BRANDSTEPS_NOW, before the deadline); the real clock reaches neither cron."""

    now: str
    as_of: date
    deadline: str
    schedule: str


def _clock() -> Clock:
    real = datetime.now(ZoneInfo(TZ))
    # a minute past midnight: as_of is yesterday, and any deadline from 00:05 on is still ahead
    now = real.replace(hour=0, minute=1, second=0, microsecond=0)
    # the deadline and the daily cron three and six hours away on the real clock: neither fires during the test
    deadline = max((real + timedelta(hours=3)).strftime("%H:%M"), "00:05")
    daily = real + timedelta(hours=6)
    return Clock(
        now.isoformat(timespec="seconds")[:19],
        now.date() - timedelta(days=1),
        deadline,
        f"{daily.minute} {daily.hour} * * *",
    )


def _portfolio(root: Path, clock: Clock) -> Path:
    """Three brands with rows up to the day before as_of; beside them the repository's prefect.yaml, debounced less."""
    start = clock.as_of - timedelta(days=3)
    brands = {b: {"start_date": start.isoformat()} for b in (*LATE, ABSENT)}
    onboarding = {
        "metrics": "data/metrics.csv",
        "ledger": "sqlite:///data/ledger.sqlite",
        "timezone": TZ,
        "schedule": clock.schedule,
        "data_deadline": clock.deadline,
    }
    configs = write_configs(root, brands, playbook=simple_playbook(), onboarding=onboarding)
    days = pd.date_range(start, clock.as_of - timedelta(days=1))
    rows = [{"brand_id": b, "date": d.date(), "gmv": 500.0, "orders": 5.0} for b in brands for d in days]
    (root / "data").mkdir()
    pd.DataFrame(rows).to_csv(root / "data" / "metrics.csv", index=False)
    doc = yaml.safe_load((REPO / "prefect.yaml").read_text(encoding="utf-8"))
    doc["deployments"][0]["triggers"][0].update(within=WITHIN, schedule_after=SCHEDULE_AFTER)
    (root / "prefect.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return configs


def _store_export(path: Path, day: date, gmv: float) -> Path:
    """A 生意通 全店成交分析 export of one day (the built-in kuaishou-store-daily profile)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"日期,成交金额,成交订单数\n{day.isoformat()},{gmv:g},5\n", encoding="utf-8")
    return path


def _import(env: dict[str, str], configs: Path, export: Path, brand: str) -> subprocess.Popen[str]:
    command = [str(BIN / "brandsteps"), "import", str(export), "--brand", brand, "--configs", str(configs)]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _ledger(root: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(root / "data" / "ledger.sqlite") as conn:
        return conn.execute(sql, params).fetchall()


def _finished_cycles(api: str, count: int) -> list[dict[str, Any]] | None:
    """The started cycle runs (not the cron's upcoming ones) once there are `count` and all have ended."""
    runs = [r for r in flow_runs_of(api, "onboarding-cycle") if not r["auto_scheduled"]]
    return runs if len(runs) == count and all(r["state_type"] in FINAL for r in runs) else None


def _imported_events(api: str, count: int) -> list[dict[str, Any]] | None:
    found = api_post(api, "/events/filter", {"filter": {"event": {"name": [EVENT]}}, "limit": 50})["events"]
    return sorted(found, key=lambda e: e["occurred"]) if len(found) == count else None


def _run_inbox(api: str, inbox: Path) -> Any:
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api}):
        return run_deployment(
            "import-exports/import-exports", parameters={"inbox": str(inbox)}, timeout=180, as_subflow=False
        )


def test_imports_start_one_cycle_that_decides_the_newly_ready_brands(tmp_path: Path) -> None:
    clock = _clock()
    configs = _portfolio(tmp_path, clock)
    home = tmp_path / "prefect-home"
    logs = [home / "server.log", tmp_path / "serve.log"]
    yesterday = clock.as_of.isoformat()
    with prefect_server(home) as api:
        env = quiet_env(home, api)
        # serve's cycles (and the runs it starts, which inherit its environment) see 00:01, before the deadline;
        # it looks for scheduled runs every 2 s instead of 10: the same code path, a shorter test
        serve_env = {**env, "BRANDSTEPS_NOW": clock.now, "PREFECT_RUNNER_POLL_FREQUENCY": "2"}
        serve_cmd = [
            str(BIN / "brandsteps"),
            "serve",
            "--configs",
            str(configs),
            "--report-dir",
            str(tmp_path / "reports"),
        ]
        with background(serve_cmd, serve_env, logs[1], cwd=tmp_path) as serve:

            def registered() -> list[dict[str, Any]]:
                assert serve.poll() is None, logs[1].read_text()
                return [a for a in api_post(api, "/automations/filter", {}) if a["name"] == TRIGGER]

            (automation,) = wait_for("serve to register the data-arrival trigger", registered, timeout=120)
            # on (onboarding.yaml sets data_deadline), counting as prefect.yaml says, its run delayed by schedule_after
            trigger = automation["trigger"]
            assert (automation["enabled"], trigger["expect"], trigger["posture"], trigger["within"]) == (
                True,
                [EVENT],
                "Reactive",
                WITHIN,
            )
            assert [(a["type"], a["schedule_after"], a["parameters"]) for a in automation["actions"]] == [
                ("run-deployment", SCHEDULE_AFTER, None)  # None: the deployment's parameters, as_of empty = yesterday
            ]
            assert _finished_cycles(api, 0) == []  # nothing started yet: no cron reached, no data arrived

            # 1. two exports imported from two terminals at once: two events, one cycle
            imports = {
                b: _import(env, configs, _store_export(tmp_path / f"{b}.csv", clock.as_of, gmv), b)
                for b, gmv in LATE.items()
            }
            for brand, proc in imports.items():
                out, err = proc.communicate(timeout=180)
                (tmp_path / f"import-{brand}.log").write_text(out + err, encoding="utf-8")
                assert proc.returncode == 0, out + err
                assert f"announced {EVENT}: 1 brand, 1 day" in err  # the command told the server
            events = wait_for("the imports' events", lambda: _imported_events(api, 2), timeout=60)
            assert sorted((e["payload"]["brands"], e["payload"]["days"]) for e in events) == [
                ([b], [yesterday]) for b in LATE
            ]
            gap = datetime.fromisoformat(events[1]["occurred"]) - datetime.fromisoformat(events[0]["occurred"])
            assert gap < timedelta(seconds=WITHIN), (
                gap
            )  # the test's premise: the second falls in the first one's window

            (first,) = wait_for("the cycle the imports started", lambda: _finished_cycles(api, 1), timeout=150, every=2)
            assert first["state_type"] == "COMPLETED", logs[1].read_text()[-3000:]
            # started by the trigger's automation (nobody created it), named for the day it decides
            assert (first["created_by"]["type"], first["created_by"]["id"]) == ("AUTOMATION", automation["id"])
            assert first["name"] == f"cycle-{yesterday}"
            # exactly the brands whose data has come, once each; absent waits for the deadline run
            decided_brands = _ledger(
                tmp_path, "SELECT brand_id FROM decisions WHERE as_of = ? ORDER BY brand_id", yesterday
            )
            assert decided_brands == [(b,) for b in LATE]
            decided = _ledger(tmp_path, "SELECT * FROM decisions ORDER BY brand_id")
            assert len(decided) == 2

            # 2. a re-export of late-one's day dropped in the inbox and imported by the served import-exports
            inbox = tmp_path / "inbox"
            export = _store_export(inbox / "late-one" / "全店-重新导出.csv", clock.as_of, 520)
            old = time.time() - 60  # at rest: not a file still being copied in
            os.utime(export, (old, old))
            imported = _run_inbox(api, inbox)
            assert imported.state is not None and imported.state.is_completed(), logs[1].read_text()[-3000:]
            events = wait_for("the inbox's event", lambda: _imported_events(api, 3), timeout=60)
            assert (events[-1]["payload"]["brands"], events[-1]["payload"]["days"]) == (["late-one"], [yesterday])

            # after the first run's window: one more run, and it decides nothing twice
            runs = wait_for("the cycle the inbox started", lambda: _finished_cycles(api, 2), timeout=150, every=2)
            second = next(r for r in runs if r["id"] != first["id"])
            assert (second["state_type"], second["created_by"]["id"]) == ("COMPLETED", automation["id"])
            assert (
                _ledger(tmp_path, "SELECT * FROM decisions ORDER BY brand_id") == decided
            )  # not a row added or changed
            drain_prefect_workers()
        problems = tracebacks_in_logs(*logs, *tmp_path.glob("import-*.log")) + tracebacks_in_run_logs(api)
        assert problems == []
