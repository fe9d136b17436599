"""What the per-brand decision rule reads: the brand's state, its evaluated criteria and its guardrail streaks."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date

from brandsteps.catalogue import METRICS, STAGE_IDS
from brandsteps.config import Criterion, Stage
from brandsteps.engine.evidence import NEGATED, UNITS, show_number, unit_codes
from brandsteps.engine.window import lagged_name

CRITERION, GUARDRAIL = "criterion", "guardrail"
_HOLDS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}


@dataclass(frozen=True)
class BrandState:
    """What the ledger knows of a brand before today's decision (the cohort's columns)."""

    tier: str
    days_in_stage: int
    stage_entered_on: date
    paused: bool = False
    awaiting: bool = False
    awaiting_since: str | None = None  # ISO day the approval wait began
    pass_streak: int = 0
    guard_streaks: Mapping[str, int] = field(default_factory=dict)  # stage id -> failures in a row; missing: 0
    data_error: str = ""  # why the window's rows failed validation; '' for none
    not_ready: str = ""  # why the data was not in by the deadline; '' for none


@dataclass(frozen=True)
class CriterionResult:
    """One evaluated criterion or guardrail, as the ledger records it."""

    role: str
    source_stage: str
    metric: str
    op: str
    kind: str
    weight: float
    shadow: bool
    lag_days: int
    threshold: float
    value: float | None
    result: str  # pass | fail | no_value
    reason: str
    deciding: bool  # sets the verdict (a stage's non-shadow criterion; for a graduated brand, a guardrail)


@dataclass(frozen=True)
class Sample:
    """One min_sample key of the stage, its minimum and the brand's measured window sum."""

    key: str
    minimum: float
    value: float | None


@dataclass(frozen=True)
class Facts:
    """Everything the rules read: the stage's parameters, the brand, its evaluated criteria."""

    stage_id: str
    stage: Stage | None  # None: graduated
    brand: BrandState
    as_of: date
    criteria: tuple[CriterionResult, ...]
    samples: tuple[Sample, ...]
    score: float
    guard: GuardOutcome


@dataclass(frozen=True)
class GuardOutcome:
    """New streaks per guardrail stage, the earliest stage that trips, and why."""

    streaks: dict[str, int]
    tripped: str | None  # the earliest guardrail stage that trips
    reason: str


@dataclass(frozen=True)
class Judged:
    """The facts with their verdict: what the action rules read."""

    facts: Facts
    own_verdict: str  # the verdict of the verdict rules, before a guardrail's
    verdict: str
    reason: str
    pass_streak: int

    @property
    def stage(self) -> Stage | None:
        return self.facts.stage

    @property
    def brand(self) -> BrandState:
        return self.facts.brand


# ---------------------------------------------------------------- criteria


def unit_of(name: str) -> str:
    """The unit a metric or min_sample key is shown in (a name the catalogue lacks: plain)."""
    return str(UNITS[int(unit_codes([name])[0])])


def criterion_reason(criterion: CriterionResult) -> str:
    """'refund_rate 41% > 30%', 'guardrail public_traffic: paid_roi 1.2 < 1.5', 'shadow aov has no value'."""
    prefix = ("shadow " if criterion.shadow else "") + (
        f"guardrail {criterion.source_stage}: " if criterion.role == GUARDRAIL else ""
    )
    unit = METRICS[criterion.metric].unit
    if criterion.value is None:
        text = f"{prefix}{criterion.metric} has no value"
    else:
        relation = criterion.op if criterion.result == "pass" else NEGATED[criterion.op]
        value, threshold = show_number(criterion.value, unit), show_number(criterion.threshold, unit)
        text = f"{prefix}{criterion.metric} {value} {relation} {threshold}"
    return text + (f" (lagged {criterion.lag_days} days)" if criterion.lag_days else "")


def _measured(value: float | None) -> float | None:
    """A window value, None when not measured (None or NaN)."""
    return None if value is None or value != value else float(value)


def evaluate(
    criterion: Criterion, role: str, source_stage: str, tier: str, metrics: Mapping[str, float | None], graduated: bool
) -> CriterionResult:
    """One criterion against the brand's window value (its lagged column when lag_days > 0)."""
    threshold = criterion.threshold_for(tier)
    value = _measured(metrics.get(lagged_name(criterion.metric, criterion.lag_days)))
    result = "no_value" if value is None else "pass" if _HOLDS[criterion.op](value, threshold) else "fail"
    deciding = not criterion.shadow and (role == CRITERION or graduated)
    evaluated = CriterionResult(
        role,
        source_stage,
        criterion.metric,
        criterion.op,
        criterion.kind,
        criterion.weight,
        criterion.shadow,
        criterion.lag_days,
        threshold,
        value,
        result,
        "",
        deciding,
    )
    return replace(evaluated, reason=criterion_reason(evaluated))


def all_criteria(
    stage: Stage | None, guardrail_stages: Sequence[Stage], tier: str, metrics: Mapping[str, float | None]
) -> tuple[CriterionResult, ...]:
    """The stage's criteria, then each earlier stage's guardrails in stage order (as the ledger records them)."""
    graduated = stage is None
    own = [] if stage is None else [evaluate(c, CRITERION, stage.id, tier, metrics, graduated) for c in stage.criteria]
    rails = [evaluate(c, GUARDRAIL, g.id, tier, metrics, graduated) for g in guardrail_stages for c in g.guardrails]
    return tuple(own + rails)


def samples(stage: Stage | None, metrics: Mapping[str, float | None]) -> tuple[Sample, ...]:
    if stage is None:
        return ()
    # the window frame holds a sum per base column, and the count of days with a row as it is
    column = {key: key if key == "days_with_data" else f"sum_{key}" for key in stage.min_sample}
    return tuple(Sample(key, least, _measured(metrics.get(column[key]))) for key, least in stage.min_sample.items())


def score(criteria: Sequence[CriterionResult]) -> float:
    """The weighted share of passing deciding should criteria; 1 without any."""
    should = [c for c in criteria if c.deciding and c.kind == "should"]
    total = sum(c.weight for c in should)
    if not should or total <= 0:
        return 1.0
    return sum(c.weight for c in should if c.result == "pass") / total


# ---------------------------------------------------------------- guardrails


def guardrails(
    guardrail_stages: Sequence[Stage], criteria: Sequence[CriterionResult], brand: BrandState
) -> GuardOutcome:
    """New streaks per guardrail stage, and the earliest stage whose streak reached its consecutive_passes.

    A stage's evaluation fails when any of its (non-shadow) guardrails fails with a value, holds when all
    have values and pass; with a value missing, or for a brand whose data is in error or not in, it stands still.
    """
    streaks = {s: int(brand.guard_streaks.get(s, 0)) for s in STAGE_IDS}
    valid = not brand.data_error and not brand.not_ready
    tripped: str | None = None
    reason = ""
    for g in guardrail_stages:
        rails = [c for c in criteria if c.role == GUARDRAIL and c.source_stage == g.id and not c.shadow]
        failed = [c for c in rails if c.result == "fail"]
        if not valid or not rails:
            continue
        if failed:
            streaks[g.id] += 1
        elif all(c.result == "pass" for c in rails):
            streaks[g.id] = 0
        if failed and tripped is None and streaks[g.id] >= g.consecutive_passes:
            tripped = g.id
            details = "; ".join(c.reason.removeprefix(f"guardrail {g.id}: ") for c in failed)
            reason = f"guardrail {g.id} failed {streaks[g.id]} evaluations in a row ({details})"
    return GuardOutcome(streaks, tripped, reason)
