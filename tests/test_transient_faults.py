"""Transient faults: metrics reads and the ledger retried when briefly unavailable; permanent failures end cleanly."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from brandsteps.ledger import Ledger, LedgerError, with_retries
from brandsteps.sources.metrics_source import MetricsSource
from tests.ledger_checks import pg_database  # noqa: F401 - a fixture
from tests.ledger_dump_helpers import ledger_dump


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def late_proxy(port: int, after: float) -> threading.Thread:
    """Nothing listens on port until `after` seconds have passed; then it forwards to PostgreSQL."""

    def pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            b.close()

    def serve() -> None:
        time.sleep(after)
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", port))
        srv.listen()
        srv.settimeout(20)
        try:
            while True:
                client, _ = srv.accept()
                upstream = socket.create_connection(("127.0.0.1", 5432))
                threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
                threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
        except OSError:
            srv.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(
    ("failures", "outcome"),
    [
        pytest.param(0, "ok after 1 attempt", id="no-failure"),  # nothing to retry
        # fails twice, works on the third of 4 allowed attempts
        pytest.param(2, "ok after 3 attempts", id="passes"),
        # 3 waits allowed: the 4th failure is final
        pytest.param(4, "LedgerError after 4 attempts", id="outlasts-the-retries"),
    ],
)
def test_transient_database_errors_are_retried_then_reported(failures: int, outcome: str) -> None:
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) <= failures:
            raise sa.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))
        return "ok"

    try:
        got = f"{with_retries(flaky, 'read', 'postgresql://app:***@db/ledger', delays=(0, 0, 0))} after {len(calls)} attempt{'s' * (len(calls) > 1)}"
    except LedgerError as exc:
        assert (
            str(exc)
            == "cannot read the ledger postgresql://app:***@db/ledger (tried 4 times): server closed the connection unexpectedly"
        )
        got = f"LedgerError after {len(calls)} attempts"
    assert got == outcome


def test_a_programming_error_is_not_retried() -> None:
    calls = []

    def broken() -> None:
        calls.append(1)
        raise sa.exc.ProgrammingError("SELECT x", {}, Exception("column x does not exist"))

    with pytest.raises(sa.exc.ProgrammingError):
        with_retries(broken, "read", "sqlite://", delays=(0, 0, 0))
    assert len(calls) == 1  # retrying a wrong query would only waste time


def test_postgres_that_comes_up_late_is_waited_for(pg_database: str) -> None:  # noqa: F811 - the imported fixture
    port = closed_port()
    late_proxy(port, after=1.5)
    ledger = Ledger(pg_database.replace("127.0.0.1:5432", f"127.0.0.1:{port}"))
    ledger.retry_delays = (0.5, 1, 2, 4)
    started = time.monotonic()
    ledger.create()  # refused for 1.5 s, then reachable through the proxy
    assert time.monotonic() - started >= 1.4
    assert ledger.count_decisions() == 0
    ledger.dispose()


def test_permanently_unreachable_ledger_is_one_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRANDSTEPS_LEDGER_PASSWORD", "Very-Secret-77")
    port = closed_port()
    ledger = Ledger(f"postgresql+psycopg://app@127.0.0.1:{port}/ledger")
    ledger.retry_delays = (0.01, 0.01)
    with pytest.raises(LedgerError) as info:
        ledger.create()
    message = str(info.value)
    assert message.startswith(
        f"cannot open the ledger postgresql+psycopg://app:***@127.0.0.1:{port}/ledger (tried 3 times): "
    )
    assert "Connection refused" in message and "Very-Secret-77" not in message and "\n" not in message


@pytest.mark.integration
@pytest.mark.parametrize(
    ("failures", "expect_ok", "attempts"),
    [
        # fails twice, then the third attempt reads the metrics
        pytest.param(2, True, 3, id="passes"),
        # fails every time: the first attempt and 3 retries, then the run fails
        pytest.param(5, False, 4, id="outlasts-the-retries"),
    ],
)
def test_metrics_read_retries_then_works_or_fails_cleanly(
    prefect_server: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failures: int, expect_ok: bool, attempts: int
) -> None:
    # twice failing then working: the cycle completes; failing on every attempt (1 + 3 retries): the
    # run fails with the I/O error and the ledger holds exactly what it held before
    import flows.onboarding_cycle as cycle_flow
    import tasks.metrics as metric_tasks
    from tests.flow_helpers import AS_OF, portfolio_dir

    assert metric_tasks.load_daily_metrics.retry_delay_seconds == [1, 4, 10]  # backoff in production
    configs = portfolio_dir(tmp_path, 3)
    ledger = Ledger(f"sqlite:///{tmp_path / 'data' / 'ledger.sqlite'}")
    ledger.create()
    before = ledger_dump(ledger)
    real = metric_tasks.load_metrics
    calls: list[int] = []

    def flaky(source: MetricsSource, **kw: object):
        calls.append(1)
        if len(calls) <= failures:
            raise OSError(5, "Input/output error", str(source.path))
        return real(source, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(metric_tasks, "load_metrics", flaky)
    monkeypatch.setattr(
        cycle_flow, "load_daily_metrics", metric_tasks.load_daily_metrics.with_options(retry_delay_seconds=0)
    )
    if expect_ok:
        summary = cycle_flow.onboarding_cycle(as_of=AS_OF, configs=str(configs))
        assert summary.decided == 3
    else:
        with pytest.raises(OSError, match="Input/output error"):
            cycle_flow.onboarding_cycle(as_of=AS_OF, configs=str(configs))
        assert ledger_dump(ledger) == before
    assert len(calls) == attempts
