"""The Prefect server a command talks to: PREFECT_API_URL's, or a temporary one that dies with the command."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_QUIET_ALWAYS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
}
_QUIET_UNLESS_VERBOSE = {
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL",
}
QUIET_PREFECT_VARIABLES = (*_QUIET_ALWAYS, *_QUIET_UNLESS_VERBOSE)


def quiet_prefect_defaults(verbose: bool = False) -> None:
    """Local server mode without telemetry noise; our own lines report progress."""
    for key, value in (_QUIET_ALWAYS if verbose else {**_QUIET_ALWAYS, **_QUIET_UNLESS_VERBOSE}).items():
        os.environ.setdefault(key, value)


def local_server_mode() -> bool:
    from prefect.settings import PREFECT_API_URL

    return not PREFECT_API_URL.value()


def _settle_prefect() -> None:
    """Let the server record the last task-run events and logs before the command (and a temporary server) ends."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all()
    EventsWorker.drain_all()


@contextmanager
def prefect_api(start_now: bool = True) -> Iterator[Any]:
    """The Prefect API for this command: PREFECT_API_URL's server, or a temporary one that dies with this process.

    Yields the temporary server (None with PREFECT_API_URL), started but perhaps not yet ready: call
    `wait_ready()` before the first flow. Its start (about 10 s) can overlap other work meanwhile.
    """
    if not local_server_mode():
        yield None
        return
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    from brandsteps.server.local_server import TemporaryServer

    print(
        "Starting a temporary Prefect server (about 10 s; set PREFECT_API_URL to use a running one)…", file=sys.stderr
    )
    server = TemporaryServer()
    server.start()
    try:
        # the temporary server's own login, not one set for another server (brandsteps/server/local_server.py says why)
        with temporary_settings({PREFECT_API_URL: server.api_url, PREFECT_API_AUTH_STRING: server.auth_string}):
            if start_now:
                server.wait_ready()
            yield server
            _settle_prefect()  # while the server still runs
    finally:
        server.stop()


def prefect_ui_hint() -> str:
    """Where this command's runs can be seen: the configured server's UI, or how to start one (at its host and port)."""
    from prefect.settings import PREFECT_SERVER_API_HOST, PREFECT_SERVER_API_PORT, PREFECT_UI_URL

    from brandsteps.server.api_auth import without_credentials

    if not local_server_mode():
        return f"open {without_credentials(PREFECT_UI_URL.value())}"
    host, port = PREFECT_SERVER_API_HOST.value(), PREFECT_SERVER_API_PORT.value()
    return (
        f"run `prefect server start`, then open http://{host}:{port} "
        "(the runs of a temporary server are kept in PREFECT_HOME)"
    )
