"""The ledger's records of approvals: answers checked and applied, refused answers, escalations and review timeouts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from brandsteps.catalogue import GRADUATED, GUARD_COLUMNS, next_stage
from brandsteps.config import BRAND_ID_PATTERN
from brandsteps.ledger.errors import ApprovalInputError, CodeAlreadyUsed, NotAwaitingApproval
from brandsteps.ledger.schema import ACCEPTED_OUTCOMES, approval_attempts, brand_state, stage_changes, utc_rows

APPROVER_MAX, APPROVAL_REASON_MAX = 100, 1000
# Tab and newline are allowed in a reason; no other control character is, nor any in a name.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class ApprovalProof:
    """How an accepted answer came (cli, form) and what proved it (its TOTP code's time step), for its attempt row."""

    channel: str
    code_step: int | None = None
    stage: str | None = None  # the stage the answer was checked for: a brand that moved since is not approved by it
    flow_run_id: str | None = None


@dataclass(frozen=True)
class Attempt:
    """A refused answer (refusal: its kind) or an escalation, for the approval_attempts table."""

    brand_id: str
    stage: str | None
    outcome: str  # refused | escalated
    actor: str | None
    reason: str
    channel: str
    answer: str | None = None
    refusal: str | None = None
    flow_run_id: str | None = None
    code_step: int | None = None
    recorded_at: datetime | None = None


def validate_approval(brand_id: str, by: str, reason: str) -> tuple[str, str]:
    """The reviewer and reason as they will be recorded (stripped), or ApprovalInputError saying why not."""
    problems = []
    if not isinstance(brand_id, str) or not re.fullmatch(BRAND_ID_PATTERN, brand_id):
        problems.append("brand must be a slug of lowercase letters, digits and dashes")
    by, reason = (by or "").strip(), (reason or "").strip()
    if not 1 <= len(by) <= APPROVER_MAX:
        problems.append(f"reviewer name must be 1 to {APPROVER_MAX} characters (got {len(by)})")
    elif _CONTROL.search(by) or "\n" in by or "\t" in by:
        problems.append("reviewer name must not contain control characters")
    if not 1 <= len(reason) <= APPROVAL_REASON_MAX:
        problems.append(f"reason must be 1 to {APPROVAL_REASON_MAX} characters (got {len(reason)})")
    elif _CONTROL.search(reason):
        problems.append("reason must not contain control characters")
    if problems:
        raise ApprovalInputError("invalid approval: " + "; ".join(problems))
    return by, reason


def review_timeout(
    conn: sa.Connection, brand_id: str, stage: str, by: str, reason: str, now: datetime
) -> dict[str, Any] | None:
    """Record a review's default outcome (hold); None when the brand no longer awaits approval in that stage."""
    row = _state_row(conn, brand_id)
    if row is None or not row["awaiting"] or row["stage"] != stage:
        return None
    return _record_change(conn, row, brand_id, (stage, stage, "hold", "review_timeout"), by, reason, now)


def resolve(
    conn: sa.Connection,
    brand_id: str,
    answer: tuple[str, str, bool],
    cause: str | None,
    proof: ApprovalProof | None,
    now: datetime,
) -> dict[str, Any]:
    """Apply a validated answer (reviewer, reason, approve) to a brand awaiting approval; its attempt with a proof.

    Raises NotAwaitingApproval for a brand no longer awaiting (in proof.stage), CodeAlreadyUsed for a code
    step not later than one the approver already used.
    """
    by, reason, approve = answer
    row = _state_row(conn, brand_id)
    if (
        row is None
        or not row["awaiting"]
        or (proof is not None and proof.stage is not None and row["stage"] != proof.stage)
    ):
        raise NotAwaitingApproval(f"{brand_id} is not awaiting approval")
    if proof is not None and proof.code_step is not None and _step_used(conn, by, proof.code_step):
        raise CodeAlreadyUsed(f"this code was already used by {by}: wait for the next one")
    change = _approval_change(conn, row, brand_id, by, reason, approve, cause, now)
    if proof is not None:
        conn.execute(
            approval_attempts.insert().values(
                brand_id=brand_id,
                stage=row["stage"],
                outcome="approved" if approve else "rejected",
                answer="approve" if approve else "reject",
                actor=by,
                reason=reason,
                refusal=None,
                channel=proof.channel,
                code_step=proof.code_step,
                flow_run_id=proof.flow_run_id,
                recorded_at=now,
            )
        )
    return change


def attempt_values(attempt: Attempt) -> dict[str, Any]:
    """The attempt's row; a refused name as given, cut to the column's size (unchecked: that is why it was refused)."""
    return {
        **attempt.__dict__,
        "actor": None if attempt.actor is None else attempt.actor[:APPROVER_MAX],
        "recorded_at": attempt.recorded_at or datetime.now(UTC),
    }


def last_code_step(conn: sa.Connection, approver: str) -> int | None:
    """The latest TOTP time step this approver proved an answer with (codes up to it are spent)."""
    query = sa.select(sa.func.max(approval_attempts.c.code_step)).where(
        approval_attempts.c.actor == approver, approval_attempts.c.outcome.in_(ACCEPTED_OUTCOMES)
    )
    value = conn.execute(query).scalar_one_or_none()
    return None if value is None else int(value)


def audit_rows(
    conn: sa.Connection, brand_id: str | None, since: datetime | None, until: datetime | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Stage changes, and refused or escalated attempts, recorded in [since, until), oldest first.

    Accepted attempts are left out: each has its stage change (approval or rejection) already.
    """
    changes = sa.select(stage_changes).where(*_audit_filters(stage_changes, brand_id, since, until))
    attempts = sa.select(approval_attempts).where(
        approval_attempts.c.outcome.not_in(ACCEPTED_OUTCOMES),
        *_audit_filters(approval_attempts, brand_id, since, until),
    )
    return (
        utc_rows(conn.execute(changes.order_by(stage_changes.c.recorded_at, stage_changes.c.id)).mappings()),
        utc_rows(conn.execute(attempts.order_by(approval_attempts.c.recorded_at, approval_attempts.c.id)).mappings()),
    )


def _state_row(conn: sa.Connection, brand_id: str) -> sa.RowMapping | None:
    return conn.execute(sa.select(brand_state).where(brand_state.c.brand_id == brand_id)).mappings().first()


def _audit_filters(table: sa.Table, brand_id: str | None, since: datetime | None, until: datetime | None) -> list[Any]:
    where: list[Any] = [table.c.brand_id == brand_id] if brand_id is not None else []
    if since is not None:
        where.append(table.c.recorded_at >= since)
    if until is not None:
        where.append(table.c.recorded_at < until)
    return where


def _step_used(conn: sa.Connection, approver: str, step: int) -> bool:
    last = last_code_step(conn, approver)
    return last is not None and last >= step


def _approval_change(
    conn: sa.Connection,
    row: sa.RowMapping,
    brand_id: str,
    by: str,
    reason: str,
    approve: bool,
    cause: str | None,
    now: datetime,
) -> dict[str, Any]:
    """Move the brand on (approve) or restart its passes (reject); returns the stage change written."""
    stage = row["stage"]
    to_stage = next_stage(stage) if approve else stage
    action = ("graduate" if to_stage == GRADUATED else "advance") if approve else "hold"
    values: dict[str, Any] = {"awaiting": False, "awaiting_since": None, "pass_streak": 0, "updated_at": now}
    if approve:
        values.update(
            stage=to_stage, stage_entered_on=row["last_as_of"] + timedelta(days=1), **{c: 0 for c in GUARD_COLUMNS}
        )
    conn.execute(brand_state.update().where(brand_state.c.brand_id == brand_id).values(**values))
    move = (stage, to_stage, action, cause or ("approval" if approve else "rejection"))
    return _record_change(conn, row, brand_id, move, by, reason, now)


def _record_change(
    conn: sa.Connection,
    row: sa.RowMapping,
    brand_id: str,
    move: tuple[str, str, str, str],
    by: str,
    reason: str,
    now: datetime,
) -> dict[str, Any]:
    """A person's stage change (from, to, action, cause), dated the brand's last decided day; returns it as written."""
    from_stage, to_stage, action, cause = move
    change = {
        "brand_id": brand_id,
        "as_of": row["last_as_of"],
        "from_stage": from_stage,
        "to_stage": to_stage,
        "action": action,
        "cause": cause,
        "actor": by,
        "reason": reason,
        "cycle_id": None,  # no cycle: a person's answer or a review's timeout
        "recorded_at": now,
    }
    conn.execute(stage_changes.insert().values(**change))
    return change
