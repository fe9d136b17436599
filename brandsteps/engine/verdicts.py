"""The verdict of every brand of a cohort: the verdict rules as an ordered table, then the guardrail override.

Step 1, the verdict rules (docs/design.md#verdict-rules): the first row of VERDICT_RULES that holds gives
the verdict, and the same row gives its reason:
1. ERROR        if the brand's rows in the window failed validation;
2. INCONCLUSIVE if its data was not in by the data deadline (not_ready);
3. INCONCLUSIVE if days in stage < min_days_in_stage;
4. INCONCLUSIVE if any min_sample window sum is below its minimum or not measured;
5. INCONCLUSIVE if any deciding criterion's metric has no value;
6. FAIL         if any must criterion fails;
7. FAIL         if the weighted share of passing should criteria < pass_score;
8. PASS         otherwise.
Deciding criteria are the stage's own non-shadow criteria (a graduated brand's: every guardrail); shadow
criteria are evaluated and recorded but never decide. The score is recorded on step 1's PASS and FAIL only.

Step 2, the guardrail override (docs/design.md#guardrails), for a brand that is not paused and one of whose
guardrail stages tripped: the first row of GUARDRAIL_OVERRIDE that holds replaces step 1's verdict and reason:
1. FAIL, step 1's own reason kept, if step 1 said FAIL (the action reason then names the guardrail);
2. FAIL, the guardrail's reason, otherwise.
Any other brand keeps step 1's verdict and reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from brandsteps.catalogue import Verdict
from brandsteps.engine.criteria import Rows
from brandsteps.engine.evidence import (
    FAIL_,
    NO_VALUE,
    PASS_,
    fmt,
    fmt_repeated,
    ints_text,
    join_groups,
    per_distinct,
    show_numbers,
)
from brandsteps.engine.rules import Compiled
from brandsteps.engine.table import Outcomes, Rule, first_match

# a score is a sum of float weights: one equal to pass_score but for rounding in the last bit is not short of it
SCORE_SLACK = 1e-12


@dataclass(frozen=True)
class Samples:
    """The cohort's min_sample rows: brand position, min_sample item of the compiled rules, measured window sum."""

    brand: np.ndarray
    item: np.ndarray
    value: np.ndarray


@dataclass(frozen=True)
class VerdictFacts:
    """What the verdict rules read: per brand of the cohort (n), and its criteria and min_sample rows."""

    comp: Compiled
    rows: Rows
    samples: Samples
    days: np.ndarray  # days in stage
    min_days: np.ndarray  # min_days_in_stage
    pass_score: np.ndarray
    data_error: np.ndarray  # why the window's rows failed validation; '' for none
    not_ready: np.ndarray  # why the data was not in by the deadline; '' for none

    @property
    def n(self) -> int:
        return len(self.days)

    @cached_property
    def deciding(self) -> np.ndarray:
        """The positions of the deciding criteria among the rows."""
        return np.flatnonzero(self.comp.deciding[self.rows.crit])

    @cached_property
    def short(self) -> np.ndarray:
        """The min_sample rows below their minimum or not measured."""
        return np.asarray(~(self.samples.value >= self.comp.sample_min[self.samples.item]), dtype=bool)

    @cached_property
    def score(self) -> np.ndarray:
        """The weighted share of passing deciding should criteria per brand; 1 without any (or all weights 0)."""
        should = self.deciding[~self.comp.must[self.rows.crit[self.deciding]]]
        brand, weight = self.rows.brand[should], self.comp.weight[self.rows.crit[should]]
        passing = self.rows.result[should] == PASS_
        total = np.bincount(brand, weights=weight, minlength=self.n)
        has_should = np.bincount(brand, minlength=self.n) > 0
        passed = np.bincount(brand[passing], weights=weight[passing], minlength=self.n)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(has_should & (total > 0), passed / np.where(total > 0, total, 1.0), 1.0)

    def brands(self, rows: np.ndarray) -> np.ndarray:
        """Whether each brand has any of the criteria rows (positions)."""
        return np.bincount(self.rows.brand[rows], minlength=self.n) > 0

    def among(self, rows: np.ndarray, pick: np.ndarray) -> np.ndarray:
        """The criteria rows (positions) of the picked brands."""
        return np.asarray(rows[self.chosen(pick)[self.rows.brand[rows]]])

    def chosen(self, pick: np.ndarray) -> np.ndarray:
        mask = np.zeros(self.n, dtype=bool)
        mask[pick] = True
        return mask

    def joined(self, rows: np.ndarray, pick: np.ndarray, sep: str) -> np.ndarray:
        """The picked brands' reasons of the criteria rows, joined with sep."""
        return np.asarray(join_groups(self.rows.brand[rows], self.rows.reasons(self.comp, rows), self.n, sep)[pick])


def _result_rows(facts: VerdictFacts, result: int, kind_must: bool | None = None) -> np.ndarray:
    """The deciding rows with that result (and of that kind: must True, should False, either None)."""
    rows = facts.deciding
    rows = rows[facts.rows.result[rows] == result]
    if kind_must is not None:
        rows = rows[facts.comp.must[facts.rows.crit[rows]] == kind_must]
    return np.asarray(rows)


# ---------------------------------------------------------------- step 1: conditions and reasons


def _data_error(facts: VerdictFacts) -> np.ndarray:
    return np.asarray(facts.data_error != "", dtype=bool)


def _error_reason(facts: VerdictFacts, pick: np.ndarray) -> np.ndarray:
    return np.asarray("data failed validation: " + facts.data_error[pick], dtype=object)


def _not_ready(facts: VerdictFacts) -> np.ndarray:
    return np.asarray(facts.not_ready != "", dtype=bool)


def _not_ready_reason(facts: VerdictFacts, pick: np.ndarray) -> np.ndarray:
    return np.asarray(facts.not_ready[pick], dtype=object)


def _too_early(facts: VerdictFacts) -> np.ndarray:
    return np.asarray(facts.days < facts.min_days, dtype=bool)


def _early_reason(facts: VerdictFacts, pick: np.ndarray) -> np.ndarray:
    def build(days: np.ndarray, least: np.ndarray) -> np.ndarray:
        return np.asarray(ints_text(days) + " days in stage < min_days_in_stage " + ints_text(least), dtype=object)

    return per_distinct(build, facts.days[pick], facts.min_days[pick].astype(int))


def _sample_short(facts: VerdictFacts) -> np.ndarray:
    return np.bincount(facts.samples.brand[facts.short], minlength=facts.n) > 0


def _sample_reason(facts: VerdictFacts, pick: np.ndarray) -> np.ndarray:
    """Every short min_sample key of the brand, in the stage's order: its sum and minimum in the key's unit."""
    samples, comp = facts.samples, facts.comp
    rows = facts.short & facts.chosen(pick)[samples.brand]
    item = samples.item[rows]
    key, need = comp.sample_key[item], comp.sample_min_text[item]
    values = show_numbers(samples.value[rows], comp.sample_unit[item])
    short = "min_sample " + key + " " + values + " < " + need
    text = np.where(values == "n/a", "min_sample " + key + " not measured, need " + need, short)
    return np.asarray(join_groups(samples.brand[rows], text, facts.n, "; ")[pick], dtype=object)


def _no_value(facts: VerdictFacts) -> np.ndarray:
    return facts.brands(_result_rows(facts, NO_VALUE))


def _no_value_reason(facts: VerdictFacts, pick: np.ndarray) -> np.ndarray:
    rows = facts.among(_result_rows(facts, NO_VALUE), pick)
    metrics = facts.comp.metric[facts.rows.crit[rows]]
    return np.asarray("no value: " + join_groups(facts.rows.brand[rows], metrics, facts.n, ", ")[pick], dtype=object)


def _must_fails(facts: VerdictFacts) -> np.ndarray:
    return facts.brands(_result_rows(facts, FAIL_, kind_must=True))


def _must_reason(facts: VerdictFacts, pick: np.ndarray) -> np.ndarray:
    return facts.joined(facts.among(_result_rows(facts, FAIL_, kind_must=True), pick), pick, "; ")


def _score_short(facts: VerdictFacts) -> np.ndarray:
    return np.asarray(facts.score < facts.pass_score - SCORE_SLACK, dtype=bool)


def _score_reason(facts: VerdictFacts, pick: np.ndarray) -> np.ndarray:
    failed = facts.joined(facts.among(_result_rows(facts, FAIL_, kind_must=False), pick), pick, "; ")
    shown = fmt_repeated(facts.score[pick]), fmt_repeated(facts.pass_score[pick])
    return np.asarray("score " + shown[0] + " < pass_score " + shown[1] + " (" + failed + ")", dtype=object)


def _passes(facts: VerdictFacts) -> np.ndarray:
    return np.ones(facts.n, dtype=bool)


def _pass_reason(facts: VerdictFacts, pick: np.ndarray) -> np.ndarray:
    def build(score: np.ndarray, least: np.ndarray) -> np.ndarray:
        return np.asarray("all must criteria pass; score " + fmt(score) + " >= pass_score " + fmt(least), dtype=object)

    return per_distinct(build, facts.score[pick], facts.pass_score[pick])


VERDICT_RULES: tuple[Rule[VerdictFacts], ...] = (
    Rule("the window's rows failed validation", _data_error, Verdict.ERROR, _error_reason),
    Rule("data not in by the data deadline", _not_ready, Verdict.INCONCLUSIVE, _not_ready_reason),
    Rule("days in stage < min_days_in_stage", _too_early, Verdict.INCONCLUSIVE, _early_reason),
    Rule("a min_sample window sum short or not measured", _sample_short, Verdict.INCONCLUSIVE, _sample_reason),
    Rule("a deciding criterion's metric has no value", _no_value, Verdict.INCONCLUSIVE, _no_value_reason),
    Rule("a must criterion fails", _must_fails, Verdict.FAIL, _must_reason),
    Rule("weighted share of passing should criteria < pass_score", _score_short, Verdict.FAIL, _score_reason),
    Rule("otherwise", _passes, Verdict.PASS, _pass_reason),
)


# ---------------------------------------------------------------- step 2: the guardrail override


@dataclass(frozen=True)
class Override:
    """What the guardrail override reads: step 1's outcome and, per brand, whether a guardrail tripped and why."""

    own: Outcomes
    tripped: np.ndarray  # a guardrail stage tripped and the brand is not paused
    guard_reason: np.ndarray


def _tripped_on_fail(facts: Override) -> np.ndarray:
    return np.asarray(facts.tripped & (facts.own.outcome == Verdict.FAIL), dtype=bool)


def _own_reason(facts: Override, pick: np.ndarray) -> np.ndarray:
    return np.asarray(facts.own.reason[pick], dtype=object)


def _tripped(facts: Override) -> np.ndarray:
    return facts.tripped


def _guard_reason(facts: Override, pick: np.ndarray) -> np.ndarray:
    return np.asarray(facts.guard_reason[pick], dtype=object)


GUARDRAIL_OVERRIDE: tuple[Rule[Override], ...] = (
    Rule("a guardrail tripped, step 1 said FAIL: its own reason kept", _tripped_on_fail, Verdict.FAIL, _own_reason),
    Rule("a guardrail tripped", _tripped, Verdict.FAIL, _guard_reason),
)


@dataclass(frozen=True)
class Verdicts:
    """Every brand's verdict and reason after both steps, step 1's verdict, and the score."""

    verdict: np.ndarray
    reason: np.ndarray
    own: np.ndarray  # step 1's verdict: what the pass streak and the recorded score follow
    score: np.ndarray


def verdicts(facts: VerdictFacts, tripped: np.ndarray, guard_reason: np.ndarray) -> Verdicts:
    """Step 1 then step 2 (see the module's docstring) for every brand of the cohort.

    tripped: whether a guardrail stage tripped for the brand and it is not paused; guard_reason: the trip's reason.
    """
    own = first_match(VERDICT_RULES, facts, facts.n)
    override = first_match(GUARDRAIL_OVERRIDE, Override(own, tripped, guard_reason), facts.n)
    overridden = override.decided
    return Verdicts(
        verdict=np.where(overridden, override.outcome, own.outcome),
        reason=np.where(overridden, override.reason, own.reason),
        own=own.outcome,
        score=facts.score,
    )
