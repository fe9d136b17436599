"""The portfolio's current position read from the ledger: funnel and each brand's latest decision."""

from __future__ import annotations

from typing import Any

import pandas as pd
import sqlalchemy as sa

from brandsteps.config import Portfolio
from brandsteps.cycle import FUNNEL_ORDER
from brandsteps.ledger import Ledger, brand_state, decisions
from brandsteps.report import stage_sort_key


def latest_decisions(ledger: Ledger) -> pd.DataFrame:
    """Each brand's state joined with its latest decision (one indexed join, no criteria JSON)."""
    d = decisions.c
    s = brand_state.c
    query = sa.select(
        s.brand_id, s.stage, s.stage_entered_on, s.pass_streak, s.awaiting, s.awaiting_since, s.last_as_of,
        d.verdict, d.action, d.reason, d.action_reason, d.overdue, d.days_in_stage, d.policy_version,
    ).select_from(brand_state.outerjoin(decisions, sa.and_(d.brand_id == s.brand_id, d.as_of == s.last_as_of)))
    with ledger.engine.connect() as conn:
        return pd.read_sql(query, conn)


def portfolio_status(portfolio: Portfolio, ledger: Ledger) -> dict[str, Any]:
    state = latest_decisions(ledger).set_index("brand_id")
    rows = []
    for brand_id, brand in portfolio.brands.items():
        known = brand_id in state.index
        r = state.loc[brand_id] if known else None
        rows.append(
            {
                "brand_id": brand_id,
                "name": brand.name,
                "tier": brand.tier,
                "owner": brand.owner,
                "stage": r["stage"] if known else brand.stage,
                "stage_entered_on": str(r["stage_entered_on"]) if known else str(brand.start_date),
                "last_as_of": str(r["last_as_of"]) if known else None,
                "verdict": r["verdict"] if known else None,
                "action": r["action"] if known else None,
                "reason": r["reason"] if known else None,
                "awaiting": bool(r["awaiting"]) if known else False,
                "overdue": bool(r["overdue"]) if known and pd.notna(r["overdue"]) else False,
                "paused": brand.paused,
            }
        )
    rows.sort(key=lambda b: (stage_sort_key(b["stage"]), b["brand_id"]))
    counts = pd.Series([b["stage"] for b in rows], dtype=object).value_counts()
    return {
        "ledger": ledger.display_url,
        "last_cycle": ledger.last_cycle(),
        "funnel": {s: int(counts.get(s, 0)) for s in FUNNEL_ORDER},
        "brands": rows,
    }
