"""Which brands need attention most: the tiers, and each brand's place in them from its decisions."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from brandsteps.catalogue import EXITED, GRADUATED

SETBACKS = ("demote", "exit", "recycle")  # the moves that cost a brand its progress
FAILING = ("FAIL", "ERROR")
RECENT_DAYS = 14

# Need of attention, most first. A brand takes the first tier it meets, from its decisions of the report's range:
ATTENTION_TIERS: tuple[tuple[str, str], ...] = (
    ("set-back", "demoted, exited or recycled in the last days of the range: it lost progress"),
    ("overdue", "past max_days_in_stage on its last decision"),
    ("failing", "its last decision was FAIL (held, or guardrail) or ERROR (its data failed validation)"),
    ("awaiting-approval", "earned its passes and waits for a person"),
    ("in-progress", "on its way: passing, or too early to judge"),
    ("finished", "graduated or exited earlier, nothing failing"),
)


def attention_order(
    decisions_frame: pd.DataFrame, date_to: date | None = None, recent_days: int = RECENT_DAYS
) -> pd.DataFrame:
    """rank_attention of read_report_data's decisions: each brand's last decision, recent set-backs and fails."""
    d = decisions_frame.sort_values(["brand_id", "as_of"], kind="stable")
    end = pd.Timestamp(date_to) if date_to is not None else d["as_of"].max()
    recent = d[(d["as_of"] > end - pd.Timedelta(days=recent_days)) & (d["as_of"] <= end)]
    recent = recent[recent["action"].isin(SETBACKS) | recent["verdict"].isin(FAILING)]
    return rank_attention(d.drop_duplicates("brand_id", keep="last"), recent)


def rank_attention(last: pd.DataFrame, recent: pd.DataFrame) -> pd.DataFrame:
    """One row per brand, most in need of attention first.

    Columns: brand_id, tier, label, why, recent_fails, days_in_stage, stage.

    last: each brand's latest decision; recent: its decisions of the last days that set it back or
    were FAIL/ERROR. Tiers (ATTENTION_TIERS): a recent set-back, then overdue, failing, awaiting
    approval, in progress, finished; a brand takes the first that applies. Within a tier: more
    FAIL/ERROR days recently first (failing steadily before failing once), then longer in stage
    (stuck longest), then brand id, so the order never depends on the database's row order.
    """
    last = (
        last.sort_values(["brand_id", "as_of"], kind="stable")
        .drop_duplicates("brand_id", keep="last")
        .set_index("brand_id")
    )
    recent = recent.sort_values(["brand_id", "as_of"], kind="stable")
    setback = (
        recent[recent["action"].isin(SETBACKS)]
        .drop_duplicates("brand_id", keep="last")
        .set_index("brand_id")
        .reindex(last.index)
    )
    fails = recent[recent["verdict"].isin(FAILING)].groupby("brand_id").size().reindex(last.index, fill_value=0)
    tier = np.select(
        [
            setback["action"].notna().to_numpy(),
            last["overdue"].to_numpy(dtype=bool),
            last["verdict"].isin(FAILING).to_numpy(),
            (last["action"] == "await_approval").to_numpy(),
            ~last["to_stage"].isin((GRADUATED, EXITED)).to_numpy(),
        ],
        [0, 1, 2, 3, 4],
        default=5,
    )
    whys = [
        _why(int(t), row, back) for t, row, back in zip(tier, last.itertuples(), setback.itertuples(), strict=True)
    ]  # one line per brand
    out = pd.DataFrame(
        {
            "brand_id": last.index.to_numpy(dtype=object),
            "tier": tier.astype(int),
            "label": [ATTENTION_TIERS[t][0] for t in tier],
            "why": whys,
            "recent_fails": fails.to_numpy(dtype=int),
            "days_in_stage": last["days_in_stage"].to_numpy(dtype=int),
            "stage": last["to_stage"].to_numpy(dtype=object),
        }
    )
    out = out.sort_values(
        ["tier", "recent_fails", "days_in_stage", "brand_id"], ascending=[True, False, False, True], kind="stable"
    )
    return out.reset_index(drop=True)


def _why(tier: int, last: Any, setback: Any) -> str:
    day = f"day {int(last.days_in_stage)} in {last.to_stage}"
    if tier == 0:
        return f"{setback.action} on {setback.as_of:%Y-%m-%d}: {setback.stage} → {setback.to_stage}; now {day}"
    if tier == 1:
        return f"overdue, {day}: {last.verdict} {last.reason}"
    if tier == 3:
        return f"awaiting approval to leave {last.stage} ({day})"
    if tier == 5:
        return f"{last.to_stage}; last decision {last.as_of:%Y-%m-%d}: {last.verdict}"
    return f"{last.verdict}, {day}: {last.reason}"
