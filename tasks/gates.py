"""Tasks: one gated task per STEPS stage, each deciding for all brands in that stage at once."""

from __future__ import annotations

from datetime import date

import pandas as pd
from prefect import Task, get_run_logger, task
from prefect.cache_policies import NONE

from brandsteps.catalogue import EVALUATED_STAGES, EXITED, GRADUATED
from brandsteps.config import Portfolio
from brandsteps.engine.cycle import cohort_for
from brandsteps.engine.evidence import Decided, combine
from brandsteps.engine.gates import gate_exited, gate_stage


def _decide(
    portfolio: Portfolio, stage_id: str, cohorts: pd.DataFrame, errors: pd.Series, metrics: pd.DataFrame, as_of: date
) -> Decided:
    decided = gate_stage(portfolio, stage_id, cohort_for(cohorts, stage_id, errors), metrics, as_of)
    if stage_id == GRADUATED:
        decided = combine([decided, gate_exited(cohort_for(cohorts, EXITED, errors), as_of)])
    if len(decided):
        counts = decided.decisions["action"].value_counts().to_dict()
        get_run_logger().info("%s: %d brands decided %s", stage_id, len(decided), counts)
    return decided


def _gate_task(stage_id: str) -> Task[..., Decided]:
    def gate(
        portfolio: Portfolio, cohorts: pd.DataFrame, errors: pd.Series, metrics: pd.DataFrame, as_of: date
    ) -> Decided:
        return _decide(portfolio, stage_id, cohorts, errors, metrics, as_of)

    gate.__doc__ = f"Decide for every brand currently in {stage_id}."
    return task(name=stage_id, cache_policy=NONE)(gate)


# Five stage gates plus the guardrail watch over graduated (and the record of exited) brands.
STAGE_GATES: dict[str, Task[..., Decided]] = {s: _gate_task(s) for s in EVALUATED_STAGES}
