"""The brandsteps command line: validate, run, status, explain, approve, demo, schema."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def quiet_prefect_defaults(verbose: bool = False) -> None:
    """Local server mode without telemetry noise; our own lines report progress."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT", "false")
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
        os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")


def _local_server_mode() -> bool:
    from prefect.settings import PREFECT_API_URL

    return not PREFECT_API_URL.value()


def _settle_prefect() -> None:
    """Let the temporary server record the last task-run events before it stops."""
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all()
    if _local_server_mode():
        time.sleep(1.5)


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-01-31") from None


class UsageError(Exception):
    pass


def _load(args: argparse.Namespace) -> Any:
    from brandsteps.config import load_portfolio

    return load_portfolio(args.configs)


def _ledger(args: argparse.Namespace, portfolio: Any) -> Any:
    from brandsteps.settings import targets

    return targets(portfolio, args.metrics, args.ledger).open_ledger()


# ---------------------------------------------------------------- commands


def cmd_validate(args: argparse.Namespace) -> int:
    portfolio = _load(args)
    stages = len(portfolio.playbook.stages)
    overrides = len(portfolio.brand_versions)
    print(f"{args.configs}: OK — {stages} stages, {len(portfolio.brands)} brands ({overrides} with overrides), playbook version {portfolio.playbook_version}")
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from brandsteps.config import write_json_schemas

    for path in write_json_schemas(Path(args.out)):
        print(path)
    return EXIT_OK


def _check_day(day: date, portfolio: Any) -> None:
    from brandsteps.settings import today_in

    today = today_in(portfolio.onboarding.timezone)
    if day > today:
        raise UsageError(f"--as-of {day} is in the future (today is {today} in {portfolio.onboarding.timezone})")


def cmd_run(args: argparse.Namespace) -> int:
    portfolio = _load(args)
    from brandsteps.settings import yesterday_in

    day = args.as_of or yesterday_in(portfolio.onboarding.timezone)
    _check_day(day, portfolio)
    if args.to:
        _check_day(args.to, portfolio)
        if args.to < day:
            raise UsageError(f"--to {args.to} is before --as-of {day}")
    _announce_prefect()
    if args.to:
        from flows.onboarding_replay import onboarding_replay

        summaries = onboarding_replay(start=day, end=args.to, configs=args.configs, metrics=args.metrics, ledger=args.ledger, show_progress=True)
        last = summaries[-1] if summaries else {}
        print(f"Decided {sum(int(s['decided']) for s in summaries)} brand-days from {day} to {args.to}.")
        _print_funnel(last.get("funnel", {}))
    else:
        from flows.onboarding_cycle import onboarding_cycle

        summary = onboarding_cycle(as_of=day, configs=args.configs, metrics=args.metrics, ledger=args.ledger)
        _print_funnel(summary["funnel"])
    _settle_prefect()
    return EXIT_OK


def _announce_prefect() -> None:
    if _local_server_mode():
        print("Starting Prefect in local server mode (about 10 s; set PREFECT_API_URL to use a running server)…", file=sys.stderr)


def _print_funnel(funnel: dict[str, int]) -> None:
    from brandsteps.report import funnel_text

    if funnel:
        print("Brands per stage:")
        print(funnel_text(funnel))


def cmd_status(args: argparse.Namespace) -> int:
    portfolio = _load(args)
    ledger = _ledger(args, portfolio)
    from brandsteps.status import portfolio_status

    status = portfolio_status(portfolio, ledger)
    if args.format == "json":
        print(json.dumps(status, ensure_ascii=False, indent=2, default=str))
    else:
        from brandsteps.report import funnel_text

        last = status["last_cycle"]
        print(f"Ledger {status['ledger']}; last cycle {last['as_of'] if last else 'none yet'}")
        print(funnel_text(status["funnel"]))
        print()
        print(f"{'brand':<28} {'stage':<20} {'last day':<11} {'verdict':<13} {'action':<15} flags")
        for b in status["brands"]:
            flags = " ".join(f for f in ("paused" if b["paused"] else "", "awaiting-approval" if b["awaiting"] else "", "overdue" if b["overdue"] else "") if f)
            print(f"{b['brand_id']:<28} {b['stage']:<20} {b['last_as_of'] or '-':<11} {b['verdict'] or '-':<13} {b['action'] or '-':<15} {flags}")
    return EXIT_OK


def cmd_explain(args: argparse.Namespace) -> int:
    portfolio = _load(args)
    if args.brand not in portfolio.brands:
        raise UsageError(f"unknown brand {args.brand!r}: no {args.configs}/brands/{args.brand}.yaml")
    ledger = _ledger(args, portfolio)
    decision = ledger.decision(args.brand, args.as_of)
    if decision is None:
        when = f"on {args.as_of}" if args.as_of else "yet"
        raise UsageError(f"{args.brand} has no decision {when}")
    history = ledger.history(args.brand)
    if args.format == "json":
        out = dict(decision)
        out["criteria"] = json.loads(out["criteria"])
        out["gmv_factors"] = json.loads(out["gmv_factors"])
        out["stage_history"] = history.to_dict("records")
        print(json.dumps(out, ensure_ascii=False, indent=2, default=str))
    else:
        from brandsteps.report import explain_text

        print(explain_text(decision, portfolio.brands[args.brand].name, history))
    return EXIT_OK


def cmd_approve(args: argparse.Namespace) -> int:
    portfolio = _load(args)
    if args.brand not in portfolio.brands:
        raise UsageError(f"unknown brand {args.brand!r}")
    by, reason = args.by.strip(), args.reason.strip()
    if not by or not reason or len(by) > 100 or len(reason) > 1000:
        raise UsageError("--by (1–100 characters) and --reason (1–1000 characters) are required")
    from brandsteps.ledger import LedgerError

    ledger = _ledger(args, portfolio)
    try:
        change = ledger.resolve_approval(args.brand, by=by, reason=reason, approve=not args.reject)
    except LedgerError as exc:
        raise UsageError(str(exc)) from None
    verb = "rejected" if args.reject else "approved"
    print(f"{args.brand}: {verb} by {by}: {change['from_stage']} -> {change['to_stage']}")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from brandsteps.demo_data import write_demo_folder
    from brandsteps.settings import yesterday_in

    folder = Path(args.dir).resolve()
    end = args.end or yesterday_in("Asia/Shanghai")
    if (folder / "data" / "ledger.sqlite").exists() and not args.keep:
        for suffix in ("", "-wal", "-shm"):
            p = folder / "data" / f"ledger.sqlite{suffix}"
            if p.exists():
                p.unlink()
    print(f"Writing a demo portfolio of {args.brands} brands × {args.days} days into {folder} …")
    summary = write_demo_folder(folder, n_brands=args.brands, days=args.days, end=end, seed=args.seed)
    configs = str(folder / "configs")
    start = end - timedelta(days=args.days - 1)
    _announce_prefect()
    from flows.onboarding_cycle import onboarding_cycle
    from flows.onboarding_replay import onboarding_replay

    print(f"Running daily cycles from {start} to {end - timedelta(days=1)} …", file=sys.stderr)
    onboarding_replay(start=start, end=end - timedelta(days=1), configs=configs, show_progress=True)
    print(f"Running the onboarding-cycle flow for {end} …", file=sys.stderr)
    result = onboarding_cycle(as_of=end, configs=configs)
    _settle_prefect()
    print()
    print(f"Demo portfolio on {end}: {summary.n_brands} brands, {summary.n_rows:,} metric rows, ledger {folder / 'data' / 'ledger.sqlite'}")
    _print_funnel(result["funnel"])
    print()
    print("Where to look next:")
    print(f"  brandsteps status --configs {configs}")
    example = next(iter(summary.archetypes), None)
    for brand_id, kind in summary.archetypes.items():
        if kind == "refund_spike":
            example = brand_id
    if example:
        print(f"  brandsteps explain {example} --configs {configs}")
    print("  Prefect UI: run `prefect server start`, open http://127.0.0.1:4200 → Runs and Artifacts")
    return EXIT_OK


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="brandsteps", description="STEPS onboarding orchestrator for Kuaishou brands.")
    parser.add_argument("--verbose", action="store_true", help="show Prefect's own log lines")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--configs", default="configs", help="configs folder (default: configs)")
    common.add_argument("--metrics", help="metrics source: CSV/Parquet file or folder, or SQLAlchemy URL#table")
    common.add_argument("--ledger", help="ledger SQLAlchemy URL (password from BRANDSTEPS_LEDGER_PASSWORD)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    add("validate", cmd_validate, "check a configs folder and report every problem")
    p = add("run", cmd_run, "run the onboarding cycle for a day (or each day of a range)")
    p.add_argument("--as-of", type=_parse_date, help="day to decide (default: yesterday in the configured timezone)")
    p.add_argument("--to", type=_parse_date, help="also decide every day up to this one, in date order")
    p = add("status", cmd_status, "stage funnel and every brand's latest decision")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p = add("explain", cmd_explain, "a brand's decision with criteria, values, thresholds and GMV factors")
    p.add_argument("brand")
    p.add_argument("--as-of", type=_parse_date)
    p.add_argument("--format", choices=["text", "json"], default="text")
    p = add("approve", cmd_approve, "approve (or --reject) a brand awaiting approval")
    p.add_argument("brand")
    p.add_argument("--by", required=True, help="your name")
    p.add_argument("--reason", required=True)
    p.add_argument("--reject", action="store_true")
    p = add("schema", cmd_schema, "write the JSON Schemas of the three config kinds")
    p.add_argument("--out", default="schemas")
    p = sub.add_parser("demo", help="generate a demo portfolio and run daily cycles over it")
    p.set_defaults(handler=cmd_demo)
    p.add_argument("--dir", default="demo", help="demo folder (default: ./demo)")
    p.add_argument("--brands", type=int, default=50)
    p.add_argument("--days", type=int, default=180)
    p.add_argument("--end", type=_parse_date, help="last day (default: yesterday)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--keep", action="store_true", help="keep an existing demo ledger")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    quiet_prefect_defaults(args.verbose)
    from brandsteps.config import ConfigError
    from brandsteps.ledger import LedgerError, mask_url
    from brandsteps.metrics_source import MetricsReadError

    try:
        return int(args.handler(args))
    except ConfigError as exc:
        print(f"{len(exc.problems)} configuration problem(s):", file=sys.stderr)
        for line in exc.problems:
            print(f"  {line}", file=sys.stderr)
        return EXIT_USAGE
    except UsageError as exc:
        print(f"brandsteps: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (MetricsReadError, LedgerError) as exc:
        print(f"brandsteps: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the last line of defence: one clear line, no traceback
        if os.environ.get("BRANDSTEPS_DEBUG"):
            raise
        text = str(exc)
        for url in (getattr(args, "ledger", None), os.environ.get("BRANDSTEPS_LEDGER")):
            if url:
                text = text.replace(url, mask_url(url))
        print(f"brandsteps: failed: {type(exc).__name__}: {text} (set BRANDSTEPS_DEBUG=1 for details)", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
