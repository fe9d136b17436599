"""Concurrency: cycles started at once, on SQLite and PostgreSQL, record exactly what one cycle would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from brandsteps.ledger import Ledger
from tests.cycle_runner import START, make_portfolio
from tests.ledger_checks import check_invariants, comparable, pg_database, reference  # noqa: F401 - pg_database is a fixture

pytestmark = [pytest.mark.slow, pytest.mark.integration]
REPO = Path(__file__).resolve().parents[1]
N_BRANDS = 600
DAY = [START + timedelta(days=i) for i in range(5)]


def run_at_once(configs: Path, metrics: Path, url: str, day_lists: list[list]) -> list[tuple[int, list[dict], str]]:
    """Start one runner per day list at the same moment; (exit code, per-day summaries, stderr) each."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.cycle_runner", str(configs), str(metrics), url, *map(str, days)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        for days in day_lists
    ]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        out.append((p.returncode, [json.loads(x) for x in stdout.splitlines() if x.startswith("{")], stderr))
    return out


@pytest.fixture(scope="module")
def portfolio(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, dict]]:
    """The portfolio and the reference ledgers: days 1–3 at once, 1–5 in order, and 1–3 then 5 (4 skipped)."""
    root = tmp_path_factory.mktemp("concurrency")
    configs, metrics = make_portfolio(root, N_BRANDS, len(DAY))
    refs = {}
    for name, days in {"1-3": DAY[:3], "1-5": DAY, "1-3,5": [*DAY[:3], DAY[4]]}.items():
        led = reference(str(configs), str(metrics), f"sqlite:///{root / f'ref-{name}.sqlite'}", days)
        refs[name] = comparable(led)
        led.dispose()
    return configs, metrics, refs


def ledger_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    return f"sqlite:///{tmp_path / 'ledger.sqlite'}" if backend == "sqlite" else request.getfixturevalue("pg_database")


@pytest.mark.parametrize("backend", [pytest.param("sqlite", id="sqlite"), pytest.param("postgresql", id="postgresql")])
def test_four_cycles_for_the_same_days_equal_one(
    portfolio, backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    configs, metrics, refs = portfolio
    url = ledger_url(backend, tmp_path, request)
    # four schedules fire together on an empty ledger, each deciding days 1, 2 and 3 (brands advance on day 3)
    results = run_at_once(configs, metrics, url, [DAY[:3]] * 4)
    for code, _, stderr in results:
        assert code == 0, stderr
        assert "locked" not in stderr.lower() and "Traceback" not in stderr
    ledger = Ledger(url)
    check_invariants(ledger, N_BRANDS)
    assert comparable(ledger) == refs["1-3"]  # same decisions, states and history as one run: no double advance
    # each day was written by exactly one of the four; the others found it decided
    for i in range(3):
        written = [s[i]["decided"] for _, s, _ in results]
        assert sorted(written) == [0, 0, 0, N_BRANDS]
    ledger.dispose()


@pytest.mark.parametrize("backend", [pytest.param("sqlite", id="sqlite"), pytest.param("postgresql", id="postgresql")])
def test_two_different_days_at_once_apply_in_date_order(
    portfolio, backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    configs, metrics, refs = portfolio
    url = ledger_url(backend, tmp_path, request)
    reference(str(configs), str(metrics), url, DAY[:3]).dispose()  # days 1–3 decided
    (code4, s4, err4), (code5, s5, err5) = run_at_once(configs, metrics, url, [[DAY[3]], [DAY[4]]])
    assert (code4, code5) == (0, 0), err4 + err5
    ledger = Ledger(url)
    check_invariants(ledger, N_BRANDS)
    got = comparable(ledger)
    if s4[0]["decided"] == N_BRANDS:
        # day 4 got the lock first; day 5 waited and was decided on the state day 4 left
        assert (s5[0]["decided"], got == refs["1-5"]) == (N_BRANDS, True)
    else:
        # day 5 got the lock first; day 4 then found a later day decided and changed nothing
        assert (s4[0]["decided"], s4[0]["later"], got == refs["1-3,5"]) == (0, N_BRANDS, True)
    ledger.dispose()
