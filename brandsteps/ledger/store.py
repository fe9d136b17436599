"""The Ledger: one database's engine, its transactions and cycle lock, and every read and write of the decisions."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import URL

from brandsteps.ledger import approvals
from brandsteps.ledger.approvals import ApprovalProof, Attempt, validate_approval
from brandsteps.ledger.cycle_writes import CycleRow, WriteResult, check_one_day, write_cycle
from brandsteps.ledger.database import WRITER, mask_url, resolve_ledger_url, sqlite_begin_immediate
from brandsteps.ledger.errors import LedgerError
from brandsteps.ledger.retries import short_error, with_retries
from brandsteps.ledger.schema import (
    CYCLE,
    approval_attempts,
    brand_state,
    cycles,
    decisions,
    metadata,
    missing_columns,
    stage_changes,
    utc_rows,
)

_CYCLE_LOCK_KEY = 0x5E796  # PostgreSQL advisory lock held by a cycle from reading the state to writing it
_WRITE_LOCK_KEY = 0x5E795  # PostgreSQL advisory lock held by each write transaction


class Ledger:
    """Reads and writes of the decision ledger.

    retry_delays: the waits of its own retries when the database is briefly unreachable (None: RETRY_DELAYS;
    (): none, for a caller that retries the whole call itself, like a Prefect task).
    """

    def __init__(self, url: str | URL, root: Path | None = None, *, retry_delays: tuple[float, ...] | None = None):
        self.url = resolve_ledger_url(
            str(url) if isinstance(url, str) else url.render_as_string(hide_password=False), root
        )
        self.display_url = mask_url(self.url)
        backend = self.url.get_backend_name()
        kwargs: dict[str, Any] = {}
        if backend == "sqlite":
            kwargs["connect_args"] = {"timeout": 120}
        try:
            self.engine = sa.create_engine(self.url, **kwargs)
        except Exception as exc:  # bad driver names and the like
            raise LedgerError(f"cannot open the ledger {self.display_url}: {type(exc).__name__}") from None
        if backend == "sqlite":
            sqlite_begin_immediate(self.engine)
        self.backend = backend
        self.retry_delays = retry_delays

    def without_retries(self) -> Ledger:
        """This ledger, on the same engine, without its own retries: for a call its caller retries (a Prefect task)."""
        unretried = copy.copy(self)
        unretried.retry_delays = ()
        return unretried

    def create(self) -> None:
        """Create missing tables; cycles that start at once serialise here instead of racing on CREATE."""

        def create_tables() -> None:
            # Looked up first without the write lock: a reader (status, explain) of a ledger that has
            # its tables does not wait for a cycle's write to end.
            tables = set(sa.inspect(self.engine).get_table_names())
            if set(metadata.tables) <= tables and not missing_columns(self.engine):
                return
            with self._write() as conn:
                metadata.create_all(conn)
                # looked up again under the lock: another process may have added it
                for table, ddl in missing_columns(conn):
                    # names and DDL from ADDED_COLUMNS, never from data
                    conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN {ddl}"))

        try:
            with_retries(create_tables, "open", self.display_url, self.retry_delays)
        except sa.exc.SQLAlchemyError as exc:
            raise LedgerError(f"cannot open the ledger {self.display_url}: {short_error(exc)}") from None

    @contextmanager
    def cycle_lock(self) -> Iterator[None]:
        """Held from reading the state to writing the decisions, so cycles apply one after another.

        A second cycle waits here, then reads the state the first one wrote: two cycles for the
        same day record one set of decisions, and days started at once are applied one at a time.
        The lock dies with its process (a killed cycle never blocks the next one).
        """
        if self.backend == "postgresql":
            with self._postgres_cycle_lock():
                yield
        elif self.backend == "sqlite" and self.url.database not in (None, "", ":memory:"):
            import fcntl

            with open(f"{self.url.database}.cycle-lock", "a+b") as handle:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # the kernel releases it if the process dies
                try:
                    yield
                finally:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        else:
            yield

    @contextmanager
    def _postgres_cycle_lock(self) -> Iterator[None]:
        conn = with_retries(self.engine.connect, "open", self.display_url, self.retry_delays)
        try:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _CYCLE_LOCK_KEY})
            conn.commit()  # a session lock outlives the transaction; do not sit idle in one
            yield
        finally:
            try:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _CYCLE_LOCK_KEY})
                conn.commit()
            finally:
                conn.close()

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        with self.engine.connect() as conn, conn.execution_options(**{WRITER: True}).begin():
            if self.backend == "postgresql":
                # One writer at a time per ledger; released at commit or when the process dies.
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _WRITE_LOCK_KEY})
            yield conn

    # ------------------------------------------------------------ reads

    def read_state(self, brand_ids: list[str] | None = None) -> pd.DataFrame:
        """Current state per brand (index brand_id); brands never decided are absent."""
        query = sa.select(brand_state)

        def read() -> pd.DataFrame:
            with self.engine.connect() as conn:
                return pd.read_sql(query, conn)

        frame = with_retries(read, "read", self.display_url, self.retry_delays)
        frame = frame.set_index("brand_id")
        if brand_ids is not None:
            frame = frame[frame.index.isin(brand_ids)]
        return frame

    def decisions_for(self, as_of: date) -> pd.DataFrame:
        with self.engine.connect() as conn:
            return pd.read_sql(sa.select(decisions).where(decisions.c.as_of == as_of), conn)

    def decision(self, brand_id: str, as_of: date | None = None) -> dict[str, Any] | None:
        query = sa.select(decisions).where(decisions.c.brand_id == brand_id)
        query = query.where(decisions.c.as_of == as_of) if as_of else query.order_by(decisions.c.as_of.desc()).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return dict(row) if row else None

    def history(self, brand_id: str) -> pd.DataFrame:
        """The brand's stage changes in the order they happened: object columns, None where a value is missing.

        Not pd.read_sql: pandas makes a text column with some missing values (the actor of a cycle's
        decision beside a reviewer's name) a string column holding NaN, a float that breaks every
        renderer and is not valid JSON.
        """
        query = sa.select(stage_changes).where(stage_changes.c.brand_id == brand_id).order_by(stage_changes.c.id)
        with self.engine.connect() as conn:
            rows = utc_rows(conn.execute(query).mappings())
        return pd.DataFrame(rows, columns=[c.name for c in stage_changes.columns], dtype=object)

    def last_cycle(self) -> dict[str, Any] | None:
        """The latest cycle over the portfolio; onboard-brand's runs for one brand are not cycles."""
        query = (
            sa.select(cycles)
            .where(cycles.c.kind == CYCLE)
            .order_by(cycles.c.as_of.desc(), cycles.c.recorded_at.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return dict(row) if row else None

    def cycles_of_runs(self, flow_run_ids: list[str]) -> pd.DataFrame:
        """The cycles recorded by these flow runs (a sharded cycle's shards)."""
        with self.engine.connect() as conn:
            return pd.read_sql(sa.select(cycles).where(cycles.c.flow_run_id.in_(flow_run_ids)), conn)

    def count_decisions(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(decisions)).scalar_one())

    # ------------------------------------------------------------ writes

    def record_cycle(
        self,
        frame: pd.DataFrame,
        as_of: date,
        flow_run_id: str | None,
        expected_last: pd.Series,
        quarantined: int = 0,
        kind: str = CYCLE,
    ) -> WriteResult:
        """Write a cycle's decisions, state changes and stage changes in one transaction.

        A brand already decided for as_of is left alone (idempotent rerun); a brand whose state
        changed since it was read (a concurrent cycle) is skipped and counted as a conflict.
        A briefly unavailable database is retried: the transaction either committed or left nothing.
        kind: CYCLE for a portfolio's day, BRAND_RUN for onboard-brand's one brand (not a last_cycle).
        """
        return with_retries(
            lambda: self._record_cycle(frame, as_of, flow_run_id, expected_last, quarantined, kind),
            "write",
            self.display_url,
            self.retry_delays,
        )

    def _record_cycle(
        self,
        frame: pd.DataFrame,
        as_of: date,
        flow_run_id: str | None,
        expected_last: pd.Series,
        quarantined: int,
        kind: str,
    ) -> WriteResult:
        """One attempt at record_cycle's transaction, under a new cycle id."""
        check_one_day(frame, as_of)
        row = CycleRow(str(uuid.uuid4()), as_of, flow_run_id, quarantined, kind, datetime.now(UTC))
        with self._write() as conn:
            return write_cycle(conn, frame, expected_last, row)

    def record_review_timeout(self, brand_id: str, stage: str, *, by: str, reason: str) -> dict[str, Any] | None:
        """A review nobody answered in time: record its default outcome (hold); the brand keeps waiting.

        Returns None when the brand is no longer awaiting approval in that stage (someone decided meanwhile).
        """
        now = datetime.now(UTC)
        with self._write() as conn:
            return approvals.review_timeout(conn, brand_id, stage, by, reason, now)

    def resolve_approval(
        self,
        brand_id: str,
        *,
        by: str,
        reason: str,
        approve: bool,
        cause: str | None = None,
        proof: ApprovalProof | None = None,
    ) -> dict[str, Any]:
        """Approve (advance or graduate) or reject (hold, streak restarts) a brand awaiting approval.

        proof: how the answer came and was proved (channel, TOTP time step, the stage it answered); recorded
        as an attempt in the same transaction. A code step not later than one the approver already used
        raises CodeAlreadyUsed, and a brand no longer awaiting in proof.stage raises NotAwaitingApproval.
        """
        by, reason = validate_approval(brand_id, by, reason)
        now = datetime.now(UTC)
        with self._write() as conn:
            return approvals.resolve(conn, brand_id, (by, reason, approve), cause, proof, now)

    def record_attempt(self, attempt: Attempt) -> dict[str, Any]:
        """A refused answer or an escalation, as the audit shows it; the brand is not touched."""
        values = approvals.attempt_values(attempt)
        with self._write() as conn:
            conn.execute(approval_attempts.insert().values(**values))
        return values

    def last_code_step(self, approver: str) -> int | None:
        """The latest TOTP time step this approver proved an answer with (codes up to it are spent)."""
        with self.engine.connect() as conn:
            return approvals.last_code_step(conn, approver)

    def audit_rows(
        self, brand_id: str | None, since: datetime | None, until: datetime | None
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Stage changes, and refused or escalated attempts, recorded in [since, until) for one brand or all.

        Oldest first. Accepted attempts are left out: each has its stage change (approval or rejection) already.
        """
        with self.engine.connect() as conn:
            return approvals.audit_rows(conn, brand_id, since, until)
