"""The Prefect events brandsteps announces: a cycle's stage changes, approval waits, newly overdue brands; imports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from brandsteps.catalogue import Action
from brandsteps.config import Portfolio
from brandsteps.engine.rules import stage_param_for
from brandsteps.ledger.ids import among

EVENT_PREFIX = "brandsteps.brand"
RESOURCE_PREFIX = "brandsteps.brand"

# action → event suffix; a hold announces nothing (it is the normal day).
ACTION_EVENTS: dict[str, str] = {
    Action.ADVANCE.value: "advanced",
    Action.DEMOTE.value: "demoted",
    Action.RECYCLE.value: "recycled",
    Action.EXIT.value: "exited",
    Action.GRADUATE.value: "graduated",
    Action.AWAIT_APPROVAL.value: "awaiting-approval",
}
OVERDUE_EVENT = "overdue"
EVENT_NAMES: tuple[str, ...] = tuple(f"{EVENT_PREFIX}.{s}" for s in (*ACTION_EVENTS.values(), OVERDUE_EVENT))

# Every import that changed the metrics (the inbox, `brandsteps import`) announces the brands and days
# it changed: the onboarding-cycle deployment's trigger in prefect.yaml starts a cycle on it.
METRICS_IMPORTED_EVENT = "brandsteps.metrics.imported"
METRICS_RESOURCE: dict[str, str] = {
    "prefect.resource.id": "brandsteps.metrics",
    "prefect.resource.name": "brandsteps metrics",
}

PAYLOAD_FIELDS: tuple[str, ...] = (
    "brand_id",
    "as_of",
    "stage",
    "to_stage",
    "verdict",
    "action",
    "score",
    "reason",
    "action_reason",
    "overdue",
    "days_in_stage",
    "pass_streak",
    "policy_version",
)


@dataclass(frozen=True)
class BrandEvent:
    """One event to emit: its name, the brand as resource, and the decision as payload."""

    event: str
    resource: dict[str, str]
    payload: dict[str, Any]


def _json_safe(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if value != value else float(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def newly_awaiting(decisions: pd.DataFrame) -> pd.Series:
    """Brands that went to await_approval on this very day (a wait that began earlier is not news)."""
    waiting = decisions["action"] == Action.AWAIT_APPROVAL
    out = pd.Series(False, index=decisions.index)
    if waiting.any():  # dates formatted for the waiting brands only: a handful of 100,000
        rows = decisions[waiting]
        day = pd.to_datetime(rows["as_of"]).dt.strftime("%Y-%m-%d")
        out[waiting] = (rows["awaiting_since"].astype(object) == day.astype(object)).to_numpy(dtype=bool)
    return out


def newly_overdue(decisions: pd.DataFrame, last_as_of: pd.Series, max_days: pd.Series) -> pd.Series:
    """Overdue today but not at the brand's previous decision: it just crossed max_days_in_stage.

    At the previous decision the brand had (days_in_stage - days since then) days in stage;
    a brand never decided before counts as not overdue then.
    """
    overdue = decisions["overdue"].astype(bool)
    if not overdue.any():
        return overdue
    previous = pd.to_datetime(last_as_of.reindex(decisions["brand_id"]).to_numpy())
    gap = (pd.to_datetime(decisions["as_of"]).to_numpy() - previous.to_numpy()) / np.timedelta64(1, "D")
    days_then = decisions["days_in_stage"].to_numpy(dtype=float) - gap
    limit = max_days.reindex(decisions["brand_id"]).to_numpy(dtype=float)
    moved_since = (
        decisions["stage_entered_on"].to_numpy() > previous.to_numpy() if "stage_entered_on" in decisions else False
    )
    with np.errstate(invalid="ignore"):
        was_overdue = (days_then > limit) & ~np.isnan(gap) & ~moved_since
    return overdue & ~pd.Series(was_overdue, index=decisions.index)


def max_days_by_brand(portfolio: Portfolio, stages: pd.Series) -> pd.Series:
    """Each brand's max_days_in_stage for its current stage (NaN: no limit), overrides included."""
    return pd.Series(
        stage_param_for(portfolio, stages.index, stages.to_numpy(dtype=object), "max_days").astype(float),
        index=stages.index,
    )


def brand_events(
    decisions: pd.DataFrame,
    names: pd.Series,
    last_as_of: pd.Series,
    max_days: pd.Series,
    written: set[str] | None = None,
) -> list[BrandEvent]:
    """The events for a cycle's decisions, only for brands whose decision was written now.

    A rerun for the same day writes nothing, so it announces nothing again.
    """
    if decisions.empty:
        return []
    d = decisions if written is None else decisions[among(decisions["brand_id"], written)]
    if d.empty:
        return []
    moving = d["action"].isin([a for a in ACTION_EVENTS if a != Action.AWAIT_APPROVAL])
    selected = {
        "action": d[moving | newly_awaiting(d)],
        OVERDUE_EVENT: d[newly_overdue(d, last_as_of, max_days)],
    }
    events: list[BrandEvent] = []
    for kind, rows in selected.items():
        fields = [c for c in PAYLOAD_FIELDS if c in rows.columns]
        # Events are emitted one by one by Prefect's client, so this loop runs over changed brands only.
        for record in rows[fields].to_dict("records"):
            payload = {str(k): _json_safe(v) for k, v in record.items()}
            brand_id = str(payload["brand_id"])
            suffix = ACTION_EVENTS[str(payload["action"])] if kind == "action" else OVERDUE_EVENT
            resource = {
                "prefect.resource.id": f"{RESOURCE_PREFIX}.{brand_id}",
                "prefect.resource.name": str(names.get(brand_id, brand_id)),
            }
            events.append(BrandEvent(f"{EVENT_PREFIX}.{suffix}", resource, payload))
    return events


def imported_payload(files: Sequence[tuple[str, pd.DataFrame]]) -> dict[str, list[str]] | None:
    """The brandsteps.metrics.imported payload for files that changed the metrics (name, rows with brand_id and date).

    None when no file brought a row: an import of nothing starts no cycle.
    """
    changed = [(name, rows) for name, rows in files if not rows.empty]
    if not changed:
        return None
    brands = sorted({str(b) for _, rows in changed for b in rows["brand_id"].unique()})
    days = sorted({d for _, rows in changed for d in pd.to_datetime(rows["date"]).dt.strftime("%Y-%m-%d").unique()})
    return {"brands": brands, "days": days, "files": [name for name, _ in changed]}
