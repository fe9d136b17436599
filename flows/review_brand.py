"""Flow review-brand: a person approves or rejects a brand awaiting approval, in a Prefect UI form."""

from __future__ import annotations

import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import pandas as pd
from prefect import flow, get_client, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.states import Running
from pydantic import Field

from brandsteps.approvals.approvers import (
    CODE_PATTERN,
    Accepted,
    ApproversConfig,
    Refusal,
    check_approval,
    load_approvers,
)
from brandsteps.approvals.review import (
    CODE_HELP,
    ReviewAnswer,
    decided_elsewhere,
    escalation_text,
    evidence_markdown,
    next_pause,
    refused_note,
    review_key,
    review_run_name,
)
from brandsteps.config import BRAND_ID_PATTERN, Brand, Onboarding
from brandsteps.config.settings import targets
from brandsteps.ledger import ApprovalProof, Attempt, CodeAlreadyUsed, Ledger, NotAwaitingApproval
from flows.run_names import rename_run, review_flow_run_name
from flows.totp_secrets import totp_secret
from tasks.configs import load_configs
from tasks.retries import is_transient

PAUSE_POLL_SECONDS = 10  # how often a paused review looks for its answer (Prefect's default)


@dataclass(frozen=True)
class ReviewOutcome:
    """How a review run ended; the fields other than brand_id and outcome are set where the outcome has them.

    outcome: approve or reject (an accepted answer, with its reviewer, from_stage and to_stage); hold (no
    answer in time, with the stage); decided elsewhere (another answer came first, with the stage and a
    message saying whose); nothing to review (the brand was not awaiting approval).
    """

    brand_id: str
    outcome: Literal["approve", "reject", "hold", "decided elsewhere", "nothing to review"]
    stage: str | None = None
    reviewer: str | None = None
    from_stage: str | None = None
    to_stage: str | None = None
    message: str | None = None


class ReviewInput(ReviewAnswer, RunInput):
    """The approval form shown on the paused run (decision, reviewer, reason, and a code if approvers.yaml is there)."""


class ProvedReviewInput(ReviewInput):
    """The form when configs/approvers.yaml lists who may approve: the reviewer proves who they are with a code."""

    code: str = Field(pattern=CODE_PATTERN, description=CODE_HELP)


@dataclass
class _Review:
    """One review run's fixed facts, and what has happened in it so far."""

    ledger: Ledger
    brand: Brand  # not the whole portfolio: Prefect walks every task parameter, and a portfolio may hold 100,000 brands
    onboarding: Onboarding
    approvers: ApproversConfig | None
    brand_id: str
    stage: str
    awaiting_since: str
    hours: float
    evidence: str
    flow_run_id: str | None
    started: float = field(default_factory=time.monotonic)
    escalated: bool = False
    pauses: int = 0
    # refused answers, shown above the evidence when the form opens again
    notes: list[str] = field(default_factory=list)


@task(
    name="read-review-evidence",
    cache_policy=NONE,
    retries=2,
    retry_delay_seconds=[2, 10],
    retry_condition_fn=is_transient,
)
def read_evidence(
    ledger: Ledger, brand_id: str
) -> tuple[dict[Hashable, Any] | None, dict[str, Any] | None, pd.DataFrame]:
    """The brand's ledger state, its latest decision and its stage history."""
    state = ledger.without_retries().read_state([brand_id])
    row = state.reset_index().to_dict("records")[0] if len(state) else None
    return row, ledger.decision(brand_id), ledger.history(brand_id)


@task(name="load-approvers", cache_policy=NONE)
def read_approvers(configs: str, brand_ids: list[str]) -> ApproversConfig | None:
    approvers = load_approvers(configs, brand_ids)
    if approvers is None:
        get_run_logger().warning(
            "No configs/approvers.yaml: any name may answer this review (list approvers to require a code)"
        )
    return approvers


@task(name="check-answer", cache_policy=NONE, retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=is_transient)
def check_answer(review: _Review, answer: ReviewAnswer) -> Refusal | Accepted:
    """Whether the answer's reviewer may answer, proved by their current code (the secret stays inside this task)."""
    return check_approval(
        review.approvers,
        review.brand,
        review.stage,
        answer.reviewer,
        answer.code,
        datetime.now(UTC),
        totp_secret,
        review.ledger.last_code_step,
    )


@task(name="record-review", cache_policy=NONE)
def record_review(review: _Review, answer: ReviewAnswer, accepted: Accepted) -> dict[str, Any] | Refusal | None:
    """The answer's stage change; None when the brand no longer awaits approval (someone answered first)."""
    reason = answer.reason + (f" (review-brand run {review.flow_run_id})" if review.flow_run_id else "")
    proof = ApprovalProof("form", accepted.step, review.stage, review.flow_run_id)
    try:
        return review.ledger.resolve_approval(
            review.brand_id, by=accepted.approver, reason=reason, approve=answer.decision == "approve", proof=proof
        )
    except CodeAlreadyUsed as exc:  # the same code, accepted a moment ago for another answer
        return Refusal("replayed", str(exc))
    except NotAwaitingApproval:
        return None


@task(name="record-refusal", cache_policy=NONE, retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=is_transient)
def record_refusal(review: _Review, answer: ReviewAnswer, refusal: Refusal) -> None:
    review.ledger.record_attempt(
        Attempt(
            review.brand_id,
            review.stage,
            "refused",
            answer.reviewer,
            refusal.reason,
            "form",
            answer=answer.decision,
            refusal=refusal.kind,
            flow_run_id=review.flow_run_id,
        )
    )


@task(name="record-review-timeout", cache_policy=NONE)
def record_timeout(ledger: Ledger, brand_id: str, stage: str, hours: float) -> dict[str, Any] | None:
    return ledger.record_review_timeout(
        brand_id, stage, by="review-brand", reason=f"no answer within {hours:g} hours: default outcome hold"
    )


@task(name="escalate-review", cache_policy=NONE)
def escalate(review: _Review, waited_hours: float) -> str:
    """Tell the stage's approvers and the escalation list that the review waits, and record it; returns the record."""
    approvers = review.approvers
    told = (
        [a.name for a in approvers.answering(review.brand, review.stage)] + list(approvers.escalation)
        if approvers
        else []
    )
    name = review.brand.name
    text = escalation_text(review.brand_id, name, review.stage, review.awaiting_since, waited_hours, review.hours, told)
    sent = _send_escalation(
        review.onboarding,
        f"Review of {name} waits: {waited_hours:g} hours without an answer",
        text,
        _run_link(review.flow_run_id),
    )
    reason = f"no answer within {waited_hours:g} hours: asked {', '.join(told) or 'nobody listed'} again; {sent}"
    review.ledger.record_attempt(
        Attempt(
            review.brand_id,
            review.stage,
            "escalated",
            "review-brand",
            reason,
            "review-brand",
            flow_run_id=review.flow_run_id,
        )
    )
    get_run_logger().warning("%s: %s", review.brand_id, reason)
    return reason


def _send_escalation(onboarding: Onboarding, title: str, text: str, link: str | None) -> str:
    """The message through onboarding.yaml's notify channels that take `escalation`.

    Returns how it went, never a URL or a secret.
    """
    from brandsteps.notify import Message, send_all
    from tasks.notify import PrefectSecrets

    deliveries = send_all(
        onboarding.notify,
        Message(kind="escalation", title=title, text=text, link=link),
        resolve_secret=PrefectSecrets(),
    )
    if not deliveries:
        return "no notify channel in onboarding.yaml takes escalations"
    failed = [d.channel for d in deliveries if not d.ok]
    return f"sent to {len(deliveries) - len(failed)} of {len(deliveries)} channels" + (
        f" (failed: {', '.join(failed)})" if failed else ""
    )


def _run_link(flow_run_id: str | None) -> str | None:
    from prefect.settings import PREFECT_UI_URL

    ui = PREFECT_UI_URL.value()
    return f"{ui}/runs/flow-run/{flow_run_id}" if ui and flow_run_id else None


def _running_again(why: str) -> None:
    """After a pause times out the run is still Paused, and Prefect would fail it on completion: resume it to go on."""
    from prefect.runtime import flow_run

    with get_client(sync_client=True) as client:
        client.set_flow_run_state(str(flow_run.get_id()), Running(message=why), force=True)


def _decided_elsewhere(ledger: Ledger, brand_id: str, stage: str) -> ReviewOutcome:
    """The first answer (the terminal, another form) stands; this run says whose it was, and ends."""
    message = decided_elsewhere(brand_id, ledger.history(brand_id))
    get_run_logger().warning("%s", message)
    return ReviewOutcome(brand_id, "decided elsewhere", stage=stage, message=message)


def _still_awaiting(review: _Review) -> bool:
    state = review.ledger.read_state([review.brand_id])
    return bool(len(state)) and bool(state.iloc[0]["awaiting"]) and state.iloc[0]["stage"] == review.stage


def _form(review: _Review) -> type[ReviewInput]:
    form = ProvedReviewInput if review.approvers is not None else ReviewInput
    description = "\n".join(review.notes) + ("\n\n" if review.notes else "") + review.evidence
    return form.with_initial_data(description=description)


def _pause_key(review: _Review) -> str:
    """A new key for every pause: Prefect treats a key it has seen as a pause already answered."""
    key = review_key(review.brand_id, review.stage, review.awaiting_since)
    return key if review.pauses == 1 else f"{key}-{review.pauses}"


def _answered(review: _Review, answer: ReviewAnswer) -> ReviewOutcome | None:
    """Record an accepted answer and return the outcome; None after a refused one (the review waits again)."""
    if not _still_awaiting(review):  # answered elsewhere first: no code to check, nothing to record
        return _decided_elsewhere(review.ledger, review.brand_id, review.stage)
    verdict = check_answer(review, answer)
    change = record_review(review, answer, verdict) if isinstance(verdict, Accepted) else verdict
    if change is None:
        return _decided_elsewhere(review.ledger, review.brand_id, review.stage)
    if isinstance(change, Refusal):
        record_refusal(review, answer, change)
        at = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
        review.notes.append(refused_note(answer.reviewer, answer.decision, change.reason, at))
        get_run_logger().warning(
            "Refused the answer of %s (%s) for %s: %s; the review waits for another answer",
            answer.reviewer,
            answer.decision,
            review.brand_id,
            change.reason,
        )
        return None
    by = change["actor"]
    print(f"{review.brand_id}: {answer.decision} by {by}: {change['from_stage']} -> {change['to_stage']}")
    return ReviewOutcome(
        review.brand_id, answer.decision, reviewer=by, from_stage=change["from_stage"], to_stage=change["to_stage"]
    )


def _timed_out(review: _Review) -> ReviewOutcome:
    change = record_timeout(review.ledger, review.brand_id, review.stage, review.hours)
    if change is None:
        return _decided_elsewhere(review.ledger, review.brand_id, review.stage)
    print(f"{review.brand_id}: no answer within {review.hours:g} hours: hold")
    return ReviewOutcome(review.brand_id, "hold", stage=review.stage)


def _await_answers(review: _Review) -> ReviewOutcome:
    """Pause for an answer until one is accepted, escalating once if configured; at the timeout, the default."""
    escalate_after = review.approvers.escalate_after_hours if review.approvers else None
    while True:
        seconds, escalating = next_pause(
            time.monotonic() - review.started, review.hours, escalate_after, review.escalated
        )
        review.pauses += 1
        try:
            answer = pause_flow_run(
                wait_for_input=_form(review), timeout=seconds, poll_interval=PAUSE_POLL_SECONDS, key=_pause_key(review)
            )
        except FlowPauseTimeout:
            if not escalating:
                _running_again(f"no answer within {review.hours:g} hours: recording the default outcome")
                return _timed_out(review)
            _running_again(f"no answer within {escalate_after:g} hours: escalating")
            escalate(review, float(escalate_after or 0))
            review.escalated = True
            continue
        outcome = _answered(review, answer)
        if outcome is not None:
            return outcome


@flow(name="review-brand", log_prints=True, flow_run_name=review_flow_run_name)
def review_brand(
    brand_id: Annotated[str, Field(pattern=BRAND_ID_PATTERN, description="The brand awaiting approval")],
    configs: str = "configs",
    ledger: str | None = None,
    timeout_hours: Annotated[float | None, Field(gt=0, le=24 * 90)] = None,
) -> ReviewOutcome:
    """Pause for a person's approval of a brand awaiting it, then record the answer in the ledger.

    With configs/approvers.yaml only a listed approver's answer, proved by their current code, is
    recorded; a refused one is recorded as refused and the form waits for another answer.

    Args:
        brand_id: The brand awaiting approval (the name of its file in configs/brands/).
        configs: The configs folder.
        ledger: Ledger SQLAlchemy URL overriding onboarding.yaml.
        timeout_hours: Hours to wait for an answer before the default outcome (hold).
            Empty means review_timeout_hours of onboarding.yaml (72 by default).
    """
    from prefect.runtime import flow_run

    portfolio = load_configs(configs)
    if brand_id not in portfolio.brands:
        raise ValueError(f"unknown brand {brand_id!r}: no configs/brands/{brand_id}.yaml")
    approvers = read_approvers(configs, list(portfolio.brands))
    led = targets(portfolio, None, ledger).open_ledger()
    state, decision, history = read_evidence(led, brand_id)
    if state is None or not state["awaiting"] or decision is None:
        print(f"Review of {brand_id}: not awaiting approval, nothing to review")
        return ReviewOutcome(brand_id, "nothing to review")
    hours = timeout_hours or portfolio.onboarding.review_timeout_hours
    stage = str(state["stage"])
    rename_run(review_run_name(brand_id, stage))
    brand = portfolio.brands[brand_id]
    since = str(state["awaiting_since"])
    print(f"Review of {brand_id} ({brand.name}) in {stage}, awaiting approval since {state['awaiting_since']}")
    evidence = evidence_markdown(decision, brand.name, history, hours, since)
    create_markdown_artifact(
        key=f"review-{brand_id}", markdown=evidence, description=f"Evidence for the review of {brand_id} in {stage}"
    )
    review = _Review(
        led, brand, portfolio.onboarding, approvers, brand_id, stage, since, hours, evidence, flow_run.get_id()
    )
    return _await_answers(review)


def answer_paused_reviews(brand_id: str, answer: ReviewAnswer) -> list[str]:
    """Give the answer decided elsewhere (`brandsteps approve`) to the brand's paused review runs.

    Each run then finds the brand decided, says by whom and when, and completes: no form is left
    waiting for an answer that can no longer change anything. Returns the runs' names.
    """
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.flow_runs import resume_flow_run

    with get_client(sync_client=True) as client:
        paused = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["review-brand"])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
            ),
        )
    mine = [run for run in paused if run.parameters.get("brand_id") == brand_id]
    for run in mine:
        # the code (already spent by the terminal's answer) satisfies a form that requires one; the run checks nothing
        resume_flow_run(run.id, run_input=answer.model_dump(exclude_none=True))
    return [run.name for run in mine]
