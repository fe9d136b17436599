"""The verdict rules for one brand, in order, each a check that returns (verdict, reason) when it holds.

Then the guardrail override (judge): a tripped guardrail makes the verdict FAIL.
"""

from __future__ import annotations

from collections.abc import Callable

from brandsteps.catalogue import Verdict
from brandsteps.engine.evidence import fmt, show_number
from brandsteps.engine.reference.facts import BrandState, Facts, Judged, Sample, unit_of

# a score is a sum of float weights: one equal to pass_score but for rounding in the last bit is not short of it
SCORE_SLACK = 1e-12
# A graduated brand has no stage of its own: every stage's guardrails decide, each should one must hold
# (pass_score 1), with no minimum days or sample.
GRADUATED_PASS_SCORE = 1.0


def _pass_score(facts: Facts) -> float:
    return GRADUATED_PASS_SCORE if facts.stage is None else facts.stage.pass_score


def _data_error(facts: Facts) -> tuple[str, str] | None:
    return (Verdict.ERROR, f"data failed validation: {facts.brand.data_error}") if facts.brand.data_error else None


def _not_ready(facts: Facts) -> tuple[str, str] | None:
    return (Verdict.INCONCLUSIVE, facts.brand.not_ready) if facts.brand.not_ready else None


def _too_early(facts: Facts) -> tuple[str, str] | None:
    least = 0 if facts.stage is None else facts.stage.min_days_in_stage
    if facts.brand.days_in_stage >= least:
        return None
    return Verdict.INCONCLUSIVE, f"{facts.brand.days_in_stage} days in stage < min_days_in_stage {least}"


def _sample_text(sample: Sample) -> str:
    unit = unit_of(sample.key)
    need = show_number(sample.minimum, unit)
    if sample.value is None:
        return f"min_sample {sample.key} not measured, need {need}"
    return f"min_sample {sample.key} {show_number(sample.value, unit)} < {need}"


def _sample_short(facts: Facts) -> tuple[str, str] | None:
    short = [s for s in facts.samples if s.value is None or s.value < s.minimum]
    return (Verdict.INCONCLUSIVE, "; ".join(_sample_text(s) for s in short)) if short else None


def _no_value(facts: Facts) -> tuple[str, str] | None:
    missing = [c.metric for c in facts.criteria if c.deciding and c.result == "no_value"]
    return (Verdict.INCONCLUSIVE, "no value: " + ", ".join(missing)) if missing else None


def _must_fails(facts: Facts) -> tuple[str, str] | None:
    failed = [c.reason for c in facts.criteria if c.deciding and c.kind == "must" and c.result == "fail"]
    return (Verdict.FAIL, "; ".join(failed)) if failed else None


def _score_short(facts: Facts) -> tuple[str, str] | None:
    least = _pass_score(facts)
    if not facts.score < least - SCORE_SLACK:
        return None
    failed = "; ".join(c.reason for c in facts.criteria if c.deciding and c.kind == "should" and c.result == "fail")
    return Verdict.FAIL, f"score {_number(facts.score)} < pass_score {_number(least)} ({failed})"


def _passes(facts: Facts) -> tuple[str, str]:
    least = _pass_score(facts)
    return Verdict.PASS, f"all must criteria pass; score {_number(facts.score)} >= pass_score {_number(least)}"


def _number(value: float) -> str:
    return str(fmt([value])[0])


VERDICT_RULES: tuple[tuple[str, Callable[[Facts], tuple[str, str] | None]], ...] = (
    ("ERROR: the window's rows failed validation", _data_error),
    ("INCONCLUSIVE: data not in by the data deadline", _not_ready),
    ("INCONCLUSIVE: days in stage < min_days_in_stage", _too_early),
    ("INCONCLUSIVE: a min_sample window sum short or not measured", _sample_short),
    ("INCONCLUSIVE: a deciding criterion's metric has no value", _no_value),
    ("FAIL: a must criterion fails", _must_fails),
    ("FAIL: weighted share of passing should criteria < pass_score", _score_short),
    ("PASS: otherwise", _passes),
)


def verdict_of(facts: Facts) -> tuple[str, str]:
    """The first verdict rule that holds, with its reason."""
    for _name, rule in VERDICT_RULES:
        found = rule(facts)
        if found is not None:
            return found
    raise AssertionError("the last verdict rule always holds")


def _pass_streak(brand: BrandState, verdict: str) -> int:
    """+1 on PASS, 0 on FAIL; unchanged on ERROR and INCONCLUSIVE and while paused."""
    if brand.paused or verdict not in (Verdict.PASS, Verdict.FAIL):
        return brand.pass_streak
    return brand.pass_streak + 1 if verdict == Verdict.PASS else 0


def judge(facts: Facts) -> Judged:
    """The verdict rules, then the guardrail override: a trip makes the verdict FAIL (unless paused).

    A stage verdict that is FAIL already keeps its own reason: the action reason names the guardrail.
    """
    own, reason = verdict_of(facts)
    brand = facts.brand
    streak = _pass_streak(brand, own)
    if facts.guard.tripped is None or brand.paused:
        return Judged(facts, own, own, reason, streak)
    return Judged(facts, own, Verdict.FAIL, reason if own == Verdict.FAIL else facts.guard.reason, streak)
