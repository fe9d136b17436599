"""Tasks: read and validate the daily metrics, then compute every brand's window metrics."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from brandsteps.config import Portfolio
from brandsteps.engine.cycle import data_errors, mark_readiness, window_metrics_for
from brandsteps.engine.readiness import UNREADY
from brandsteps.sources.metrics_source import MetricsBatch, MetricsSource, load_metrics
from tasks.retries import is_transient


@task(
    name="load-metrics", cache_policy=NONE, retries=3, retry_delay_seconds=[1, 4, 10], retry_condition_fn=is_transient
)
def load_daily_metrics(source: MetricsSource, as_of: date, today: date, start: date | None) -> MetricsBatch:
    batch = load_metrics(source, as_of=as_of, today=today, start=start)
    logger = get_run_logger()
    logger.info("Read %d valid rows from %s", len(batch.daily), source.describe())
    if len(batch.quarantine):
        logger.warning("Quarantined %d rows (see the quarantined-rows artifact)", len(batch.quarantine))
    if batch.unknown_columns:
        logger.info("Ignored unknown columns: %s", ", ".join(batch.unknown_columns))
    return batch


@task(name="check-readiness", cache_policy=NONE)
def check_readiness(
    portfolio: Portfolio, batch: MetricsBatch, cohorts: pd.DataFrame, as_of: date, now: datetime
) -> tuple[pd.DataFrame, pd.Series]:
    """The data deadline's rule over every due brand: unready brands wait before it and are INCONCLUSIVE from it."""
    marked, missing = mark_readiness(portfolio, batch, cohorts, as_of, now)
    waiting = int((marked["status"] == UNREADY).sum())
    late = int((marked["not_ready"] != "").sum()) if "not_ready" in marked else 0
    if waiting:
        get_run_logger().info(
            "%d brands wait for their data until the deadline %s (see data-readiness)",
            waiting,
            portfolio.onboarding.data_deadline,
        )
    if late:
        get_run_logger().warning(
            "%d brands' data was not in by the deadline %s: decided INCONCLUSIVE",
            late,
            portfolio.onboarding.data_deadline,
        )
    return marked, missing


@task(name="window-metrics", cache_policy=NONE)
def compute_windows(portfolio: Portfolio, batch: MetricsBatch, cohorts: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Window metrics of every due brand at once, and each brand's data-validation problems."""
    return window_metrics_for(portfolio, batch, cohorts), data_errors(batch, cohorts)
