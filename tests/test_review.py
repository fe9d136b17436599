"""Approval answers: required fields, length limits, and the key that keeps one review per wait."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from brandsteps.review import REASON_MAX, REVIEWER_MAX, ReviewAnswer, review_key


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
