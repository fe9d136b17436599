"""The report's data from the ledger: decisions with their criteria, or the portfolio aggregated by the database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from brandsteps.catalogue import STAGE_ORDER
from brandsteps.engine.diagnosis import criteria_frame
from brandsteps.ledger import Ledger, decisions
from brandsteps.reports.visual.attention import FAILING, RECENT_DAYS, SETBACKS, rank_attention

FIELDS = [
    "brand_id",
    "as_of",
    "stage",
    "to_stage",
    "action",
    "verdict",
    "days_in_stage",
    "overdue",
    "reason",
    "criteria",
]
MOVES = ("advance", "graduate", "demote", "exit", "recycle")


@dataclass
class ReportData:
    """The ledger's decisions of the report range (of some brands, or all), and their criteria values over time."""

    decisions: pd.DataFrame
    criteria: pd.DataFrame  # brand_id, as_of, stage, metric, op, threshold, value, result
    date_from: date
    date_to: date


@dataclass
class Overview:
    """What the report shows of the whole portfolio, aggregated by the database: no brand's criteria are read for it."""

    funnel: pd.DataFrame  # one row per day, one column per stage: brands after the day's decisions
    durations: pd.DataFrame  # stage_durations' columns
    order: pd.DataFrame  # attention_order's columns
    n_decisions: int
    date_from: date
    date_to: date


def _in_range(query: sa.Select[Any], date_from: date | None, date_to: date | None) -> sa.Select[Any]:
    if date_from is not None:
        query = query.where(decisions.c.as_of >= date_from)
    if date_to is not None:
        query = query.where(decisions.c.as_of <= date_to)
    return query


def _no_decisions(ledger: Ledger, date_from: date | None, date_to: date | None) -> ValueError:
    return ValueError(
        f"the ledger {ledger.display_url} has no decisions"
        + (f" between {date_from} and {date_to}" if date_from or date_to else "")
    )


def read_report_data(
    ledger: Ledger, date_from: date | None = None, date_to: date | None = None, brands: list[str] | None = None
) -> ReportData:
    """Decisions between the two days (default: the whole ledger) of these brands (default: all).

    Read with bound parameters.
    """
    query = _in_range(
        sa.select(*[decisions.c[c] for c in FIELDS]).order_by(decisions.c.as_of, decisions.c.brand_id),
        date_from,
        date_to,
    )
    if brands is not None:
        query = query.where(decisions.c.brand_id.in_(brands))  # the unique index (brand_id, as_of) finds them
    with ledger.engine.connect() as conn:
        frame = pd.read_sql(query, conn)
    if frame.empty and brands is None:
        raise _no_decisions(ledger, date_from, date_to)
    frame["as_of"] = pd.to_datetime(frame["as_of"])
    frame["overdue"] = frame["overdue"].astype(bool)
    crit = criteria_frame(frame)
    crit = crit[(crit["role"] == "criterion") & ~crit["shadow"]]
    rows = frame.iloc[crit["row"].to_numpy(dtype=np.int64)]
    long = pd.DataFrame(
        {
            "brand_id": rows["brand_id"].to_numpy(),
            "as_of": pd.DatetimeIndex(rows["as_of"]),
            "stage": rows["stage"].to_numpy(),
            "metric": crit["metric"].to_numpy(),
            "op": crit["op"].to_numpy(),
            "threshold": crit["threshold"].to_numpy(dtype=float),
            "value": crit["value"].to_numpy(dtype=float),
            "result": crit["result"].to_numpy(),
        }
    )
    first = frame["as_of"].min().date() if len(frame) else date_from
    last = frame["as_of"].max().date() if len(frame) else date_to
    return ReportData(
        frame.drop(columns=["criteria"]), long, date_from or first or date.today(), date_to or last or date.today()
    )


def read_overview(
    ledger: Ledger, date_from: date | None = None, date_to: date | None = None, recent_days: int = RECENT_DAYS
) -> Overview:
    """The funnel, the completed stays and every brand's need of attention, from a few aggregating queries.

    The same numbers as funnel_over_time, stage_durations and attention_order of read_report_data's
    decisions, without reading every decision's criteria (what a cycle over many brands cannot afford daily).
    """
    c = decisions.c
    with ledger.engine.connect() as conn:
        counts = pd.read_sql(
            _in_range(sa.select(c.as_of, c.to_stage, sa.func.count().label("n")), date_from, date_to).group_by(
                c.as_of, c.to_stage
            ),
            conn,
        )
        if counts.empty:
            raise _no_decisions(ledger, date_from, date_to)
        counts["as_of"] = pd.to_datetime(counts["as_of"])
        first, last_day = counts["as_of"].min().date(), counts["as_of"].max().date()
        end = date_to or last_day
        stays = _in_range(sa.select(c.brand_id, c.stage, c.action, c.days_in_stage, c.as_of), date_from, date_to).where(
            c.action.in_(MOVES)
        )
        durations = pd.read_sql(stays.order_by(c.as_of, c.brand_id), conn)
        latest = (
            _in_range(sa.select(c.brand_id, sa.func.max(c.as_of).label("day")), date_from, date_to)
            .group_by(c.brand_id)
            .subquery()
        )
        last = pd.read_sql(
            sa.select(
                c.brand_id, c.as_of, c.stage, c.to_stage, c.action, c.verdict, c.days_in_stage, c.overdue, c.reason
            ).select_from(decisions.join(latest, (c.brand_id == latest.c.brand_id) & (c.as_of == latest.c.day))),
            conn,
        )
        since = max(end - timedelta(days=recent_days - 1), date_from or first)
        recent = pd.read_sql(
            _in_range(sa.select(c.brand_id, c.as_of, c.stage, c.to_stage, c.action, c.verdict), since, end).where(
                c.action.in_(SETBACKS) | c.verdict.in_(FAILING)
            ),
            conn,
        )
    funnel = counts.pivot_table(index="as_of", columns="to_stage", values="n", aggfunc="sum", fill_value=0)
    funnel = funnel.reindex(columns=[s for s in STAGE_ORDER if s in funnel.columns]).astype(int)
    funnel.columns.name = "to_stage"
    durations["as_of"] = pd.to_datetime(durations["as_of"])
    durations["days_in_stage"] = durations["days_in_stage"].astype(
        np.int64
    )  # also when no brand left a stage (an empty read has no type)
    for frame in (last, recent):
        frame["as_of"] = pd.to_datetime(frame["as_of"])
    last["overdue"] = last["overdue"].astype(bool)
    return Overview(
        funnel, durations, rank_attention(last, recent), int(counts["n"].sum()), date_from or first, date_to or last_day
    )


def funnel_over_time(data: ReportData) -> pd.DataFrame:
    """Brands per stage after each day's decisions: one row per day, one column per stage."""
    counts = data.decisions.pivot_table(
        index="as_of", columns="to_stage", values="brand_id", aggfunc="count", fill_value=0
    )
    return counts.reindex(columns=[s for s in STAGE_ORDER if s in counts.columns]).astype(int)


def stage_durations(data: ReportData) -> pd.DataFrame:
    """Completed stays: the days in stage on the day a brand left it (advance, graduate, demote, exit).

    A recycle restarts the stage: its stay counts as completed too.
    """
    d = data.decisions
    left = d[d["action"].isin(MOVES)]
    return left[["brand_id", "stage", "action", "days_in_stage", "as_of"]].reset_index(drop=True)


def stage_changes_of(data: ReportData) -> pd.DataFrame:
    d = data.decisions
    return d[(d["to_stage"] != d["stage"]) | (d["action"] == "recycle")][
        ["brand_id", "as_of", "stage", "to_stage", "action"]
    ]
