"""Tasks: import the exports waiting in the inbox, and announce and show what came in."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NONE
from prefect.events import emit_event
from prefect.runtime import task_run

from brandsteps.config import Portfolio
from brandsteps.engine.events import METRICS_IMPORTED_EVENT, METRICS_RESOURCE
from brandsteps.sources.imports.inbox import InboxOutcome, import_inbox_file
from brandsteps.sources.imports.loading import load_profiles
from brandsteps.sources.imports.profiles import ImportProfile
from brandsteps.sources.metrics_source import MetricsSource
from tasks.retries import is_transient

IMPORTED_EVENT = METRICS_IMPORTED_EVENT  # what the onboarding-cycle's trigger in prefect.yaml expects


def _file_task_name() -> str:
    return f"import-{Path(str(task_run.parameters['path'])).name}"


@task(name="load-import-profiles", cache_policy=NONE)
def read_profiles(configs: str) -> dict[str, ImportProfile]:
    profiles = load_profiles(configs)
    get_run_logger().info("%d import profiles: %s", len(profiles), ", ".join(profiles))
    return profiles


@task(
    name="import-file",
    cache_policy=NONE,
    task_run_name=_file_task_name,
    retries=2,
    retry_delay_seconds=[5, 30],
    retry_condition_fn=is_transient,
)
def import_file(
    path: Path, inbox: Path, portfolio: Portfolio, profiles: dict[str, ImportProfile], target: MetricsSource
) -> InboxOutcome:
    """One export into the metrics, then to done/ or rejected/ (with its reason beside it)."""
    outcome = import_inbox_file(path, inbox, portfolio.brands, profiles, target)
    logger = get_run_logger()
    for line in outcome.lines:
        (logger.info if outcome.imported else logger.warning)("%s", line)
    return outcome


@task(name="publish-imports", cache_policy=NONE)
def publish_imports(outcomes: list[InboxOutcome]) -> None:
    """The imported-exports artifact (a row a file) and one event naming the brands and days whose metrics changed."""
    rows = [
        {
            "file": o.file,
            "outcome": ("imported" if o.brands else "already imported") if o.imported else "rejected",
            "profile": o.profile or "–",
            "brands": len(o.brands),
            "days": f"{o.days[0]} – {o.days[-1]} ({len(o.days)})" if o.days else "–",
            "columns": ", ".join(o.columns) or "–",
            "skipped accounts": o.skipped_accounts,
            "moved to": o.moved_to,
            "details": " / ".join(o.lines),
        }
        for o in outcomes
    ]
    imported = sum(1 for o in outcomes if o.imported)
    description = (
        f"{imported} of {len(outcomes)} inbox files imported; rejected ones are in rejected/ with their reason"
    )
    create_table_artifact(key="imported-exports", table=rows, description=description)
    brands = sorted({b for o in outcomes for b in o.brands})
    days = sorted({d for o in outcomes for d in o.days})
    if brands:
        emit_event(
            event=IMPORTED_EVENT,
            resource=dict(METRICS_RESOURCE),
            payload={"brands": brands, "days": days, "files": [o.file for o in outcomes if o.brands]},
        )
        get_run_logger().info("Announced %s: %d brands, %d days", IMPORTED_EVENT, len(brands), len(days))
