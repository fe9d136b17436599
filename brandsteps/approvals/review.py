"""Approval reviews: the answer a person gives, its validation, and the evidence they read."""

from __future__ import annotations

import json
import math
import re
import unicodedata
from typing import Annotated, Any, Literal

import pandas as pd
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from brandsteps.approvals.approvers import CODE_PATTERN
from brandsteps.catalogue import GRADUATED, next_stage
from brandsteps.reports.explain import brand_report_markdown, show_value

REVIEWER_MAX = 80
REASON_MAX = 500
CODE_HELP = (
    "The current 6-digit code of your authenticator app (required when configs/approvers.yaml lists who may approve)"
)


def _code_digits(value: Any) -> Any:
    """`123 456` and full-width digits as typed on a phone are the code's six digits."""
    if isinstance(value, str):
        return "".join(unicodedata.normalize("NFKC", value).split()) or None
    return value


Code = Annotated[Annotated[str, Field(pattern=CODE_PATTERN)] | None, BeforeValidator(_code_digits)]


class ReviewAnswer(BaseModel):
    """A reviewer's answer to "should this brand advance?"; all fields required, lengths limited."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    decision: Literal["approve", "reject"] = Field(
        description="approve: the brand advances (or graduates); reject: it stays and must earn its passes again"
    )
    reviewer: str = Field(min_length=2, max_length=REVIEWER_MAX, description="Your name, recorded in the ledger")
    reason: str = Field(min_length=3, max_length=REASON_MAX, description="Why, in a sentence; recorded in the ledger")
    code: Code = Field(default=None, description=CODE_HELP)


def review_key(brand_id: str, stage: str, awaiting_since: str) -> str:
    """One review per brand, stage and wait: the key that keeps a second run from starting.

    Also the run's pause key, which Prefect allows only lowercase letters, digits and dashes.
    """
    return re.sub(r"[^a-z0-9-]+", "-", f"review-{brand_id}-{stage}-{awaiting_since}".lower())


_RUN_NAME_UNSAFE = r"[^A-Za-z0-9_.-]+"


def review_run_name(brand_id: str, stage: str) -> str:
    return re.sub(_RUN_NAME_UNSAFE, "-", f"review-{brand_id}-{stage}")


def review_run_names(brand_ids: pd.Series, stages: pd.Series) -> pd.Series:
    """review_run_name of each brand and stage at once (the awaiting-approval table looks their runs up by name)."""
    return ("review-" + brand_ids.astype(str) + "-" + stages.astype(str)).str.replace(_RUN_NAME_UNSAFE, "-", regex=True)


KEY_NUMBERS = 6  # criteria quoted in the summary line; the full table follows


def evidence_summary(decision: dict[str, Any], name: str, timeout_hours: float, awaiting_since: str) -> list[str]:
    """Three lines above the evidence: what passed, the key numbers, what each answer does.

    awaiting_since: the ledger's (brand_state), the one date the wait began; the decision is the
    brand's latest, which may be days later.
    """
    stage, brand = decision["stage"], decision["brand_id"]
    nxt = next_stage(stage)
    goal = "graduate" if nxt == GRADUATED else f"advance to {nxt}"
    days = (pd.Timestamp(decision["as_of"]) - pd.Timestamp(awaiting_since)).days
    raw = decision.get("criteria") or "[]"
    criteria = json.loads(raw) if isinstance(raw, str) else list(raw)
    deciding = [c["reason"] for c in criteria if c.get("role") == "criterion" and not c.get("shadow")]
    factors = decision.get("gmv_factors") or "{}"
    gmv = (json.loads(factors) if isinstance(factors, str) else dict(factors)).get("gmv")
    numbers = "; ".join(deciding[:KEY_NUMBERS]) + ("; …" if len(deciding) > KEY_NUMBERS else "")
    numbers = (
        "; ".join(n for n in (numbers, f"window GMV {show_value('gmv', gmv)}" if gmv is not None else "") if n)
        or "none recorded"
    )
    return [
        f"- **Passed:** {name} ({brand}) earned its passes in {stage} "
        f"and awaits approval to {goal} since {awaiting_since} "
        f"({days} day{'' if days == 1 else 's'} by {decision['as_of']}, "
        f"the latest decision: {decision['verdict']}, {decision['reason']}).",
        f"- **Key numbers:** {numbers}.",
        f"- **Your answer:** approve and it will {goal}; "
        f"reject and it stays in {stage}, its passes starting again from zero; "
        f"no answer within {timeout_hours:g} hours and the review ends with **hold**: "
        "it stays, still awaiting approval "
        "(`brandsteps approve` or a new review-brand run can decide later).",
    ]


def evidence_markdown(
    decision: dict[str, Any], name: str, history: pd.DataFrame, timeout_hours: float, awaiting_since: str
) -> str:
    """What the reviewer reads in the form: a three-line summary, then the full decision report."""
    return (
        "\n".join(evidence_summary(decision, name, timeout_hours, awaiting_since))
        + "\n\n---\n\n"
        + brand_report_markdown(decision, name, history)
    )


ANSWER_CAUSES = ("approval", "rejection")


def decided_elsewhere(brand_id: str, history: pd.DataFrame) -> str:
    """What a review says when another answer came first: whose, when and what (from the stage history)."""
    answers = history[history["cause"].isin(ANSWER_CAUSES)] if len(history) else history
    if answers.empty:
        return f"{brand_id} no longer awaits approval: nothing to record"
    last = answers.iloc[-1]
    at = pd.Timestamp(last["recorded_at"])
    when = at.tz_convert("UTC") if at.tzinfo else at
    verb = "approved" if last["cause"] == "approval" else "rejected"
    return (
        f"{brand_id} was already decided by {last['actor']} at {when:%Y-%m-%d %H:%M} UTC: "
        f"{verb}, {last['from_stage']} -> {last['to_stage']}"
    )


def next_pause(
    elapsed_seconds: float, timeout_hours: float, escalate_after_hours: float | None, escalated: bool
) -> tuple[int, bool]:
    """Seconds the review pauses next, and whether that pause ends in the escalation (else in the default outcome).

    A review pauses until escalate_after_hours (if set, not yet escalated and before the timeout), then for
    the rest of timeout_hours; a refused answer pauses again for what is left. Both counted from the start.
    """
    if escalate_after_hours is not None and not escalated and escalate_after_hours < timeout_hours:
        return max(1, math.ceil(escalate_after_hours * 3600 - elapsed_seconds)), True
    return max(1, math.ceil(timeout_hours * 3600 - elapsed_seconds)), False


def refused_note(reviewer: str, decision: str, reason: str, at: str) -> str:
    """The line above the evidence of a form shown again after a refused answer."""
    return f"- **Refused:** {reviewer}'s answer ({decision}) at {at}: {reason}. The review is open for another answer."


def escalation_text(
    brand_id: str,
    name: str,
    stage: str,
    awaiting_since: str,
    waited_hours: float,
    timeout_hours: float,
    told: list[str],
) -> str:
    """The escalation message: what waits, since when, who is asked, and what happens without an answer."""
    who = ", ".join(told) if told else "nobody listed"
    left = timeout_hours - waited_hours
    return (
        f"{name} ({brand_id}) awaits approval in {stage} since {awaiting_since}; "
        f"its review has had no answer for {waited_hours:g} hours. "
        f"Asked: {who}. Without an answer within {left:g} more hours the review ends with hold: "
        f"{brand_id} stays in {stage}."
    )
