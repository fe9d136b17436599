"""Portfolio-scale benchmark: N brands × D days of demo data through the onboarding cycle, phase by phase.

    .venv/bin/python benchmarks/scale.py                                 # N = 1,000, 10,000, 100,000; D = 35
    .venv/bin/python benchmarks/scale.py --sizes 1000,10000 --repeat 3   # best of three per phase
    .venv/bin/python benchmarks/scale.py --ledger postgresql+psycopg://postgres@127.0.0.1/brandsteps_bench

Data (one folder per N under --work, generated once and reused): the demo generator's synthetic
portfolio (mostly steady brands, a sixth apparel brands with their own gate overrides), brands spread
evenly over the five stages, one YAML file per brand, D days of metrics in one Parquet file, and the
cycle decides the last day. Each N runs in a fresh process, so one size's memory does not carry into
the next; peak RSS is the process's resident memory sampled every 2 ms during the phase.

Phases: load configs (every brand YAML; "cold": with the parse cache emptied first, so every file
is parsed) → load + validate metrics (Parquet, projected, date-filtered)
→ ledger read + cohorts → window metrics → gates (one call per stage, as the flow's tasks: verdicts,
actions and reasons, criteria as arrays) → GMV diagnosis → evidence JSON (criteria and factors as the
ledger's text) → ledger write (one transaction); then the whole onboarding-cycle flow run on one Prefect
server started once (its start-up is reported apart), first with an empty parse cache, then again
(the daily case: configs mostly unchanged). References on the same data: the floor (bare pandas
group-by sums of the base columns over the window, no gates) and the naive design (the same gate
logic once per brand in a Prefect task via .map) at --naive brands. Both designs also run over one
brand, so the cost per brand can be compared with and without each design's fixed cost per cycle; and
like for like, the naive design against the same gate logic inside our flow (the window-metrics task
to the last stage task, read from the flow run's task runs). At the largest N it also fills
the ledger with --history days of decisions and times what `status` and `explain` do: the brand roster,
the ledger reads, and each whole command in this process.
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
    from brandsteps.sources.demo.folder import playbook_source
    from brandsteps.sources.demo.metrics import generate_daily_metrics
    from brandsteps.sources.demo.portfolio import plan_synthetic_portfolio

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
        config = {
            **brand.config,
            "stage": STAGE_IDS[i % len(STAGE_IDS)],
        }  # a portfolio in steady state: every gate busy
        text = yaml.dump(config, Dumper=dumper, allow_unicode=True, sort_keys=False, default_flow_style=False)
        (brands_dir / f"{brand.brand_id}.yaml").write_text(text, encoding="utf-8")
    shutil.copyfile(playbook_source(), folder / "configs" / "steps.yaml")
    onboarding = "metrics: data/metrics\nledger: sqlite:///data/ledger.sqlite\ntimezone: Asia/Shanghai\n"
    (folder / "configs" / "onboarding.yaml").write_text(onboarding, encoding="utf-8")
    metrics = generate_daily_metrics(brands, start, days, SEED)
    metrics.to_parquet(folder / "data" / "metrics" / "daily_metrics.parquet", index=False, row_group_size=1_000_000)
    apparel = int(np.sum([b.config["category"] == "apparel" for b in brands]))
    (folder / "README.txt").write_text(
        f"{n} brands ({apparel} with apparel overrides) x {days} days, seed {SEED}, as_of {END}\n", encoding="utf-8"
    )
    done.write_text("", encoding="utf-8")
    print(f"  generated {folder} ({len(metrics):,} rows) in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return folder


# ---------------------------------------------------------------- phases (one process per N)


def core_phases(folder: Path, ledger_url: str, repeat: int) -> dict[str, Any]:
    """The cycle's core functions on this data, phase by phase, as the onboarding-cycle tasks call them."""
    import numpy as np
    import pandas as pd

    from brandsteps.catalogue import BASE_COLUMNS, EVALUATED_STAGES, EXITED
    from brandsteps.config import load_portfolio
    from brandsteps.engine.cycle import (
        cohort_for,
        data_errors,
        expected_versions,
        metrics_start,
        prepare_cohorts,
        window_metrics_for,
    )
    from brandsteps.engine.diagnosis import diagnose
    from brandsteps.engine.evidence import combine, render
    from brandsteps.engine.gates import gate_exited, gate_stage
    from brandsteps.ledger import Ledger
    from brandsteps.sources.metrics_source import MetricsSource, load_metrics

    meter = Meter()
    out: dict[str, Any] = {}
    for _ in range(repeat):
        _clear_parse_cache()
        with meter.phase("load configs (cold)"):
            load_portfolio(folder / "configs", apply_env=False)
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
            window = window_metrics_for(portfolio, batch, cohorts)
            errors = data_errors(batch, cohorts)
        with meter.phase("gates"):
            parts = [gate_stage(portfolio, s, cohort_for(cohorts, s, errors), window, END) for s in EVALUATED_STAGES]
            parts.append(gate_exited(cohort_for(cohorts, EXITED, errors), END))
            decided = combine(parts)
        with meter.phase("GMV diagnosis"):
            diagnosed = diagnose(decided, cohorts, portfolio)
        with meter.phase("evidence JSON"):
            decisions = render(diagnosed)
        with meter.phase("ledger write"):
            written = ledger.record_cycle(decisions, END, None, expected_versions(cohorts), len(batch.quarantine))
        ledger.dispose()
        # The floor: bare pandas group-by sums of the base columns over the longest window, no gates.
        daily = batch.daily
        with meter.phase("floor: group-by window sums"):
            recent = daily[daily["date"] >= pd.Timestamp(END - timedelta(days=27))]
            recent.groupby("brand_id", sort=False)[list(BASE_COLUMNS)].sum(min_count=1)
        out.update(
            brands=len(portfolio.brands),
            rows=len(daily),
            decided=written.written,
            criteria_rows=int(decisions["criteria"].str.count('"role"').sum()),
        )
        out["stages"] = {str(k): int(v) for k, v in decisions["stage"].value_counts().items()}
        del portfolio, batch, cohorts, window, decided, diagnosed, decisions, daily, recent, parts
        np.zeros(1)
    out["phases"] = meter.close()
    return out


def _clear_parse_cache() -> None:
    """Empty the config parse cache (BRANDSTEPS_CACHE_DIR, set per run), so the next load parses every file."""
    folder = os.environ.get("BRANDSTEPS_CACHE_DIR")
    if folder and Path(folder).is_dir():
        shutil.rmtree(folder)


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


def flow_run(folder: Path, ledger_url: str, cold: bool, repeat: int) -> dict[str, Any]:
    """Whole onboarding-cycle flow runs (configs to artifacts) on the running Prefect server, the best of `repeat`.

    cold: with an empty config parse cache (the first cycle ever); else with the cache an earlier run left.
    A run's fixed cost (about a second of Prefect calls) varies by a second between runs: small
    portfolios repeat to see through it.
    """
    from brandsteps.cli.prefect_server import quiet_prefect_defaults

    quiet_prefect_defaults()
    from flows.onboarding_cycle import onboarding_cycle

    meter = Meter()
    for _ in range(repeat):
        if cold:
            _clear_parse_cache()
        target = _fresh_ledger(ledger_url, folder)
        with meter.phase("whole onboarding-cycle flow"):
            state = onboarding_cycle(
                as_of=END,
                configs=str(folder / "configs"),
                metrics=str(folder / "data" / "metrics"),
                ledger=target,
                return_state=True,
            )
    summary = state.result()
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all()  # task runs reach the server as events: send them, then read until two reads agree
    runs = _task_runs(str(state.state_details.flow_run_id))
    for _ in range(60):
        time.sleep(0.5)
        again = _task_runs(str(state.state_details.flow_run_id))
        if again == runs:
            break
        runs = again
    return {
        "phases": meter.close(),
        "decided": summary.decided,
        "task_runs": runs["names"],
        "gate_span": runs["gate_span"],
    }


def _task_runs(flow_run_id: str) -> dict[str, Any]:
    """The flow run's task names, and the gate logic's span: window-metrics' start to the last stage task's end.

    The stage tasks are named for the stages they decide (the five stages and graduated).
    """
    import asyncio
    from datetime import datetime

    from prefect.client.orchestration import get_client

    from brandsteps.catalogue import EVALUATED_STAGES

    gate_tasks = ("window-metrics", *EVALUATED_STAGES)

    async def runs() -> list[dict[str, Any]]:
        async with get_client() as client:
            response = await client._client.post(
                "/task_runs/filter", json={"flow_runs": {"id": {"any_": [flow_run_id]}}, "limit": 200, "offset": 0}
            )
            response.raise_for_status()
            return list(response.json())

    found = asyncio.run(runs())
    names = sorted(r["name"].rsplit("-", 1)[0] for r in found)
    gates = [r for r in found if r["name"].rsplit("-", 1)[0] in gate_tasks]
    starts = [datetime.fromisoformat(r["start_time"]) for r in gates]
    ends = [datetime.fromisoformat(r["end_time"]) for r in gates]
    return {
        "names": names,
        "gate_span": (max(ends) - min(starts)).total_seconds() if len(gates) == len(gate_tasks) else None,
    }


def naive_run(folder: Path, n: int) -> dict[str, Any]:
    """The design we did not build: the same gate logic once per brand, each call a Prefect task (.map)."""
    from brandsteps.cli.prefect_server import quiet_prefect_defaults

    quiet_prefect_defaults()
    from prefect import flow, task
    from prefect.cache_policies import NONE

    from brandsteps.config import load_portfolio
    from brandsteps.engine.cycle import cohort_for, data_errors, metrics_start, prepare_cohorts, window_metrics_for
    from brandsteps.engine.gates import decide_stage
    from brandsteps.ledger import Ledger
    from brandsteps.sources.metrics_source import MetricsSource, load_metrics

    portfolio = load_portfolio(folder / "configs", apply_env=False)
    batch = load_metrics(
        MetricsSource(path=folder / "data" / "metrics"),
        as_of=END,
        today=END + timedelta(days=1),
        start=metrics_start(portfolio, END),
    )
    empty = Ledger("sqlite://")
    empty.create()
    cohorts = prepare_cohorts(portfolio, empty.read_state(), END)
    window, errors = window_metrics_for(portfolio, batch, cohorts), data_errors(batch, cohorts)
    ids = list(cohorts.index[:n])

    @task(name="decide-one-brand", cache_policy=NONE)
    def decide_one(brand_id: str, stage: str) -> int:
        one = cohort_for(cohorts.loc[[brand_id]], stage, errors)
        return len(decide_stage(portfolio, stage, one, window.loc[[brand_id]], END))

    @flow(name="naive-per-brand-tasks")
    def naive() -> int:
        return sum(f.result() for f in decide_one.map(ids, [cohorts.at[b, "stage"] for b in ids]))

    meter = Meter()
    with meter.phase("naive: one task per brand"):
        decided = naive()
    return {"phases": meter.close(), "decided": decided, "brands": len(ids)}


def ledger_reads(folder: Path, ledger_url: str, history: int) -> dict[str, Any]:
    """Fill the ledger with `history` days of decisions (copies of the last cycle's), then time status and explain."""
    import sqlalchemy as sa

    from brandsteps.cli import main as cli_main
    from brandsteps.ledger import Ledger
    from brandsteps.reports.roster import load_roster
    from brandsteps.reports.status import portfolio_status

    url = ledger_url if not ledger_url.startswith("sqlite") else f"sqlite:///{folder / 'data' / 'bench-ledger.sqlite'}"
    ledger = Ledger(url)
    cols = [
        c
        for c in (
            "cycle_id",
            "brand_id",
            "stage",
            "verdict",
            "action",
            "to_stage",
            "score",
            "reason",
            "action_reason",
            "overdue",
            "days_in_stage",
            "pass_streak",
            "policy_version",
            "criteria",
            "gmv_factors",
            "flow_run_id",
            "decided_at",
        )
    ]
    meter = Meter()
    names = ", ".join(cols)
    # the column names are the fixed list above, never input
    copy_day = f"INSERT INTO decisions (as_of, {names}) SELECT :day, {names} FROM decisions WHERE as_of = :last"  # noqa: S608
    with meter.phase(f"fill ledger to {history} days"), ledger.engine.begin() as conn:
        have = conn.execute(sa.text("SELECT COUNT(DISTINCT as_of) FROM decisions")).scalar_one()
        for back in range(int(have), history):
            conn.execute(sa.text(copy_day), {"day": END - timedelta(days=back), "last": END})
    load_roster(folder / "configs", apply_env=False)  # the first status after a cycle reads every file once
    for _ in range(3):
        with meter.phase("status: brand roster (configs unchanged)"):
            roster = load_roster(folder / "configs", apply_env=False)
        with meter.phase("status: ledger read + table"):
            portfolio_status(roster.brands, ledger)
    brand = roster.brands[len(roster.brands) // 2].brand_id
    for _ in range(3):
        with meter.phase("explain: ledger read"):
            ledger.decision(brand)
            ledger.decision(brand, END - timedelta(days=history // 2))
            ledger.history(brand)
    import contextlib
    import io

    for command in (["status", "--format", "json"], ["explain", brand, "--format", "json"]):
        with (
            meter.phase(f"brandsteps {command[0]} (whole command, in this process)"),
            contextlib.redirect_stdout(io.StringIO()) as out,
        ):
            code = cli_main([*command, "--configs", str(folder / "configs"), "--ledger", url])
        if code != 0 or not out.getvalue():
            raise SystemExit(f"brandsteps {command[0]} failed with exit code {code}")
    with ledger.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT COUNT(*) FROM decisions")).scalar_one()
    return {"phases": meter.close(), "decision_rows": rows}


# ---------------------------------------------------------------- driver


def _child(
    kind: str,
    folder: Path,
    args: argparse.Namespace,
    env: dict[str, str],
    naive: int | None = None,
    repeat: int | None = None,
) -> dict[str, Any]:
    """Run one measurement in a fresh Python process and read back its JSON."""
    times = args.repeat if repeat is None else repeat
    cmd = [
        sys.executable,
        __file__,
        "--child",
        kind,
        "--folder",
        str(folder),
        "--ledger",
        args.ledger,
        "--repeat",
        str(times),
        "--naive",
        str(args.naive if naive is None else naive),
        "--history",
        str(args.history),
    ]
    # this interpreter running this script: no shell, no input in the command
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise SystemExit(f"{kind} on {folder} failed:\n{done.stderr[-4000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _start_prefect(home: Path) -> tuple[Any, float]:
    """One Prefect server for the whole benchmark (children reach it through PREFECT_API_URL)."""
    os.environ["PREFECT_HOME"] = str(home)
    from brandsteps.cli.prefect_server import quiet_prefect_defaults

    quiet_prefect_defaults()
    started = time.perf_counter()
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start(timeout=300)
    return server, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000", help="brand counts, comma-separated")
    parser.add_argument("--days", type=int, default=35)
    parser.add_argument(
        "--work",
        type=Path,
        default=Path(tempfile.gettempdir()) / "brandsteps-bench",
        help="data folder, reused between runs",
    )
    parser.add_argument(
        "--ledger",
        default="sqlite",
        help="sqlite (a file per N) or a PostgreSQL URL whose database the benchmark may empty",
    )
    parser.add_argument("--repeat", type=int, default=1, help="core phases: best of this many runs")
    parser.add_argument(
        "--naive", type=int, default=1000, help="brands in the naive per-brand-task reference (0: skip)"
    )
    parser.add_argument(
        "--history",
        type=int,
        default=35,
        help="days of decisions for the status/explain timing at the largest N (0: skip)",
    )
    parser.add_argument("--no-flow", action="store_true", help="skip the Prefect flow runs")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        runners = {
            "core": lambda: core_phases(args.folder, args.ledger, args.repeat),
            "flow": lambda: flow_run(args.folder, args.ledger, cold=False, repeat=args.repeat),
            "flow-cold": lambda: flow_run(args.folder, args.ledger, cold=True, repeat=args.repeat),
            "naive": lambda: naive_run(args.folder, args.naive),
            "reads": lambda: ledger_reads(args.folder, args.ledger, args.history),
        }
        print(json.dumps(runners[args.child]()))
        return 0

    sizes = [int(s) for s in args.sizes.split(",") if s]
    print(
        f"brandsteps scale benchmark: N = {', '.join(f'{n:,}' for n in sizes)} brands x {args.days} days; "
        f"ledger {args.ledger}; "
        f"load {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} on {os.cpu_count()} CPUs",
        flush=True,
    )
    folders = {n: portfolio_dir(args.work, n, args.days) for n in sizes}
    env = dict(os.environ, BRANDSTEPS_CACHE_DIR=str(args.work / "parse-cache"))
    server = None
    if not args.no_flow or args.naive:
        home = Path(tempfile.mkdtemp(prefix="prefect-home-", dir=args.work))
        server, startup = _start_prefect(home)
        env.update(PREFECT_API_URL=server.api_url, PREFECT_HOME=str(home))
        print(f"Prefect server start-up (once, not in any figure below): {startup:.1f} s", flush=True)
    try:
        results: dict[int, dict[str, Any]] = {}
        for n in sizes:
            core = _child("core", folders[n], args, env)
            results[n] = {"core": core}
            if not args.no_flow:
                small = max(args.repeat, 3) if n <= 10_000 else args.repeat  # see flow_run
                results[n]["flow-cold"] = _child("flow-cold", folders[n], args, env, repeat=small)
                results[n]["flow"] = _child("flow", folders[n], args, env, repeat=small)
            print(f"  N = {n:,} measured (load now {os.getloadavg()[0]:.2f})", file=sys.stderr, flush=True)
        naive = None
        if args.naive:
            # each design over one brand: its fixed cost per cycle, taken off to compare the cost per brand
            # the one-brand runs first: after 1,000 task runs the server is busy taking in their events for a while
            naive_folder = portfolio_dir(args.work, max(args.naive, 1000), args.days)
            naive = {"one": _child("naive", naive_folder, args, env, naive=1)}
            if not args.no_flow:
                naive["ours-one"] = _child(
                    "flow", portfolio_dir(args.work, 1, args.days), args, env, repeat=max(args.repeat, 3)
                )
            naive["many"] = _child("naive", naive_folder, args, env)
        reads = _child("reads", folders[sizes[-1]], args, env) if args.history else None
    finally:
        if server is not None:
            server.stop()
    report(sizes, results, naive, reads, args)
    return 0


PHASES = (
    "load configs",
    "load + validate metrics",
    "ledger read + cohorts",
    "window metrics",
    "gates",
    "GMV diagnosis",
    "evidence JSON",
    "ledger write",
)


def report(
    sizes: list[int],
    results: dict[int, dict[str, Any]],
    naive: dict[str, Any] | None,
    reads: dict[str, Any] | None,
    args: argparse.Namespace,
) -> None:
    print()
    _phase_table(sizes, results)
    print()
    for n in sizes:
        print(_size_line(n, results[n]))
    flows = [tuple(results[n]["flow"]["task_runs"]) for n in sizes if "flow" in results[n]]
    if flows:
        print(f"task runs per cycle identical for every N: {len(set(flows)) == 1} ({', '.join(flows[0])})")
    if naive:
        _naive_comparison(sizes, results, naive)
    if reads:
        print(f"ledger with {reads['decision_rows']:,} decisions ({args.history} days x N = {sizes[-1]:,}):")
        for name, p in reads["phases"].items():
            if name != "process":
                print(f"  {name}: {p['wall']:.2f} s")


# the table's rows measured in a flow run, not in the core phases: the run they come from, and its phase
FLOW_ROWS = {
    "whole flow (cold parse cache)": ("flow-cold", "whole onboarding-cycle flow"),
    "whole onboarding-cycle flow": ("flow", "whole onboarding-cycle flow"),
}


def _phase_table(sizes: list[int], results: dict[int, dict[str, Any]]) -> None:
    """The Markdown table: a row per phase, a column per N, each cell the wall time and peak RSS."""
    print("| phase (wall, peak RSS) | " + " | ".join(f"N = {n:,}" for n in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    rows = ["load configs (cold)", *PHASES, "window metrics + gates", "floor: group-by window sums", *FLOW_ROWS]
    for name in rows:
        print(f"| {name} | " + " | ".join(_cell(_phase_figure(name, results[n])) for n in sizes) + " |")


def _phase_figure(name: str, result: dict[str, Any]) -> dict[str, float] | None:
    """One size's wall time and peak RSS for a row of the table; None when that phase did not run."""
    if name == "window metrics + gates":
        window, gates = result["core"]["phases"]["window metrics"], result["core"]["phases"]["gates"]
        return {"wall": window["wall"] + gates["wall"], "rss": max(window["rss"], gates["rss"])}
    kind, phase = FLOW_ROWS.get(name, ("core", name))
    figure: dict[str, float] | None = result.get(kind, {}).get("phases", {}).get(phase)
    return figure


def _cell(p: dict[str, float] | None) -> str:
    return f"{p['wall']:7.2f} s {p['rss'] / 2**20:6.0f} MB" if p else f"{'-':>17}"


def _size_line(n: int, result: dict[str, Any]) -> str:
    """The core's window metrics and gates against the pandas floor, and the whole flow's cost per brand."""
    phases = result["core"]["phases"]
    wg = phases["window metrics"]["wall"] + phases["gates"]["wall"]
    floor = phases["floor: group-by window sums"]["wall"]
    line = f"N = {n:,}: window metrics + gates = {wg / floor:.1f}x the pandas floor"
    flow = result.get("flow")
    if flow:
        wall = flow["phases"]["whole onboarding-cycle flow"]["wall"]
        line += f"; whole flow {wall:.1f} s = {wall / n * 1e3:.3f} ms per brand"
        line += f", {len(flow['task_runs'])} task runs"
    return line


def _naive_comparison(sizes: list[int], results: dict[int, dict[str, Any]], naive: dict[str, Any]) -> None:
    """The naive design's cost per brand, then against our gate tasks and our whole cycle at each N."""
    wall = naive["many"]["phases"]["naive: one task per brand"]["wall"]
    one = naive["one"]["phases"]["naive: one task per brand"]["wall"]
    brands = naive["many"]["brands"]
    per = wall / brands
    marginal = (wall - one) / (brands - 1)
    print(
        f"naive design: {brands:,} brands, one Prefect task each: {wall:.1f} s = {per * 1e3:.2f} ms per brand; "
        f"over one brand {one:.2f} s, so {marginal * 1e3:.2f} ms per added brand"
    )
    for n in sizes:
        flow = results[n].get("flow")
        if not flow:
            continue
        span = flow.get("gate_span")
        if span:
            print(_versus_gate_tasks(n, span, marginal))
        print(_versus_whole_cycle(n, flow, naive.get("ours-one"), per, marginal))


def _versus_gate_tasks(n: int, span: float, marginal: float) -> str:
    """Like for like: the same gate logic run as Prefect tasks, ours over all brands of a stage at once."""
    return (
        f"  vs the same gate logic in our cycle at N = {n:,} (window-metrics and the six stage tasks, {span:.2f} s "
        f"= {span / n * 1e3:.3f} ms per brand, their task overhead included): "
        f"{marginal / (span / n):.0f}x faster per brand"
    )


def _versus_whole_cycle(
    n: int, flow: dict[str, Any], ours_one: dict[str, Any] | None, per: float, marginal: float
) -> str:
    """The naive design against our whole cycle per brand, and per added brand when our one-brand run is known."""
    ours = flow["phases"]["whole onboarding-cycle flow"]["wall"]
    line = f"  vs the whole cycle at N = {n:,}: {per / (ours / n):.0f}x faster per brand, fixed costs included"
    if not ours_one:
        return line
    fixed = ours_one["phases"]["whole onboarding-cycle flow"]["wall"]
    ours_marginal = (ours - fixed) / (n - 1)
    if ours_marginal > 0:
        line += f"; {marginal / ours_marginal:.0f}x per added brand (our cycle over one brand: {fixed:.2f} s; "
        return line + f"{ours_marginal * 1e3:.3f} ms per added brand)"
    # the run-to-run spread of the fixed cost is larger than what the brands add
    return line + (
        f"; per added brand: too small to see (our cycle over one brand took {fixed:.2f} s, over {n:,} {ours:.2f} s)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
