"""Whether each brand's data for a day has arrived, and what the data deadline makes of a brand whose data has not.

A brand is ready for as_of when every base column its deciding criteria read has a value dated as_of (dated
as_of − lag_days for a lagged criterion). Before the deadline an unready brand is left undecided, for a later run;
from the deadline on it is decided INCONCLUSIVE, its reason naming what is missing (docs/design.md#data-timing).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from brandsteps.catalogue import EVALUATED_STAGES, EXITED
from brandsteps.config import Portfolio
from brandsteps.engine.evidence import join_groups
from brandsteps.engine.rules import deciding_inputs

UNREADY = "unready"  # a cohorts status: due, but its data has not arrived and the deadline has not passed


def deadline_of(as_of: date, data_deadline: str | None, timezone: str) -> datetime | None:
    """When as_of's data is due: data_deadline (HH:MM, local time in timezone) on the day after as_of.

    None: no deadline.
    """
    if data_deadline is None:
        return None
    hour, minute = (int(part) for part in data_deadline.split(":"))
    return datetime.combine(as_of + timedelta(days=1), time(hour, minute), tzinfo=ZoneInfo(timezone))


def missing_inputs(portfolio: Portfolio, daily: pd.DataFrame, cohorts: pd.DataFrame, as_of: date) -> pd.Series:
    """Per cohorts row: what its deciding criteria read that has no value yet, e.g. 'ad_gmv, ad_spend on 2026-12-06'
    (several days joined with '; ', the latest first); '' for a ready brand, and for brands not due or exited.
    A lagged criterion awaits its day (as_of − lag_days) only when that day is in the brand's stage.

    daily: validated rows (brand_id, date, base columns); a column it lacks counts as missing.
    """
    n = len(cohorts)
    out = np.full(n, "", dtype=object)
    due = (cohorts["status"].to_numpy() == "due") & (cohorts["stage"].to_numpy(dtype=object) != EXITED)
    if not due.any():
        return pd.Series(out, index=cohorts.index, dtype=object)
    keys, need = deciding_inputs(portfolio, cohorts.index, cohorts["stage"].to_numpy(dtype=object))
    # a lagged window that ends before the brand entered its stage reads no day: nothing of it is awaited
    entered = cohorts["stage_entered_on"].to_numpy(dtype="datetime64[ns]")
    days = np.array([np.datetime64(as_of - timedelta(days=lag), "ns") for _, lag in keys], dtype="datetime64[ns]")
    need &= days[None, :] >= entered[:, None]
    have = _measured(daily, cohorts.index, keys, as_of)
    brand, key = np.nonzero(need & ~have & due[:, None])
    if len(brand):
        lags = np.array([lag for _, lag in keys], dtype=np.int64)
        columns = np.array([column for column, _ in keys], dtype=object)
        distinct_lags = np.unique(lags)
        lag_code = np.searchsorted(distinct_lags, lags[key])
        # one group per brand and day: the columns missing on that day, then the days of each brand
        group = brand * len(distinct_lags) + lag_code
        order = np.lexsort((key, group))
        per_day = join_groups(group[order], columns[key[order]], n * len(distinct_lags), ", ")
        days = np.array([f" on {as_of - timedelta(days=int(lag))}" for lag in distinct_lags], dtype=object)
        grid = per_day.reshape(n, len(distinct_lags))
        filled = grid != ""
        b, d = np.nonzero(filled)
        out = join_groups(b, (grid[b, d] + days[d]).astype(object), n, "; ")
    return pd.Series(out, index=cohorts.index, dtype=object)


def _measured(daily: pd.DataFrame, brand_ids: pd.Index, keys: list[tuple[str, int]], as_of: date) -> np.ndarray:
    """brands × keys: whether the brand has a value of the key's column dated as_of − the key's lag."""
    have = np.zeros((len(brand_ids), len(keys)), dtype=bool)
    if daily.empty or not keys:
        return have
    dates = pd.to_datetime(daily["date"]).to_numpy(dtype="datetime64[ns]")
    for lag in sorted({lag for _, lag in keys}):  # a handful of lags, each one day's rows
        rows = np.flatnonzero(dates == np.datetime64(as_of - timedelta(days=lag), "ns"))
        pos = brand_ids.get_indexer(
            pd.Index(np.asarray(daily["brand_id"].to_numpy()[rows], dtype=object), dtype=object)
        )
        known = pos >= 0
        for j, (column, key_lag) in enumerate(keys):
            if key_lag == lag and column in daily.columns:
                values = daily[column].to_numpy(dtype=float)[rows]
                have[pos[known & ~np.isnan(values)], j] = True
    return have


def apply_deadline(cohorts: pd.DataFrame, missing: pd.Series, deadline: datetime | None, now: datetime) -> pd.DataFrame:
    """The cohorts with the deadline's rule applied to unready brands (missing != '').

    Without a deadline nothing changes: brands are decided on what is there. Before the deadline an unready
    brand's status becomes UNREADY (not decided now; a later run decides it). From the deadline on it stays
    due with not_ready set to the reason its verdict quotes: INCONCLUSIVE, never a move.
    """
    if deadline is None:
        return cohorts
    out = cohorts.copy()
    unready = (missing.reindex(out.index).fillna("") != "").to_numpy(dtype=bool)
    if now < deadline:
        out.loc[unready, "status"] = UNREADY
        out["not_ready"] = ""
    else:
        when = f"{deadline:%Y-%m-%d %H:%M}"
        text = "data not in by the deadline " + when + ": no " + missing.reindex(out.index).fillna("").astype(object)
        out["not_ready"] = np.where(unready, text.to_numpy(dtype=object), "").astype(object)
    return out


def unready_table(cohorts: pd.DataFrame, missing: pd.Series) -> pd.DataFrame:
    """The brands left undecided for their data (status UNREADY): brand_id, name, stage, missing.

    In stage order, then by id.
    """
    waiting = cohorts[cohorts["status"].to_numpy() == UNREADY]
    table = pd.DataFrame(
        {
            "brand_id": waiting.index.to_numpy(dtype=object),
            "name": waiting["name"].to_numpy(dtype=object)
            if "name" in waiting
            else waiting.index.to_numpy(dtype=object),
            "stage": waiting["stage"].to_numpy(dtype=object),
            "missing": missing.reindex(waiting.index).fillna("").to_numpy(dtype=object),
        }
    )
    order = pd.Categorical(table["stage"], categories=list(EVALUATED_STAGES), ordered=True)
    return (
        table.assign(_order=order)
        .sort_values(["_order", "brand_id"], kind="stable")
        .drop(columns="_order")
        .reset_index(drop=True)
    )
