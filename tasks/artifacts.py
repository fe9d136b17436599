"""Tasks: publish what operators read in the Prefect UI (funnel, changes, quarantine, reports)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
from prefect import get_client, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE
from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterName
from prefect.client.schemas.sorting import FlowRunSort
from prefect.settings import PREFECT_UI_URL

from brandsteps.approvals.review import review_run_names
from brandsteps.catalogue import Action
from brandsteps.config import Portfolio
from brandsteps.config.settings import report_sources
from brandsteps.engine.cycle import CycleSummary
from brandsteps.engine.readiness import deadline_of, unready_table
from brandsteps.ledger import Ledger
from brandsteps.reports.summary import funnel_rows, summary_markdown
from brandsteps.reports.tables import (
    TABLE_ROWS,
    awaiting_table,
    changed_count,
    changes_table,
    overdue_table,
    quarantine_rows,
)
from brandsteps.sources.coverage import FALLBACK_SOURCES, Coverage, artifact_rows, data_coverage
from brandsteps.sources.metrics_source import MetricsBatch

REVIEW_FLOW = "review-brand"
NAMES_PER_QUERY = 50  # run names per flow-run query: each may have had several runs, the server returns 200 at most


def _shown(total: int) -> str:
    return (
        f"; the first {TABLE_ROWS:,} of {total:,} shown, all are in the ledger (`brandsteps status`)"
        if total > TABLE_ROWS
        else ""
    )


def review_links(waiting: pd.DataFrame) -> dict[str, str]:
    """brand → the page of its latest review-brand run (named review-<brand>-<stage>), for the brands waiting.

    waiting: brand_id and stage of each. Without a UI URL (PREFECT_UI_URL) or a server to ask, no links:
    the table then says how to approve from a terminal.
    """
    ui = PREFECT_UI_URL.value()
    if waiting.empty or not ui:
        return {}
    by_name = dict(
        zip(review_run_names(waiting["brand_id"], waiting["stage"]), waiting["brand_id"].astype(str), strict=True)
    )
    names = list(by_name)
    links: dict[str, str] = {}
    try:
        with get_client(sync_client=True) as client:
            for start in range(0, len(names), NAMES_PER_QUERY):  # a few queries for the table's rows, not one per brand
                runs = client.read_flow_runs(
                    flow_filter=FlowFilter(name=FlowFilterName(any_=[REVIEW_FLOW])),
                    flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=names[start : start + NAMES_PER_QUERY])),
                    sort=FlowRunSort.EXPECTED_START_TIME_DESC,
                    limit=200,
                )
                for run in runs:  # newest first: a brand's latest wait keeps its link
                    links.setdefault(by_name[run.name], f"{ui.rstrip('/')}/runs/flow-run/{run.id}")
    except Exception as exc:  # the table is still worth publishing without its links
        get_run_logger().warning("Could not look up the review-brand runs: %s", exc)
    return links


def publish_awaiting(decisions: pd.DataFrame, brands: pd.DataFrame, day: str, key_prefix: str = "") -> None:
    """The awaiting-approval table, each brand with its owner, days waiting and review run.

    Published by publish-artifacts, and again once start-reviews has started the runs of the brands
    that began waiting today, so the latest version links them too.
    """
    waiting = decisions[decisions["action"] == Action.AWAIT_APPROVAL] if len(decisions) else decisions
    shown = waiting.head(TABLE_ROWS)
    table = awaiting_table(shown, brands, review_links(shown))
    create_table_artifact(
        key=f"{key_prefix}awaiting-approval",
        table=table.rows or [{"brand": "", "why": "none today"}],
        description=f"Brands waiting for a person's approval on {day} ({len(waiting)})"
        f"{table.note()}{_shown(len(waiting))}: answer in the review-brand run, or "
        "`brandsteps approve BRAND --by NAME --reason TEXT --code CODE` (the code: with configs/approvers.yaml)",
    )


def cycle_coverage(portfolio: Portfolio, cohorts: pd.DataFrame, window: pd.DataFrame) -> Coverage | None:
    """The data coverage of the brands whose windows the cycle computed (those it decides), from those windows.

    None, with the error logged, when it cannot be computed: the decisions are recorded by then, and
    a report must not stop the events and reviews after it.
    """
    try:
        return data_coverage(portfolio, cohorts.loc[window.index, ["stage", "tier"]], window)
    except Exception:
        get_run_logger().exception("The data coverage of the cycle could not be computed")
        return None


def publish_coverage(coverage: Coverage, configs_dir: Path | None, day: str, key_prefix: str = "") -> None:
    """The data-coverage table: criteria the decided brands had no value for, most brands affected first.

    A run that decided no brand (a rerun of the day) leaves the day's table as the first run published it.
    """
    if coverage.total == 0:
        get_run_logger().info("No brand decided by this run: the data-coverage artifact stays as it was")
        return
    sources: Mapping[str, Sequence[str]] = FALLBACK_SOURCES
    if configs_dir is not None:
        try:
            sources = report_sources(configs_dir)
        # a broken import profile (`brandsteps import` names it): the known reports still fill the column
        except Exception as exc:
            get_run_logger().warning(
                "Import profiles could not be read, data-coverage names the known Kuaishou reports: %s", exc
            )
    rows = artifact_rows(coverage, sources)
    without = sum(1 for r in rows if r["no value"])
    create_table_artifact(
        key=f"{key_prefix}data-coverage",
        table=rows,
        description=f"Deciding criteria, guardrails and min_sample keys without a value on {day} ({without}), "
        f"for the {coverage.total} brands this run decided, most brands affected first: "
        "the base columns no day of their windows has, and the reports that fill them "
        "(`brandsteps coverage` shows every criterion)",
    )


@task(name="publish-readiness", cache_policy=NONE)
def publish_readiness(
    portfolio: Portfolio, cohorts: pd.DataFrame, missing: pd.Series, as_of: date, key_prefix: str = ""
) -> None:
    """The data-readiness table: brands left undecided until their data arrives, with what is missing.

    Published by every run when onboarding.yaml has a data_deadline (an empty table says everyone was ready),
    so the latest version is the latest run's answer.
    """
    onboarding = portfolio.onboarding
    deadline = deadline_of(as_of, onboarding.data_deadline, onboarding.timezone)
    if deadline is None:
        return
    table = unready_table(cohorts, missing)
    late = int((cohorts["not_ready"] != "").sum()) if "not_ready" in cohorts else 0
    rows = [{str(k): v for k, v in row.items()} for row in table.head(TABLE_ROWS).to_dict("records")]
    create_table_artifact(
        key=f"{key_prefix}data-readiness",
        table=rows or [{"brand_id": "", "name": "", "stage": "", "missing": "none: every due brand's data is in"}],
        description=f"Brands waiting for their data of {as_of} ({len(table)}){_shown(len(table))}: "
        "decided by the next run once it arrives, "
        f"or INCONCLUSIVE from the deadline {deadline:%Y-%m-%d %H:%M} ({onboarding.timezone})"
        + (f"; {late} brands were decided INCONCLUSIVE for data not in by the deadline" if late else ""),
    )


@task(name="publish-artifacts", cache_policy=NONE)
def publish_cycle(
    summary: CycleSummary,
    decisions: pd.DataFrame,
    batch: MetricsBatch,
    brands: pd.DataFrame,
    key_prefix: str = "",
    coverage: Coverage | None = None,
    configs_dir: Path | None = None,
) -> None:
    """Keyed artifacts, so the latest funnel, changes and quarantine are one click away.

    brands: report.table_brands of the portfolio (names, owners, approval waits, max_days_in_stage).
    coverage: cycle_coverage of the run (none for a sharded cycle's parent: each shard publishes its
    own); configs_dir: where the import profiles that name the reports are.
    """
    day = summary.as_of.isoformat()
    create_markdown_artifact(
        key=f"{key_prefix}cycle-summary", markdown=summary_markdown(summary), description=f"Onboarding cycle {day}"
    )
    create_table_artifact(
        key=f"{key_prefix}stage-funnel",
        table=funnel_rows(summary.funnel),
        description=f"Brands per stage after the cycle of {day}",
    )
    changes = changes_table(decisions, brands["name"])
    create_table_artifact(
        key=f"{key_prefix}decision-changes",
        table=changes.rows or [{"brand": "", "why": "no changes today"}],
        description=f"Decisions of {day} that moved a brand, await approval or are overdue"
        f"{changes.note()}{_shown(changed_count(decisions))}",
    )
    overdue = overdue_table(decisions, brands)
    count = int(decisions["overdue"].astype(bool).sum()) if len(decisions) else 0
    create_table_artifact(
        key=f"{key_prefix}overdue-brands",
        table=overdue.rows or [{"brand": "", "why": "none today"}],
        description=f"Brands past max_days_in_stage on {day} ({count}){overdue.note()}{_shown(count)}",
    )
    publish_awaiting(decisions, brands, day, key_prefix)
    create_table_artifact(
        key=f"{key_prefix}quarantined-rows",
        table=quarantine_rows(batch.quarantine)
        or [{"source": "", "row": "", "brand_id": "", "date": "", "reason": "no rows quarantined"}],
        description=f"Metric rows set aside on {day}, each with its reason ({len(batch.quarantine)} in all)",
    )
    if coverage is not None:
        publish_coverage(coverage, configs_dir, day, key_prefix)


@task(name="publish-brand-report", cache_policy=NONE)
def publish_brand_report(brand_id: str, markdown: str) -> None:
    create_markdown_artifact(
        key=f"brand-report-{brand_id}", markdown=markdown, description=f"Decision report for {brand_id}"
    )


@task(name="publish-visual-report", cache_policy=NONE)
def publish_visual_report(
    portfolio: Portfolio, ledger: Ledger, as_of: date, days: int = 90, max_brands: int = 20
) -> str | None:
    """With BRANDSTEPS_REPORT_DIR set: the HTML report of the last `days` days there, linked by artifact visual-report.

    With BRANDSTEPS_REPORT_URL (`brandsteps serve` sets both and serves the folder) the link is
    <url>/<as_of>/index.html, which a browser anywhere can open, and the stage funnel is also an
    image artifact; without it, a file:// link that only this machine's browser opens. The page draws
    the `max_brands` brands most in need of attention (a fraction of a second); `brandsteps report` draws all.
    """
    import time

    from prefect.artifacts import create_image_artifact

    from brandsteps.reports.report_server import REPORT_DIR_ENV, REPORT_URL_ENV, report_link
    from brandsteps.reports.visual import write_report

    folder = os.environ.get(REPORT_DIR_ENV)
    if not folder:
        return None
    base_url = os.environ.get(REPORT_URL_ENV, "").strip()
    out = Path(folder).expanduser().resolve() / as_of.isoformat()
    started = time.perf_counter()
    try:
        page = write_report(portfolio, ledger, out, as_of - timedelta(days=days - 1), as_of, max_brands=max_brands)
    # the decisions are recorded: a chart that cannot be drawn must not stop the events and reviews after it
    except Exception:
        get_run_logger().exception("The visual report of %s could not be written to %s", as_of, out)
        return None
    what = (
        f"HTML report of the {days} days to {as_of}: stacked stage funnel, stage durations, "
        f"the {max_brands} brands most in need of attention first"
    )
    if base_url:
        link = report_link(base_url, as_of)
        create_link_artifact(key="visual-report", link=link, link_text=f"STEPS report {as_of}", description=what)
        funnel = report_link(base_url, as_of, "funnel.png")
        create_image_artifact(
            image_url=funnel,
            key="visual-report-funnel",
            description=f"Brands per stage after each day's cycle, {days} days to {as_of}",
        )
    else:
        link = page.as_uri()
        create_link_artifact(
            key="visual-report",
            link=link,
            link_text=f"STEPS report {as_of}",
            description=f"{what}. A file on the machine that ran the cycle: for a link any browser opens, "
            f"run the cycles under `brandsteps serve` (it serves {REPORT_DIR_ENV} over HTTP) "
            f"or set {REPORT_URL_ENV} to where a web server serves that folder",
        )
    get_run_logger().info("Visual report: %s (drawn in %.2f s)", link, time.perf_counter() - started)
    return str(page)
