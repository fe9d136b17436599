"""The action rules for one brand, in order, each a check that returns its move when it holds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from brandsteps.catalogue import EXITED, GRADUATED, STAGE_IDS, Action, Verdict, next_stage
from brandsteps.config import Stage
from brandsteps.engine.reference.facts import Judged

# a graduated brand's pass is "1 of 1 in a row"
GRADUATED_CONSECUTIVE = 1


@dataclass(frozen=True)
class Move:
    """An action rule's result: the action, the stage the brand stands in afterwards, and why."""

    action: str
    to_stage: str
    reason: str


def _last(stage: Stage) -> bool:
    return stage.id == STAGE_IDS[-1]


def _streak_words(judged: Judged) -> str:
    need = GRADUATED_CONSECUTIVE if judged.stage is None else judged.stage.consecutive_passes
    return f"PASS {judged.pass_streak} of {need} in a row"


def _earned(judged: Judged) -> bool:
    return judged.stage is not None and judged.pass_streak >= judged.stage.consecutive_passes


def _stays(judged: Judged, action: str, reason: str) -> Move:
    return Move(action, judged.facts.stage_id, reason)


def _because(words: str, judged: Judged) -> str:
    return f"{words} ({judged.reason})"


def _paused(judged: Judged) -> Move | None:
    return _stays(judged, Action.HOLD, "brand is paused") if judged.brand.paused else None


def _guardrail_trips(judged: Judged) -> Move | None:
    tripped = judged.facts.guard.tripped
    return Move(Action.DEMOTE, tripped, judged.facts.guard.reason) if tripped is not None else None


def _awaiting(judged: Judged) -> Move | None:
    stage = judged.stage
    if stage is None or not judged.brand.awaiting:
        return None
    to = "graduate" if _last(stage) else f"advance to {next_stage(stage.id)}"
    return _stays(judged, Action.AWAIT_APPROVAL, f"awaiting approval to {to} since {judged.brand.awaiting_since}")


def _graduated_holds(judged: Judged) -> Move | None:
    return _stays(judged, Action.HOLD, _streak_words(judged) + ": guardrails hold") if judged.stage is None else None


def _no_move(judged: Judged) -> Move | None:
    if judged.verdict in (Verdict.PASS, Verdict.FAIL):
        return None
    return _stays(judged, Action.HOLD, _because(f"no move on {judged.verdict}", judged))


def _on_fail(judged: Judged) -> Move | None:
    stage = judged.stage
    if stage is None or judged.verdict != Verdict.FAIL:
        return None
    if stage.on_fail == "recycle":
        return _stays(judged, Action.RECYCLE, _because(f"on_fail recycle: restart the {stage.id} clock", judged))
    if stage.on_fail == "demote":
        back = STAGE_IDS[STAGE_IDS.index(stage.id) - 1]
        return Move(Action.DEMOTE, back, _because(f"on_fail demote: back to {back}", judged))
    if stage.on_fail == "exit":
        return Move(Action.EXIT, EXITED, _because("on_fail exit: leave the programme", judged))
    return _stays(judged, Action.HOLD, _because("on_fail hold", judged))


def _not_enough_passes(judged: Judged) -> Move | None:
    return None if _earned(judged) else _stays(judged, Action.HOLD, _streak_words(judged) + " needed")


def _needs_approval(judged: Judged) -> Move | None:
    stage = judged.stage
    if stage is None or not stage.requires_approval:
        return None
    move = "graduating" if _last(stage) else f"advancing to {next_stage(stage.id)}"
    since = judged.facts.as_of.isoformat()  # the wait begins today
    words = f"{_streak_words(judged)}; {move} needs approval, awaiting it since {since}"
    return _stays(judged, Action.AWAIT_APPROVAL, words)


def _graduates(judged: Judged) -> Move | None:
    stage = judged.stage
    if stage is None or not _last(stage):
        return None
    return Move(Action.GRADUATE, GRADUATED, _streak_words(judged) + ": graduate")


def _advances(judged: Judged) -> Move:
    to = next_stage(judged.facts.stage_id)
    return Move(Action.ADVANCE, to, f"{_streak_words(judged)}: advance to {to}")


# Only paused and guardrails apply to graduated brands: they hold otherwise, whatever the verdict.
ACTION_RULES: tuple[tuple[str, Callable[[Judged], Move | None]], ...] = (
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


def action_of(judged: Judged) -> Move:
    """The first action rule that holds."""
    for _name, rule in ACTION_RULES:
        found = rule(judged)
        if found is not None:
            return found
    raise AssertionError("the last action rule always holds")
