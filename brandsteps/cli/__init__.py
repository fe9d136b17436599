"""The brandsteps command line: its parser and main; each command's code lives in the module for its job.

validate (validate, schema), run (run, demo, backtest), views (status, explain, coverage, audit, report),
approve (approve, approvers enroll), imports (import, import-kuaishou), serve (serve, deploy);
prefect_server: the Prefect server a command talks to; common: what they share.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from datetime import date

from brandsteps.cli.approve import cmd_approve, cmd_approvers_enroll
from brandsteps.cli.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError
from brandsteps.cli.imports import cmd_import, cmd_import_kuaishou
from brandsteps.cli.prefect_server import quiet_prefect_defaults
from brandsteps.cli.run import cmd_backtest, cmd_demo, cmd_run
from brandsteps.cli.serve import cmd_deploy, cmd_serve
from brandsteps.cli.validate import cmd_schema, cmd_validate
from brandsteps.cli.views import cmd_audit, cmd_coverage, cmd_explain, cmd_report, cmd_status


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-01-31") from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days (1 or more)")
    return value


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0 to 65535; 0: any free port)")
    return port


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="brandsteps", description="STEPS onboarding orchestrator for Kuaishou brands."
    )
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
    p = add(
        "coverage",
        cmd_coverage,
        "per stage, the criteria brands have no value for, the base columns missing and the reports that fill them",
    )
    p.add_argument("--days", type=_positive, help="the last N days of metrics (default: the longest stage window)")
    p.add_argument("--as-of", type=_parse_date, help="last day (default: yesterday in the configured timezone)")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p = add("approve", cmd_approve, "approve (or --reject) a brand awaiting approval")
    p.add_argument("brand")
    p.add_argument("--by", required=True, help="your name (as configs/approvers.yaml lists it, if there is one)")
    p.add_argument("--reason", required=True)
    p.add_argument(
        "--code", help="the current 6-digit code of your authenticator app (required with configs/approvers.yaml)"
    )
    p.add_argument("--reject", action="store_true")
    p = add(
        "audit",
        cmd_audit,
        "every approval, refused answer, escalation, review timeout and stage change, with actor, time and reason",
    )
    p.add_argument("brand", nargs="?", help="only this brand (default: every brand)")
    p.add_argument(
        "--from",
        dest="date_from",
        type=_parse_date,
        help="first day, in the configured timezone (default: the first record)",
    )
    p.add_argument("--to", type=_parse_date, help="last day, inclusive (default: the latest record)")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p = sub.add_parser("approvers", help="approvers' TOTP secrets (configs/approvers.yaml)")
    approvers = p.add_subparsers(dest="approvers_command", required=True, metavar="ACTION")
    p = approvers.add_parser(
        "enroll", parents=[common], help="a new TOTP secret for an approver: otpauth:// URI and QR code"
    )
    p.set_defaults(handler=cmd_approvers_enroll)
    p.add_argument("name", help="the approver's name, as approvers.yaml lists it")
    p.add_argument(
        "--save-block", action="store_true", help="also save it as a Prefect Secret block on PREFECT_API_URL's server"
    )
    p = add(
        "serve",
        cmd_serve,
        "serve the deployments of prefect.yaml (schedules, forms, reviews) against the configured Prefect server",
    )
    p.add_argument(
        "--overdue-webhook",
        default=os.environ.get("BRANDSTEPS_OVERDUE_WEBHOOK"),
        help="URL to notify when a brand becomes overdue",
    )
    p.add_argument("--limit", type=int, help="most flow runs at once (default: no limit)")
    p.add_argument(
        "--report-dir",
        default=os.environ.get("BRANDSTEPS_REPORT_DIR"),
        help="folder of the cycles' HTML reports (default: reports/ by --configs)",
    )
    p.add_argument(
        "--report-host",
        default="127.0.0.1",
        help="address to serve the reports on (default: 127.0.0.1; 0.0.0.0: every interface)",
    )
    p.add_argument(
        "--report-port", type=_port, help="port to serve the reports on (default: 4280, or a free one if that is taken)"
    )
    p.add_argument(
        "--report-url",
        default=os.environ.get("BRANDSTEPS_REPORT_URL"),
        help="base URL of the reports in the artifacts (default: http://HOST:PORT)",
    )
    p = add(
        "import",
        cmd_import,
        "import exports (CSV/XLSX) by profile: 全店成交分析, 磁力金牛, 快分销, … or configs/imports/*.yaml",
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--brand", help="every row is this brand's (default: by the accounts the brands list)")
    p.add_argument(
        "--profile", help="the import profile to read the files with (default: recognised from the header row)"
    )
    p.add_argument("--out", help="write a new .csv or .parquet file instead of storing into the configured metrics")
    p = add(
        "import-kuaishou",
        cmd_import_kuaishou,
        "import Kuaishou 生意通 全店成交分析 exports (CSV/XLSX) into the metrics table",
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--brand", required=True, help="the brand id the exports belong to")
    p.add_argument("--out", help="write a new .csv or .parquet file instead of adding to the configured metrics")
    p = add("backtest", cmd_backtest, "replay daily cycles over history into a scratch ledger and report per stage")
    p.add_argument("--from", dest="date_from", type=_parse_date, required=True, help="first day to replay")
    p.add_argument("--to", type=_parse_date, required=True, help="last day to replay (inclusive)")
    p.add_argument("--policy", help="a steps.yaml-shaped playbook to replay instead of configs/steps.yaml")
    p.add_argument("--compare", help="a second playbook to replay side by side; lists brands whose decisions differ")
    p.add_argument(
        "--as-known",
        action="store_true",
        help="each day sees the figures as they stood at its data deadline "
        "(restatements imported later undone, from the revision record)",
    )
    p.add_argument("--markdown", help="also write the report as markdown to this file")
    p = add("report", cmd_report, "write a self-contained HTML report with PNG charts from the ledger")
    p.add_argument("--from", dest="date_from", type=_parse_date, help="first day (default: the ledger's first)")
    p.add_argument("--to", type=_parse_date, help="last day (default: the ledger's last)")
    p.add_argument("--out", required=True, help="folder for index.html and the PNGs")
    p = add("deploy", cmd_deploy, "register the deployments of prefect.yaml for a process work pool (workers run them)")
    p.add_argument("--pool", default="brandsteps", help="work pool name (default: brandsteps)")
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
    # served runs ship their INFO logs to the UI; one-off commands keep the terminal quiet
    quiet_prefect_defaults(args.verbose or args.command == "serve")
    from brandsteps.config import ConfigError
    from brandsteps.ledger import LedgerError, mask_url
    from brandsteps.sources.metrics_source import MetricsReadError

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
    except BrokenPipeError:
        # the reader left (`brandsteps status | head`): nothing is wrong, and nothing more to print
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:  # the last line of defence: one clear line, no traceback
        if os.environ.get("BRANDSTEPS_DEBUG"):
            raise
        from brandsteps.server.api_auth import api_refusal, redact_auth

        if refusal := api_refusal(exc):  # a login missing or wrong is the operator's setting to fix, not a crash
            print(f"brandsteps: {refusal}", file=sys.stderr)
            return EXIT_USAGE
        text = redact_auth(str(exc))
        for url in (getattr(args, "ledger", None), os.environ.get("BRANDSTEPS_LEDGER")):
            if url:
                text = text.replace(url, mask_url(url))
        print(f"brandsteps: failed: {type(exc).__name__}: {text} (set BRANDSTEPS_DEBUG=1 for details)", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
