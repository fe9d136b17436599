"""The gate engine: verdicts and actions for all brands of a cohort at once, each with its reason.

The cohort's criteria rows come from the portfolio's compiled rules (rules.py) and its window metrics
(criteria.py); then the verdict rules and the guardrail override (verdicts.py, guardrails.py) and the action
rules (actions.py), each an ordered table, decide every brand. brandsteps/engine/reference/ writes the same
rule for one brand in plain Python; tests/test_decide_one.py checks that both agree.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from brandsteps.catalogue import EXITED, GUARD_COLUMNS, STAGE_IDS, TIERS, Action, Verdict
from brandsteps.config import Portfolio
from brandsteps.engine.actions import ActionFacts, actions
from brandsteps.engine.criteria import cohort_rows, expand, metric_table
from brandsteps.engine.evidence import FACTOR_COLUMNS, Decided, Evidence, render, text_frame
from brandsteps.engine.guardrails import guardrail_trips
from brandsteps.engine.rules import compiled, stage_codes
from brandsteps.engine.verdicts import Samples, VerdictFacts, verdicts

# What the gates read of a brand besides its data_error.
COHORT_COLUMNS: tuple[str, ...] = (
    "tier",
    "paused",
    "awaiting",
    "awaiting_since",
    "days_in_stage",
    "pass_streak",
    "stage_entered_on",
    *GUARD_COLUMNS,
    "policy_version",
    "not_ready",  # present when onboarding.yaml has a data_deadline (readiness.apply_deadline)
)


def _datetimes(values: pd.Series) -> np.ndarray:
    series = values if pd.api.types.is_datetime64_any_dtype(values) else pd.to_datetime(values)
    return np.asarray(series.to_numpy(dtype="datetime64[ns]"))


def _texts(values: pd.Series) -> np.ndarray:
    """Text per brand, '' for a missing one, as an object array."""
    return np.asarray(values.fillna("").astype(str).to_numpy(dtype=object), dtype=object)


def gate_stage(
    portfolio: Portfolio, stage_id: str, cohort: pd.DataFrame, metrics: pd.DataFrame, as_of: date
) -> Decided:
    """One decision per brand of the cohort (all brands currently in `stage_id`), vectorised.

    cohort: index brand_id; the COHORT_COLUMNS and data_error.
    """
    if cohort.empty:
        return Decided.empty()
    return gate_cohort(portfolio, cohort, np.full(len(cohort), stage_id, dtype=object), metrics, as_of)


def decide_stage(
    portfolio: Portfolio, stage_id: str, cohort: pd.DataFrame, metrics: pd.DataFrame, as_of: date
) -> pd.DataFrame:
    """gate_stage's decisions as the ledger records them (criteria and GMV factors as JSON, no diagnosis)."""
    return render(gate_stage(portfolio, stage_id, cohort, metrics, as_of))


def gate_cohort(
    portfolio: Portfolio, cohort: pd.DataFrame, stages: np.ndarray, metrics: pd.DataFrame, as_of: date
) -> Decided:
    """One decision per brand of a cohort whose brands may sit in different stages (stages: one per brand).

    Each brand follows the rules of its stage; deciding a whole day in one call saves the fixed cost of one
    call per stage (a replay decides hundreds of days). Reasons are texts from the start; the criteria stay
    arrays until the ledger records them.
    """
    if len(cohort) == 0:
        return Decided.empty()
    stage = np.asarray(stages, dtype=object)
    code = stage_codes(stage)
    if (code < 0).any():
        raise ValueError(f"not an evaluated stage: {sorted(set(stage[code < 0]))}")
    n = len(cohort)
    comp = compiled(portfolio)
    rule_set = comp.rule_sets(cohort.index, code)
    params = {k: v[rule_set] for k, v in comp.params.items()}
    metric_rows = metrics.index.get_indexer(cohort.index)
    tier_code = pd.Index(TIERS, dtype=object).get_indexer(pd.Index(cohort["tier"]))
    entered = _datetimes(cohort["stage_entered_on"])
    table = metric_table(metrics, metric_rows, comp.metric_names.tolist())
    rows = cohort_rows(comp, rule_set, tier_code, table, (as_of, entered, params["window_days"]))
    sample_brand, sample_item = expand(comp.sample_start, rule_set)
    sample_table = metric_table(metrics, metric_rows, comp.sample_names.tolist())
    samples = Samples(sample_brand, sample_item, sample_table[sample_brand, comp.sample_id[sample_item]])
    data_error = _texts(cohort["data_error"])
    not_ready = _texts(cohort["not_ready"]) if "not_ready" in cohort.columns else np.full(n, "", dtype=object)
    facts = VerdictFacts(
        comp,
        rows,
        samples,
        days=cohort["days_in_stage"].to_numpy(),
        min_days=params["min_days"],
        pass_score=params["pass_score"].astype(float),
        data_error=data_error,
        not_ready=not_ready,
    )

    # each guardrail stage trips after its consecutive_passes as the brand has it (its overrides included)
    variant = rule_set % comp.variants
    need = {s: comp.params["consecutive"][j * comp.variants + variant] for j, s in enumerate(STAGE_IDS)}
    before = {s: cohort[f"g_{s}"].to_numpy() for s in STAGE_IDS}
    # guardrails watch measured data: a brand whose data failed validation or is not in is not judged by them
    trips = guardrail_trips(comp, rows, before, need, (data_error == "") & (not_ready == ""))
    paused = cohort["paused"].to_numpy(dtype=bool)
    tripped = (trips.tripped != "") & ~paused
    judged = verdicts(facts, tripped, trips.reason)

    own_pass, own_fail = judged.own == Verdict.PASS, judged.own == Verdict.FAIL
    streak = cohort["pass_streak"].to_numpy(dtype=int)
    new_streak = np.where(paused, streak, np.where(own_pass, streak + 1, np.where(own_fail, 0, streak)))
    awaiting = cohort["awaiting"].to_numpy(dtype=bool)
    facts_for_action = ActionFacts(
        code=code,
        verdict=judged.verdict,
        reason=judged.reason,
        tripped=tripped,
        guard_reason=trips.reason,
        paused=paused,
        awaiting=awaiting,
        awaiting_since=cohort["awaiting_since"],
        streak=new_streak,
        need=params["consecutive"].astype(int),
        on_fail=params["on_fail"],
        requires_approval=params["requires_approval"].astype(bool),
        as_of=as_of,
    )
    acted = actions(facts_for_action, stage, trips.tripped)

    moved = acted.moved
    awaits = np.asarray(acted.action == Action.AWAIT_APPROVAL, dtype=bool)
    next_day = pd.Timestamp(as_of + timedelta(days=1))
    max_days = params["max_days"].astype(float)
    days = cohort["days_in_stage"].to_numpy(dtype=int, copy=True)
    # every array below is new (the cohort's are copied): the frame keeps them without copying
    frame = text_frame(
        {
            "brand_id": cohort.index.to_numpy(copy=True),
            "as_of": pd.Timestamp(as_of),
            "stage": stage.copy(),
            "verdict": judged.verdict,
            "action": acted.action,
            "to_stage": acted.to_stage,
            "score": np.where(own_pass | own_fail, judged.score, np.nan),
            "reason": judged.reason,
            "action_reason": acted.reason,
            "overdue": ~np.isnan(max_days) & (days > np.nan_to_num(max_days, nan=0)) & ~moved,
            "days_in_stage": days,
            "pass_streak": np.where(moved, 0, new_streak),
            "stage_entered_on": np.where(moved, np.datetime64(next_day, "ns"), entered),
            "awaiting": np.where(moved, False, awaits),
            "awaiting_since": np.where(
                awaits,
                np.where(awaiting, cohort["awaiting_since"].astype(object).to_numpy(), as_of.isoformat()),
                np.full(n, None, dtype=object),
            ),
            "policy_version": cohort["policy_version"].to_numpy(dtype=object, copy=True),
            **{
                f"g_{s}": np.where(moved, 0, np.where(paused, before[s], trips.streaks[s])).astype(int)
                for s in STAGE_IDS
            },
        },
        fresh=True,
    )
    factors = metrics.reindex(index=cohort.index, columns=list(FACTOR_COLUMNS)).reset_index(drop=True)
    return Decided(frame, rows.evidence(comp), factors)


def gate_exited(cohort: pd.DataFrame, as_of: date) -> Decided:
    """Brands that left the programme keep one record per day saying so, and are not evaluated."""
    if cohort.empty:
        return Decided.empty()
    frame = text_frame(
        {
            "brand_id": cohort.index.to_numpy(),
            "as_of": pd.Timestamp(as_of),
            "stage": EXITED,
            "verdict": Verdict.INCONCLUSIVE.value,
            "action": Action.HOLD.value,
            "to_stage": EXITED,
            "score": np.nan,
            "reason": "brand has exited the programme: not evaluated",
            "action_reason": "exited brands stay exited",
            "overdue": False,
            "days_in_stage": cohort["days_in_stage"].to_numpy(dtype=int),
            "pass_streak": 0,
            "stage_entered_on": _datetimes(cohort["stage_entered_on"]),
            "awaiting": False,
            "awaiting_since": None,
            "policy_version": cohort["policy_version"].to_numpy(),
            **dict.fromkeys(GUARD_COLUMNS, 0),
        }
    )
    return Decided(
        frame, Evidence.empty(), pd.DataFrame(np.nan, index=np.arange(len(frame)), columns=list(FACTOR_COLUMNS))
    )
