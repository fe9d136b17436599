"""Scale-out on Prefect's own machinery: a PostgreSQL-backed server, a process work pool, two workers, shards."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import simple_playbook, write_configs
from tests.prefect_process import BIN, REPO, background, drain_prefect_workers, prefect_server, quiet_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PG = "postgres@127.0.0.1:5432"
N_BRANDS = 300
DAYS = (date(2026, 1, 2), date(2026, 1, 3))
COMPARED = [
    "brand_id",
    "as_of",
    "stage",
    "verdict",
    "action",
    "to_stage",
    "score",
    "reason",
    "action_reason",
    "days_in_stage",
    "pass_streak",
    "criteria",
    "gmv_factors",
]


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"postgresql://{PG}/postgres", autocommit=True, connect_timeout=3) as conn:
        conn.execute(sql)


@pytest.fixture(scope="module")
def databases() -> Iterator[dict[str, str]]:
    """Three databases made for this test on the local PostgreSQL server, dropped afterwards."""
    try:
        _admin("SELECT 1")
    except Exception as exc:  # no server: a clear skip here, a failure in CI
        message = f"PostgreSQL not reachable at {PG} ({type(exc).__name__}); .ci/run starts it"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    tag = uuid.uuid4().hex[:8]
    names = {k: f"brandsteps_t4_{k}_{tag}" for k in ("prefect", "sharded", "single")}
    for name in names.values():
        _admin(f'CREATE DATABASE "{name}"')
    try:
        yield names
    finally:
        for name in names.values():
            _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _portfolio(root: Path) -> Path:
    """300 brands; half sell GMV 500 a day (window sums pass gmv >= 300 from day 2), half 50 (never)."""
    brands = {f"b{i:04d}": {"name": f"品牌 {i}", "tier": ("small", "mid", "large")[i % 3]} for i in range(N_BRANDS)}
    configs = write_configs(root, brands, playbook=simple_playbook())
    days = pd.date_range("2026-01-01", DAYS[-1])
    ids = list(brands)
    frame = pd.DataFrame({"brand_id": [b for b in ids for _ in days], "date": list(days.date) * len(ids)})
    frame["gmv"] = [500.0 if int(b[1:]) % 2 else 50.0 for b in ids for _ in days]
    frame["orders"] = 5.0
    (root / "data").mkdir(exist_ok=True)
    frame.to_csv(root / "data" / "metrics.csv", index=False)
    return configs


def _decisions(url: str) -> pd.DataFrame:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            frame = pd.read_sql(sa.text("SELECT * FROM decisions"), conn)
    finally:
        engine.dispose()
    frame = frame[COMPARED].sort_values(["as_of", "brand_id"]).reset_index(drop=True)
    # the GMV factors must match; the diagnosis's cohort medians are taken within each shard (see README "Scaling out")
    frame["gmv_factors"] = frame["gmv_factors"].map(
        lambda text: json.dumps({k: v for k, v in json.loads(text).items() if k != "diagnosis"}, sort_keys=True)
    )
    return frame


def test_sharded_cycle_on_workers_equals_the_single_cycle(databases: dict[str, str], tmp_path: Path) -> None:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.settings import PREFECT_API_URL, temporary_settings

    configs = _portfolio(tmp_path)
    sharded = f"postgresql+psycopg://{PG}/{databases['sharded']}"
    single = f"postgresql+psycopg://{PG}/{databases['single']}"
    home = tmp_path / "prefect-home"
    with prefect_server(home, f"postgresql+asyncpg://{PG}/{databases['prefect']}") as api:
        env = quiet_env(home, api, PWD=str(REPO), PREFECT_WORKER_QUERY_SECONDS="1", PREFECT_RUNNER_POLL_FREQUENCY="1")
        cli = {"env": env, "cwd": REPO, "capture_output": True, "timeout": 180}
        created = subprocess.run(
            [str(BIN / "prefect"), "work-pool", "create", "brandsteps", "--type", "process"], **cli
        )
        assert created.returncode == 0, created.stdout + created.stderr
        # prefect.yaml's deployments registered for the pool (`prefect deploy` of Prefect 3.8.8 trips on its own worker query here)
        deployed = subprocess.run(
            [str(BIN / "brandsteps"), "deploy", "--configs", str(configs), "--pool", "brandsteps"], **cli
        )
        assert deployed.returncode == 0, deployed.stdout.decode() + deployed.stderr.decode()
        with SyncPrefectClient(api) as client:
            deployment = client.read_deployment_by_name("onboarding-cycle/onboarding-cycle")
            for schedule in deployment.schedules:  # no 09:00 run of the repository's own configs during the test
                client.update_deployment_schedule(deployment.id, schedule.id, active=False)
        worker = [str(BIN / "prefect"), "worker", "start", "--pool", "brandsteps"]
        with (
            background([*worker, "--name", "w1"], env, tmp_path / "w1.log"),
            background([*worker, "--name", "w2"], env, tmp_path / "w2.log"),
        ):
            with temporary_settings({PREFECT_API_URL: api}):
                from flows.onboarding_cycle import onboarding_cycle

                for day in DAYS:
                    state = onboarding_cycle(
                        as_of=day, configs=str(configs), ledger=sharded, shards=2, return_state=True
                    )
                    assert state.is_completed(), (
                        state,
                        (tmp_path / "w1.log").read_text()[-2000:],
                        (tmp_path / "w2.log").read_text()[-2000:],
                    )
                    summary = state.result()
                    assert summary.decided == N_BRANDS  # every brand, across both shards
                    assert sum(summary.funnel.values()) == N_BRANDS
                for day in DAYS:  # the same cycles without shards, into another ledger
                    assert onboarding_cycle(
                        as_of=day, configs=str(configs), ledger=single, return_state=True
                    ).is_completed()
                drain_prefect_workers()
            with SyncPrefectClient(api) as client:
                response = client._client.post(
                    "/flow_runs/filter", json={"offset": 0, "limit": 50, "sort": "START_TIME_DESC"}
                )
                runs = [r for r in response.json() if not r["auto_scheduled"]]  # not the schedules' upcoming runs
    shard_runs = [r for r in runs if "-shard-" in r["name"]]
    # two shard runs a day, each completed on a worker of the process pool, named for the day and the shard
    assert sorted(r["name"] for r in shard_runs) == sorted(f"cycle-{d}-shard-{i}-of-2" for i in (1, 2) for d in DAYS)
    # the cycles that started them, and the unsharded cycles of the same days, named for their day
    assert sorted(r["name"] for r in runs if r not in shard_runs) == sorted(f"cycle-{d}" for d in DAYS for _ in (1, 2))
    assert all(r["state_type"] == "COMPLETED" and r["work_pool_name"] == "brandsteps" for r in shard_runs)
    got, want = _decisions(sharded), _decisions(single)
    assert (
        len(got) == N_BRANDS * len(DAYS) and not got.duplicated(["brand_id", "as_of"]).any()
    )  # exactly one decision per brand and day
    pd.testing.assert_frame_equal(got, want)  # sharding changes nothing decided
    assert (
        got.loc[got["as_of"] == DAYS[-1], "action"] == "advance"
    ).sum() == N_BRANDS // 2  # the GMV-500 half advanced on day 3
