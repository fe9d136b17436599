"""The decision ledger: one decision per brand and as_of, cycles committed atomically, any SQLAlchemy URL."""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

from brandsteps.catalogue import GRADUATED, STAGE_IDS
from brandsteps.engine.gates import GUARD_COLUMNS, MOVING_ACTIONS
from brandsteps.ledger.ids import among

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
# Columns added to tables after ledgers were first created: table, column and its DDL (the same on SQLite and PostgreSQL,
# as the metadata above renders it: tests/test_ledger.py checks), whose default fills the rows already there.
ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (("cycles", "kind", "kind VARCHAR(16) DEFAULT 'cycle' NOT NULL"),)

DECISION_COLUMNS = [c.name for c in decisions.columns if c.name != "id"]
STATE_COLUMNS = [c.name for c in brand_state.columns]


class LedgerError(Exception):
    """The ledger could not be opened or written; the message never contains a password."""

    def __init__(self, message: str, transient: bool = False):
        super().__init__(redact(message))
        self.transient = transient


class ApprovalInputError(LedgerError):
    """An approval's brand, reviewer or reason is empty, too long or holds control characters."""


class NotAwaitingApproval(LedgerError):
    """The brand is not awaiting approval (never was, or someone decided first): the answer changes nothing."""


class CodeAlreadyUsed(LedgerError):
    """The approver already used this TOTP code (or a later one): a replayed code proves nothing."""


_T = TypeVar("_T")
# Waits between attempts when the database is briefly unreachable (restart, failover, 'database is locked').
RETRY_DELAYS: tuple[float, ...] = tuple(
    float(x) for x in os.environ.get("BRANDSTEPS_DB_RETRY_DELAYS", "0.5,1,2,4").split(",") if x.strip()
)
_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][\w+.-]*://[^:/@\s]*:)([^@\s]+)(@)")
_SECRET_ENV = ("BRANDSTEPS_LEDGER_PASSWORD", "PGPASSWORD")
APPROVER_MAX, APPROVAL_REASON_MAX = 100, 1000
_CONTROL = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)  # tab and newline allowed in a reason, no other control characters


def redact(text: str) -> str:
    """The text with every URL password and every secret from the environment replaced by ***."""
    out = _URL_PASSWORD.sub(r"\1***\3", text)
    for var in _SECRET_ENV:
        secret = os.environ.get(var)
        if secret and len(secret) >= 3:
            out = out.replace(secret, "***")
    return out


def _transient(exc: BaseException) -> bool:
    return isinstance(
        exc, sa.exc.OperationalError | sa.exc.InterfaceError | sa.exc.DisconnectionError | sa.exc.TimeoutError
    )


def with_retries(action: Callable[[], _T], what: str, display_url: str, delays: tuple[float, ...] | None = None) -> _T:
    """Run one whole transaction, again after a pause when the database is briefly unavailable.

    Safe because every write is one transaction that either committed or left nothing, and a
    repeated cycle write finds its decisions already there. Ends with one LedgerError.
    """
    waits = RETRY_DELAYS if delays is None else delays
    for attempt in range(len(waits) + 1):
        try:
            return action()
        except Exception as exc:
            if not _transient(exc):
                raise
            if attempt == len(waits):
                raise LedgerError(
                    f"cannot {what} the ledger {display_url} (tried {attempt + 1} times): {_short(exc)}", transient=True
                ) from None
            time.sleep(waits[attempt])
    raise AssertionError("unreachable")


def validate_approval(brand_id: str, by: str, reason: str) -> tuple[str, str]:
    """The reviewer and reason as they will be recorded (stripped), or ApprovalInputError saying why not."""
    from brandsteps.config import BRAND_ID_PATTERN

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


def mask_url(url: str | URL) -> str:
    """The URL as it may be shown anywhere: the password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


def resolve_ledger_url(url: str, root: Path | None = None) -> URL:
    """Resolve a relative SQLite path against root and add the password from the environment."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        db = Path(parsed.database).expanduser()
        if not db.is_absolute() and root is not None:
            db = root / db
        db.parent.mkdir(parents=True, exist_ok=True)
        parsed = parsed.set(database=str(db))
    password = os.environ.get("BRANDSTEPS_LEDGER_PASSWORD")
    if password and parsed.password is None and parsed.get_backend_name() != "sqlite":
        parsed = parsed.set(password=password)
    return parsed


_WRITER = "brandsteps_writer"  # execution option of the connections that write


def _sqlite_begin_immediate(engine: Engine) -> None:
    """Writers take SQLite's write lock at BEGIN and wait for it instead of failing 'locked'.

    Readers begin a plain transaction: in WAL mode a reader sees the last committed state and
    neither waits for a writer nor holds one up (`status` during a cycle's write).
    """

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=120000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITER) else "BEGIN")


@dataclass
class WriteResult:
    cycle_id: str
    written: int
    already_decided: int
    conflicts: int
    written_ids: frozenset[str] = frozenset()


class Ledger:
    """Reads and writes of the decision ledger."""

    def __init__(self, url: str | URL, root: Path | None = None):
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
            _sqlite_begin_immediate(self.engine)
        self.backend = backend
        self.retry_delays: tuple[float, ...] | None = None  # None: RETRY_DELAYS

    def create(self) -> None:
        """Create missing tables; cycles that start at once serialise here instead of racing on CREATE."""

        def create_tables() -> None:
            # Looked up first without the write lock: a reader (status, explain) of a ledger that has
            # its tables does not wait for a cycle's write to end.
            if set(metadata.tables) <= set(sa.inspect(self.engine).get_table_names()) and not _missing_columns(
                self.engine
            ):
                return
            with self._write() as conn:
                metadata.create_all(conn)
                for table, ddl in _missing_columns(
                    conn
                ):  # looked up again under the lock: another process may have added it
                    conn.execute(
                        sa.text(f"ALTER TABLE {table} ADD COLUMN {ddl}")
                    )  # names and DDL from ADDED_COLUMNS, never from data

        try:
            with_retries(create_tables, "open", self.display_url, self.retry_delays)
        except sa.exc.SQLAlchemyError as exc:
            raise LedgerError(f"cannot open the ledger {self.display_url}: {_short(exc)}") from None

    @contextmanager
    def cycle_lock(self) -> Iterator[None]:
        """Held from reading the state to writing the decisions, so cycles apply one after another.

        A second cycle waits here, then reads the state the first one wrote: two cycles for the
        same day record one set of decisions, and days started at once are applied one at a time.
        The lock dies with its process (a killed cycle never blocks the next one).
        """
        if self.backend == "postgresql":
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

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        with self.engine.connect() as conn, conn.execution_options(**{_WRITER: True}).begin():
            if self.backend == "postgresql":
                # One writer at a time per ledger; released at commit or when the process dies.
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": 0x5E795})
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
            rows = [dict(row) for row in conn.execute(query).mappings()]
        for row in rows:
            # Every recorded_at is UTC; SQLite gives back the ones written through SQLAlchemy (approvals) without the zone.
            if row["recorded_at"] is not None and row["recorded_at"].tzinfo is None:
                row["recorded_at"] = row["recorded_at"].replace(tzinfo=UTC)
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
        kind: str = CYCLE,
    ) -> WriteResult:
        if len(frame) and (pd.to_datetime(frame["as_of"]) != pd.Timestamp(as_of)).any():
            raise ValueError(f"decisions of another day than {as_of} in one cycle's write")
        cycle_id = str(uuid.uuid4())
        now = datetime.now(UTC)
        with self._write() as conn:
            decided = {r[0] for r in conn.execute(sa.select(decisions.c.brand_id).where(decisions.c.as_of == as_of))}
            current = (
                dict(conn.execute(sa.select(brand_state.c.brand_id, brand_state.c.last_as_of)).all())
                if len(frame)
                else {}
            )
            ids = frame["brand_id"].to_numpy(dtype=object) if len(frame) else np.array([], dtype=object)
            already = among(ids, decided)
            now_last = pd.Series(current, dtype=object).reindex(ids)
            expect = expected_last.reindex(ids)
            same = (now_last.isna() & expect.isna()) | (pd.to_datetime(now_last) == pd.to_datetime(expect))
            conflict = ~already & ~same.to_numpy(dtype=bool)
            todo = frame[~already & ~conflict]
            if len(todo):
                self._insert_decisions(conn, todo, as_of, cycle_id, flow_run_id, now)
                self._upsert_state(conn, todo, as_of, now)
                self._insert_changes(conn, todo, as_of, cycle_id, now)
            conn.execute(
                cycles.insert().values(
                    cycle_id=cycle_id,
                    as_of=as_of,
                    flow_run_id=flow_run_id,
                    decided=len(todo),
                    skipped=int(already.sum() + conflict.sum()),
                    quarantined=quarantined,
                    recorded_at=now,
                    kind=kind,
                )
            )
        return WriteResult(
            cycle_id,
            len(todo),
            int(already.sum()),
            int(conflict.sum()),
            frozenset(todo["brand_id"]) if len(todo) else frozenset(),
        )

    def _insert_decisions(
        self,
        conn: sa.Connection,
        todo: pd.DataFrame,
        as_of: date,
        cycle_id: str,
        flow_run_id: str | None,
        now: datetime,
    ) -> None:
        values: dict[str, Any] = {c: todo[c] for c in DECISION_COLUMNS if c in todo.columns}
        values.update(cycle_id=cycle_id, flow_run_id=flow_run_id, decided_at=now, as_of=as_of)
        _bulk_insert(conn, decisions, values, len(todo))

    def _upsert_state(self, conn: sa.Connection, todo: pd.DataFrame, as_of: date, now: datetime) -> None:
        values: dict[str, Any] = {
            "brand_id": todo["brand_id"],
            "stage": todo["to_stage"],
            "stage_entered_on": pd.to_datetime(todo["stage_entered_on"]).dt.date,
            "pass_streak": todo["pass_streak"].astype(int),
            "awaiting": todo["awaiting"].astype(bool),
            "awaiting_since": todo["awaiting_since"],
            **{c: todo[c].astype(int) for c in GUARD_COLUMNS},
            "last_as_of": as_of,
            "updated_at": now,
        }
        _bulk_insert(conn, brand_state, values, len(todo), replace_key="brand_id")

    def _insert_changes(
        self, conn: sa.Connection, todo: pd.DataFrame, as_of: date, cycle_id: str, now: datetime
    ) -> None:
        moved = todo[todo["action"].isin(list(MOVING_ACTIONS))]
        if moved.empty:
            return
        values: dict[str, Any] = {
            "brand_id": moved["brand_id"],
            "as_of": as_of,
            "from_stage": moved["stage"],
            "to_stage": moved["to_stage"],
            "action": moved["action"],
            "cause": "decision",
            "actor": None,
            "reason": moved["action_reason"],
            "cycle_id": cycle_id,
            "recorded_at": now,
        }
        _bulk_insert(conn, stage_changes, values, len(moved))

    def record_review_timeout(self, brand_id: str, stage: str, *, by: str, reason: str) -> dict[str, Any] | None:
        """A review nobody answered in time: record its default outcome (hold); the brand keeps waiting.

        Returns None when the brand is no longer awaiting approval in that stage (someone decided meanwhile).
        """
        now = datetime.now(UTC)
        with self._write() as conn:
            row = conn.execute(sa.select(brand_state).where(brand_state.c.brand_id == brand_id)).mappings().first()
            if row is None or not row["awaiting"] or row["stage"] != stage:
                return None
            change = {
                "brand_id": brand_id,
                "as_of": row["last_as_of"],
                "from_stage": stage,
                "to_stage": stage,
                "action": "hold",
                "cause": "review_timeout",
                "actor": by,
                "reason": reason,
                "cycle_id": None,
                "recorded_at": now,
            }
            conn.execute(stage_changes.insert().values(**change))
        return change

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
            row = conn.execute(sa.select(brand_state).where(brand_state.c.brand_id == brand_id)).mappings().first()
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

    def record_attempt(self, attempt: Attempt) -> dict[str, Any]:
        """A refused answer or an escalation, as the audit shows it; the brand is not touched."""
        values = {
            **attempt.__dict__,
            "actor": _bounded(attempt.actor, APPROVER_MAX),
            "recorded_at": attempt.recorded_at or datetime.now(UTC),
        }
        with self._write() as conn:
            conn.execute(approval_attempts.insert().values(**values))
        return values

    def last_code_step(self, approver: str) -> int | None:
        """The latest TOTP time step this approver proved an answer with (codes up to it are spent)."""
        query = sa.select(sa.func.max(approval_attempts.c.code_step)).where(
            approval_attempts.c.actor == approver, approval_attempts.c.outcome.in_(ACCEPTED_OUTCOMES)
        )
        with self.engine.connect() as conn:
            value = conn.execute(query).scalar_one_or_none()
        return None if value is None else int(value)

    def audit_rows(
        self, brand_id: str | None, since: datetime | None, until: datetime | None
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Stage changes, and refused or escalated attempts, recorded in [since, until) for one brand or all, oldest first.

        Accepted attempts are left out: each has its stage change (approval or rejection) already.
        """
        changes = sa.select(stage_changes).where(*_audit_filters(stage_changes, brand_id, since, until))
        attempts = sa.select(approval_attempts).where(
            approval_attempts.c.outcome.not_in(ACCEPTED_OUTCOMES),
            *_audit_filters(approval_attempts, brand_id, since, until),
        )
        with self.engine.connect() as conn:
            return (
                _utc_rows(conn.execute(changes.order_by(stage_changes.c.recorded_at, stage_changes.c.id)).mappings()),
                _utc_rows(
                    conn.execute(attempts.order_by(approval_attempts.c.recorded_at, approval_attempts.c.id)).mappings()
                ),
            )


def _audit_filters(table: sa.Table, brand_id: str | None, since: datetime | None, until: datetime | None) -> list[Any]:
    where: list[Any] = [table.c.brand_id == brand_id] if brand_id is not None else []
    if since is not None:
        where.append(table.c.recorded_at >= since)
    if until is not None:
        where.append(table.c.recorded_at < until)
    return where


@dataclass(frozen=True)
class ApprovalProof:
    """How an accepted answer came (cli, form) and what proved it (the TOTP code's time step), for the attempts record."""

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


def _bounded(text: str | None, most: int) -> str | None:
    """A refused name is recorded as given, cut to the column's size (it was never validated: that is why it was refused)."""
    return None if text is None else text[:most]


def _step_used(conn: sa.Connection, approver: str, step: int) -> bool:
    query = sa.select(sa.func.max(approval_attempts.c.code_step)).where(
        approval_attempts.c.actor == approver, approval_attempts.c.outcome.in_(ACCEPTED_OUTCOMES)
    )
    last = conn.execute(query).scalar_one_or_none()
    return last is not None and int(last) >= step


def _approval_change(
    conn: sa.Connection, row: Any, brand_id: str, by: str, reason: str, approve: bool, cause: str | None, now: datetime
) -> dict[str, Any]:
    """Move the brand on (approve) or restart its passes (reject); returns the stage change written."""
    stage = row["stage"]
    idx = STAGE_IDS.index(stage)
    to_stage = stage if not approve else (STAGE_IDS[idx + 1] if idx + 1 < len(STAGE_IDS) else GRADUATED)
    action = ("graduate" if to_stage == GRADUATED else "advance") if approve else "hold"
    values: dict[str, Any] = {"awaiting": False, "awaiting_since": None, "pass_streak": 0, "updated_at": now}
    if approve:
        values.update(
            stage=to_stage, stage_entered_on=row["last_as_of"] + timedelta(days=1), **{c: 0 for c in GUARD_COLUMNS}
        )
    conn.execute(brand_state.update().where(brand_state.c.brand_id == brand_id).values(**values))
    change = {
        "brand_id": brand_id,
        "as_of": row["last_as_of"],
        "from_stage": stage,
        "to_stage": to_stage,
        "action": action,
        "cause": cause or ("approval" if approve else "rejection"),
        "actor": by,
        "reason": reason,
        "cycle_id": None,
        "recorded_at": now,
    }
    conn.execute(stage_changes.insert().values(**change))
    return change


def _utc_rows(rows: Any) -> list[dict[str, Any]]:
    """Rows as dicts with recorded_at in UTC: SQLite gives back times written through SQLAlchemy without their zone."""
    out = [dict(row) for row in rows]
    for row in out:
        if row["recorded_at"] is not None and row["recorded_at"].tzinfo is None:
            row["recorded_at"] = row["recorded_at"].replace(tzinfo=UTC)
    return out


_CYCLE_LOCK_KEY = 0x5E796


def _missing_columns(bind: Engine | sa.Connection) -> list[tuple[str, str]]:
    """(table, DDL) of the ADDED_COLUMNS an existing ledger's tables do not have yet (none for tables not created yet)."""
    inspector = sa.inspect(bind)
    tables = set(inspector.get_table_names())
    have = {
        name: {c["name"] for c in inspector.get_columns(name)} for name in {t for t, _, _ in ADDED_COLUMNS} & tables
    }
    return [(table, ddl) for table, column, ddl in ADDED_COLUMNS if table in have and column not in have[table]]


def _column_values(conn: sa.Connection, column: sa.Column[Any], value: Any, n: int, driver: bool) -> list[Any]:
    """One column's values as Python scalars, None for missing; for the driver, after SQLAlchemy's own conversions."""
    process = column.type.bind_processor(conn.dialect) if driver else None
    if not isinstance(value, pd.Series | np.ndarray):  # one value for every row: converted once
        if process is None and conn.dialect.name == "sqlite":
            value = _sqlite_text(value)
        return [process(value) if process and value is not None else value] * n
    series = pd.Series(value, copy=False)
    items = (
        series.astype(object).where(series.notna(), None).tolist()
        if series.hasnans or series.dtype == object
        else series.tolist()
    )
    return [process(v) if v is not None else None for v in items] if process else items


def _sqlite_text(value: Any) -> Any:
    """A date or datetime as sqlite3's default adapters write it (done once here, not once per row by the driver)."""
    if isinstance(value, datetime):
        return value.isoformat(" ")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _bulk_insert(
    conn: sa.Connection, table: sa.Table, values: dict[str, Any], n: int, replace_key: str | None = None
) -> None:
    """Insert n rows in one driver call: COPY on PostgreSQL, executemany elsewhere (the ORM layer per row costs more than the write).

    replace_key: rows replace any row with the same key (an upsert, in the same transaction).
    Table and column names come from the metadata above, never from data; values are parameters.
    """
    columns = list(values)
    raw: Any = conn.connection.driver_connection
    driver = conn.dialect.name == "sqlite" or (conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg")
    rows = list(zip(*(_column_values(conn, table.c[c], values[c], n, driver) for c in columns), strict=True))
    names = ", ".join(columns)
    if conn.dialect.name == "postgresql" and driver:
        with raw.cursor() as cursor:
            if replace_key is not None:
                cursor.execute(f"DELETE FROM {table.name} WHERE {replace_key} = ANY(%s)", (list(values[replace_key]),))  # noqa: S608 - names from metadata
            with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        return
    if conn.dialect.name == "sqlite":
        marks = ", ".join("?" for _ in columns)
        sql = f"INSERT INTO {table.name} ({names}) VALUES ({marks})"  # noqa: S608 - names from metadata
        if replace_key is not None:
            sql += f" ON CONFLICT ({replace_key}) DO UPDATE SET " + ", ".join(
                f"{c} = excluded.{c}" for c in columns if c != replace_key
            )
        conn.exec_driver_sql(sql, rows)
        return
    if replace_key is not None:  # any other database: delete and insert, one portable upsert inside the transaction
        ids = list(values[replace_key])
        for chunk in range(0, len(ids), 500):
            conn.execute(table.delete().where(table.c[replace_key].in_(ids[chunk : chunk + 500])))
    conn.execute(table.insert(), [dict(zip(columns, row, strict=True)) for row in rows])


def _short(exc: Exception) -> str:
    text = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
