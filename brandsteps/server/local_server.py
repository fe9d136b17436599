"""A temporary Prefect API server for one command that cannot outlive it, even when the command is killed.

Prefect's own local server mode starts the server as a plain child process and stops it at exit;
a SIGKILLed or crashed command leaves it running for ever. Here the server's process reads a pipe
whose only writer is the command: when the command dies for any reason the kernel closes the pipe,
the server sees end-of-file and stops itself. Run as `python -m brandsteps.server.local_server PORT`.

It wants a login of its own, a fresh user:password per server that only the command knows: its loopback
port is open to every user of the machine. So a server login set in the environment for another server
(PREFECT_SERVER_API_AUTH_STRING, PREFECT_API_AUTH_STRING) is not used here, and the command's client sends
`auth_string` instead.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from brandsteps.server.api_auth import new_auth_string

__all__ = ["TemporaryServer"]

STOP_GRACE_S = 5.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TemporaryServer:
    """A Prefect API on a free local port, started with `start()` (returns at once) and ready after `wait_ready()`."""

    def __init__(self, log: Path | None = None) -> None:
        self.port = _free_port()
        self.log = log
        self.auth_string = new_auth_string()  # never printed: the command's client sends it, nobody types it
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> None:
        out = self.log.open("ab") if self.log else subprocess.DEVNULL
        env = {**os.environ, "PREFECT_UI_ENABLED": "false", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        env.pop("PREFECT_API_URL", None)  # the server is the API; it must not look for another one
        # the server checks the first; the second is what any client inside the server process would send
        env.update(PREFECT_SERVER_API_AUTH_STRING=self.auth_string, PREFECT_API_AUTH_STRING=self.auth_string)
        try:
            # stdin is the lifeline: this process holds its only write end
            self.process = subprocess.Popen(  # noqa: S603 - our own module, with this interpreter
                [sys.executable, "-m", "brandsteps.server.local_server", str(self.port)],
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=out,
                env=env,
            )
        finally:
            if self.log:
                out.close()  # type: ignore[union-attr]

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Block until the API answers its health check; the server's exit or a time-out is an error."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise RuntimeError(f"the temporary Prefect server exited (code {code}) before it was ready")
            try:  # Prefect leaves /health open without a login, for probes like this one
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as response:  # noqa: S310 - our own loopback URL
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the temporary Prefect server did not answer within {timeout:.0f} s")

    def stop(self) -> None:
        """Close the lifeline (the server stops itself), then make sure it has."""
        proc, self.process = self.process, None
        if proc is None:
            return
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _stop_when_parent_dies() -> None:
    """Wait for end-of-file on stdin (the parent closed it, or died), then stop this process."""
    while sys.stdin.buffer.read(4096):
        pass
    os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's own graceful shutdown
    time.sleep(STOP_GRACE_S)
    os._exit(0)  # it did not stop in time: nothing of this process may survive its parent


def ephemeral_app() -> object:
    """Prefect's API as its local server mode runs it: no UI, only the services a short-lived server needs."""
    from prefect.server.api.server import create_app

    return create_app(ephemeral=True, final=True)


def _serve(port: int) -> None:
    import uvicorn

    threading.Thread(target=_stop_when_parent_dies, name="lifeline", daemon=True).start()
    uvicorn.run(
        "brandsteps.server.local_server:ephemeral_app",
        factory=True,
        host="127.0.0.1",
        port=port,
        log_level="error",
        lifespan="on",
    )


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
