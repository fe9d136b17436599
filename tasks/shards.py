"""Tasks: launch a cycle's shards as runs of a deployment (picked up by workers), wait, merge what they recorded."""

from __future__ import annotations

import time
from datetime import date

import pandas as pd
from prefect import get_client, get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NONE
from prefect.deployments import run_deployment

from brandsteps.config import Portfolio
from brandsteps.engine.cycle import CycleSummary, prepare_cohorts
from brandsteps.engine.shards import merged_summary
from brandsteps.ledger import Ledger
from tasks.prefect_types import synchronous
from tasks.retries import is_transient


class ShardFailed(RuntimeError):
    """A shard run did not complete: the portfolio's cycle is incomplete (a rerun decides only what is missing)."""


@task(name="run-shards", cache_policy=NONE)
def run_shards(
    deployment: str, count: int, parameters: dict[str, object], parent: str | None, poll_seconds: float = 2.0
) -> list[str]:
    """Start one run of the deployment per shard and wait until every one has finished."""
    logger = get_run_logger()
    runs = [
        synchronous(
            run_deployment(
                deployment,
                parameters={**parameters, "shards": count, "shard_index": i},
                timeout=0,
                flow_run_name=f"cycle-{parameters['as_of']}-shard-{i + 1}-of-{count}",
                idempotency_key=f"{parent}-shard-{i}-of-{count}" if parent else None,
            )
        )
        for i in range(count)
    ]
    ids = [r.id for r in runs]
    logger.info("Started %d shard runs of %s", count, deployment)
    progress = synchronous(
        create_progress_artifact(
            progress=0.0, key="shards-progress", description=f"{count} shards of the cycle of {parameters['as_of']}"
        )
    )
    with get_client(sync_client=True) as client:
        while True:
            states = [client.read_flow_run(i).state for i in ids]
            done = [s for s in states if s is not None and s.is_final()]
            update_progress_artifact(artifact_id=progress, progress=100.0 * len(done) / count)
            if len(done) == count:
                break
            time.sleep(poll_seconds)
    # done now holds every shard's final state, in shard order: the loop ends only once each run has one
    failed = [f"shard {i + 1} ({s.name}: {s.message})" for i, s in enumerate(done) if not s.is_completed()]
    if failed:
        raise ShardFailed("; ".join(failed))
    return [str(i) for i in ids]


@task(name="merge-shards", cache_policy=NONE, retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=is_transient)
def merge_shards(
    portfolio: Portfolio, ledger: Ledger, as_of: date, shard_runs: list[str]
) -> tuple[CycleSummary, pd.DataFrame, pd.DataFrame]:
    """The portfolio's summary, decisions and cohorts, read back from the shared ledger."""
    reads = ledger.without_retries()  # this task retries
    cohorts = prepare_cohorts(portfolio, reads.read_state(), as_of)
    decisions = reads.decisions_for(as_of)
    summary = merged_summary(as_of, cohorts, decisions, reads.cycles_of_runs(shard_runs))
    return summary, decisions, cohorts
