"""The one retry rule of the tasks: what may pass by itself is retried, bad input never is."""

from __future__ import annotations

from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from brandsteps.sources.metrics_source import MetricsReadError

# A disk or network hiccup, a database restarting or failing over: worth another try in a few seconds.
_PASSING = (OSError, ConnectionError, TimeoutError, OperationalError, InterfaceError, DisconnectionError, PoolTimeout)


def is_transient(_task: object, _run: object, state: object) -> bool:
    """Prefect's retry_condition_fn: retry I/O and database hiccups (and a LedgerError the core marked transient).

    A missing or malformed metrics table (MetricsReadError) will not fix itself, whatever I/O error it wraps.
    """
    try:
        state.result()  # type: ignore[attr-defined]
    except MetricsReadError:
        return False
    except _PASSING:
        return True
    except Exception as exc:
        # the core already retried a few seconds (LedgerError.transient); a longer outage gets these retries too
        return bool(getattr(exc, "transient", False))
    return False
