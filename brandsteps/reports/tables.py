"""The tables of a cycle's artifacts: decisions that changed something, overdue brands, brands awaiting approval."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd

TABLE_ROWS = 1000  # a Prefect table artifact is read by people: beyond this many rows, the ledger is the place


def _labels(ids: pd.Series, names: pd.Series) -> np.ndarray:
    """'b001 山野茶社': the id, then the configured name where there is one."""
    ids = ids.astype(str)
    return np.asarray(
        (ids + " " + names.reindex(ids.to_numpy()).fillna("").astype(str).to_numpy()).str.strip(), dtype=object
    )


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """The table's rows as dicts of Python values (what a Prefect table artifact takes)."""
    return cast(list[dict[str, Any]], table.astype(object).to_dict("records"))


def changes_rows(decisions: pd.DataFrame, names: pd.Series, limit: int = TABLE_ROWS) -> list[dict[str, Any]]:
    """Decisions that changed something (a move, an approval wait, or an overdue flag), the first `limit` of them.

    why: the reason of the action taken (the ledger's action_reason: a paused brand holds because it is
    paused, whatever its verdict said), right after the brand.
    """
    if decisions.empty:
        return []
    changed = decisions[_changed(decisions)].head(limit)
    table = pd.DataFrame(
        {
            "brand": _labels(changed["brand_id"], names),
            "why": changed["action_reason"].to_numpy(dtype=object),
            "from": changed["stage"].to_numpy(dtype=object),
            "action": changed["action"].to_numpy(dtype=object),
            "to": changed["to_stage"].to_numpy(dtype=object),
            "verdict": changed["verdict"].to_numpy(dtype=object),
            "overdue": np.where(changed["overdue"].astype(bool), "yes", ""),
        }
    )
    return _records(table)


@dataclass(frozen=True)
class Table:
    """An artifact table's rows, and the columns left out because every row had the same value in them."""

    rows: list[dict[str, Any]]
    same: dict[str, Any]

    def note(self) -> str:
        """The left-out columns for the table's description: 'every row: verdict PASS'."""
        return "; every row: " + ", ".join(f"{k} {v}" for k, v in self.same.items()) if self.same else ""


def without_constant_columns(table: pd.DataFrame, keep: tuple[str, ...]) -> Table:
    """The table's rows without the columns that say the same for every row.

    Such a column is empty, or holds one value in two rows or more.

    keep: columns shown whatever they hold (the brand, the why, what the table is for).
    """
    if table.empty:
        return Table([], {})
    text = table.astype(str)
    same = [
        c
        for c in table.columns
        if c not in keep and text[c].nunique() == 1 and (len(table) > 1 or text[c].iloc[0] == "")
    ]
    first = table.iloc[0]
    return Table(_records(table.drop(columns=same)), {str(c): first[c] for c in same if text[c].iloc[0] != ""})


def changes_table(decisions: pd.DataFrame, names: pd.Series, limit: int = TABLE_ROWS) -> Table:
    """The decision-changes artifact: changes_rows without the columns every row agrees on."""
    return without_constant_columns(pd.DataFrame(changes_rows(decisions, names, limit)), keep=("brand", "why"))


def table_brands(cohorts: pd.DataFrame, max_days: pd.Series) -> pd.DataFrame:
    """What the artifact tables show of each brand besides its decision (index brand_id): name, owner,
    awaiting_since of its ledger state, and max_days (its max_days_in_stage in its stage, NaN: none)."""
    return pd.DataFrame(
        {
            "name": cohorts["name"].to_numpy(dtype=object),
            "owner": cohorts["owner"].to_numpy(dtype=object),
            "awaiting_since": cohorts["awaiting_since"].to_numpy(dtype=object),
            "max_days": max_days.reindex(cohorts.index).to_numpy(dtype=float),
        },
        index=cohorts.index,
    )


def _owners(ids: pd.Series, brands: pd.DataFrame) -> np.ndarray:
    owner = brands["owner"].reindex(ids.astype(str).to_numpy()).to_numpy(dtype=object)
    return np.asarray(np.where(pd.isna(owner) | (owner == ""), "–", owner), dtype=object)


def overdue_table(decisions: pd.DataFrame, brands: pd.DataFrame, limit: int = TABLE_ROWS) -> Table:
    """The overdue-brands artifact: each overdue brand's days in stage against its limit ('12 / 10'), owner and why."""
    rows = decisions[decisions["overdue"].astype(bool)].head(limit) if len(decisions) else decisions
    if rows.empty:
        return Table([], {})
    ids = rows["brand_id"].astype(str)
    max_days = brands["max_days"].reindex(ids.to_numpy()).to_numpy(dtype=float)
    limit_text = np.where(
        np.isnan(max_days), "–", pd.Series(max_days).fillna(0).astype(int).astype(str).to_numpy(dtype=object)
    )
    table = pd.DataFrame(
        {
            "brand": _labels(ids, brands["name"]),
            "days": rows["days_in_stage"].astype(int).astype(str).to_numpy(dtype=object) + " / " + limit_text,
            "owner": _owners(ids, brands),
            "why": rows["action_reason"].to_numpy(dtype=object),
            "stage": rows["stage"].to_numpy(dtype=object),
            "action": rows["action"].to_numpy(dtype=object),
            "verdict": rows["verdict"].to_numpy(dtype=object),
        }
    )
    return without_constant_columns(table, keep=("brand", "days", "owner", "why"))


def awaiting_table(
    decisions: pd.DataFrame, brands: pd.DataFrame, links: Mapping[str, str], limit: int = TABLE_ROWS
) -> Table:
    """The awaiting-approval artifact: each waiting brand's owner, days waiting, since when, and its review run.

    The wait began on the ledger's awaiting_since: the decisions' own (a cycle's fresh decisions carry
    it), else the brand's state (decisions read back from the ledger do not). links: brand → the
    review-brand run's page, where the task layer found one.
    """
    rows = decisions[decisions["action"] == "await_approval"].head(limit) if len(decisions) else decisions
    if rows.empty:
        return Table([], {})
    ids = rows["brand_id"].astype(str)
    state = brands["awaiting_since"].reindex(ids.to_numpy()).to_numpy(dtype=object)
    own = (
        rows["awaiting_since"].to_numpy(dtype=object)
        if "awaiting_since" in rows.columns
        else np.full(len(rows), None, dtype=object)
    )
    since = pd.to_datetime(pd.Series(np.where(pd.isna(own), state, own)), errors="coerce")
    waited = (pd.to_datetime(rows["as_of"]).reset_index(drop=True) - since).dt.days
    link = pd.Series(dict(links), dtype=object).reindex(ids.to_numpy()).to_numpy(dtype=object)
    table = pd.DataFrame(
        {
            "brand": _labels(ids, brands["name"]),
            "owner": _owners(ids, brands),
            "days waiting": waited.astype("Int64").astype(object).where(waited.notna(), "–").to_numpy(dtype=object),
            "since": since.dt.strftime("%Y-%m-%d").fillna("–").to_numpy(dtype=object),
            "review": np.where(
                pd.isna(link), "no review run yet: brandsteps approve " + ids.to_numpy(dtype=object), link
            ),
            "stage": rows["stage"].to_numpy(dtype=object),
            "verdict": rows["verdict"].to_numpy(dtype=object),
        }
    )
    return without_constant_columns(table, keep=("brand", "owner", "days waiting", "since", "review"))


def changed_count(decisions: pd.DataFrame) -> int:
    """How many decisions changed something (changes_rows shows at most TABLE_ROWS of them)."""
    return 0 if decisions.empty else int(_changed(decisions).sum())


def _changed(decisions: pd.DataFrame) -> pd.Series:
    return (decisions["action"] != "hold") | decisions["overdue"].astype(bool)


def quarantine_rows(quarantine: pd.DataFrame, limit: int = 500) -> list[dict[str, Any]]:
    q = quarantine.head(limit).astype(object).where(quarantine.head(limit).notna(), "")
    return [{str(k): str(v) for k, v in row.items()} for row in q.to_dict("records")]
