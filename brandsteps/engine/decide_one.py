"""The decision rule for one brand in plain Python: the executable spec the vectorised engine (gates.py) must equal.

Nothing here is fast and nothing needs to be: one brand, one stage, early returns. The verdict rules and the
action rules are tuples of (name, check) in the order of docs/design.md#decision-rule, each check a small
function that returns its result when its rule holds and None otherwise; the first rule that holds decides.
Texts are built with the engine's own formatting (brandsteps.engine.evidence), so reasons can be compared exactly.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from brandsteps.catalogue import EXITED, GRADUATED, METRICS, STAGE_IDS
from brandsteps.config import Criterion, Stage
from brandsteps.engine.evidence import NEGATED, UNITS, fmt, show_number, unit_codes
from brandsteps.engine.window import lagged_name

PASS, FAIL, INCONCLUSIVE, ERROR = "PASS", "FAIL", "INCONCLUSIVE", "ERROR"
CRITERION, GUARDRAIL = "criterion", "guardrail"
_HOLDS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}
# a score is a sum of float weights: one equal to pass_score but for rounding in the last bit is not short of it
SCORE_SLACK = 1e-12
# A graduated brand has no stage of its own: every stage's guardrails decide, each should one must hold
# (pass_score 1), with no minimum days or sample, and a pass is "1 of 1 in a row".
GRADUATED_PASS_SCORE = 1.0
GRADUATED_CONSECUTIVE = 1


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


@dataclass(frozen=True)
class _Sample:
    key: str
    minimum: float
    value: float | None


@dataclass(frozen=True)
class _Facts:
    """Everything the rules read: the stage's parameters, the brand, its evaluated criteria."""

    stage_id: str
    stage: Stage | None  # None: graduated
    brand: BrandState
    as_of: date
    criteria: tuple[CriterionResult, ...]
    samples: tuple[_Sample, ...]
    score: float
    guard: _GuardOutcome


@dataclass(frozen=True)
class _GuardOutcome:
    streaks: dict[str, int]
    tripped: str | None  # the earliest guardrail stage that trips
    reason: str


@dataclass(frozen=True)
class _Judged:
    """The facts with their verdict: what the action rules read."""

    facts: _Facts
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


@dataclass(frozen=True)
class _Action:
    action: str
    to_stage: str
    reason: str


# ---------------------------------------------------------------- criteria


def _unit(name: str) -> str:
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


def _all_criteria(
    stage: Stage | None, guardrail_stages: Sequence[Stage], tier: str, metrics: Mapping[str, float | None]
) -> tuple[CriterionResult, ...]:
    """The stage's criteria, then each earlier stage's guardrails in stage order (as the ledger records them)."""
    graduated = stage is None
    own = [] if stage is None else [evaluate(c, CRITERION, stage.id, tier, metrics, graduated) for c in stage.criteria]
    rails = [evaluate(c, GUARDRAIL, g.id, tier, metrics, graduated) for g in guardrail_stages for c in g.guardrails]
    return tuple(own + rails)


def _samples(stage: Stage | None, metrics: Mapping[str, float | None]) -> tuple[_Sample, ...]:
    if stage is None:
        return ()
    # the window frame holds a sum per base column, and the count of days with a row as it is
    column = {key: key if key == "days_with_data" else f"sum_{key}" for key in stage.min_sample}
    return tuple(_Sample(key, least, _measured(metrics.get(column[key]))) for key, least in stage.min_sample.items())


def _score(criteria: Sequence[CriterionResult]) -> float:
    """The weighted share of passing deciding should criteria; 1 without any."""
    should = [c for c in criteria if c.deciding and c.kind == "should"]
    total = sum(c.weight for c in should)
    if not should or total <= 0:
        return 1.0
    return sum(c.weight for c in should if c.result == "pass") / total


# ---------------------------------------------------------------- guardrails


def _guardrails(
    guardrail_stages: Sequence[Stage], criteria: Sequence[CriterionResult], brand: BrandState
) -> _GuardOutcome:
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
    return _GuardOutcome(streaks, tripped, reason)


# ---------------------------------------------------------------- verdict rules


def _pass_score(facts: _Facts) -> float:
    return GRADUATED_PASS_SCORE if facts.stage is None else facts.stage.pass_score


def _data_error(facts: _Facts) -> tuple[str, str] | None:
    return (ERROR, f"data failed validation: {facts.brand.data_error}") if facts.brand.data_error else None


def _not_ready(facts: _Facts) -> tuple[str, str] | None:
    return (INCONCLUSIVE, facts.brand.not_ready) if facts.brand.not_ready else None


def _too_early(facts: _Facts) -> tuple[str, str] | None:
    least = 0 if facts.stage is None else facts.stage.min_days_in_stage
    if facts.brand.days_in_stage >= least:
        return None
    return INCONCLUSIVE, f"{facts.brand.days_in_stage} days in stage < min_days_in_stage {least}"


def _sample_text(sample: _Sample) -> str:
    unit = _unit(sample.key)
    need = show_number(sample.minimum, unit)
    if sample.value is None:
        return f"min_sample {sample.key} not measured, need {need}"
    return f"min_sample {sample.key} {show_number(sample.value, unit)} < {need}"


def _sample_short(facts: _Facts) -> tuple[str, str] | None:
    short = [s for s in facts.samples if s.value is None or s.value < s.minimum]
    return (INCONCLUSIVE, "; ".join(_sample_text(s) for s in short)) if short else None


def _no_value(facts: _Facts) -> tuple[str, str] | None:
    missing = [c.metric for c in facts.criteria if c.deciding and c.result == "no_value"]
    return (INCONCLUSIVE, "no value: " + ", ".join(missing)) if missing else None


def _must_fails(facts: _Facts) -> tuple[str, str] | None:
    failed = [c.reason for c in facts.criteria if c.deciding and c.kind == "must" and c.result == "fail"]
    return (FAIL, "; ".join(failed)) if failed else None


def _score_short(facts: _Facts) -> tuple[str, str] | None:
    least = _pass_score(facts)
    if not facts.score < least - SCORE_SLACK:
        return None
    failed = "; ".join(c.reason for c in facts.criteria if c.deciding and c.kind == "should" and c.result == "fail")
    return FAIL, f"score {_number(facts.score)} < pass_score {_number(least)} ({failed})"


def _passes(facts: _Facts) -> tuple[str, str]:
    return PASS, f"all must criteria pass; score {_number(facts.score)} >= pass_score {_number(_pass_score(facts))}"


def _number(value: float) -> str:
    return str(fmt([value])[0])


VERDICT_RULES: tuple[tuple[str, Callable[[_Facts], tuple[str, str] | None]], ...] = (
    ("ERROR: the window's rows failed validation", _data_error),
    ("INCONCLUSIVE: data not in by the data deadline", _not_ready),
    ("INCONCLUSIVE: days in stage < min_days_in_stage", _too_early),
    ("INCONCLUSIVE: a min_sample window sum short or not measured", _sample_short),
    ("INCONCLUSIVE: a deciding criterion's metric has no value", _no_value),
    ("FAIL: a must criterion fails", _must_fails),
    ("FAIL: weighted share of passing should criteria < pass_score", _score_short),
    ("PASS: otherwise", _passes),
)


def verdict_of(facts: _Facts) -> tuple[str, str]:
    """The first verdict rule that holds, with its reason."""
    for _name, rule in VERDICT_RULES:
        found = rule(facts)
        if found is not None:
            return found
    raise AssertionError("the last verdict rule always holds")


def _pass_streak(brand: BrandState, verdict: str) -> int:
    """+1 on PASS, 0 on FAIL; unchanged on ERROR and INCONCLUSIVE and while paused."""
    if brand.paused or verdict not in (PASS, FAIL):
        return brand.pass_streak
    return brand.pass_streak + 1 if verdict == PASS else 0


def _judge(facts: _Facts) -> _Judged:
    """The verdict rules, then the guardrail override: a trip makes the verdict FAIL (unless paused).

    A stage verdict that is FAIL already keeps its own reason: the action reason names the guardrail.
    """
    own, reason = verdict_of(facts)
    brand = facts.brand
    streak = _pass_streak(brand, own)
    if facts.guard.tripped is None or brand.paused:
        return _Judged(facts, own, own, reason, streak)
    return _Judged(facts, own, FAIL, reason if own == FAIL else facts.guard.reason, streak)


# ---------------------------------------------------------------- action rules


def _next_stage(stage_id: str) -> str:
    i = STAGE_IDS.index(stage_id)
    return STAGE_IDS[i + 1] if i + 1 < len(STAGE_IDS) else GRADUATED


def _last(stage: Stage) -> bool:
    return stage.id == STAGE_IDS[-1]


def _streak_words(judged: _Judged) -> str:
    need = GRADUATED_CONSECUTIVE if judged.stage is None else judged.stage.consecutive_passes
    return f"PASS {judged.pass_streak} of {need} in a row"


def _earned(judged: _Judged) -> bool:
    return judged.stage is not None and judged.pass_streak >= judged.stage.consecutive_passes


def _stays(judged: _Judged, action: str, reason: str) -> _Action:
    return _Action(action, judged.facts.stage_id, reason)


def _because(words: str, judged: _Judged) -> str:
    return f"{words} ({judged.reason})"


def _paused(judged: _Judged) -> _Action | None:
    return _stays(judged, "hold", "brand is paused") if judged.brand.paused else None


def _guardrail_trips(judged: _Judged) -> _Action | None:
    tripped = judged.facts.guard.tripped
    return _Action("demote", tripped, judged.facts.guard.reason) if tripped is not None else None


def _awaiting(judged: _Judged) -> _Action | None:
    stage = judged.stage
    if stage is None or not judged.brand.awaiting:
        return None
    to = "graduate" if _last(stage) else f"advance to {_next_stage(stage.id)}"
    return _stays(judged, "await_approval", f"awaiting approval to {to} since {judged.brand.awaiting_since}")


def _graduated_holds(judged: _Judged) -> _Action | None:
    return _stays(judged, "hold", _streak_words(judged) + ": guardrails hold") if judged.stage is None else None


def _no_move(judged: _Judged) -> _Action | None:
    if judged.verdict in (PASS, FAIL):
        return None
    return _stays(judged, "hold", _because(f"no move on {judged.verdict}", judged))


def _on_fail(judged: _Judged) -> _Action | None:
    stage = judged.stage
    if stage is None or judged.verdict != FAIL:
        return None
    if stage.on_fail == "recycle":
        return _stays(judged, "recycle", _because(f"on_fail recycle: restart the {stage.id} clock", judged))
    if stage.on_fail == "demote":
        back = STAGE_IDS[STAGE_IDS.index(stage.id) - 1]
        return _Action("demote", back, _because(f"on_fail demote: back to {back}", judged))
    if stage.on_fail == "exit":
        return _Action("exit", EXITED, _because("on_fail exit: leave the programme", judged))
    return _stays(judged, "hold", _because("on_fail hold", judged))


def _not_enough_passes(judged: _Judged) -> _Action | None:
    return None if _earned(judged) else _stays(judged, "hold", _streak_words(judged) + " needed")


def _needs_approval(judged: _Judged) -> _Action | None:
    stage = judged.stage
    if stage is None or not stage.requires_approval:
        return None
    move = "graduating" if _last(stage) else f"advancing to {_next_stage(stage.id)}"
    since = judged.facts.as_of.isoformat()  # the wait begins today
    words = f"{_streak_words(judged)}; {move} needs approval, awaiting it since {since}"
    return _stays(judged, "await_approval", words)


def _graduates(judged: _Judged) -> _Action | None:
    stage = judged.stage
    if stage is None or not _last(stage):
        return None
    return _Action("graduate", GRADUATED, _streak_words(judged) + ": graduate")


def _advances(judged: _Judged) -> _Action:
    to = _next_stage(judged.facts.stage_id)
    return _Action("advance", to, f"{_streak_words(judged)}: advance to {to}")


# Only paused and guardrails apply to graduated brands: they hold otherwise, whatever the verdict.
ACTION_RULES: tuple[tuple[str, Callable[[_Judged], _Action | None]], ...] = (
    ("the brand is paused: hold", _paused),
    ("a guardrail of an earlier stage tripped: demote to it", _guardrail_trips),
    ("awaiting approval: await_approval", _awaiting),
    ("graduated: hold, watched by guardrails", _graduated_holds),
    ("ERROR or INCONCLUSIVE: hold", _no_move),
    ("FAIL: on_fail (recycle, demote, exit, hold)", _on_fail),
    ("PASS, fewer than consecutive_passes in a row: hold", _not_enough_passes),
    ("PASS, enough, requires_approval: await_approval", _needs_approval),
    ("PASS, enough, last stage: graduate", _graduates),
    ("PASS, enough: advance", _advances),
)


def action_of(judged: _Judged) -> _Action:
    """The first action rule that holds."""
    for _name, rule in ACTION_RULES:
        found = rule(judged)
        if found is not None:
            return found
    raise AssertionError("the last action rule always holds")


# ---------------------------------------------------------------- the decision


def _facts(
    stage: Stage | None,
    guardrail_stages: Sequence[Stage],
    brand: BrandState,
    metrics: Mapping[str, float | None],
    as_of: date,
) -> _Facts:
    criteria = _all_criteria(stage, guardrail_stages, brand.tier, metrics)
    stage_id = GRADUATED if stage is None else stage.id
    guard = _guardrails(guardrail_stages, criteria, brand)
    return _Facts(stage_id, stage, brand, as_of, criteria, _samples(stage, metrics), _score(criteria), guard)


def _streaks_after(judged: _Judged, moved: bool) -> dict[str, int]:
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
    judged = _judge(_facts(stage, guardrail_stages, brand, metrics, as_of))
    chosen = action_of(judged)
    moved = chosen.to_stage != judged.facts.stage_id or chosen.action == "recycle"
    waits = chosen.action == "await_approval"
    return Decision(
        verdict=judged.verdict,
        action=chosen.action,
        to_stage=chosen.to_stage,
        score=judged.facts.score if judged.own_verdict in (PASS, FAIL) else None,
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
