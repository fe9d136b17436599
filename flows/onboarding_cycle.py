"""Flow onboarding-cycle: one gated cycle over the whole portfolio for one day."""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Annotated
from uuid import UUID

import pandas as pd
from prefect import flow
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.runtime import flow_run
from pydantic import Field

from brandsteps.catalogue import Verdict
from brandsteps.config import Portfolio
from brandsteps.config.settings import now_in, targets, today_in, yesterday_in
from brandsteps.engine.cycle import (
    CycleSummary,
    from_ledger,
    metrics_start,
    return_free_memory,
    summarise,
    unknown_brand_rows,
    without_rows,
)
from brandsteps.engine.diagnosis import diagnose
from brandsteps.engine.events import max_days_by_brand
from brandsteps.engine.evidence import combine, render
from brandsteps.engine.shards import shard_portfolio
from brandsteps.ledger import CYCLE, Ledger, WriteResult
from brandsteps.reports.tables import table_brands
from brandsteps.sources.coverage import Coverage
from brandsteps.sources.metrics_source import MetricsBatch
from flows.parameters import DayOrYesterday
from flows.run_names import cycle_run_name
from tasks.artifacts import cycle_coverage, publish_awaiting, publish_cycle, publish_readiness, publish_visual_report
from tasks.configs import load_configs
from tasks.events import emit_brand_events, start_reviews
from tasks.gates import STAGE_GATES
from tasks.ledger import read_cohorts, read_day_decisions, record_decisions
from tasks.metrics import check_readiness, compute_windows, load_daily_metrics
from tasks.notify import notify_cycle
from tasks.prefect_types import quoted, synchronous
from tasks.shards import merge_shards, run_shards


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
    coverage: Coverage | None = None  # the decided brands' criteria without a value (data-coverage artifact)
    missing: pd.Series | None = None  # per brand, what its deciding criteria read that has not arrived (data-readiness)


def only_brand(portfolio: Portfolio, brand_id: str) -> Portfolio:
    """The same portfolio narrowed to one brand, so one brand follows the cycle's own code path."""
    if brand_id not in portfolio.brands:
        raise ValueError(f"unknown brand {brand_id!r}: no configs/brands/{brand_id}.yaml")
    versions = {k: v for k, v in portfolio.brand_versions.items() if k == brand_id}
    return replace(portfolio, brands={brand_id: portfolio.brands[brand_id]}, brand_versions=versions)


def brand_names(portfolio: Portfolio) -> pd.Series:
    """brand_id → name, for artifacts and events."""
    return pd.Series({b.brand_id: b.name for b in portfolio.brands.values()}, dtype=object)


def artifact_brands(portfolio: Portfolio, cohorts: pd.DataFrame) -> pd.DataFrame:
    """What the artifact tables show of each brand: name, owner, approval wait and max_days_in_stage."""
    return table_brands(cohorts, max_days_by_brand(portfolio, cohorts["stage"]))


class CycleProgress:
    """The cycle's progress artifact, updated at most once a second and at the end.

    Each update is a call to the Prefect API (tens of ms): a small portfolio's cycle, over in about
    a second, would spend a third of its time reporting progress nobody has time to watch.
    """

    MIN_INTERVAL_S = 1.0

    def __init__(self, as_of: date, total: int, show: bool) -> None:
        self.total = total
        self.artifact: UUID | None = (
            synchronous(
                create_progress_artifact(progress=0.0, key="cycle-progress", description=f"Onboarding cycle {as_of}")
            )
            if show
            else None
        )
        self.last = time.monotonic()

    def step(self, done: int) -> None:
        now = time.monotonic()
        if self.artifact is None or (done < self.total and now - self.last < self.MIN_INTERVAL_S):
            return
        update_progress_artifact(artifact_id=self.artifact, progress=100.0 * done / self.total)
        self.last = now


def run_cycle_steps(
    portfolio: Portfolio,
    as_of: date,
    metrics: str | None,
    ledger_url: str | None,
    show_progress: bool = False,
    exclusive: bool = True,
    kind: str = CYCLE,
) -> CycleOutcome:
    """The cycle's tasks in order; their number does not depend on the number of brands.

    exclusive: hold the ledger's cycle lock from reading the state to writing the decisions, so
    cycles started at once apply one after another. Shards of one cycle decide disjoint brands
    and skip it, or they would run one at a time (the write transaction still checks each brand's state).
    kind: how the ledger's cycles row counts (onboard-brand's one brand is not the portfolio's last cycle).
    """
    progress = CycleProgress(as_of, 4 + len(STAGE_GATES), show_progress)
    where = targets(portfolio, metrics, ledger_url)
    ledger = where.open_ledger()
    batch = load_daily_metrics(where.metrics, as_of, today_in(where.timezone), metrics_start(portfolio, as_of))
    progress.step(1)
    with ledger.cycle_lock() if exclusive else nullcontext():
        cohorts = read_cohorts(quoted(portfolio), ledger, as_of)
        cohorts, missing = check_readiness(quoted(portfolio), batch, cohorts, as_of, now_in(where.timezone))
        progress.step(2)
        window, errors = compute_windows(quoted(portfolio), batch, cohorts)
        unknown_rows = unknown_brand_rows(batch, cohorts)
        batch = without_rows(batch)
        return_free_memory()
        progress.step(3)
        parts = []
        for i, gate in enumerate(STAGE_GATES.values(), start=4):
            parts.append(gate(quoted(portfolio), cohorts, errors, window, as_of))
            progress.step(i)
        decisions = render(diagnose(combine(parts), cohorts, portfolio))
        parts.clear()  # the stages' arrays are in the decisions' text now: not kept through the write
        result = record_decisions(ledger, decisions, cohorts, as_of, flow_run.get_id(), len(batch.quarantine), kind)
    progress.step(progress.total)
    # from the windows the gates read: no second read of the metrics
    coverage = cycle_coverage(portfolio, cohorts, window)
    summary = summarise(as_of, cohorts, decisions, batch, result, unknown_rows)
    return CycleOutcome(summary, decisions, batch, ledger, cohorts, result, coverage, missing)


def fail_if_every_brand_errored(summary: CycleSummary) -> None:
    evaluated = sum(summary.verdicts.values())
    if evaluated and summary.verdicts.get(Verdict.ERROR, 0) == evaluated:
        raise EveryBrandErrored(
            f"every one of the {evaluated} brands' data failed validation on {summary.as_of}: "
            "see the quarantined-rows artifact"
        )


def _sharded_cycle(
    portfolio: Portfolio, day: date, configs: str, metrics: str | None, ledger: str | None, shards: int, deployment: str
) -> CycleSummary:
    """The portfolio in shards on workers, then the portfolio artifacts from what they recorded."""
    parameters: dict[str, object] = {
        "as_of": day.isoformat(),
        "configs": str(Path(configs).resolve()),
        "metrics": metrics,
        "ledger": ledger,
    }
    shard_runs = run_shards(deployment, shards, parameters, flow_run.get_id())
    led = targets(portfolio, metrics, ledger).open_ledger()
    summary, decisions, cohorts = merge_shards(portfolio, led, day, shard_runs)
    publish_cycle(summary, decisions, MetricsBatch.empty(), artifact_brands(portfolio, cohorts))
    print(f"{shards} shards: " + summary.line())
    fail_if_every_brand_errored(summary)
    return summary


@flow(name="onboarding-cycle", log_prints=True, flow_run_name=cycle_run_name)
def onboarding_cycle(
    as_of: DayOrYesterday = None,
    configs: str = "configs",
    metrics: str | None = None,
    ledger: str | None = None,
    shards: Annotated[int, Field(ge=1, le=64)] = 1,
    shard_index: Annotated[int | None, Field(ge=0, le=63)] = None,
    shard_deployment: str = "onboarding-cycle/onboarding-cycle",
) -> CycleSummary:
    """Decide every brand of the portfolio for one day and record the decisions.

    Args:
        as_of: The day to decide (its window ends on it). Empty means yesterday in the
            configured timezone.
        configs: The configs folder (steps.yaml, onboarding.yaml, brands/).
        metrics: Metrics source overriding onboarding.yaml: a CSV/Parquet file or folder,
            or an SQLAlchemy URL followed by #table.
        ledger: Ledger SQLAlchemy URL overriding onboarding.yaml (no password: use
            BRANDSTEPS_LEDGER_PASSWORD).
        shards: Split the portfolio into this many shards by a stable hash of brand_id, each
            a run of shard_deployment picked up by workers (use a shared PostgreSQL ledger).
        shard_index: Set by the sharded cycle on each shard run: decide only this shard.
        shard_deployment: The deployment whose runs decide the shards.
    """
    portfolio = load_configs(configs)
    day = as_of or yesterday_in(portfolio.onboarding.timezone)
    if shards > 1 and shard_index is None:
        return _sharded_cycle(portfolio, day, configs, metrics, ledger, shards, shard_deployment)
    prefix = ""
    if shard_index is not None:
        portfolio = shard_portfolio(portfolio, shard_index, shards)
        prefix = f"shard-{shard_index + 1}-of-{shards}-"
    outcome = run_cycle_steps(
        portfolio, day, metrics, ledger, show_progress=shard_index is None, exclusive=shard_index is None
    )
    names = brand_names(portfolio)
    brands = artifact_brands(portfolio, outcome.cohorts)
    summary, shown = outcome.summary, outcome.decisions
    if summary.already_decided and shard_index is None:
        # a rerun wrote nothing (or little): the artifacts show the day as the ledger holds it
        shown = read_day_decisions(outcome.ledger, day)
        summary = from_ledger(summary, shown)
    publish_cycle(
        summary, shown, outcome.batch, brands, key_prefix=prefix, coverage=outcome.coverage, configs_dir=portfolio.root
    )
    if outcome.missing is not None:
        publish_readiness(quoted(portfolio), outcome.cohorts, outcome.missing, day, prefix)
    if shard_index is None:
        publish_visual_report(quoted(portfolio), outcome.ledger, day)
    emit_brand_events(quoted(portfolio), outcome.decisions, outcome.cohorts, names, quoted(outcome.written))
    if start_reviews(outcome.decisions, quoted(outcome.written), str(Path(configs).resolve()), ledger):
        # again, now that the new waits' review runs exist to link
        publish_awaiting(shown, brands, day.isoformat(), prefix)
    notify_cycle(  # after start-reviews: the awaiting-approval message links the runs it started
        quoted(portfolio), outcome.summary, outcome.decisions, outcome.cohorts, names, quoted(outcome.written), prefix
    )
    print(summary.line())
    fail_if_every_brand_errored(outcome.summary)
    return summary
