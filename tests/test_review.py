"""Approval answers: required fields, length limits, and the key that keeps one review per wait."""

from __future__ import annotations

import json
import re
from datetime import date

import pandas as pd
import pytest
from pydantic import ValidationError

from brandsteps.review import REASON_MAX, REVIEWER_MAX, ReviewAnswer, evidence_markdown, review_key, review_run_name, review_run_names


@pytest.mark.parametrize(
    ("fields", "ok"),
    [
        ({"decision": "approve", "reviewer": "Li Wei", "reason": "GMV holds"}, True),
        ({"decision": "reject", "reviewer": "王芳", "reason": "退款率偏高"}, True),  # Chinese names and reasons are fine
        ({"decision": "maybe", "reviewer": "Li Wei", "reason": "GMV holds"}, False),  # only approve or reject
        ({"decision": "approve", "reviewer": "Li Wei"}, False),  # a reason is required
        ({"decision": "approve", "reviewer": "  ", "reason": "GMV holds"}, False),  # blank after stripping
        ({"decision": "approve", "reviewer": "x" * (REVIEWER_MAX + 1), "reason": "GMV holds"}, False),
        ({"decision": "approve", "reviewer": "Li Wei", "reason": "y" * (REASON_MAX + 1)}, False),
        ({"decision": "approve", "reviewer": "Li Wei", "reason": "GMV holds", "extra": 1}, False),  # unknown fields refused
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
    assert list(names) == [review_run_name("acme-1", "self_broadcast"), review_run_name("品牌/x", "public_traffic")] == [
        "review-acme-1-self_broadcast", "review--x-public_traffic"]


def _criterion(metric: str, op: str, threshold: float, value: float, reason: str, **extra: object) -> dict:
    return {"role": "criterion", "source_stage": "affiliate_trial", "metric": metric, "op": op, "threshold": threshold, "kind": "must", "weight": 1.0,
            "shadow": False, "value": value, "result": "pass", "reason": reason, **extra}


WAITING = {
    # the brand's latest decision (2026-12-06) of a wait that began on 2026-09-21 (the ledger's brand_state)
    "brand_id": "tea", "as_of": date(2026, 12, 6), "stage": "affiliate_trial", "verdict": "PASS", "action": "await_approval",
    "to_stage": "affiliate_trial", "reason": "all must criteria pass; score 1 >= pass_score 1",
    "action_reason": "awaiting approval to advance to public_traffic since 2026-09-21", "days_in_stage": 90, "pass_streak": 2,
    "overdue": False, "policy_version": "abc", "flow_run_id": None,
    "criteria": json.dumps([
        _criterion("gpm", ">=", 2000.0, 3163.28, "gpm ¥3,163.28 >= ¥2,000.00"),
        _criterion("refund_rate", "<", 0.25, 0.1739, "refund_rate 17.39% < 25%"),
        _criterion("aov", ">=", 999.0, 80.0, "shadow aov ¥80.00 < ¥999.00", shadow=True, result="fail"),  # shadow: not a key number
    ]),
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
    assert "| refund_rate | must | 17.39% | < | 25% | pass | refund_rate 17.39% < 25% |" in text  # the full evidence follows
