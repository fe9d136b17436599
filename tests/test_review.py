"""Approval answers: required fields, codes, the key that keeps one review per wait; the review flow's pauses, refusals and escalation."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

from brandsteps.approvals.review import (
    REASON_MAX,
    REVIEWER_MAX,
    ReviewAnswer,
    escalation_text,
    evidence_markdown,
    next_pause,
    review_key,
    review_run_name,
    review_run_names,
)
from tests.approval_helpers import APPROVERS_YAML, awaiting_portfolio, code_now, set_secrets
from tests.chat_robots import chat_robots
from tests.prefect_process import wait_for


@pytest.mark.parametrize(
    ("fields", "ok"),
    [
        pytest.param({"decision": "approve", "reviewer": "Li Wei", "reason": "GMV holds"}, True, id="approve"),
        # Chinese names and reasons are fine
        pytest.param({"decision": "reject", "reviewer": "王芳", "reason": "退款率偏高"}, True, id="reject-chinese"),
        # only approve or reject
        pytest.param({"decision": "maybe", "reviewer": "Li Wei", "reason": "GMV holds"}, False, id="other-decision"),
        pytest.param({"decision": "approve", "reviewer": "Li Wei"}, False, id="no-reason"),  # a reason is required
        # blank after stripping
        pytest.param({"decision": "approve", "reviewer": "  ", "reason": "GMV holds"}, False, id="blank-reviewer"),
        pytest.param(
            {"decision": "approve", "reviewer": "x" * (REVIEWER_MAX + 1), "reason": "GMV holds"},
            False,
            id="reviewer-too-long",
        ),
        pytest.param(
            {"decision": "approve", "reviewer": "Li Wei", "reason": "y" * (REASON_MAX + 1)}, False, id="reason-too-long"
        ),
        # unknown fields refused
        pytest.param(
            {"decision": "approve", "reviewer": "Li Wei", "reason": "GMV holds", "extra": 1}, False, id="unknown-field"
        ),
    ],
)
def test_review_answer_validation(fields: dict, ok: bool) -> None:
    if ok:
        assert ReviewAnswer(**fields).decision == fields["decision"]
    else:
        with pytest.raises(ValidationError):
            ReviewAnswer(**fields)


def test_review_key_is_a_prefect_pause_key() -> None:
    # Prefect pause keys allow only lowercase letters, digits and dashes; the same wait gives the same key
    key = review_key("acme-1", "self_broadcast", "2026-03-04")
    assert key == "review-acme-1-self-broadcast-2026-03-04"
    assert review_key("acme-1", "self_broadcast", "2026-03-05") != key


def test_review_run_names_match_one_by_one() -> None:
    # the awaiting-approval table finds the runs the cycle named, so both spell a name the same way
    names = review_run_names(pd.Series(["acme-1", "品牌/x"]), pd.Series(["self_broadcast", "public_traffic"]))
    assert (
        list(names)
        == [review_run_name("acme-1", "self_broadcast"), review_run_name("品牌/x", "public_traffic")]
        == ["review-acme-1-self_broadcast", "review--x-public_traffic"]
    )


def _criterion(metric: str, op: str, threshold: float, value: float, reason: str, **extra: object) -> dict:
    return {
        "role": "criterion",
        "source_stage": "affiliate_trial",
        "metric": metric,
        "op": op,
        "threshold": threshold,
        "kind": "must",
        "weight": 1.0,
        "shadow": False,
        "value": value,
        "result": "pass",
        "reason": reason,
        **extra,
    }


WAITING = {
    # the brand's latest decision (2026-12-06) of a wait that began on 2026-09-21 (the ledger's brand_state)
    "brand_id": "tea",
    "as_of": date(2026, 12, 6),
    "stage": "affiliate_trial",
    "verdict": "PASS",
    "action": "await_approval",
    "to_stage": "affiliate_trial",
    "reason": "all must criteria pass; score 1 >= pass_score 1",
    "action_reason": "awaiting approval to advance to public_traffic since 2026-09-21",
    "days_in_stage": 90,
    "pass_streak": 2,
    "overdue": False,
    "policy_version": "abc",
    "flow_run_id": None,
    "criteria": json.dumps(
        [
            _criterion("gpm", ">=", 2000.0, 3163.28, "gpm ¥3,163.28 >= ¥2,000.00"),
            _criterion("refund_rate", "<", 0.25, 0.1739, "refund_rate 17.39% < 25%"),
            _criterion(
                "aov", ">=", 999.0, 80.0, "shadow aov ¥80.00 < ¥999.00", shadow=True, result="fail"
            ),  # shadow: not a key number
        ]
    ),
    "gmv_factors": json.dumps({"gmv": 48213.5}),
}


def test_review_evidence_opens_with_three_lines_and_one_awaiting_since() -> None:
    text = evidence_markdown(WAITING, "山野茶社", pd.DataFrame(), 72, "2026-09-21")
    assert text.split("\n\n---\n\n")[0].splitlines() == [
        "- **Passed:** 山野茶社 (tea) earned its passes in affiliate_trial and awaits approval to advance to public_traffic since 2026-09-21 "
        "(76 days by 2026-12-06, the latest decision: PASS, all must criteria pass; score 1 >= pass_score 1).",
        "- **Key numbers:** gpm ¥3,163.28 >= ¥2,000.00; refund_rate 17.39% < 25%; window GMV ¥48,213.50.",
        "- **Your answer:** approve and it will advance to public_traffic; reject and it stays in affiliate_trial, its passes starting again "
        "from zero; no answer within 72 hours and the review ends with **hold**: it stays, still awaiting approval "
        "(`brandsteps approve` or a new review-brand run can decide later).",
    ]
    # the wait began once: every "since" in the evidence names that day, never the decision's as_of
    assert set(re.findall(r"since (\d{4}-\d{2}-\d{2})", text)) == {"2026-09-21"}
    # the full evidence follows; a decision recorded without criterion windows shows "–" for its window
    assert "| refund_rate | must | – | 17.39% | < | 25% | pass | refund_rate 17.39% < 25% |" in text


# ---------------------------------------------------------------- answers with codes, pauses, escalation


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        pytest.param("123456", "123456", id="six-digits"),
        pytest.param("123 456", "123456", id="as-an-app-groups-them"),
        pytest.param("１２３４５６", "123456", id="full-width-from-a-chinese-keyboard"),
        pytest.param("", None, id="empty-is-none"),
    ],
)
def test_review_answer_code_is_its_six_digits(typed: str, code: str | None) -> None:
    answer = ReviewAnswer(decision="approve", reviewer="Li Wei", reason="GMV holds", code=typed)
    assert answer.code == code


@pytest.mark.parametrize(
    "typed",
    [pytest.param("12345", id="five"), pytest.param("12345a", id="letter"), pytest.param("1234567", id="seven")],
)
def test_review_answer_refuses_what_is_no_code(typed: str) -> None:
    with pytest.raises(ValidationError):
        ReviewAnswer(decision="approve", reviewer="Li Wei", reason="GMV holds", code=typed)


@pytest.mark.parametrize(
    ("elapsed", "timeout", "escalate", "escalated", "pause"),
    [
        pytest.param(0, 72, None, False, (259_200, False), id="no-escalation-the-whole-timeout"),
        pytest.param(0, 72, 24, False, (86_400, True), id="first-until-the-escalation"),
        pytest.param(86_400, 72, 24, True, (172_800, False), id="then-the-rest"),
        pytest.param(
            3_600, 72, 24, False, (82_800, True), id="a-refused-answer-after-an-hour-keeps-the-escalation-time"
        ),
        pytest.param(0, 12, 24, False, (43_200, False), id="escalation-after-the-timeout-never-comes"),
        pytest.param(90_000, 72, 24, False, (1, True), id="escalation-overdue-at-once"),
        pytest.param(300_000, 72, None, False, (1, False), id="timeout-overdue-at-once"),
    ],
)
def test_next_pause(
    elapsed: float, timeout: float, escalate: float | None, escalated: bool, pause: tuple[int, bool]
) -> None:
    # seconds counted from the review's start, so an answer refused midway does not restart the clock
    assert next_pause(elapsed, timeout, escalate, escalated) == pause


def test_escalation_text_names_who_is_asked_and_what_happens_next() -> None:
    text = escalation_text("tea", "山野茶社", "affiliate_trial", "2026-01-02", 24, 72, ["赵磊 Zhao Lei", "@ops"])
    assert text == (
        "山野茶社 (tea) awaits approval in affiliate_trial since 2026-01-02; its review has had no answer for 24 hours. "
        "Asked: 赵磊 Zhao Lei, @ops. Without an answer within 48 more hours the review ends with hold: tea stays in affiliate_trial."
    )


def _review_in_thread(configs: Path, **parameters: object) -> tuple[threading.Thread, dict[str, object]]:
    from flows.review_brand import review_brand

    out: dict[str, object] = {}

    def run() -> None:
        out["result"] = review_brand(brand_id="tea", configs=str(configs), **parameters)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def _paused_run(configs: Path, pause: int) -> object:
    """The review of these configs once it is paused for the `pause`-th time (keys: review-…, then review-…-2, …)."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    def paused() -> object:
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
                )
            )
        mine = [r for r in runs if r.parameters.get("configs") == str(configs)]
        key = mine[0].state.state_details.pause_key if mine else ""
        return mine[0] if mine and (key.endswith(f"-{pause}") if pause > 1 else not key.endswith("-2")) else None

    return wait_for(f"pause {pause} of the review", paused, timeout=120, every=0.5)


def _ledger_rows(configs: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(configs.parent / "data" / "ledger.sqlite") as conn:
        return conn.execute(sql).fetchall()


@pytest.mark.integration
def test_a_refused_form_answer_is_recorded_and_the_form_waits_for_another(
    prefect_server: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect import get_client
    from prefect.flow_runs import resume_flow_run

    import flows.review_brand

    set_secrets(monkeypatch)
    monkeypatch.setattr(flows.review_brand, "PAUSE_POLL_SECONDS", 1)
    configs = awaiting_portfolio(tmp_path)
    thread, out = _review_in_thread(configs, timeout_hours=1)
    run = _paused_run(configs, 1)
    # the form requires a code when approvers.yaml is there: the server refuses an answer without one
    with pytest.raises(RuntimeError, match="'code' is a required property"):
        resume_flow_run(run.id, run_input={"decision": "approve", "reviewer": "赵磊 Zhao Lei", "reason": "GMV holds"})
    # the owner, with his own valid code: refused, recorded, and the form opens again with the reason on top
    resume_flow_run(
        run.id,
        run_input={
            "decision": "approve",
            "reviewer": "王敏 Wang Min",
            "reason": "mine, and fine",
            "code": code_now("BRANDSTEPS_TOTP_TEST_WANG"),
        },
    )
    again = _paused_run(configs, 2)
    with get_client(sync_client=True) as client:
        description = json.loads(
            client.read_flow_run_input(again.id, f"paused-{again.state.state_details.pause_key}-description")
        )
    assert description.startswith("- **Refused:** 王敏 Wang Min's answer (approve) at ")
    assert description.split("\n")[0].endswith(
        ": a brand's owner may not approve it (four eyes). The review is open for another answer."
    )
    resume_flow_run(
        again.id,
        run_input={
            "decision": "approve",
            "reviewer": "赵磊 Zhao Lei",
            "reason": "GMV holds",
            "code": code_now("BRANDSTEPS_TOTP_TEST_ZHAO"),
        },
    )
    thread.join(timeout=120)
    # the second answer was accepted: 赵磊 approved, and tea moved on to the next stage
    assert out["result"] == flows.review_brand.ReviewOutcome(
        brand_id="tea",
        outcome="approve",
        reviewer="赵磊 Zhao Lei",
        from_stage="affiliate_trial",
        to_stage="public_traffic",
    )
    assert _ledger_rows(
        configs,
        "SELECT outcome, actor, refusal, channel, code_step IS NOT NULL, flow_run_id FROM approval_attempts ORDER BY id",
    ) == [
        ("refused", "王敏 Wang Min", "owner", "form", 0, str(run.id)),
        ("approved", "赵磊 Zhao Lei", None, "form", 1, str(run.id)),
    ]
    assert _ledger_rows(configs, "SELECT cause, actor, reason FROM stage_changes WHERE brand_id = 'tea'") == [
        ("approval", "赵磊 Zhao Lei", f"GMV holds (review-brand run {run.id})")
    ]


ESCALATING = APPROVERS_YAML + "escalate_after_hours: 0.0005\nescalation: ['@ops']\n"  # 1.8 s


@pytest.mark.integration
def test_an_unanswered_review_escalates_once_then_ends_with_hold(
    prefect_server: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flows.review_brand

    set_secrets(monkeypatch)
    monkeypatch.setattr(flows.review_brand, "PAUSE_POLL_SECONDS", 1)
    with chat_robots({"ops-room": None}) as robots:  # a 企业微信 group robot on 127.0.0.1 that takes escalations
        monkeypatch.setenv("BRANDSTEPS_TEST_ESCALATION_URL", robots.wecom_url("ops-room"))
        channel = {"kind": "wecom", "url_env": "BRANDSTEPS_TEST_ESCALATION_URL", "events": ["escalation"]}
        configs = awaiting_portfolio(tmp_path, ESCALATING, notify=[channel])
        thread, out = _review_in_thread(configs, timeout_hours=0.002)  # 7.2 s
        thread.join(timeout=120)
        received = robots.bodies("wecom")
    # nobody answered: the review ended with its default outcome, and tea still waits in its stage
    assert out["result"] == flows.review_brand.ReviewOutcome(brand_id="tea", outcome="hold", stage="affiliate_trial")
    # one message, naming who is asked: tea's owner 王敏 is not; 赵磊 answers affiliate_trial; @ops is the escalation list
    assert len(received) == 1
    content = received[0]["markdown"]["content"]
    assert "Review of 山野茶社 waits: 0.0005 hours without an answer" in content
    assert (
        "山野茶社 (tea) awaits approval in affiliate_trial since 2026-01-02; its review has had no answer for 0.0005 hours. "
        "Asked: 赵磊 Zhao Lei, @ops. Without an answer within 0.0015 more hours the review ends with hold: tea stays in affiliate_trial."
    ) in content
    assert _ledger_rows(configs, "SELECT outcome, actor, reason, channel FROM approval_attempts") == [
        (
            "escalated",
            "review-brand",
            "no answer within 0.0005 hours: asked 赵磊 Zhao Lei, @ops again; sent to 1 of 1 channels",
            "review-brand",
        )
    ]
    assert _ledger_rows(configs, "SELECT cause, action, actor FROM stage_changes WHERE brand_id = 'tea'") == [
        ("review_timeout", "hold", "review-brand")
    ]
