"""Crash safety: a cycle process killed with SIGKILL at random points, then rerun, leaves a true ledger."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import pytest

from brandsteps.ledger import Ledger
from tests.cycle_runner import START, make_portfolio
from tests.ledger_checks import check_invariants, comparable, reference

pytestmark = [pytest.mark.slow, pytest.mark.integration]
REPO = Path(__file__).resolve().parents[1]
N_BRANDS, N_DAYS, TRIALS = 1000, 12, 10  # enough days that every trial still finds a cycle to interrupt
DAYS = [START + timedelta(days=i) for i in range(N_DAYS)]


def start_runner(configs: Path, metrics: Path, url: str, days: list[date]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.cycle_runner", str(configs), str(metrics), url, *map(str, days)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), "CYCLE_RUNNER_MID_WRITE_PAUSE": "0.2"},
    )


def kill_during_run(proc: subprocess.Popen[str], rng: random.Random, mid_write: bool) -> tuple[bool, list[str]]:
    """SIGKILL the runner: inside a ledger write (after a random write-start) or at a random moment.

    Returns whether the kill landed between a write-start and its write-end, and the lines seen.
    """
    lines: list[str] = []
    writes_to_skip = rng.randrange(2) if mid_write else -1  # kill in the 1st or 2nd write that has decisions to write
    deadline = time.monotonic() + rng.uniform(0.3, 2.0)  # within a day or two of a run: start-up takes about 1 s
    killed = threading.Event()

    def timer() -> None:
        while not killed.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not killed.is_set() and not mid_write:
            proc.send_signal(signal.SIGKILL)
            killed.set()

    armed = False
    threading.Thread(target=timer, daemon=True).start()
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.strip())
        if mid_write and line.startswith("write-start") and line.strip() != "write-start 0":
            armed = writes_to_skip == 0
            writes_to_skip -= 1
        if mid_write and line.startswith("write-mid") and armed:
            # the runner holds its open transaction (decisions in, states not yet) for a moment here
            time.sleep(rng.uniform(0.0, 0.05))
            proc.send_signal(signal.SIGKILL)
            killed.set()
            break
    killed.set()
    proc.wait(timeout=60)
    rest = proc.stdout.read() if proc.stdout else ""
    lines += [x.strip() for x in rest.splitlines()]
    starts, ends = sum(x.startswith("write-start") for x in lines), lines.count("write-end")
    return proc.returncode == -signal.SIGKILL and starts > ends, lines


def test_sigkill_at_random_points_then_rerun(tmp_path: Path) -> None:
    configs, metrics = make_portfolio(tmp_path, N_BRANDS, N_DAYS)
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    rng = random.Random(20260105)
    ledger = Ledger(url)
    ledger.create()
    mid_write_kills = 0
    for trial in range(TRIALS):
        proc = start_runner(configs, metrics, url, DAYS)
        in_write, lines = kill_during_run(proc, rng, mid_write=trial % 2 == 0)
        mid_write_kills += in_write
        # whatever the kill interrupted, the ledger shows whole cycles only, and a true history
        check_invariants(ledger, N_BRANDS)
    # at least a third of the trials must really have hit a write in progress, or the test proves little
    assert mid_write_kills >= TRIALS // 3, mid_write_kills
    proc = start_runner(configs, metrics, url, DAYS)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    final = check_invariants(ledger, N_BRANDS)
    assert final["days"] == N_DAYS and final["decisions"] == N_BRANDS * N_DAYS
    # the crashed-and-rerun ledger equals one clean run of the same days, decision for decision
    clean = reference(str(configs), str(metrics), f"sqlite:///{tmp_path / 'clean.sqlite'}", DAYS)
    assert comparable(ledger) == comparable(clean)
    print(f"{TRIALS} kills, {mid_write_kills} inside a ledger write; final {final}")
    assert final["moves"] > 100  # advances, demotions and recycles happened: the replay check had work to do
