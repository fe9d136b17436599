"""The portfolio's current position read from the ledger: funnel and each brand's latest decision."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pandas as pd
import sqlalchemy as sa

from brandsteps.config import Portfolio
from brandsteps.cycle import FUNNEL_ORDER
from brandsteps.ledger import Ledger, brand_state, decisions
from brandsteps.report import stage_sort_key

_d = decisions.c
_s = brand_state.c
# Each brand's state joined with its latest decision: one pass over brand_state, one lookup per brand
# in the (brand_id, as_of) unique index, and no criteria JSON.
_LATEST = sa.select(
    _s.brand_id, _s.stage, _s.stage_entered_on, _s.pass_streak, _s.awaiting, _s.awaiting_since, _s.last_as_of,
    _d.verdict, _d.action, _d.reason, _d.action_reason, _d.overdue, _d.days_in_stage, _d.policy_version,
).select_from(brand_state.outerjoin(decisions, sa.and_(_d.brand_id == _s.brand_id, _d.as_of == _s.last_as_of)))


def _latest_rows(ledger: Ledger) -> tuple[list[str], list[tuple[Any, ...]]]:
    with ledger.engine.connect() as conn:
        result = conn.execute(_LATEST)
        return list(result.keys()), [tuple(row) for row in result]


def latest_decisions(ledger: Ledger) -> pd.DataFrame:
    """Each brand's state joined with its latest decision (one indexed join, no criteria JSON)."""
    columns, rows = _latest_rows(ledger)
    return pd.DataFrame.from_records(rows, columns=columns)


def portfolio_status(portfolio: Portfolio, ledger: Ledger) -> dict[str, Any]:
    """Funnel and every configured brand's row (brands never decided sit in their configured stage).

    Plain Python over the rows: at 100,000 brands, boxing a DataFrame's cells back into dicts cost
    more than the query.
    """
    columns, rows = _latest_rows(ledger)
    i_stage, i_entered, i_last, i_verdict, i_action, i_reason, i_awaiting, i_overdue = (
        columns.index(c) for c in ("stage", "stage_entered_on", "last_as_of", "verdict", "action", "reason", "awaiting", "overdue")
    )
    latest = {row[0]: row for row in rows}
    out = []
    for brand_id, brand in portfolio.brands.items():
        row = latest.get(brand_id)
        if row is None:  # never decided: its configured stage and start
            out.append({
                "brand_id": brand_id, "name": brand.name, "tier": brand.tier, "owner": brand.owner,
                "stage": brand.stage, "stage_entered_on": brand.start_date.isoformat(), "last_as_of": None,
                "verdict": None, "action": None, "reason": None, "awaiting": False, "overdue": False, "paused": brand.paused,
            })
            continue
        out.append({
            "brand_id": brand_id, "name": brand.name, "tier": brand.tier, "owner": brand.owner,
            "stage": row[i_stage], "stage_entered_on": str(row[i_entered]), "last_as_of": str(row[i_last]),
            "verdict": row[i_verdict], "action": row[i_action], "reason": row[i_reason],
            "awaiting": bool(row[i_awaiting]), "overdue": bool(row[i_overdue]), "paused": brand.paused,
        })
    rank = {stage: stage_sort_key(stage) for stage in {r["stage"] for r in out}}
    out.sort(key=lambda r: (rank[r["stage"]], r["brand_id"]))
    counts = Counter(r["stage"] for r in out)
    return {
        "ledger": ledger.display_url,
        "last_cycle": ledger.last_cycle(),
        "funnel": {s: counts.get(s, 0) for s in FUNNEL_ORDER},
        "brands": out,
    }
