"""Tasks: announce a cycle's stage changes as Prefect events, and start reviews for new approval waits."""

from __future__ import annotations

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NONE
from prefect.deployments import run_deployment
from prefect.events import emit_event
from prefect.exceptions import ObjectNotFound

from brandsteps.approvals.review import review_key, review_run_name
from brandsteps.config import Portfolio
from brandsteps.engine.events import brand_events, max_days_by_brand, newly_awaiting
from brandsteps.ledger import WriteResult
from brandsteps.ledger.ids import among
from tasks.prefect_types import synchronous

REVIEW_DEPLOYMENT = "review-brand/review-brand"


@task(name="emit-events", cache_policy=NONE)
def emit_brand_events(
    portfolio: Portfolio, decisions: pd.DataFrame, cohorts: pd.DataFrame, names: pd.Series, written: WriteResult
) -> int:
    """One event per brand that moved, began awaiting approval or just became overdue (written decisions only)."""
    if decisions.empty or not written.written_ids:
        return 0
    events = brand_events(
        decisions,
        names,
        cohorts["last_as_of"],
        max_days_by_brand(portfolio, cohorts["stage"]),
        set(written.written_ids),
    )
    for e in events:
        emit_event(event=e.event, resource=e.resource, payload=e.payload)
    if events:
        kinds = pd.Series([e.event.rsplit(".", 1)[1] for e in events]).value_counts()
        get_run_logger().info("Emitted %d events: %s", len(events), ", ".join(f"{k} {n}" for k, n in kinds.items()))
    return len(events)


@task(name="start-reviews", cache_policy=NONE, retries=2, retry_delay_seconds=[2, 10])
def start_reviews(decisions: pd.DataFrame, written: WriteResult, configs: str, ledger_url: str | None) -> list[str]:
    """A review-brand run for each brand that began awaiting approval today; never two for the same wait."""
    logger = get_run_logger()
    if decisions.empty or not written.written_ids:
        return []
    new = decisions[newly_awaiting(decisions).to_numpy(dtype=bool) & among(decisions["brand_id"], written.written_ids)]
    if new.empty:
        return []
    started: list[str] = []
    for brand_id, stage, since in new[["brand_id", "stage", "awaiting_since"]].itertuples(index=False):
        try:
            run = synchronous(
                run_deployment(
                    REVIEW_DEPLOYMENT,
                    parameters={"brand_id": brand_id, "configs": configs, "ledger": ledger_url},
                    timeout=0,
                    as_subflow=False,
                    idempotency_key=review_key(brand_id, stage, str(since)),
                    flow_run_name=review_run_name(brand_id, stage),
                    tags=["review", f"stage:{stage}"],
                )
            )
        except ObjectNotFound:
            logger.warning(
                "%d brands await approval but the %s deployment does not exist (start `brandsteps serve`); "
                "approve them with `brandsteps approve BRAND --by NAME --reason TEXT`",
                len(new),
                REVIEW_DEPLOYMENT,
            )
            return started
        started.append(str(run.id))
    logger.info("Started %d review-brand runs", len(started))
    return started
