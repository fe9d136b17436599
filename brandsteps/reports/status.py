"""The portfolio's current position read from the ledger: funnel, each brand's latest decision and last stage change."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import date
from typing import Any

import sqlalchemy as sa

from brandsteps.catalogue import STAGE_ORDER
from brandsteps.ledger import Ledger, brand_state, decisions, stage_changes
from brandsteps.reports.roster import BrandListing
from brandsteps.reports.summary import stage_sort_key

_d = decisions.c
_s = brand_state.c
_c = stage_changes.c
# Dates come as the database gives them (ISO text in SQLite, a date from PostgreSQL) and are shown
# with str(): SQLAlchemy's date parsing per row would cost more than the query.
_STATE = sa.select(
    _s.brand_id,
    _s.stage,
    sa.type_coerce(_s.stage_entered_on, sa.String),
    sa.type_coerce(_s.last_as_of, sa.String),
    _s.awaiting,
)
_DECISION = (_d.brand_id, _d.verdict, _d.action, _d.reason, _d.overdue, _d.stage)  # no criteria JSON
# Most brands' latest decision is of the last cycle's day: that day's decisions come through the
# as_of index in the order they were written, several times cheaper than one brand_id search each.
_OF_DAY = sa.select(*_DECISION).where(_d.as_of == sa.bindparam("day"))
# The brands last decided on another day: one search each in the (brand_id, as_of) unique index.
_OF_ANY_DAY = sa.select(*_DECISION).select_from(
    brand_state.join(decisions, sa.and_(_d.brand_id == _s.brand_id, _d.as_of == _s.last_as_of))
)
_OF_OTHER_DAYS = _OF_ANY_DAY.where(_s.last_as_of.not_in(sa.bindparam("days", expanding=True)))
DAY_READ_MIN_BRANDS = 1_000  # a day is read whole when at least this many brands were last decided on it
LAST_CHANGE_FIELDS = ("as_of", "cause", "actor", "reason", "from_stage", "to_stage", "action")
# Each brand's last stage change: the newest id per brand from the (brand_id, id) index alone, then those rows by key.
_LAST_CHANGES = sa.select(
    _c.brand_id,
    sa.type_coerce(_c.as_of, sa.String),
    _c.cause,
    _c.actor,
    _c.reason,
    _c.from_stage,
    _c.to_stage,
    _c.action,
).where(_c.id.in_(sa.select(sa.func.max(_c.id)).group_by(_c.brand_id).scalar_subquery()))


def _driver_rows(result: sa.CursorResult[Any]) -> list[Any]:
    """The rows as the database driver fetched them (tuples).

    The statements' columns need no conversion (text, numbers, dates shown with str()), and at
    100,000 rows SQLAlchemy's row objects cost as much as the database's read itself.
    """
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


def _as_date(day: date | str) -> date:
    """A day as the state rows give it (ISO text in SQLite, a date from PostgreSQL), to bind as a date."""
    return day if isinstance(day, date) else date.fromisoformat(day)


def latest_decisions(ledger: Ledger) -> tuple[dict[str, Any], dict[str, Any], dict[str, dict[str, Any]]]:
    """Every brand's state row (brand_id, stage, entered, last day, awaiting), its latest decision and its last
    stage change (LAST_CHANGE_FIELDS), each by brand_id."""
    with ledger.engine.connect() as conn:
        states = {row[0]: row for row in _driver_rows(conn.execute(_STATE))}
        per_day = Counter(row[3] for row in states.values())
        days = [day for day, n in per_day.items() if n >= DAY_READ_MIN_BRANDS]
        latest: dict[str, Any] = {}
        for day in days:
            # a day's decisions include brands decided again later: each brand's row of its last day only
            rows = _driver_rows(conn.execute(_OF_DAY, {"day": _as_date(day)}))
            latest.update(
                (row[0], row) for row in rows if (state := states.get(row[0])) is not None and state[3] == day
            )
        if len(days) < len(per_day):
            others = (
                conn.execute(_OF_OTHER_DAYS, {"days": [_as_date(d) for d in days]})
                if days
                else conn.execute(_OF_ANY_DAY)
            )
            latest.update((row[0], row) for row in _driver_rows(others))
        changes = {
            row[0]: dict(zip(LAST_CHANGE_FIELDS, (str(row[1]), *row[2:]), strict=True))
            for row in _driver_rows(conn.execute(_LAST_CHANGES))
        }
    return states, latest, changes


def portfolio_status(brands: Iterable[BrandListing], ledger: Ledger) -> dict[str, Any]:
    """Funnel and every configured brand's row (brands never decided sit in their configured stage).

    Plain Python over the rows: at 100,000 brands, boxing a DataFrame's cells back into dicts cost
    more than the query.
    """
    state_of, latest, changes = latest_decisions(ledger)
    no_decision = (None, None, None, None, False, None)
    out = []
    for brand in brands:
        state = state_of.get(brand.brand_id)
        if state is None:  # never decided: its configured stage and start, and no last day
            stage, entered, last, awaiting = brand.stage, brand.start_date, None, False
        else:
            _, stage, entered, last, awaiting = state
        _, verdict, action, reason, overdue, decided_in = latest.get(brand.brand_id, no_decision)
        out.append(
            {
                "brand_id": brand.brand_id,
                "name": brand.name,
                "tier": brand.tier,
                "owner": brand.owner,
                "stage": stage,
                "stage_entered_on": str(entered),
                "last_as_of": None if last is None else str(last),
                "verdict": verdict,
                "action": action,
                "reason": reason,
                "awaiting": bool(awaiting),
                # past the SLA of the stage it was decided in: an approval since then moved it to a new clock
                "overdue": bool(overdue) and decided_in == stage,
                "paused": brand.paused,
                "last_change": changes.get(brand.brand_id),  # None: never moved (nor approved, rejected or timed out)
            }
        )
    rank = {stage: stage_sort_key(str(stage)) for stage in {r["stage"] for r in out}}
    out.sort(key=lambda r: (rank[r["stage"]], r["brand_id"]))
    counts = Counter(r["stage"] for r in out)
    return {
        "ledger": ledger.display_url,
        "last_cycle": ledger.last_cycle(),
        "funnel": {s: counts.get(s, 0) for s in STAGE_ORDER},
        "brands": out,
    }
