"""Portfolio-scale benchmark: N brands × D days of demo data through the onboarding cycle, phase by phase.

    .venv/bin/python benchmarks/scale.py                                 # N = 1,000, 10,000, 100,000; D = 35
    .venv/bin/python benchmarks/scale.py --sizes 1000,10000 --repeat 3   # best of three per phase
    .venv/bin/python benchmarks/scale.py --ledger postgresql+psycopg://postgres@127.0.0.1/brandsteps_bench

Data (one folder per N under --work, generated once and reused): the demo generator's synthetic
portfolio (mostly steady brands, a sixth apparel brands with their own gate overrides), brands spread
evenly over the five stages, one YAML file per brand, D days of metrics in one Parquet file, and the
cycle decides the last day. Each N runs in a fresh process, so one size's memory does not carry into
the next; peak RSS is the process's resident memory sampled every 2 ms during the phase.

Phases: load configs (every brand YAML) → load + validate metrics (Parquet, projected, date-filtered)
→ ledger read + cohorts → window metrics → gates (one call per stage, as the flow's tasks) → GMV
diagnosis → ledger write (one transaction); then the whole onboarding-cycle flow run on one Prefect
server started once (its start-up is reported apart). References on the same data: the floor (bare
pandas group-by sums of the base columns over the window, no gates) and the naive design (the same
gate logic once per brand in a Prefect task via .map) at --naive brands. At the largest N it also fills
the ledger with --history days of decisions and times the ledger reads behind `status` and `explain`.
This is a measurement, not a test: it prints figures and checks nothing but the task-run count.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SEED = 7
END = date(2026, 3, 31)  # the cycle's as_of; a fixed date keeps the data identical between runs
PAGE = os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------- measuring


def rss() -> int:
    with open("/proc/self/statm", "rb") as handle:
        return int(handle.read().split()[1]) * PAGE


class Meter:
    """Wall time and peak resident memory of named phases of this process."""

    def __init__(self) -> None:
        self.results: dict[str, dict[str, float]] = {}
        self._peak = 0
        self._running = True
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while self._running:
            self._peak = max(self._peak, rss())
            time.sleep(0.002)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self._peak = rss()
        start = time.perf_counter()
        yield
        wall = time.perf_counter() - start
        peak = max(self._peak, rss())
        best = self.results.get(name)
        if best is None or wall < best["wall"]:
            self.results[name] = {"wall": wall, "rss": peak}

    def close(self) -> dict[str, dict[str, float]]:
        self._running = False
        self.results["process"] = {"wall": 0.0, "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
        return self.results


# ---------------------------------------------------------------- data


def portfolio_dir(work: Path, n: int, days: int) -> Path:
    """The benchmark folder for n brands × days, generated on first use."""
    folder = work / f"n{n}-d{days}"
    done = folder / ".complete"
    if done.exists():
        return folder
    import numpy as np
    import yaml

    from brandsteps.catalogue import STAGE_IDS
    from brandsteps.demo_data import generate_daily_metrics, plan_synthetic_portfolio, playbook_source

    started = time.perf_counter()
    if folder.exists():
        shutil.rmtree(folder)
    brands_dir = folder / "configs" / "brands"
    brands_dir.mkdir(parents=True)
    (folder / "data" / "metrics").mkdir(parents=True)
    start = END - timedelta(days=days - 1)
    brands = plan_synthetic_portfolio(n, start, seed=SEED)
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    for i, brand in enumerate(brands):  # generating the data, not measured
        config = {**brand.config, "stage": STAGE_IDS[i % len(STAGE_IDS)]}  # a portfolio in steady state: every gate busy
        text = yaml.dump(config, Dumper=dumper, allow_unicode=True, sort_keys=False, default_flow_style=False)
        (brands_dir / f"{brand.brand_id}.yaml").write_text(text, encoding="utf-8")
    shutil.copyfile(playbook_source(), folder / "configs" / "steps.yaml")
    (folder / "configs" / "onboarding.yaml").write_text("metrics: data/metrics\nledger: sqlite:///data/ledger.sqlite\ntimezone: Asia/Shanghai\n", encoding="utf-8")
    metrics = generate_daily_metrics(brands, start, days, SEED)
    metrics.to_parquet(folder / "data" / "metrics" / "daily_metrics.parquet", index=False, row_group_size=1_000_000)
    apparel = int(np.sum([b.config["category"] == "apparel" for b in brands]))
    (folder / "README.txt").write_text(f"{n} brands ({apparel} with apparel overrides) x {days} days, seed {SEED}, as_of {END}\n", encoding="utf-8")
    done.write_text("", encoding="utf-8")
    print(f"  generated {folder} ({len(metrics):,} rows) in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return folder


# ---------------------------------------------------------------- phases (one process per N)


def core_phases(folder: Path, ledger_url: str, repeat: int) -> dict[str, Any]:
    """The cycle's core functions on this data, phase by phase, as the onboarding-cycle tasks call them."""
    import numpy as np
    import pandas as pd

    from brandsteps.catalogue import BASE_COLUMNS, EXITED, GRADUATED, STAGE_IDS
    from brandsteps.config import load_portfolio
    from brandsteps.cycle import cohort_for, combine, data_errors, expected_versions, metrics_start, prepare_cohorts, window_metrics_for
    from brandsteps.diagnosis import diagnose
    from brandsteps.gates import decide_stage, exited_decisions
    from brandsteps.ledger import Ledger
    from brandsteps.metrics_source import MetricsSource, load_metrics

    meter = Meter()
    out: dict[str, Any] = {}
    for _ in range(repeat):
        with meter.phase("load configs"):
            portfolio = load_portfolio(folder / "configs", apply_env=False)
        source = MetricsSource(path=folder / "data" / "metrics")
        with meter.phase("load + validate metrics"):
            batch = load_metrics(source, as_of=END, today=END + timedelta(days=1), start=metrics_start(portfolio, END))
        target = _fresh_ledger(ledger_url, folder)
        ledger = Ledger(target)
        ledger.create()
        with meter.phase("ledger read + cohorts"):
            cohorts = prepare_cohorts(portfolio, ledger.read_state(), END)
        with meter.phase("window metrics"):
            window = window_metrics_for(batch, cohorts)
            errors = data_errors(batch, cohorts)
        with meter.phase("gates"):
            parts = [decide_stage(portfolio, s, cohort_for(cohorts, s, errors), window, END) for s in (*STAGE_IDS, GRADUATED)]
            parts.append(exited_decisions(cohort_for(cohorts, EXITED, errors), END))
            decided = combine(parts)
        with meter.phase("GMV diagnosis"):
            decisions = diagnose(decided, cohorts, portfolio)
        with meter.phase("ledger write"):
            written = ledger.record_cycle(decisions, END, None, expected_versions(cohorts), len(batch.quarantine))
        ledger.dispose()
        # The floor: bare pandas group-by sums of the base columns over the longest window, no gates.
        daily = batch.daily
        with meter.phase("floor: group-by window sums"):
            recent = daily[daily["date"] >= pd.Timestamp(END - timedelta(days=27))]
            recent.groupby("brand_id", sort=False)[list(BASE_COLUMNS)].sum(min_count=1)
        out.update(brands=len(portfolio.brands), rows=len(daily), decided=written.written, criteria_rows=int(decisions["criteria"].str.count('"role"').sum()))
        out["stages"] = {str(k): int(v) for k, v in decisions["stage"].value_counts().items()}
        del portfolio, batch, cohorts, window, decided, decisions, daily, recent, parts
        np.zeros(1)
    out["phases"] = meter.close()
    return out


def _fresh_ledger(url: str, folder: Path) -> str:
    """An empty ledger for this run: a new SQLite file, or the PostgreSQL database emptied."""
    if url.startswith("sqlite"):
        path = folder / "data" / "bench-ledger.sqlite"
        for suffix in ("", "-wal", "-shm", ".cycle-lock"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    import sqlalchemy as sa

    from brandsteps.ledger import metadata

    engine = sa.create_engine(url)
    metadata.drop_all(engine)
    engine.dispose()
    return url
