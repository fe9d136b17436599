"""A command in local server mode leaves no Prefect server behind: not when it ends, fails, or is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import simple_playbook, write_configs
from tests.prefect_process import BIN, quiet_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _processes_with_home(home: Path) -> list[str]:
    """Command lines of the live processes whose environment has PREFECT_HOME=home."""
    wanted = f"PREFECT_HOME={home}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if wanted in (proc / "environ").read_bytes().split(b"\0"):
                status = (proc / "stat").read_text().split()[2]
                if status != "Z":  # a zombie has exited: only its parent's bookkeeping is left
                    found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def _wait_until_gone(home: Path, timeout: float = 20.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while (left := _processes_with_home(home)) and time.monotonic() < deadline:
        time.sleep(0.25)
    return left


def _portfolio(root: Path, metrics: str = "data/metrics.csv") -> Path:
    configs = write_configs(
        root,
        {"alpha": {}, "beta": {}},
        playbook=simple_playbook(),
        onboarding={"metrics": metrics, "ledger": "sqlite:///data/ledger.sqlite"},
    )
    (root / "data").mkdir(exist_ok=True)
    days = pd.date_range("2026-01-01", "2026-01-03")
    pd.DataFrame(
        [{"brand_id": b, "date": d.date(), "gmv": 500.0, "orders": 5.0} for b in ("alpha", "beta") for d in days]
    ).to_csv(root / "data" / "metrics.csv", index=False)
    return configs


def _run(root: Path, configs: Path) -> subprocess.Popen[bytes]:
    env = quiet_env(root / "home")  # no PREFECT_API_URL: local server mode
    return subprocess.Popen(
        [str(BIN / "brandsteps"), "run", "--as-of", "2026-01-03", "--configs", str(configs)],
        env=env,
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_a_killed_run_leaves_no_server(tmp_path: Path) -> None:
    configs = _portfolio(tmp_path)
    proc = _run(tmp_path, configs)
    try:
        # mid-cycle: the flow has opened the ledger (its file appears), so the temporary server is up and in use
        deadline = time.monotonic() + 120
        while (
            not (tmp_path / "data" / "ledger.sqlite").exists() and proc.poll() is None and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()[0].decode()
        assert any(
            "brandsteps.server.local_server" in p for p in _processes_with_home(tmp_path / "home")
        )  # the server we expect to vanish
        proc.send_signal(signal.SIGKILL)  # no handler, no atexit, no finally runs
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _wait_until_gone(tmp_path / "home") == []


@pytest.mark.parametrize(
    ("metrics", "exit_code"),
    [
        pytest.param("data/metrics.csv", 0, id="completed"),
        # the metrics file does not exist: the flow fails, the command exits 1 after the server started
        pytest.param("data/missing.csv", 1, id="failed"),
    ],
)
def test_a_run_that_ends_leaves_no_server(tmp_path: Path, metrics: str, exit_code: int) -> None:
    configs = _portfolio(tmp_path, metrics)
    proc = _run(tmp_path, configs)
    output = proc.communicate(timeout=300)[0].decode()
    assert proc.returncode == exit_code, output
    assert "Traceback" not in output
    assert _wait_until_gone(tmp_path / "home", timeout=10) == []
    assert os.path.exists(tmp_path / "home")  # the temporary server kept its runs in this PREFECT_HOME
