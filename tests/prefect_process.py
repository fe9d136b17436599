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


def tracebacks_in_run_logs(api: str) -> list[str]:
    """Every traceback the server holds in its flow and task runs' logs (what the UI shows under Logs)."""
    from prefect.client.orchestration import SyncPrefectClient

    found, offset = [], 0
    with SyncPrefectClient(api) as client:
        while True:
            response = client._client.post("/logs/filter", json={"offset": offset, "limit": 200, "sort": "TIMESTAMP_ASC"})
            response.raise_for_status()
            page = response.json()
            found += [f"run {log.get('flow_run_id')}: {log['message'][:3000]}" for log in page if TRACEBACK in log["message"]]
            if len(page) < 200:
                return found
            offset += 200


def wait_for(what: str, check: Callable[[], Any], timeout: float = 90.0, every: float = 1.0) -> Any:
    """The first truthy value of check(), asked every `every` seconds; a TimeoutError naming what after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f} s")


def api_client(api: str) -> Any:
    from prefect.client.orchestration import SyncPrefectClient

    return SyncPrefectClient(api)


def api_post(api: str, path: str, body: dict[str, Any]) -> Any:
    with api_client(api) as client:
        response = client._client.post(path, json={"offset": 0, "limit": 200, **body})
        response.raise_for_status()
        return response.json()


def latest_artifact(api: str, key: str) -> dict[str, Any]:
    found = api_post(api, "/artifacts/filter", {"artifacts": {"key": {"any_": [key]}}, "sort": "CREATED_DESC"})
    assert found, f"no artifact {key}"
    return found[0]


def flow_runs_of(api: str, flow_name: str) -> list[dict[str, Any]]:
    return api_post(api, "/flow_runs/filter", {"flows": {"name": {"any_": [flow_name]}}, "sort": "START_TIME_DESC"})


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def chromium_page(url: str, screenshot: Path) -> str:
    """The rendered DOM of a UI page (after its API calls), and a screenshot of it."""
    flags = [*CHROMIUM_FLAGS, "--virtual-time-budget=20000"]
    subprocess.run([CHROMIUM, *flags, "--window-size=1400,1000", f"--screenshot={screenshot}", url], capture_output=True, timeout=120, check=False)
    # a tall window: the UI renders only the log lines and rows that fit on screen
    dom = subprocess.run([CHROMIUM, *flags, "--window-size=1400,4000", "--dump-dom", url], capture_output=True, timeout=120, check=True)
    return dom.stdout.decode("utf-8", errors="replace")
