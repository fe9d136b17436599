"""Tasks: publish what operators read in the Prefect UI (funnel, changes, quarantine, reports)."""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
from prefect import task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE

from brandsteps.config import Portfolio
from brandsteps.cycle import CycleSummary
from brandsteps.ledger import Ledger
from brandsteps.metrics_source import MetricsBatch
from brandsteps.report import TABLE_ROWS, changed_count, changes_rows, funnel_rows, quarantine_rows, summary_markdown


def _shown(total: int) -> str:
    return f"; the first {TABLE_ROWS:,} of {total:,} shown, all are in the ledger (`brandsteps status`)" if total > TABLE_ROWS else ""


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
        description=f"Decisions of {day} that moved a brand, await approval or are overdue{_shown(changed_count(decisions))}",
    )
    for key, wanted, what in (
        ("overdue-brands", "overdue", "Brands past max_days_in_stage"),
        ("awaiting-approval", "await_approval", "Brands waiting for a person's approval (review-brand runs or `brandsteps approve`)"),
    ):
        rows = decisions[decisions["overdue"].astype(bool) if wanted == "overdue" else decisions["action"] == wanted] if len(decisions) else decisions
        create_table_artifact(
            key=f"{key_prefix}{key}",
            table=changes_rows(rows, names) or [{"brand": "", "from": "", "action": "none today", "to": "", "verdict": "", "overdue": "", "why": ""}],
            description=f"{what} on {day} ({len(rows)}){_shown(len(rows))}",
        )
    create_table_artifact(
        key=f"{key_prefix}quarantined-rows",
        table=quarantine_rows(batch.quarantine) or [{"source": "", "row": "", "brand_id": "", "date": "", "reason": "no rows quarantined"}],
        description=f"Metric rows set aside on {day}, each with its reason ({len(batch.quarantine)} in all)",
    )


@task(name="publish-brand-report", cache_policy=NONE)
def publish_brand_report(brand_id: str, markdown: str) -> None:
    create_markdown_artifact(key=f"brand-report-{brand_id}", markdown=markdown, description=f"Decision report for {brand_id}")


@task(name="publish-visual-report", cache_policy=NONE)
def publish_visual_report(portfolio: Portfolio, ledger: Ledger, as_of: date, days: int = 90, max_brands: int = 20) -> str | None:
    """When BRANDSTEPS_REPORT_DIR is set: write the HTML report of the last `days` days there and link it.

    Off by default, since drawing charts every cycle costs seconds per brand; `brandsteps report` draws all brands.
    """
    folder = os.environ.get("BRANDSTEPS_REPORT_DIR")
    if not folder:
        return None
    from brandsteps.visual_report import write_report

    out = Path(folder).expanduser().resolve() / as_of.isoformat()
    page = write_report(portfolio, ledger, out, as_of - timedelta(days=days - 1), as_of, max_brands=max_brands)
    create_link_artifact(key="visual-report", link=page.as_uri(), link_text=f"STEPS report {as_of}", description=f"HTML report of the {days} days to {as_of}")
    return str(page)
