"""Approval reviews: the answer a person gives, its validation, and the evidence they read."""

from __future__ import annotations

import re
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from brandsteps.report import brand_report_markdown

REVIEWER_MAX = 80
REASON_MAX = 500


class ReviewAnswer(BaseModel):
    """A reviewer's answer to "should this brand advance?"; all fields required, lengths limited."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    decision: Literal["approve", "reject"] = Field(description="approve: the brand advances (or graduates); reject: it stays and must earn its passes again")
    reviewer: str = Field(min_length=2, max_length=REVIEWER_MAX, description="Your name, recorded in the ledger")
    reason: str = Field(min_length=3, max_length=REASON_MAX, description="Why, in a sentence; recorded in the ledger")


def review_key(brand_id: str, stage: str, awaiting_since: str) -> str:
    """One review per brand, stage and wait: the key that keeps a second run from starting.

    Also the run's pause key, which Prefect allows only lowercase letters, digits and dashes.
    """
    return re.sub(r"[^a-z0-9-]+", "-", f"review-{brand_id}-{stage}-{awaiting_since}".lower())


def review_run_name(brand_id: str, stage: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"review-{brand_id}-{stage}")


def evidence_markdown(decision: dict[str, Any], name: str, history: pd.DataFrame, timeout_hours: float) -> str:
    """What the reviewer reads in the form: the decision report plus what each answer does."""
    stage = decision["stage"]
    head = (
        f"**{name} ({decision['brand_id']}) passed {stage} and awaits approval since {decision.get('awaiting_since') or decision['as_of']}.**\n\n"
        "Approve to move it on, or reject to keep it in the stage (its passes then start again from zero). "
        f"Without an answer within {timeout_hours:g} hours the review ends with **hold**: the brand stays "
        "where it is, still awaiting approval (`brandsteps approve` or a new review-brand run can decide later).\n\n"
    )
    return head + brand_report_markdown(decision, name, history)
