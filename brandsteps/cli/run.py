"""`brandsteps run`, `demo` and `backtest`: cycles decided through Prefect, in this process, or in a scratch ledger."""

from __future__ import annotations

import argparse
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from brandsteps.cli.common import EXIT_OK, UsageError, check_day, portfolio_of
from brandsteps.cli.prefect_server import prefect_api, prefect_ui_hint

if TYPE_CHECKING:  # the engine (pandas and all) is imported when a command needs it, not for `--help`
    from brandsteps.engine.cycle import CycleSummary


def cmd_run(args: argparse.Namespace) -> int:
    from brandsteps.config import load_settings
    from brandsteps.config.settings import yesterday_in

    _, _, onboarding, problems = load_settings(args.configs, apply_env=True)
    if problems:
        portfolio_of(args)  # raises with every problem of the folder, before any server starts
    day = args.as_of or yesterday_in(onboarding.timezone)
    for checked in (day, args.to) if args.to else (day,):
        check_day(checked, onboarding.timezone)
    if args.to and args.to < day:
        raise UsageError(f"--to {args.to} is before --as-of {day}")
    # A temporary server takes about 10 s to start and checking 100,000 brand files a few: side by side.
    # A folder refused here stops the server before any flow runs.
    with prefect_api(start_now=False) as server:
        portfolio_of(args)
        if server is not None:
            server.wait_ready()
        if args.to:
            from flows.onboarding_replay import onboarding_replay

            summaries = onboarding_replay(
                start=day,
                end=args.to,
                configs=args.configs,
                metrics=args.metrics,
                ledger=args.ledger,
                show_progress=True,
            )
            print(f"Decided {sum(s.decided for s in summaries)} brand-days from {day} to {args.to}.")
            print_funnel(summaries[-1].funnel if summaries else {})
        else:
            from flows.onboarding_cycle import onboarding_cycle

            summary = onboarding_cycle(as_of=day, configs=args.configs, metrics=args.metrics, ledger=args.ledger)
            print_funnel(summary.funnel)
            print_summary(summary)
    return EXIT_OK


def print_summary(summary: CycleSummary) -> None:
    """What the cycle did, as its cycle-summary artifact says it (the same lines)."""
    from brandsteps.reports.summary import summary_lines

    print(f"Cycle {summary.as_of}:")
    for line in summary_lines(summary):
        print(f"  {line}")


def print_funnel(funnel: dict[str, int]) -> None:
    from brandsteps.reports.summary import funnel_text

    if funnel:
        print("Brands per stage:")
        print(funnel_text(funnel))


def replay_in_process(configs: str, first: date, last: date) -> None:
    """The demo's history, day by day, with the cycle's own functions (run_day), printing progress.

    The same days through Prefect are `brandsteps run --as-of FIRST --to LAST` (the onboarding-replay
    flow); the demo decides them here while Prefect's server starts, then runs the last day as a flow.
    """
    from brandsteps.config import load_portfolio
    from brandsteps.config.settings import targets, today_in
    from brandsteps.engine.cycle import brand_table, metrics_start, run_day
    from brandsteps.reports.summary import print_progress
    from brandsteps.sources.metrics_source import load_metrics

    portfolio = load_portfolio(configs)
    where = targets(portfolio, None, None)
    ledger = where.open_ledger()
    history = load_metrics(
        where.metrics, as_of=last, today=today_in(where.timezone), start=metrics_start(portfolio, first)
    )
    brands = brand_table(portfolio)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    for i, day in enumerate(days, start=1):
        print_progress(i, len(days), run_day(portfolio, history, ledger, day, None, brands).line())


def cmd_demo(args: argparse.Namespace) -> int:
    from brandsteps.config.settings import yesterday_in
    from brandsteps.sources.demo.folder import write_demo_folder

    folder = Path(args.dir).resolve()
    end = args.end or yesterday_in("Asia/Shanghai")
    if (folder / "data" / "ledger.sqlite").exists() and not args.keep:
        for suffix in ("", "-wal", "-shm"):
            p = folder / "data" / f"ledger.sqlite{suffix}"
            if p.exists():
                p.unlink()
    print(
        f"Writing a demo portfolio of {args.brands} brands × {args.days} days into {folder}: "
        "the reports' exports, imported as `brandsteps import` does …"
    )
    summary = write_demo_folder(folder, n_brands=args.brands, days=args.days, end=end, seed=args.seed)
    for report in summary.imports:
        print(f"  {report.line()}")
    configs = str(folder / "configs")
    start = end - timedelta(days=args.days - 1)
    with prefect_api(start_now=False) as server:  # the server starts while the history is decided
        print(f"Running daily cycles from {start} to {end - timedelta(days=1)} …", file=sys.stderr)
        replay_in_process(configs, start, end - timedelta(days=1))
        if server is not None:
            server.wait_ready()
        from flows.onboarding_cycle import onboarding_cycle

        print(f"Running the onboarding-cycle flow for {end} …", file=sys.stderr)
        result = onboarding_cycle(as_of=end, configs=configs)
    print()
    print(
        f"Demo portfolio on {end}: {summary.n_brands} brands, {summary.n_rows:,} metric rows, "
        f"ledger {folder / 'data' / 'ledger.sqlite'}"
    )
    print(f"The exports behind the metrics: {summary.exports_dir} (imported into {summary.metrics_path})")
    print_funnel(result.funnel)
    print()
    print("Where to look next:")
    print(f"  brandsteps status --configs {configs}")
    example = next(iter(summary.archetypes), None)
    for brand_id, kind in summary.archetypes.items():
        if kind == "refund_spike":
            example = brand_id
    if example:
        print(f"  brandsteps explain {example} --configs {configs}")
    print(f"  Prefect UI: {prefect_ui_hint()} → Runs and Artifacts")
    return EXIT_OK


def cmd_backtest(args: argparse.Namespace) -> int:
    from brandsteps.reports.summary import print_progress

    portfolio = portfolio_of(args)
    if args.to < args.date_from:
        raise UsageError(f"--to {args.to} is before --from {args.date_from}")
    from brandsteps.config.settings import targets, today_in
    from brandsteps.engine.backtest import differences, replay, report_markdown, report_text, with_playbook
    from brandsteps.engine.cycle import metrics_start
    from brandsteps.sources.metrics_source import load_metrics

    policies = [
        (
            args.policy or f"{args.configs}/steps.yaml",
            with_playbook(portfolio, args.policy) if args.policy else portfolio,
        )
    ]
    if args.compare:
        policies.append((args.compare, with_playbook(portfolio, args.compare)))
    where = targets(portfolio, args.metrics, None)
    start = min(metrics_start(p, args.date_from) for _, p in policies)
    history = load_metrics(where.metrics, as_of=args.to, today=today_in(where.timezone), start=start)
    revisions = None
    if args.as_known:
        from brandsteps.sources.imports.records import read_revisions

        revisions = read_revisions(where.metrics)
        print(
            "Each day sees the figures as they stood at its data deadline: "
            f"{len(revisions):,} later restatements undone",
            file=sys.stderr,
        )
    runs = []
    for label, policy in policies:
        print(f"Replaying {label} from {args.date_from} to {args.to} into a scratch ledger …", file=sys.stderr)
        runs.append(
            replay(
                policy,
                history,
                args.date_from,
                args.to,
                label,
                lambda i, n, s: print_progress(i, n, s.line()),
                revisions,
            )
        )
    diff = differences(runs[0], runs[1]) if args.compare else None
    print(report_text(runs, diff))
    if args.markdown:
        Path(args.markdown).write_text(report_markdown(runs, diff), encoding="utf-8")
        print(f"Markdown report: {args.markdown}")
    return EXIT_OK
