"""Flow onboarding-cycle: one gated cycle over the whole portfolio for one day."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import date
from pathlib import Path
from uuid import UUID

import pandas as pd
from prefect import flow
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.runtime import flow_run

from brandsteps.catalogue import GRADUATED, STAGE_IDS
from brandsteps.config import Portfolio
from brandsteps.cycle import CycleSummary, combine, metrics_start, summarise
from brandsteps.diagnosis import diagnose
from brandsteps.ledger import Ledger, WriteResult
from brandsteps.metrics_source import MetricsBatch
from brandsteps.settings import targets, today_in, yesterday_in
from tasks.artifacts import publish_cycle, publish_visual_report
from tasks.configs import load_configs
from tasks.events import emit_brand_events, start_reviews
from tasks.gates import STAGE_GATES
from tasks.ledger import read_cohorts, read_day_decisions, record_decisions
from tasks.metrics import compute_windows, load_daily_metrics


class EveryBrandErrored(RuntimeError):
    """Every evaluated brand's data failed validation: the cycle must not look successful."""


@dataclass
class CycleOutcome:
    summary: CycleSummary
    decisions: pd.DataFrame
    batch: MetricsBatch
    ledger: Ledger
    cohorts: pd.DataFrame
    written: WriteResult


def only_brand(portfolio: Portfolio, brand_id: str) -> Portfolio:
    """The same portfolio narrowed to one brand, so one brand follows the cycle's own code path."""
    if brand_id not in portfolio.brands:
        raise ValueError(f"unknown brand {brand_id!r}: no configs/brands/{brand_id}.yaml")
    versions = {k: v for k, v in portfolio.brand_versions.items() if k == brand_id}
    return replace(portfolio, brands={brand_id: portfolio.brands[brand_id]}, brand_versions=versions)


def _progress(artifact: UUID | None, done: int, total: int) -> None:
    if artifact is not None:
        update_progress_artifact(artifact_id=artifact, progress=100.0 * done / total)


def run_cycle_steps(portfolio: Portfolio, as_of: date, metrics: str | None, ledger_url: str | None, show_progress: bool = False) -> CycleOutcome:
    """The cycle's tasks in order; their number does not depend on the number of brands."""
    stages = (*STAGE_IDS, GRADUATED)
    steps = 4 + len(stages)
    progress = create_progress_artifact(progress=0.0, key="cycle-progress", description=f"Onboarding cycle {as_of}") if show_progress else None
    where = targets(portfolio, metrics, ledger_url)
    ledger = where.open_ledger()
    batch = load_daily_metrics(where.metrics, as_of, today_in(where.timezone), metrics_start(portfolio, as_of))
    _progress(progress, 1, steps)
    cohorts = read_cohorts(portfolio, ledger, as_of)
    _progress(progress, 2, steps)
    window, errors = compute_windows(batch, cohorts)
    _progress(progress, 3, steps)
    parts = []
    for i, stage in enumerate(stages, start=4):
        parts.append(STAGE_GATES[stage](portfolio, cohorts, errors, window, as_of))
        _progress(progress, i, steps)
    decisions = diagnose(combine(parts), cohorts, portfolio)
    result = record_decisions(ledger, decisions, cohorts, as_of, flow_run.get_id(), len(batch.quarantine))
    _progress(progress, steps, steps)
    return CycleOutcome(summarise(as_of, cohorts, decisions, batch, result), decisions, batch, ledger, cohorts, result)


def fail_if_every_brand_errored(summary: CycleSummary) -> None:
    evaluated = sum(summary.verdicts.values())
    if evaluated and summary.verdicts.get("ERROR", 0) == evaluated:
        raise EveryBrandErrored(
            f"every one of the {evaluated} brands' data failed validation on {summary.as_of}: "
            "see the quarantined-rows artifact"
        )


@flow(name="onboarding-cycle", log_prints=True)
def onboarding_cycle(
    as_of: date | None = None,
    configs: str = "configs",
    metrics: str | None = None,
    ledger: str | None = None,
) -> dict[str, object]:
    """Decide every brand of the portfolio for one day and record the decisions.

    Args:
        as_of: The day to decide (its window ends on it). Empty means yesterday in the
            configured timezone.
        configs: The configs folder (steps.yaml, onboarding.yaml, brands/).
        metrics: Metrics source overriding onboarding.yaml: a CSV/Parquet file or folder,
            or an SQLAlchemy URL followed by #table.
        ledger: Ledger SQLAlchemy URL overriding onboarding.yaml (no password: use
            BRANDSTEPS_LEDGER_PASSWORD).
    """
    portfolio = load_configs(configs)
    day = as_of or yesterday_in(portfolio.onboarding.timezone)
    outcome = run_cycle_steps(portfolio, day, metrics, ledger, show_progress=True)
    names = pd.Series({b.brand_id: b.name for b in portfolio.brands.values()}, dtype=object)
    shown = read_day_decisions(outcome.ledger, day) if outcome.summary.already_decided else outcome.decisions
    publish_cycle(outcome.summary, shown, outcome.batch, names)
    publish_visual_report(portfolio, outcome.ledger, day)
    emit_brand_events(portfolio, outcome.decisions, outcome.cohorts, names, outcome.written)
    start_reviews(outcome.decisions, outcome.written, str(Path(configs).resolve()), ledger)
    print(outcome.summary.line())
    fail_if_every_brand_errored(outcome.summary)
    return asdict(outcome.summary)
