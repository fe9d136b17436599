"""The ledger's tables and columns, and the columns added to ledgers written before them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from brandsteps.catalogue import GUARD_COLUMNS

metadata = sa.MetaData()

decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("cycle_id", sa.String(36), nullable=False),
    sa.Column("brand_id", sa.String(64), nullable=False),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("stage", sa.String(32), nullable=False),
    sa.Column("verdict", sa.String(16), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("to_stage", sa.String(32), nullable=False),
    sa.Column("score", sa.Float),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("action_reason", sa.Text, nullable=False),
    sa.Column("overdue", sa.Boolean, nullable=False),
    sa.Column("days_in_stage", sa.Integer, nullable=False),
    sa.Column("pass_streak", sa.Integer, nullable=False),
    sa.Column("policy_version", sa.String(16), nullable=False),
    sa.Column("criteria", sa.Text, nullable=False),
    sa.Column("gmv_factors", sa.Text, nullable=False),
    sa.Column("flow_run_id", sa.String(64)),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("brand_id", "as_of", name="uq_decision_brand_day"),
    sa.Index("ix_decisions_as_of", "as_of"),
)

brand_state = sa.Table(
    "brand_state",
    metadata,
    sa.Column("brand_id", sa.String(64), primary_key=True),
    sa.Column("stage", sa.String(32), nullable=False),
    sa.Column("stage_entered_on", sa.Date, nullable=False),
    sa.Column("pass_streak", sa.Integer, nullable=False),
    sa.Column("awaiting", sa.Boolean, nullable=False),
    sa.Column("awaiting_since", sa.String(10)),
    *[sa.Column(c, sa.Integer, nullable=False, default=0) for c in GUARD_COLUMNS],
    sa.Column("last_as_of", sa.Date, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_brand_state_stage", "stage"),
)

stage_changes = sa.Table(
    "stage_changes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("brand_id", sa.String(64), nullable=False),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("from_stage", sa.String(32), nullable=False),
    sa.Column("to_stage", sa.String(32), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("cause", sa.String(16), nullable=False),  # decision | approval | rejection | review_timeout
    sa.Column("actor", sa.String(100)),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("cycle_id", sa.String(36)),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_stage_changes_brand", "brand_id", "id"),
)

cycles = sa.Table(
    "cycles",
    metadata,
    sa.Column("cycle_id", sa.String(36), primary_key=True),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("flow_run_id", sa.String(64)),
    sa.Column("decided", sa.Integer, nullable=False),
    sa.Column("skipped", sa.Integer, nullable=False),
    sa.Column("quarantined", sa.Integer, nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    # cycle: a whole portfolio's day (the cycle flow, the replay, a shard); brand: onboard-brand's run for one brand.
    # Added after the first ledgers were written: create() adds it to those, their rows default to cycle.
    sa.Column("kind", sa.String(16), nullable=False, server_default="cycle"),
    sa.Index("ix_cycles_as_of", "as_of"),
)
# Every answer to a review and what came of it: accepted answers (with the time step of the TOTP code that proved
# them, so a code is never accepted twice), refused ones (who, when, why) and escalations of reviews left unanswered.
approval_attempts = sa.Table(
    "approval_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("brand_id", sa.String(64), nullable=False),
    sa.Column("stage", sa.String(32)),
    sa.Column("outcome", sa.String(16), nullable=False),  # approved | rejected | refused | escalated
    sa.Column("answer", sa.String(8)),  # approve | reject: what was asked for
    sa.Column("actor", sa.String(100)),
    sa.Column("reason", sa.Text, nullable=False),  # why refused; the answer's reason; who was told
    sa.Column("refusal", sa.String(16)),  # brandsteps.approvals.approvers.Refusal.kind
    sa.Column("channel", sa.String(16), nullable=False),  # cli | form | review-brand
    sa.Column("code_step", sa.BigInteger),  # the TOTP time step of an accepted code (RFC 6238 counter)
    sa.Column("flow_run_id", sa.String(64)),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_approval_attempts_actor_step", "actor", "code_step"),
    sa.Index("ix_approval_attempts_recorded", "recorded_at"),
)
ACCEPTED_OUTCOMES = ("approved", "rejected")
CYCLE, BRAND_RUN = "cycle", "brand"  # the kinds of cycles rows
# Columns added to tables after ledgers were first created: table, column and its DDL (the same on SQLite and
# PostgreSQL, as the metadata above renders it: tests/test_ledger.py checks), whose default fills the rows there.
ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (("cycles", "kind", "kind VARCHAR(16) DEFAULT 'cycle' NOT NULL"),)

DECISION_COLUMNS = [c.name for c in decisions.columns if c.name != "id"]
STATE_COLUMNS = [c.name for c in brand_state.columns]


def missing_columns(bind: Engine | sa.Connection) -> list[tuple[str, str]]:
    """(table, DDL) of the ADDED_COLUMNS an existing ledger's tables lack (none for tables not created yet)."""
    inspector = sa.inspect(bind)
    tables = set(inspector.get_table_names())
    have = {
        name: {c["name"] for c in inspector.get_columns(name)} for name in {t for t, _, _ in ADDED_COLUMNS} & tables
    }
    return [(table, ddl) for table, column, ddl in ADDED_COLUMNS if table in have and column not in have[table]]


def utc_rows(rows: Iterable[sa.RowMapping]) -> list[dict[str, Any]]:
    """Rows as dicts with recorded_at in UTC: SQLite gives back times written through SQLAlchemy without their zone."""
    out = [dict(row) for row in rows]
    for row in out:
        if row["recorded_at"] is not None and row["recorded_at"].tzinfo is None:
            row["recorded_at"] = row["recorded_at"].replace(tzinfo=UTC)
    return out
