"""The tasks' one retry rule: what may pass by itself is retried, bad input never is."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from brandsteps.ledger import LedgerError, NotAwaitingApproval
from brandsteps.sources.imports.reading import ImportFormatError
from brandsteps.sources.metrics_source import MetricsReadError
from tasks.retries import is_transient


class _State:
    def __init__(self, exc: BaseException | None) -> None:
        self.exc = exc

    def result(self) -> None:
        if self.exc is not None:
            raise self.exc


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        pytest.param(OSError("disk busy"), True, id="os-error"),
        pytest.param(ConnectionResetError(), True, id="connection-reset"),
        pytest.param(
            OperationalError("SELECT 1", {}, Exception("server closed the connection")), True, id="database-away"
        ),
        pytest.param(PoolTimeout("pool exhausted"), True, id="pool-timeout"),
        # the ledger's core retried a few seconds already and says the failure may pass
        pytest.param(LedgerError("cannot write the ledger", transient=True), True, id="ledger-transient"),
        pytest.param(NotAwaitingApproval("b is not awaiting approval"), False, id="ledger-answer"),
        # a missing metrics file is a MetricsReadError: another try finds it missing again
        pytest.param(MetricsReadError("data/metrics.csv: no such file"), False, id="metrics-missing"),
        pytest.param(ImportFormatError("x.csv: row 5, 成交金额: cannot read"), False, id="bad-export"),
        pytest.param(ValueError("as_of"), False, id="bad-parameter"),
        pytest.param(None, False, id="no-error"),
    ],
)
def test_only_what_may_pass_is_retried(error: BaseException | None, retried: bool) -> None:
    assert is_transient(None, None, _State(error)) is retried
