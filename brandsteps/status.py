"""The portfolio's current position read from the ledger: funnel and each brand's latest decision."""

from __future__ import annotations

from typing import Any

import pandas as pd
import sqlalchemy as sa

from brandsteps.config import Portfolio
from brandsteps.cycle import FUNNEL_ORDER, brand_table
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
    """Funnel and every brand's row: configured brands joined with the ledger in one merge."""
    brands = brand_table(portfolio)
    state = latest_decisions(ledger).set_index("brand_id").reindex(brands.index)
    known = state["stage"].notna()
    table = pd.DataFrame(
        {
            "brand_id": brands.index,
            "name": brands["name"],
            "tier": brands["tier"],
            "owner": brands["owner"],
            "stage": state["stage"].where(known, brands["config_stage"]),
            "stage_entered_on": state["stage_entered_on"].astype(str).where(known, brands["start_date"].dt.strftime("%Y-%m-%d")),
            "last_as_of": state["last_as_of"].astype(str).where(known, None),
            "verdict": state["verdict"],
            "action": state["action"],
            "reason": state["reason"],
            "awaiting": state["awaiting"].fillna(False).astype(bool),
            "overdue": state["overdue"].fillna(False).astype(bool),
            "paused": brands["paused"],
        }
    )
    table["order"] = table["stage"].map(stage_sort_key)
    table = table.reset_index(drop=True).sort_values(["order", "brand_id"]).drop(columns="order")
    counts = table["stage"].value_counts()
    rows = table.astype(object).where(table.notna(), None).to_dict("records")
    return {
        "ledger": ledger.display_url,
        "last_cycle": ledger.last_cycle(),
        "funnel": {s: int(counts.get(s, 0)) for s in FUNNEL_ORDER},
        "brands": rows,
    }
