"""Tasks: publish what operators read in the Prefect UI (funnel, changes, quarantine, reports)."""

from __future__ import annotations

import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE

from brandsteps.cycle import CycleSummary
from brandsteps.metrics_source import MetricsBatch
from brandsteps.report import changes_rows, funnel_rows, quarantine_rows, summary_markdown


@task(name="publish-artifacts", cache_policy=NONE)
def publish_cycle(summary: CycleSummary, decisions: pd.DataFrame, batch: MetricsBatch, names: pd.Series, key_prefix: str = "") -> None:
    """Keyed artifacts, so the latest funnel, changes and quarantine are one click away."""
    day = summary.as_of.isoformat()
    create_markdown_artifact(key=f"{key_prefix}cycle-summary", markdown=summary_markdown(summary), description=f"Onboarding cycle {day}")
    create_table_artifact(key=f"{key_prefix}stage-funnel", table=funnel_rows(summary.funnel), description=f"Brands per stage after the cycle of {day}")
    changes = changes_rows(decisions, names)
    create_table_artifact(
        key=f"{key_prefix}decision-changes",
        table=changes or [{"brand": "", "from": "", "action": "no changes today", "to": "", "verdict": "", "overdue": "", "why": ""}],
        description=f"Decisions of {day} that moved a brand, await approval or are overdue",
    )
    create_table_artifact(
        key=f"{key_prefix}quarantined-rows",
        table=quarantine_rows(batch.quarantine) or [{"source": "", "row": "", "brand_id": "", "date": "", "reason": "no rows quarantined"}],
        description=f"Metric rows set aside on {day}, each with its reason ({len(batch.quarantine)} in all)",
    )


@task(name="publish-brand-report", cache_policy=NONE)
def publish_brand_report(brand_id: str, markdown: str) -> None:
    create_markdown_artifact(key=f"brand-report-{brand_id}", markdown=markdown, description=f"Decision report for {brand_id}")
