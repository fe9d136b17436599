"""Flow review-brand: a person approves or rejects a brand awaiting approval, in a Prefect UI form."""

from __future__ import annotations

from typing import Annotated, Any

from prefect import flow, get_client, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.states import Running
from pydantic import Field

from brandsteps.config import BRAND_ID_PATTERN
from brandsteps.ledger import Ledger, NotAwaitingApproval
from brandsteps.review import ReviewAnswer, decided_elsewhere, evidence_markdown, review_key, review_run_name
from brandsteps.settings import targets
from flows.run_names import rename_run, review_flow_run_name
from tasks.configs import load_configs


class ReviewInput(ReviewAnswer, RunInput):
    """The approval form shown on the paused run (decision, reviewer, reason)."""


@task(name="read-review-evidence", cache_policy=NONE, retries=2, retry_delay_seconds=[2, 10])
def read_evidence(ledger: Ledger, brand_id: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None, Any]:
    """The brand's ledger state, its latest decision and its stage history."""
    state = ledger.read_state([brand_id])
    row = state.reset_index().to_dict("records")[0] if len(state) else None
    return row, ledger.decision(brand_id), ledger.history(brand_id)


@task(name="record-review", cache_policy=NONE)
def record_review(ledger: Ledger, brand_id: str, answer: ReviewAnswer, flow_run_id: str | None) -> dict[str, Any] | None:
    """The answer's stage change; None when the brand no longer awaits approval (someone answered first)."""
    reason = answer.reason + (f" (review-brand run {flow_run_id})" if flow_run_id else "")
    try:
        return ledger.resolve_approval(brand_id, by=answer.reviewer, reason=reason, approve=answer.decision == "approve")
    except NotAwaitingApproval:
        return None


@task(name="record-review-timeout", cache_policy=NONE)
def record_timeout(ledger: Ledger, brand_id: str, stage: str, hours: float) -> dict[str, Any] | None:
    return ledger.record_review_timeout(brand_id, stage, by="review-brand", reason=f"no answer within {hours:g} hours: default outcome hold")


def _running_again(why: str) -> None:
    """After a pause times out the run is still Paused, and Prefect would fail it on completion: resume it to record the default."""
    from prefect.runtime import flow_run

    with get_client(sync_client=True) as client:
        client.set_flow_run_state(flow_run.get_id(), Running(message=f"{why}: recording the default outcome"), force=True)


def _decided_elsewhere(ledger: Ledger, brand_id: str, stage: str) -> dict[str, Any]:
    """The first answer (the terminal, another form) stands; this run says whose it was, and ends."""
    message = decided_elsewhere(brand_id, ledger.history(brand_id))
    get_run_logger().warning("%s", message)
    return {"brand_id": brand_id, "outcome": "decided elsewhere", "stage": stage, "message": message}


@flow(name="review-brand", log_prints=True, flow_run_name=review_flow_run_name)
def review_brand(
    brand_id: Annotated[str, Field(pattern=BRAND_ID_PATTERN, description="The brand awaiting approval")],
    configs: str = "configs",
    ledger: str | None = None,
    timeout_hours: Annotated[float | None, Field(gt=0, le=24 * 90)] = None,
) -> dict[str, Any]:
    """Pause for a person's approval of a brand awaiting it, then record the answer in the ledger.

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
    led = targets(portfolio, None, ledger).open_ledger()
    state, decision, history = read_evidence(led, brand_id)
    if state is None or not state["awaiting"] or decision is None:
        print(f"Review of {brand_id}: not awaiting approval, nothing to review")
        return {"brand_id": brand_id, "outcome": "nothing to review"}
    hours = timeout_hours or portfolio.onboarding.review_timeout_hours
    stage = str(state["stage"])
    rename_run(review_run_name(brand_id, stage))
    print(f"Review of {brand_id} ({portfolio.brands[brand_id].name}) in {stage}, awaiting approval since {state['awaiting_since']}")
    evidence = evidence_markdown(decision, portfolio.brands[brand_id].name, history, hours, str(state["awaiting_since"]))
    create_markdown_artifact(key=f"review-{brand_id}", markdown=evidence, description=f"Evidence for the review of {brand_id} in {stage}")
    form = ReviewInput.with_initial_data(description=evidence)
    try:
        answer = pause_flow_run(wait_for_input=form, timeout=max(1, int(hours * 3600)), key=review_key(brand_id, stage, str(state["awaiting_since"])))
    except FlowPauseTimeout:
        _running_again(f"no answer within {hours:g} hours")
        change = record_timeout(led, brand_id, stage, hours)
        if change is None:
            return _decided_elsewhere(led, brand_id, stage)
        print(f"{brand_id}: no answer within {hours:g} hours: hold")
        return {"brand_id": brand_id, "outcome": "hold", "stage": stage}
    change = record_review(led, brand_id, answer, flow_run.get_id())
    if change is None:
        return _decided_elsewhere(led, brand_id, stage)
    print(f"{brand_id}: {answer.decision} by {answer.reviewer}: {change['from_stage']} -> {change['to_stage']}")
    return {"brand_id": brand_id, "outcome": answer.decision, "reviewer": answer.reviewer, "from_stage": change["from_stage"], "to_stage": change["to_stage"]}


def answer_paused_reviews(brand_id: str, answer: ReviewAnswer) -> list[str]:
    """Give the answer decided elsewhere (`brandsteps approve`) to the brand's paused review runs.

    Each run then finds the brand decided, says by whom and when, and completes: no form is left
    waiting for an answer that can no longer change anything. Returns the runs' names.
    """
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType
    from prefect.flow_runs import resume_flow_run

    with get_client(sync_client=True) as client:
        paused = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["review-brand"])),
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))),
        )
    mine = [run for run in paused if run.parameters.get("brand_id") == brand_id]
    for run in mine:
        resume_flow_run(run.id, run_input=answer.model_dump())
    return [run.name for run in mine]
