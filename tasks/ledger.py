"""Tasks: read the brands' ledger state and record a cycle's decisions in one transaction."""

from __future__ import annotations

from datetime import date

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from brandsteps.config import Portfolio
from brandsteps.engine.cycle import expected_versions, prepare_cohorts
from brandsteps.ledger import CYCLE, Ledger, WriteResult
from tasks.retries import is_transient


@task(name="read-ledger", cache_policy=NONE, retries=3, retry_delay_seconds=[1, 4, 10], retry_condition_fn=is_transient)
def read_cohorts(portfolio: Portfolio, ledger: Ledger, as_of: date) -> pd.DataFrame:
    """Every configured brand with its current stage, clock and streaks for as_of."""
    cohorts = prepare_cohorts(portfolio, ledger.without_retries().read_state(), as_of)
    get_run_logger().info(
        "Ledger %s: %d brands due for %s", ledger.display_url, int((cohorts["status"] == "due").sum()), as_of
    )
    return cohorts


@task(
    name="record-decisions",
    cache_policy=NONE,
    retries=3,
    retry_delay_seconds=[1, 4, 10],
    retry_condition_fn=is_transient,
)
def record_decisions(
    ledger: Ledger,
    decisions: pd.DataFrame,
    cohorts: pd.DataFrame,
    as_of: date,
    flow_run_id: str | None,
    quarantined: int,
    kind: str = CYCLE,
) -> WriteResult:
    """All decisions, state and stage changes of the cycle in one transaction (all or nothing).

    kind: as Ledger.record_cycle takes it (a cycle of the portfolio, or one brand's run).
    """
    result = ledger.without_retries().record_cycle(
        decisions, as_of, flow_run_id, expected_versions(cohorts), quarantined, kind
    )
    get_run_logger().info(
        "Recorded %d decisions (%d already decided, %d changed concurrently)",
        result.written,
        result.already_decided,
        result.conflicts,
    )
    return result


@task(
    name="read-day-decisions",
    cache_policy=NONE,
    retries=3,
    retry_delay_seconds=[1, 4, 10],
    retry_condition_fn=is_transient,
)
def read_day_decisions(ledger: Ledger, as_of: date) -> pd.DataFrame:
    """Every decision the ledger holds for as_of (a rerun shows the day as recorded, not an empty day)."""
    return ledger.decisions_for(as_of)
