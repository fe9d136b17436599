"""Real Prefect processes for end-to-end tests: `prefect server start`, `brandsteps serve`, workers."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def quiet_env(home: Path, api_url: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of a child process: its own PREFECT_HOME, no telemetry, this API."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT="false",
        PYTHONUNBUFFERED="1",
    )
    if api_url:
        env["PREFECT_API_URL"] = api_url
    env.update(extra)
    return env


def stop(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left: nothing survives the test."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=grace)


def drain_prefect_workers() -> None:
    """Send this process's queued logs and events while their server still runs (a later drain would wait on a dead one)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all()
    EventsWorker.drain_all()


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} not healthy after {timeout:.0f} s:\n{log.read_text(errors='replace')[-3000:]}")


@contextmanager
def prefect_server(home: Path, database_url: str | None = None, **settings: str) -> Iterator[str]:
    """`prefect server start` on a free port with its own home (and database, and settings); yields the API URL."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    extra = {"PREFECT_UI_API_URL": f"http://127.0.0.1:{port}/api", **settings}  # the UI's own default is port 4200
    if database_url:
        extra["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url
    log = home / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=quiet_env(home, **extra),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=home,
        )
    try:
        wait_healthy(f"http://127.0.0.1:{port}/api/health", proc, log)
        yield f"http://127.0.0.1:{port}/api"
    finally:
        stop(proc)


@contextmanager
def background(args: list[str], env: dict[str, str], log: Path, cwd: Path = REPO) -> Iterator[subprocess.Popen[bytes]]:
    """A long-running child (serve, a worker) in its own process group, stopped on exit."""
    with log.open("ab") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=cwd)
    try:
        yield proc
    finally:
        stop(proc)


TRACEBACK = "Traceback (most recent call last)"


def tracebacks_in_logs(*logs: Path) -> list[str]:
    """Every traceback in these log files, each with the file's name and the lines that follow it."""
    found = []
    for log in logs:
        if not log.exists():
            continue
        lines = log.read_text(errors="replace").splitlines()
        found += [f"{log.name}: " + "\n".join(lines[i : i + 25]) for i, line in enumerate(lines) if TRACEBACK in line]
    return found


def run_logs(api: str, auth: str | None = None) -> list[dict[str, Any]]:
    """Every log line the server holds for its flow and task runs (what the UI shows under Logs), oldest first."""
    found: list[dict[str, Any]] = []
    with api_client(api, auth) as client:
        while True:
            body = {"offset": len(found), "limit": 200, "sort": "TIMESTAMP_ASC"}
            response = client._client.post("/logs/filter", json=body)
            response.raise_for_status()
            page = response.json()
            found += page
            if len(page) < 200:
                return found


def tracebacks_in_run_logs(api: str, auth: str | None = None) -> list[str]:
    """Every traceback the server holds in its flow and task runs' logs."""
    logs = run_logs(api, auth)
    return [f"run {log.get('flow_run_id')}: {log['message'][:3000]}" for log in logs if TRACEBACK in log["message"]]


def wait_for(what: str, check: Callable[[], Any], timeout: float = 90.0, every: float = 1.0) -> Any:
    """The first truthy value of check(), asked every `every` seconds; a TimeoutError naming what after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f} s")


def api_client(api: str, auth: str | None = None) -> Any:
    """A client of this API; auth: the user:password of a server started with PREFECT_SERVER_API_AUTH_STRING."""
    from prefect.client.orchestration import SyncPrefectClient

    return SyncPrefectClient(api, auth_string=auth)


@contextmanager
def api_settings(api: str, auth: str | None = None) -> Iterator[None]:
    """This process's Prefect calls (run_deployment, resume_flow_run, …) go to this API, with this login."""
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api, PREFECT_API_AUTH_STRING: auth}):
        yield


def api_post(api: str, path: str, body: dict[str, Any], auth: str | None = None) -> Any:
    with api_client(api, auth) as client:
        response = client._client.post(path, json={"offset": 0, "limit": 200, **body})
        response.raise_for_status()
        return response.json()


def latest_artifact(api: str, key: str, auth: str | None = None) -> dict[str, Any]:
    found = api_post(api, "/artifacts/filter", {"artifacts": {"key": {"any_": [key]}}, "sort": "CREATED_DESC"}, auth)
    assert found, f"no artifact {key}"
    return found[0]


def flow_runs_of(api: str, flow_name: str, auth: str | None = None) -> list[dict[str, Any]]:
    body = {"flows": {"name": {"any_": [flow_name]}}, "sort": "START_TIME_DESC"}
    return api_post(api, "/flow_runs/filter", body, auth)


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def chromium_page(url: str, screenshot: Path, auth: str | None = None, expect: str = "") -> str:
    """The rendered DOM of a UI page (after its API calls), and a screenshot of it.

    auth: the server's user:password, given as a person gives it at the UI's login prompt (then the page is
    read once `expect` is on it, or after 20 s).
    """
    if auth:
        return _chromium_page_logged_in(url, screenshot, auth, expect)
    flags = [*CHROMIUM_FLAGS, "--virtual-time-budget=20000"]
    subprocess.run(
        [CHROMIUM, *flags, "--window-size=1400,1000", f"--screenshot={screenshot}", url],
        capture_output=True,
        timeout=120,
        check=False,
    )
    # a tall window: the UI renders only the log lines and rows that fit on screen
    dom = subprocess.run(
        [CHROMIUM, *flags, "--window-size=1400,4000", "--dump-dom", url], capture_output=True, timeout=120, check=True
    )
    return dom.stdout.decode("utf-8", errors="replace")


class _DevTools:
    """Chrome's DevTools protocol over one page's websocket: send a command, get its result."""

    def __init__(self, socket: Any) -> None:
        self.socket, self.last_id = socket, 0

    def __call__(self, method: str, **params: Any) -> dict[str, Any]:
        import json

        self.last_id += 1
        self.socket.send(json.dumps({"id": self.last_id, "method": method, "params": params}))
        while True:  # events arrive in between; only our answer matters
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == self.last_id:
                assert "error" not in message, (method, message["error"])
                return message["result"]

    def evaluate(self, expression: str) -> Any:
        return self("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")


def _devtools_page(port: int) -> str | None:
    """The websocket of Chromium's page, once its DevTools answer."""
    import json

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as response:
            return next((t["webSocketDebuggerUrl"] for t in json.load(response) if t["type"] == "page"), None)
    except (OSError, ValueError):
        return None


def _chromium_page_logged_in(url: str, screenshot: Path, auth: str, expect: str) -> str:
    """The UI keeps the login a person types at its prompt in the origin's localStorage (base64, as the Basic header
    carries it): store it there as the prompt does, then open the page."""
    import base64

    from websockets.sync.client import connect

    port, profile = free_port(), screenshot.parent / f"chromium-profile-{screenshot.stem}"
    # a tall window: the UI renders only the log lines and rows that fit on screen
    flags = [*CHROMIUM_FLAGS, f"--remote-debugging-port={port}", f"--user-data-dir={profile}"]
    proc = subprocess.Popen(
        [CHROMIUM, *flags, "--window-size=1400,4000", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        socket_url = wait_for("Chromium's DevTools", lambda: _devtools_page(port), timeout=60, every=0.2)
        with connect(socket_url, max_size=None, open_timeout=30) as socket:
            tools = _DevTools(socket)
            _store_login(tools, url, base64.b64encode(auth.encode("utf-8")).decode("ascii"))
            tools("Page.navigate", url=url)
            _wait_for_text(tools, expect)
            dom = tools.evaluate("document.documentElement.outerHTML")
            screenshot.write_bytes(base64.b64decode(tools("Page.captureScreenshot", format="png")["data"]))
            return str(dom)
    finally:
        stop(proc)


def _store_login(tools: _DevTools, url: str, login: str) -> None:
    """localStorage belongs to an origin: open a page of the UI's own (a small JSON one), then store the login."""
    import json

    parts = urlsplit(url)
    tools("Page.navigate", url=f"{parts.scheme}://{parts.netloc}/ui-settings")
    wait_for("the UI's origin", lambda: tools.evaluate("document.readyState") == "complete", timeout=30, every=0.2)
    tools.evaluate(f"localStorage.setItem('prefect-password', {json.dumps(login)})")


def _wait_for_text(tools: _DevTools, expect: str, timeout: float = 60.0) -> None:
    """Until the page shows this text (20 s without one); past the time-out the page is read as it is."""
    if not expect:
        time.sleep(20)
        return
    deadline = time.monotonic() + timeout
    while expect not in (tools.evaluate("document.body.innerText") or "") and time.monotonic() < deadline:
        time.sleep(0.5)
