"""Drawing the visual report against the cycle it belongs to: N demo brands, the last day decided, the report drawn.

    .venv/bin/python benchmarks/report_drawing.py                      # 50 brands × 180 days, core figures
    .venv/bin/python benchmarks/report_drawing.py --flow               # also the flow without and with the report
    .venv/bin/python benchmarks/report_drawing.py --before-ref 30d1491 # also the report as that git revision drew it
    .venv/bin/python benchmarks/report_drawing.py --brands 10 --days 30 --repeat 1   # a quick look

Data (under --work, generated once and reused): the demo portfolio (`brandsteps demo`'s generator),
every day but the last decided in-process with the cycle's functions; that ledger is kept as a
snapshot, so each timed cycle decides the same last day on a fresh copy.

Figures, best of --repeat:
- cycle (core): load configs + load metrics + decide and record the last day (`cycle.run_day`), no Prefect;
- the cycle's report: `write_report` of the last 90 days, the 20 brands most in need of attention drawn
  (what `publish-visual-report` does in every cycle), then every brand of those 90 days, then the
  whole ledger (what `brandsteps report` does);
- with --flow: the onboarding-cycle flow on a temporary Prefect server (started once, not counted)
  without BRANDSTEPS_REPORT_DIR (no drawing) and with it (drawing and the link artifacts), wall time each;
- with --before-ref: the cycle's report drawn by that revision's brandsteps package, in a process of its own
  after the same two-brand warm-up, once. The revision reads the demo folder and ledger today's code wrote,
  so it must accept today's configs: d8ab294 and later do (lag_days, data_deadline), earlier ones fail on
  them. The Matplotlib report of 004885d cannot be timed here any more; that needs its own checkout and data.

A measurement, not a test: it prints figures and checks nothing.
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CYCLE_DAYS, CYCLE_BRANDS = 90, 20  # publish_visual_report's defaults


def _best(repeat: int, run: Callable[[], Any]) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def prepare(work: Path, brands: int, days: int, end: date) -> Path:
    """The demo folder with a ledger of every day but the last (ledger-snapshot.sqlite), made once per size and day."""
    folder = work / f"{brands}x{days}-{end}"
    snapshot = folder / "data" / "ledger-snapshot.sqlite"
    if snapshot.exists():
        return folder
    from brandsteps.cli.run import replay_in_process as _replay_in_process
    from brandsteps.sources.demo.folder import write_demo_folder

    print(
        f"Generating {brands} brands × {days} days into {folder} and deciding all days but the last (once) …",
        file=sys.stderr,
    )
    summary = write_demo_folder(folder, n_brands=brands, days=days, end=end)
    _replay_in_process(str(summary.configs_dir), summary.start, end - timedelta(days=1))
    ledger = folder / "data" / "ledger.sqlite"
    _checkpoint(ledger)
    shutil.copyfile(ledger, snapshot)
    return folder


def _checkpoint(path: Path) -> None:
    """Fold SQLite's WAL into the file, so copying the one file copies the whole ledger."""
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _fresh_ledger(folder: Path, name: str) -> str:
    target = folder / "data" / f"{name}.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(folder / "data" / "ledger-snapshot.sqlite", target)
    return f"sqlite:///{target}"


def core(folder: Path, end: date, repeat: int) -> dict[str, float]:
    from brandsteps.config import load_portfolio
    from brandsteps.config.settings import targets, today_in
    from brandsteps.engine.cycle import metrics_start, run_day
    from brandsteps.ledger import Ledger
    from brandsteps.reports.visual import write_report
    from brandsteps.sources.metrics_source import load_metrics

    configs = folder / "configs"
    url = ""

    def cycle() -> None:
        nonlocal url
        url = _fresh_ledger(folder, "ledger-bench")
        portfolio = load_portfolio(configs)
        where = targets(portfolio, None, url)
        history = load_metrics(
            where.metrics, as_of=end, today=today_in(where.timezone), start=metrics_start(portfolio, end)
        )
        run_day(portfolio, history, where.open_ledger(), end, None)

    out: dict[str, float] = {"cycle (core: configs, metrics, decide, record)": _best(repeat, cycle)}
    portfolio = load_portfolio(configs)
    ledger = Ledger(url)
    since = end - timedelta(days=CYCLE_DAYS - 1)
    reports = folder / "reports"
    shutil.rmtree(reports, ignore_errors=True)
    write_report(
        portfolio, ledger, reports / "warm-up", since, end, max_brands=2
    )  # fonts and matplotlib's first figure: once per process
    out[f"the cycle's report: {CYCLE_DAYS} days, {CYCLE_BRANDS} brands drawn"] = _best(
        repeat, lambda: write_report(portfolio, ledger, reports / "cycle", since, end, max_brands=CYCLE_BRANDS)
    )
    n = len(portfolio.brands)
    out[f"{CYCLE_DAYS} days, all {n} brands drawn"] = _best(
        repeat, lambda: write_report(portfolio, ledger, reports / "all", since, end)
    )
    out["`brandsteps report`: whole ledger, all brands"] = _best(
        repeat, lambda: write_report(portfolio, ledger, reports / "ledger")
    )
    print(f"  reports written under {reports}", file=sys.stderr)
    return out


# Where each layout kept the visual report: the package of today, then the single module before and after
# the package was grouped by role.
REPORT_MODULES = ("brandsteps.reports.visual", "brandsteps.reports.visual_report", "brandsteps.visual_report")


def before(folder: Path, end: date, ref: str) -> dict[str, float]:
    """The cycle's report as `ref` drew it: that revision's whole brandsteps package, run in a child process.

    The report's own files alone would import today's modules, which may have moved since (the layout
    changed), so the revision's brandsteps/ is unpacked from git (`git archive`: the repository is left
    as it is) and the child imports brandsteps from there, the report from either layout (REPORT_MODULES).
    It reads the demo folder and the ledger that today's code wrote; a revision that cannot read them
    fails, and its error is shown.
    """
    tree = Path(tempfile.mkdtemp(prefix="report-bench-before-"))
    try:
        _unpack(ref, tree)
        command = [sys.executable, __file__, "--before-ref", ref, "--tree", str(tree), "--folder", str(folder)]
        # this interpreter running this script: no shell, the revision only in git's arguments
        done = subprocess.run(  # noqa: S603
            [*command, "--end", end.isoformat()], capture_output=True, text=True, check=False
        )
    finally:
        shutil.rmtree(tree, ignore_errors=True)
    if done.returncode != 0:
        raise SystemExit(f"drawing the report as of {ref} failed:\n{done.stderr[-4000:]}")
    seconds = float(done.stdout.strip().splitlines()[-1])
    return {f"the cycle's report as of {ref}: {CYCLE_DAYS} days, {CYCLE_BRANDS} brands": seconds}


def _unpack(ref: str, tree: Path) -> None:
    """brandsteps/ as it was at `ref`, written under tree."""
    git = shutil.which("git") or "git"
    # a revision the person running the benchmark named, read from this repository: no shell, fixed arguments
    archive = subprocess.run(  # noqa: S603
        [git, "-C", str(REPO), "archive", "--format=tar", ref, "brandsteps"], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tree, filter="data")


def draw_as_of(tree: Path, folder: Path, end: date, ref: str) -> float:
    """In the child: the cycle's report drawn by the brandsteps package under tree, in seconds (once)."""
    sys.path[sys.path.index(str(REPO))] = str(tree)  # before anything imports brandsteps
    import brandsteps

    if not Path(brandsteps.__file__ or "").resolve().is_relative_to(tree.resolve()):
        raise SystemExit(f"brandsteps was imported from {brandsteps.__file__}, not from the revision under {tree}")
    name = next((m for m in REPORT_MODULES if _module_file(tree, m).exists()), None)
    if name is None:
        raise SystemExit(f"{ref} has none of {', '.join(REPORT_MODULES)}")
    write_report = importlib.import_module(name).write_report
    from brandsteps.config import load_portfolio
    from brandsteps.ledger import Ledger

    portfolio = load_portfolio(folder / "configs")
    ledger = Ledger(f"sqlite:///{folder / 'data' / 'ledger-bench.sqlite'}")
    since = end - timedelta(days=CYCLE_DAYS - 1)
    reports = folder / "reports" / f"before-{ref}"
    write_report(portfolio, ledger, reports / "warm-up", since, end, max_brands=2)  # as core() warms up
    return _best(1, lambda: write_report(portfolio, ledger, reports / "cycle", since, end, max_brands=CYCLE_BRANDS))


def _module_file(tree: Path, module: str) -> Path:
    """Where a module lives under tree: its package's __init__.py, or its .py file."""
    path = tree.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def flows(folder: Path, end: date, repeat: int) -> dict[str, float]:
    """The onboarding-cycle flow for the last day on a fresh ledger copy, without and with the report.

    Two figures each: the wall time of the call, and the run time the server recorded (running to
    completed). The wall time ends on a whole second here: the run waits for its heartbeat thread,
    which sleeps in one-second steps, so it hides differences below a second; the run time does not.
    """
    home = Path(tempfile.mkdtemp(prefix="report-bench-prefect-"))
    os.environ["PREFECT_HOME"] = str(home)
    from brandsteps.cli.prefect_server import quiet_prefect_defaults

    quiet_prefect_defaults()
    from prefect import get_client
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, temporary_settings

    print("Starting a temporary Prefect server (not counted) …", file=sys.stderr)
    server = SubprocessASGIServer()
    server.start(timeout=300)
    from flows.onboarding_cycle import onboarding_cycle

    configs = str(folder / "configs")
    out: dict[str, float] = {}
    try:
        with temporary_settings({PREFECT_API_URL: server.api_url}), get_client(sync_client=True) as client:
            for label, report_dir in (("no report", None), ("with the report", folder / "reports" / "flow")):
                if report_dir is None:
                    os.environ.pop("BRANDSTEPS_REPORT_DIR", None)
                    os.environ.pop("BRANDSTEPS_REPORT_URL", None)
                else:
                    os.environ["BRANDSTEPS_REPORT_DIR"] = str(report_dir)
                    os.environ["BRANDSTEPS_REPORT_URL"] = "http://127.0.0.1:4280"
                onboarding_cycle(
                    as_of=end, configs=configs, ledger=_fresh_ledger(folder, "ledger-flow")
                )  # warm: imports, first run
                walls, runs = [], []
                for _ in range(repeat):
                    started = time.perf_counter()
                    state = onboarding_cycle(
                        as_of=end, configs=configs, ledger=_fresh_ledger(folder, "ledger-flow"), return_state=True
                    )
                    walls.append(time.perf_counter() - started)
                    run_id = state.state_details.flow_run_id
                    assert run_id is not None  # a flow run's own final state names it
                    runs.append(client.read_flow_run(run_id).total_run_time.total_seconds())
                out[f"onboarding-cycle flow, {label}: wall"] = min(walls)
                out[f"onboarding-cycle flow, {label}: run time"] = min(runs)
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--brands", type=int, default=50)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument(
        "--work",
        type=Path,
        default=Path(tempfile.gettempdir()) / "brandsteps-report-bench",
        help="data folder, reused between runs",
    )
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    parser.add_argument(
        "--flow",
        action="store_true",
        help="also time the onboarding-cycle flow without and with the report (starts a Prefect server)",
    )
    parser.add_argument("--before-ref", help="also time the cycle's report as drawn by this git revision")
    parser.add_argument("--tree", type=Path, help=argparse.SUPPRESS)  # before()'s child: the revision's files
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--end", type=date.fromisoformat, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tree:
        print(draw_as_of(args.tree, args.folder, args.end, args.before_ref))
        return 0

    from brandsteps.config.settings import yesterday_in

    end = yesterday_in("Asia/Shanghai")  # the demo's metrics must not be dated after today
    folder = prepare(args.work, args.brands, args.days, end)
    figures = core(folder, end, args.repeat)
    if args.before_ref:
        figures |= before(folder, end, args.before_ref)
    if args.flow:
        figures |= flows(folder, end, args.repeat)
    print(
        f"\n{args.brands} brands × {args.days} days, last day {end}; best of {args.repeat} "
        f"(wall seconds; load average {os.getloadavg()[0]:.2f})"
    )
    width = max(map(len, figures))
    for label, seconds in figures.items():
        print(f"  {label:<{width}}  {seconds:7.2f} s")
    cycle = figures["cycle (core: configs, metrics, decide, record)"]
    drawing = figures[f"the cycle's report: {CYCLE_DAYS} days, {CYCLE_BRANDS} brands drawn"]
    print(f"\nthe cycle's report / core cycle: {drawing / cycle:.1f}×")
    if args.flow:
        for what in ("wall", "run time"):
            plain, drawn = (
                figures[f"onboarding-cycle flow, no report: {what}"],
                figures[f"onboarding-cycle flow, with the report: {what}"],
            )
            print(f"flow with the report / flow without ({what}): {drawn / plain:.2f}× ({drawn - plain:+.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
