"""The audit trail from the ledger: approvals, rejections, refused answers, escalations, timeouts, stage changes."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

# stage_changes.cause → the audit's event; a cycle's own decisions are "stage change"
CHANGE_EVENTS = {
    "decision": "stage change",
    "approval": "approval",
    "rejection": "rejection",
    "review_timeout": "review timeout",
}
ATTEMPT_EVENTS = {"refused": "refused", "escalated": "escalation"}
COLUMNS = ("time", "brand", "event", "stage", "actor", "reason")


class AuditSource(Protocol):
    def audit_rows(
        self, brand_id: str | None, since: datetime | None, until: datetime | None
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]: ...


@dataclass(frozen=True)
class AuditEntry:
    """One thing that happened to a brand's onboarding, who did it, when and why."""

    time: datetime  # in the configured timezone
    brand_id: str
    event: str  # stage change | approval | rejection | review timeout | refused | escalation
    action: str | None  # the stage change's action (advance, hold, demote, …); the answer asked for when refused
    from_stage: str | None
    to_stage: str | None
    as_of: date | None  # the decision day a stage change belongs to
    actor: str | None  # None: the cycle itself
    reason: str
    channel: str | None  # cli | form | review-brand, for refused answers and escalations

    def stage_text(self) -> str:
        if self.from_stage and self.to_stage and self.from_stage != self.to_stage:
            return f"{self.from_stage} -> {self.to_stage}"
        return self.from_stage or self.to_stage or "-"

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["time"] = self.time.isoformat()
        out["as_of"] = self.as_of.isoformat() if self.as_of else None
        return out


def day_bounds(first: date | None, last: date | None, timezone: str) -> tuple[datetime | None, datetime | None]:
    """The instants (UTC) from the start of `first` to the end of `last`, both days in the configured timezone."""
    zone = ZoneInfo(timezone)
    since = datetime.combine(first, time(), zone).astimezone(ZoneInfo("UTC")) if first else None
    until = datetime.combine(last + timedelta(days=1), time(), zone).astimezone(ZoneInfo("UTC")) if last else None
    return since, until


def audit_entries(
    source: AuditSource, brand_id: str | None, first: date | None, last: date | None, timezone: str
) -> list[AuditEntry]:
    """Everything recorded from `first` to `last` (days in `timezone`, inclusive), oldest first."""
    since, until = day_bounds(first, last, timezone)
    changes, attempts = source.audit_rows(brand_id, since, until)
    zone = ZoneInfo(timezone)
    entries = [_from_change(row, zone) for row in changes] + [_from_attempt(row, zone) for row in attempts]
    return sorted(entries, key=lambda e: e.time)  # stable: each table's own order stays within one instant


def _from_change(row: dict[str, Any], zone: ZoneInfo) -> AuditEntry:
    return AuditEntry(
        time=row["recorded_at"].astimezone(zone),
        brand_id=row["brand_id"],
        event=CHANGE_EVENTS.get(row["cause"], row["cause"]),
        action=row["action"],
        from_stage=row["from_stage"],
        to_stage=row["to_stage"],
        as_of=_day(row["as_of"]),
        actor=row["actor"],
        reason=row["reason"],
        channel=None,
    )


def _from_attempt(row: dict[str, Any], zone: ZoneInfo) -> AuditEntry:
    return AuditEntry(
        time=row["recorded_at"].astimezone(zone),
        brand_id=row["brand_id"],
        event=ATTEMPT_EVENTS.get(row["outcome"], row["outcome"]),
        action=row["answer"],
        from_stage=row["stage"],
        to_stage=row["stage"],
        as_of=None,
        actor=row["actor"],
        reason=row["reason"],
        channel=row["channel"],
    )


def _day(value: Any) -> date | None:
    if value is None or isinstance(value, date) and not isinstance(value, datetime):
        return value
    return value.date() if isinstance(value, datetime) else date.fromisoformat(str(value))


def audit_json(entries: list[AuditEntry]) -> str:
    return json.dumps([e.as_json() for e in entries], ensure_ascii=False, indent=2)


def audit_text(entries: list[AuditEntry], timezone: str) -> str:
    """A table, one line per entry, aligned for wide (Chinese) characters too; times in `timezone`."""
    if not entries:
        return "nothing recorded"
    rows = [COLUMNS] + [
        (
            f"{e.time:%Y-%m-%d %H:%M:%S}",
            e.brand_id,
            e.event + (f" ({e.action})" if e.action and e.event == "stage change" else ""),
            e.stage_text(),
            e.actor or "-",
            e.reason,
        )
        for e in entries
    ]
    widths = [max(_width(row[i]) for row in rows) for i in range(len(COLUMNS) - 1)]
    lines = [
        "  ".join([*(_pad(cell, w) for cell, w in zip(row[:-1], widths, strict=True)), row[-1]]).rstrip()
        for row in rows
    ]
    return "\n".join([f"times in {timezone}", *lines])


def _width(text: str) -> int:
    """Columns the text takes in a terminal: wide and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))
