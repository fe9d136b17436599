"""Flow onboarding-replay: decide a run of days in date order (catch-up after downtime, the demo)."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
from prefect import flow, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NONE
from prefect.runtime import flow_run, task_run

from brandsteps.config import Portfolio
from brandsteps.config.settings import targets, today_in
from brandsteps.engine.cycle import CycleSummary, brand_table, metrics_start, run_day
from brandsteps.ledger import Ledger
from brandsteps.reports.summary import print_progress
from brandsteps.sources.metrics_source import MetricsBatch
from flows.parameters import Day
from flows.run_names import replay_run_name
from tasks.configs import load_configs
from tasks.metrics import load_daily_metrics
from tasks.prefect_types import quoted, synchronous

DAYS_PER_TASK = 10


def _chunk_name() -> str:
    days = task_run.parameters["days"]
    return f"cycle-{days[0]}-to-{days[-1]}"


@task(name="cycle-days", cache_policy=NONE, task_run_name=_chunk_name)
def decide_days(
    portfolio: Portfolio,
    history: MetricsBatch,
    ledger: Ledger,
    days: list[date],
    brands: pd.DataFrame,
    show: bool,
    done_before: int,
    total: int,
) -> list[CycleSummary]:
    """Several days in date order, each its own ledger transaction (a failure keeps the days before it)."""
    summaries: list[CycleSummary] = []
    for i, day in enumerate(days, start=done_before + 1):
        summaries.append(run_day(portfolio, history, ledger, day, flow_run.get_id(), brands))
        if show:
            print_progress(i, total, summaries[-1].line())
    return summaries


@flow(name="onboarding-replay", log_prints=True, flow_run_name=replay_run_name)
def onboarding_replay(
    start: Day,
    end: Day,
    configs: str = "configs",
    metrics: str | None = None,
    ledger: str | None = None,
    show_progress: bool = False,
) -> list[CycleSummary]:
    """Run the daily cycle for every day from start to end, in date order, into the ledger.

    Args:
        start: First day to decide.
        end: Last day to decide (inclusive).
        configs: The configs folder.
        metrics: Metrics source overriding onboarding.yaml.
        ledger: Ledger SQLAlchemy URL overriding onboarding.yaml.
        show_progress: Also print progress to the terminal (the UI shows a progress artifact).
    """
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    portfolio = load_configs(configs)
    where = targets(portfolio, metrics, ledger)
    led = where.open_ledger()
    history = load_daily_metrics(where.metrics, end, today_in(where.timezone), metrics_start(portfolio, start))
    brands = brand_table(portfolio)
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    progress = synchronous(
        create_progress_artifact(progress=0.0, key="replay-progress", description=f"Replay {start} to {end}")
    )
    summaries: list[CycleSummary] = []
    # A task run and an artifact update each cost more than deciding a small portfolio's day,
    # so days go in chunks of DAYS_PER_TASK: the task count grows with days, never with brands.
    for first in range(0, len(days), DAYS_PER_TASK):
        chunk = days[first : first + DAYS_PER_TASK]
        done = decide_days(
            quoted(portfolio), quoted(history), led, chunk, quoted(brands), show_progress, first, len(days)
        )
        summaries.extend(done)
        update_progress_artifact(artifact_id=progress, progress=100.0 * len(summaries) / len(days))
    print(f"Replayed {len(days)} days from {start} to {end}")
    return summaries
