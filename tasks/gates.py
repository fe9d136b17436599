"""Tasks: one gated task per STEPS stage, each deciding for all brands in that stage at once."""

from __future__ import annotations

from datetime import date

import pandas as pd
from prefect import Task, get_run_logger, task
from prefect.cache_policies import NONE

from brandsteps.catalogue import EXITED, GRADUATED, STAGE_IDS
from brandsteps.config import Portfolio
from brandsteps.cycle import cohort_for, combine
from brandsteps.gates import decide_stage, exited_decisions


def _decide(portfolio: Portfolio, stage_id: str, cohorts: pd.DataFrame, errors: pd.Series, metrics: pd.DataFrame, as_of: date) -> pd.DataFrame:
    decisions = decide_stage(portfolio, stage_id, cohort_for(cohorts, stage_id, errors), metrics, as_of)
    if stage_id == GRADUATED:
        decisions = combine([decisions, exited_decisions(cohort_for(cohorts, EXITED, errors), as_of)])
    if len(decisions):
        counts = decisions["action"].value_counts().to_dict()
        get_run_logger().info("%s: %d brands decided %s", stage_id, len(decisions), counts)
    return decisions


def _gate_task(stage_id: str) -> Task[..., pd.DataFrame]:
    def gate(portfolio: Portfolio, cohorts: pd.DataFrame, errors: pd.Series, metrics: pd.DataFrame, as_of: date) -> pd.DataFrame:
        return _decide(portfolio, stage_id, cohorts, errors, metrics, as_of)

    gate.__doc__ = f"Decide for every brand currently in {stage_id}."
    return task(name=stage_id, cache_policy=NONE)(gate)


# Five stage gates plus the guardrail watch over graduated (and the record of exited) brands.
STAGE_GATES: dict[str, Task[..., pd.DataFrame]] = {s: _gate_task(s) for s in (*STAGE_IDS, GRADUATED)}
