"""The action of every brand of a cohort: the action rules as an ordered table, first match wins.

In the order of docs/design.md#action-rules, each row an (condition, action, reason) of ACTION_RULES:
1. the brand is paused: hold;
2. a guardrail of an earlier stage tripped: demote to it;
3. awaiting approval: await_approval;
4. graduated: hold, watched by guardrails (only rows 1 and 2 move a graduated brand);
5. ERROR or INCONCLUSIVE: hold;
6-9. FAIL: the stage's on_fail (recycle, demote, exit, hold);
10. PASS, fewer than consecutive_passes in a row: hold;
11. PASS, enough, requires_approval: await_approval;
12. PASS, enough, last stage: graduate;
13. otherwise: advance.
A reason that follows from the verdict quotes the verdict's reason in brackets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from brandsteps.catalogue import EVALUATED_STAGES, EXITED, GRADUATED, STAGE_IDS, Action, Verdict, next_stage
from brandsteps.engine.evidence import ints_text, per_distinct
from brandsteps.engine.table import Rule, constant, first_match

# Per evaluated stage (index as in EVALUATED_STAGES): where its moves go, and the words of its action reasons.
_NEXT = np.array([next_stage(s) if s != GRADUATED else s for s in EVALUATED_STAGES], dtype=object)
_BACK = np.array(
    [STAGE_IDS[max(STAGE_IDS.index(s) - 1, 0)] if s != GRADUATED else s for s in EVALUATED_STAGES], dtype=object
)
_LAST = np.array([s == STAGE_IDS[-1] for s in EVALUATED_STAGES])
_GRADUATED = np.array([s == GRADUATED for s in EVALUATED_STAGES])
_WAITING = np.array(
    [
        ""
        if s == GRADUATED
        else "awaiting approval to " + ("graduate" if s == STAGE_IDS[-1] else f"advance to {next_stage(s)}") + " since "
        for s in EVALUATED_STAGES
    ],
    dtype=object,
)
_RECYCLE = np.array([f"on_fail recycle: restart the {s} clock" for s in EVALUATED_STAGES], dtype=object)
_DEMOTE = np.array([f"on_fail demote: back to {b}" for b in _BACK], dtype=object)
_APPROVAL = np.array(
    [
        ""
        if s == GRADUATED
        else ("; graduating" if s == STAGE_IDS[-1] else f"; advancing to {next_stage(s)}") + " needs approval"
        for s in EVALUATED_STAGES
    ],
    dtype=object,
)
_ADVANCE = np.array([f": advance to {next_stage(s)}" if s != GRADUATED else "" for s in EVALUATED_STAGES], dtype=object)


@dataclass(frozen=True)
class ActionFacts:
    """What the action rules read, per brand of the cohort: its stage, the verdict, its state and its stage's rules."""

    code: np.ndarray  # the stage's position in EVALUATED_STAGES
    verdict: np.ndarray  # after the guardrail override
    reason: np.ndarray  # the verdict's
    tripped: np.ndarray  # a guardrail stage tripped (and the brand is not paused)
    guard_reason: np.ndarray
    paused: np.ndarray
    awaiting: np.ndarray
    awaiting_since: pd.Series
    streak: np.ndarray  # passes in a row, today's verdict counted
    need: np.ndarray  # consecutive_passes
    on_fail: np.ndarray
    requires_approval: np.ndarray
    as_of: date

    def is_fail(self) -> np.ndarray:
        return np.asarray(self.verdict == Verdict.FAIL, dtype=bool)

    def because(self, words: np.ndarray | str, pick: np.ndarray) -> np.ndarray:
        """An action taken because of the verdict quotes the verdict's reason."""
        return np.asarray(words + (" (" + self.reason[pick] + ")"), dtype=object)

    def passes(self, pick: np.ndarray, tail: np.ndarray | str) -> np.ndarray:
        """'PASS 2 of 3 in a row' and the tail (a text, or one per stage code), built once per distinct combination."""

        def build(streak: np.ndarray, need: np.ndarray, code: np.ndarray) -> np.ndarray:
            words = "PASS " + ints_text(streak) + " of " + ints_text(need) + " in a row"
            return np.asarray(words + (tail[code] if isinstance(tail, np.ndarray) else tail), dtype=object)

        return per_distinct(build, self.streak[pick], self.need[pick], self.code[pick])


def _paused(facts: ActionFacts) -> np.ndarray:
    return facts.paused


def _tripped(facts: ActionFacts) -> np.ndarray:
    return facts.tripped


def _guard_reason(facts: ActionFacts, pick: np.ndarray) -> np.ndarray:
    return np.asarray(facts.guard_reason[pick], dtype=object)


def _awaiting(facts: ActionFacts) -> np.ndarray:
    return np.asarray(facts.awaiting & ~_GRADUATED[facts.code], dtype=bool)


def _waiting_reason(facts: ActionFacts, pick: np.ndarray) -> np.ndarray:
    since = facts.awaiting_since
    words = pd.Series(_WAITING[facts.code], index=since.index).add(since.astype(str))
    return np.asarray(words.to_numpy(dtype=object)[pick], dtype=object)


def _graduated(facts: ActionFacts) -> np.ndarray:
    return np.asarray(_GRADUATED[facts.code], dtype=bool)


def _no_move(facts: ActionFacts) -> np.ndarray:
    return np.asarray((facts.verdict != Verdict.PASS) & (facts.verdict != Verdict.FAIL), dtype=bool)


def _fails_with(on_fail: str) -> Callable[[ActionFacts], np.ndarray]:
    def holds(facts: ActionFacts) -> np.ndarray:
        return np.asarray(facts.is_fail() & (facts.on_fail == on_fail), dtype=bool)

    return holds


def _fails(facts: ActionFacts) -> np.ndarray:
    return facts.is_fail()


def _too_few_passes(facts: ActionFacts) -> np.ndarray:
    return np.asarray(facts.streak < facts.need, dtype=bool)


def _needs_approval(facts: ActionFacts) -> np.ndarray:
    return np.asarray(facts.requires_approval, dtype=bool)


def _last_stage(facts: ActionFacts) -> np.ndarray:
    return np.asarray(_LAST[facts.code], dtype=bool)


def _otherwise(facts: ActionFacts) -> np.ndarray:
    return np.ones(len(facts.code), dtype=bool)


def _approval_reason(facts: ActionFacts, pick: np.ndarray) -> np.ndarray:
    # the wait begins today
    return np.asarray(facts.passes(pick, _APPROVAL) + f", awaiting it since {facts.as_of.isoformat()}", dtype=object)


ACTION_RULES: tuple[Rule[ActionFacts], ...] = (
    Rule("the brand is paused", _paused, Action.HOLD, constant("brand is paused")),
    Rule("a guardrail of an earlier stage tripped: demote to it", _tripped, Action.DEMOTE, _guard_reason),
    Rule("awaiting approval", _awaiting, Action.AWAIT_APPROVAL, _waiting_reason),
    Rule("graduated: watched by guardrails", _graduated, Action.HOLD, lambda f, p: f.passes(p, ": guardrails hold")),
    Rule("ERROR or INCONCLUSIVE", _no_move, Action.HOLD, lambda f, p: f.because("no move on " + f.verdict[p], p)),
    Rule(
        "FAIL, on_fail recycle",
        _fails_with("recycle"),
        Action.RECYCLE,
        lambda f, p: f.because(_RECYCLE[f.code[p]], p),
    ),
    Rule(
        "FAIL, on_fail demote",
        _fails_with("demote"),
        Action.DEMOTE,
        lambda f, p: f.because(_DEMOTE[f.code[p]], p),
    ),
    Rule(
        "FAIL, on_fail exit",
        _fails_with("exit"),
        Action.EXIT,
        lambda f, p: f.because("on_fail exit: leave the programme", p),
    ),
    Rule("FAIL, on_fail hold", _fails, Action.HOLD, lambda f, p: f.because("on_fail hold", p)),
    Rule(
        "PASS, fewer than consecutive_passes in a row",
        _too_few_passes,
        Action.HOLD,
        lambda f, p: f.passes(p, " needed"),
    ),
    Rule("PASS, enough, requires_approval", _needs_approval, Action.AWAIT_APPROVAL, _approval_reason),
    Rule("PASS, enough, last stage", _last_stage, Action.GRADUATE, lambda f, p: f.passes(p, ": graduate")),
    Rule("otherwise", _otherwise, Action.ADVANCE, lambda f, p: f.passes(p, _ADVANCE)),
)


@dataclass(frozen=True)
class Actions:
    """Every brand's action, its reason and the stage it stands in afterwards."""

    action: np.ndarray
    reason: np.ndarray
    to_stage: np.ndarray
    moved: np.ndarray  # left its stage or restarted it (recycle): a new stage entry tomorrow


def actions(facts: ActionFacts, stage: np.ndarray, tripped_stage: np.ndarray) -> Actions:
    """The first action rule that holds for each brand, and where its action takes it.

    stage: each brand's stage; tripped_stage: the earliest guardrail stage that tripped, where a guardrail's
    demotion goes (an on_fail demotion goes one stage back).
    """
    decided = first_match(ACTION_RULES, facts, len(stage))
    action = decided.outcome
    code = facts.code
    targets = {
        Action.ADVANCE: _NEXT[code],
        Action.GRADUATE: np.full(len(stage), GRADUATED, dtype=object),
        Action.DEMOTE: np.where(facts.tripped, tripped_stage, _BACK[code]),
        Action.EXIT: np.full(len(stage), EXITED, dtype=object),
    }
    to_stage = stage.copy()
    for moving, target in targets.items():
        at = action == moving
        to_stage[at] = target[at]
    moved = (to_stage != stage) | (action == Action.RECYCLE)
    return Actions(action, decided.reason, to_stage, np.asarray(moved, dtype=bool))
