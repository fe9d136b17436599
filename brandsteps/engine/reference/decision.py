"""The decision for one brand: the verdict rules, the guardrail override, the action rules, and its state after."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from brandsteps.catalogue import GRADUATED, STAGE_IDS, Action, Verdict
from brandsteps.config import Stage
from brandsteps.engine.reference.action_rules import action_of
from brandsteps.engine.reference.facts import (
    BrandState,
    CriterionResult,
    Facts,
    Judged,
    all_criteria,
    guardrails,
    samples,
    score,
)
from brandsteps.engine.reference.verdict_rules import judge


@dataclass(frozen=True)
class Decision:
    """One brand's decision and its state afterwards."""

    verdict: str
    action: str
    to_stage: str
    score: float | None
    reason: str
    action_reason: str
    pass_streak: int
    guard_streaks: dict[str, int]
    overdue: bool
    stage_entered_on: date
    awaiting: bool
    awaiting_since: str | None
    criteria: tuple[CriterionResult, ...]


def _facts(
    stage: Stage | None,
    guardrail_stages: Sequence[Stage],
    brand: BrandState,
    metrics: Mapping[str, float | None],
    as_of: date,
) -> Facts:
    criteria = all_criteria(stage, guardrail_stages, brand.tier, metrics)
    stage_id = GRADUATED if stage is None else stage.id
    guard = guardrails(guardrail_stages, criteria, brand)
    return Facts(stage_id, stage, brand, as_of, criteria, samples(stage, metrics), score(criteria), guard)


def _streaks_after(judged: Judged, moved: bool) -> dict[str, int]:
    if moved:
        return dict.fromkeys(STAGE_IDS, 0)
    if judged.brand.paused:
        return {s: int(judged.brand.guard_streaks.get(s, 0)) for s in STAGE_IDS}
    return dict(judged.facts.guard.streaks)


def _overdue(stage: Stage | None, brand: BrandState, moved: bool) -> bool:
    limit = None if stage is None else stage.max_days_in_stage
    return limit is not None and brand.days_in_stage > limit and not moved


def decide_one(
    stage: Stage | None,
    guardrail_stages: Sequence[Stage],
    brand: BrandState,
    metrics: Mapping[str, float | None],
    as_of: date,
) -> Decision:
    """One brand's decision on as_of.

    stage: the brand's effective stage (overrides applied), None for a graduated brand; guardrail_stages:
    the effective stages whose guardrails watch it (every earlier stage; all five when graduated);
    metrics: its window columns by name (lagged ones as window.lagged_name gives them, min_sample sums as
    'sum_<key>' and 'days_with_data'); missing or NaN is not measured. Exited brands are not evaluated.
    The score is the stage's own, recorded when the verdict rules said PASS or FAIL.
    """
    judged = judge(_facts(stage, guardrail_stages, brand, metrics, as_of))
    chosen = action_of(judged)
    moved = chosen.to_stage != judged.facts.stage_id or chosen.action == Action.RECYCLE
    waits = chosen.action == Action.AWAIT_APPROVAL
    return Decision(
        verdict=judged.verdict,
        action=chosen.action,
        to_stage=chosen.to_stage,
        score=judged.facts.score if judged.own_verdict in (Verdict.PASS, Verdict.FAIL) else None,
        reason=judged.reason,
        action_reason=chosen.reason,
        pass_streak=0 if moved else judged.pass_streak,
        guard_streaks=_streaks_after(judged, moved),
        overdue=_overdue(stage, brand, moved),
        stage_entered_on=as_of + timedelta(days=1) if moved else brand.stage_entered_on,
        awaiting=waits,
        awaiting_since=(brand.awaiting_since if brand.awaiting else as_of.isoformat()) if waits else None,
        criteria=judged.facts.criteria,
    )
