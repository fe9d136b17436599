"""The one rule of what is worth another try, and the ledger's own retry where no Prefect task retries for it."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa

from brandsteps.ledger.errors import LedgerError
from brandsteps.sources.metrics_source import MetricsReadError

_T = TypeVar("_T")

# A disk or network hiccup, a database restarting or failing over: worth another try in a few seconds.
_PASSING = (
    OSError,
    ConnectionError,
    TimeoutError,
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
    sa.exc.DisconnectionError,
    sa.exc.TimeoutError,
)

# Waits between attempts when the database is briefly unreachable (restart, failover, 'database is locked').
RETRY_DELAYS: tuple[float, ...] = tuple(
    float(x) for x in os.environ.get("BRANDSTEPS_DB_RETRY_DELAYS", "0.5,1,2,4").split(",") if x.strip()
)


def is_transient(exc: BaseException) -> bool:
    """Whether exc may pass by itself: I/O, connection, timeout and database hiccups, or a LedgerError marked transient.

    A missing or malformed metrics table (MetricsReadError) will not fix itself, whatever I/O error it wraps;
    neither will bad input of any kind.
    """
    if isinstance(exc, MetricsReadError):
        return False
    if isinstance(exc, _PASSING):
        return True
    # the ledger already retried a few seconds and gave up: a longer outage is worth the caller's retries too
    return isinstance(exc, LedgerError) and exc.transient


def with_retries(action: Callable[[], _T], what: str, display_url: str, delays: tuple[float, ...] | None = None) -> _T:
    """Run one whole transaction, again after a pause when the database is briefly unavailable.

    Safe because every write is one transaction that either committed or left nothing, and a
    repeated cycle write finds its decisions already there. Ends with one LedgerError, marked
    transient; delays () tries once (the caller retries), None waits RETRY_DELAYS.
    """
    waits = RETRY_DELAYS if delays is None else delays
    for attempt in range(len(waits) + 1):
        try:
            return action()
        except Exception as exc:
            if not is_transient(exc):
                raise
            if attempt == len(waits):
                raise LedgerError(
                    f"cannot {what} the ledger {display_url} (tried {attempt + 1} times): {short_error(exc)}",
                    transient=True,
                ) from None
            time.sleep(waits[attempt])
    raise AssertionError("unreachable")


def short_error(exc: Exception) -> str:
    """The first line of the database's own message (or the error's name), at most 200 characters."""
    text = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
