"""The one retry rule: what may pass by itself is retried, bad input never is; the tasks and the ledger share it."""

from __future__ import annotations

import socket

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from brandsteps.ledger import Ledger, LedgerError, NotAwaitingApproval, is_transient, with_retries
from brandsteps.sources.imports.reading import ImportFormatError
from brandsteps.sources.metrics_source import MetricsReadError
from tasks.retries import is_transient as task_is_transient


class _State:
    def __init__(self, exc: BaseException | None) -> None:
        self.exc = exc

    def result(self) -> None:
        if self.exc is not None:
            raise self.exc


ERRORS = [
    pytest.param(OSError("disk busy"), True, id="os-error"),
    pytest.param(ConnectionResetError(), True, id="connection-reset"),
    pytest.param(OperationalError("SELECT 1", {}, Exception("server closed the connection")), True, id="database-away"),
    pytest.param(PoolTimeout("pool exhausted"), True, id="pool-timeout"),
    # the ledger's core retried a few seconds already and says the failure may pass
    pytest.param(LedgerError("cannot write the ledger", transient=True), True, id="ledger-transient"),
    pytest.param(NotAwaitingApproval("b is not awaiting approval"), False, id="ledger-answer"),
    # a missing metrics file is a MetricsReadError: another try finds it missing again
    pytest.param(MetricsReadError("data/metrics.csv: no such file"), False, id="metrics-missing"),
    pytest.param(ImportFormatError("x.csv: row 5, 成交金额: cannot read"), False, id="bad-export"),
    pytest.param(ValueError("as_of"), False, id="bad-parameter"),
]


@pytest.mark.parametrize(("error", "retried"), ERRORS)
def test_only_what_may_pass_is_retried(error: BaseException, retried: bool) -> None:
    assert is_transient(error) is retried


@pytest.mark.parametrize(
    ("error", "retried"), [*ERRORS, pytest.param(None, False, id="no-error")]
)  # a run that did not fail is never retried
def test_a_task_retries_what_the_core_rule_retries(error: BaseException | None, retried: bool) -> None:
    assert task_is_transient(None, None, _State(error)) is retried  # type: ignore[arg-type]


def test_without_its_own_retries_the_ledger_tries_once_and_says_the_failure_may_pass() -> None:
    calls = []

    def locked() -> None:
        calls.append(1)
        raise OperationalError("SELECT 1", {}, Exception("database is locked"))

    with pytest.raises(LedgerError) as info:
        with_retries(locked, "read", "sqlite:///data/ledger.sqlite", delays=())
    # one attempt, and the message as after the ledger's own retries: the task's retries take it from here
    assert len(calls) == 1
    assert str(info.value) == "cannot read the ledger sqlite:///data/ledger.sqlite (tried 1 times): database is locked"
    assert info.value.transient and task_is_transient(None, None, _State(info.value))  # type: ignore[arg-type]


def test_without_retries_is_the_same_ledger_with_its_own_retries_off() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])  # nothing listens there once the socket is closed
    ledger = Ledger(f"postgresql+psycopg://app@127.0.0.1:{port}/ledger", retry_delays=(0.01,))
    unretried = ledger.without_retries()
    # the same engine (no second pool), and the ledger it came from keeps its own retries
    assert (unretried.engine is ledger.engine, unretried.retry_delays, ledger.retry_delays) == (True, (), (0.01,))
    with pytest.raises(LedgerError) as once:
        unretried.read_state()
    with pytest.raises(LedgerError) as twice:
        ledger.read_state()
    prefix = f"cannot read the ledger postgresql+psycopg://app@127.0.0.1:{port}/ledger"
    assert str(once.value).startswith(f"{prefix} (tried 1 times): ")
    assert str(twice.value).startswith(f"{prefix} (tried 2 times): ")
    ledger.dispose()
