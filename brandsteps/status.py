"""The portfolio's current position read from the ledger: funnel and each brand's latest decision."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from brandsteps.cycle import FUNNEL_ORDER
from brandsteps.ledger import Ledger, brand_state, decisions
from brandsteps.report import stage_sort_key
from brandsteps.roster import BrandListing

_d = decisions.c
_s = brand_state.c
# Each brand's state joined with its latest decision: one pass over brand_state, one lookup per brand
# in the (brand_id, as_of) unique index, and no criteria JSON.
# Dates come as the database gives them (ISO text in SQLite, a date from PostgreSQL) and are shown
# with str(): SQLAlchemy's date parsing per row would cost more than the query.
_LATEST = sa.select(
    _s.brand_id, _s.stage, sa.type_coerce(_s.stage_entered_on, sa.String), sa.type_coerce(_s.last_as_of, sa.String),
    _d.verdict, _d.action, _d.reason, _s.awaiting, _d.overdue,
).select_from(brand_state.outerjoin(decisions, sa.and_(_d.brand_id == _s.brand_id, _d.as_of == _s.last_as_of)))


def portfolio_status(brands: Iterable[BrandListing], ledger: Ledger) -> dict[str, Any]:
    """Funnel and every configured brand's row (brands never decided sit in their configured stage).

    Plain Python over the rows: at 100,000 brands, boxing a DataFrame's cells back into dicts cost
    more than the query.
    """
    with ledger.engine.connect() as conn:
        latest = {row[0]: row for row in conn.execute(_LATEST).all()}
    out = []
    for brand in brands:
        # never decided: its configured stage and start, and no last day (brand_state.last_as_of is never null)
        never_decided = (brand.brand_id, brand.stage, brand.start_date, None, None, None, None, False, False)
        _, stage, entered, last, verdict, action, reason, awaiting, overdue = latest.get(brand.brand_id, never_decided)
        out.append({
            "brand_id": brand.brand_id, "name": brand.name, "tier": brand.tier, "owner": brand.owner,
            "stage": stage, "stage_entered_on": str(entered), "last_as_of": None if last is None else str(last),
            "verdict": verdict, "action": action, "reason": reason, "awaiting": bool(awaiting), "overdue": bool(overdue), "paused": brand.paused,
        })
    rank = {stage: stage_sort_key(str(stage)) for stage in {r["stage"] for r in out}}
    out.sort(key=lambda r: (rank[r["stage"]], r["brand_id"]))
    counts = Counter(r["stage"] for r in out)
    return {
        "ledger": ledger.display_url,
        "last_cycle": ledger.last_cycle(),
        "funnel": {s: counts.get(s, 0) for s in FUNNEL_ORDER},
        "brands": out,
    }
