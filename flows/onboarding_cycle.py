"""Flow onboarding-cycle: one gated cycle over the whole portfolio for one day."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import date

import pandas as pd
from prefect import flow
from prefect.runtime import flow_run

from brandsteps.catalogue import GRADUATED, STAGE_IDS
from brandsteps.config import Portfolio
from brandsteps.cycle import CycleSummary, combine, metrics_start, summarise
from brandsteps.ledger import Ledger
from brandsteps.metrics_source import MetricsBatch
from brandsteps.settings import targets, today_in, yesterday_in
from tasks.artifacts import publish_cycle
from tasks.configs import load_configs
from tasks.gates import STAGE_GATES
from tasks.ledger import read_cohorts, record_decisions
from tasks.metrics import compute_windows, load_daily_metrics


class EveryBrandErrored(RuntimeError):
    """Every evaluated brand's data failed validation: the cycle must not look successful."""


@dataclass
class CycleOutcome:
    summary: CycleSummary
    decisions: pd.DataFrame
    batch: MetricsBatch
    ledger: Ledger


def only_brand(portfolio: Portfolio, brand_id: str) -> Portfolio:
    """The same portfolio narrowed to one brand, so one brand follows the cycle's own code path."""
    if brand_id not in portfolio.brands:
        raise ValueError(f"unknown brand {brand_id!r}: no configs/brands/{brand_id}.yaml")
    versions = {k: v for k, v in portfolio.brand_versions.items() if k == brand_id}
    return replace(portfolio, brands={brand_id: portfolio.brands[brand_id]}, brand_versions=versions)


def run_cycle_steps(portfolio: Portfolio, as_of: date, metrics: str | None, ledger_url: str | None) -> CycleOutcome:
    """The cycle's tasks in order; their number does not depend on the number of brands."""
    where = targets(portfolio, metrics, ledger_url)
    ledger = where.open_ledger()
    batch = load_daily_metrics(where.metrics, as_of, today_in(where.timezone), metrics_start(portfolio, as_of))
    cohorts = read_cohorts(portfolio, ledger, as_of)
    window, errors = compute_windows(batch, cohorts)
    parts = [STAGE_GATES[s](portfolio, cohorts, errors, window, as_of) for s in (*STAGE_IDS, GRADUATED)]
    decisions = combine(parts)
    result = record_decisions(ledger, decisions, cohorts, as_of, flow_run.get_id(), len(batch.quarantine))
    return CycleOutcome(summarise(as_of, cohorts, decisions, batch, result), decisions, batch, ledger)


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
    outcome = run_cycle_steps(portfolio, day, metrics, ledger)
    names = pd.Series({b.brand_id: b.name for b in portfolio.brands.values()}, dtype=object)
    publish_cycle(outcome.summary, outcome.decisions, outcome.batch, names)
    print(outcome.summary.line())
    fail_if_every_brand_errored(outcome.summary)
    return asdict(outcome.summary)
