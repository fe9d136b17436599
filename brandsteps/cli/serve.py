"""`brandsteps serve` and `brandsteps deploy`: the deployments of prefect.yaml on a running Prefect server."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from brandsteps.cli import prefect_server
from brandsteps.cli.approve import read_approvers, report_approvers
from brandsteps.cli.common import EXIT_OK, UsageError, portfolio_of


def cmd_serve(args: argparse.Namespace) -> int:
    portfolio = portfolio_of(args)
    approvers, approver_problems = read_approvers(args.configs, list(portfolio.brands))
    if approver_problems:
        from brandsteps.config import ConfigError

        raise ConfigError(approver_problems)
    if approvers is None:
        report_approvers(args.configs, None)
    if args.report_url and not re.match(r"https?://[^/\s]+", args.report_url):
        raise UsageError(f"--report-url {args.report_url!r} is not an http(s) URL like http://reports.example.com:4280")
    if prefect_server.local_server_mode():
        raise UsageError(
            "serve needs a running Prefect server so schedules outlive this process: "
            "run `prefect server start`, then `export PREFECT_API_URL=http://127.0.0.1:4200/api`"
        )
    from prefect.settings import PREFECT_API_URL

    from brandsteps.reports.report_server import PortInUse
    from brandsteps.server.api_auth import without_credentials
    from flows.serving import serve_all, serve_reports

    configs = Path(args.configs).resolve()
    # the reports beside the configs by default, like the demo's data folder: one place per portfolio
    report_dir = Path(args.report_dir).expanduser().resolve() if args.report_dir else configs.parent / "reports"
    try:
        reports, report_url = serve_reports(report_dir, args.report_host, args.report_port, args.report_url)
    except PortInUse as exc:
        raise UsageError(f"--report-port: {exc}; choose another") from None
    except OSError as exc:  # an address this machine does not have, a folder it cannot create
        raise UsageError(f"cannot serve the reports from {report_dir} on {args.report_host}: {exc}") from None
    inbox = (
        f"import-exports (inbox {portfolio.onboarding.inbox}, every 15 minutes)"
        if portfolio.onboarding.inbox
        else "import-exports (no inbox set)"
    )
    from brandsteps.config.deploy_spec import cycle_starts

    print(
        f"Serving onboarding-cycle ({cycle_starts(portfolio.onboarding)}), "
        f"onboard-brand, review-brand, backtest, {inbox}"
    )
    api = without_credentials(PREFECT_API_URL.value())  # a user:password@ in the URL stays off the screen
    print(
        f"  configs {configs}; Prefect API {api}; "
        f"overdue alerts {'to a webhook' if args.overdue_webhook else 'recorded as events only'}"
    )
    print(
        f"  reports {report_dir}, served read-only on {reports.url}; "
        f"each cycle's artifact visual-report links {report_url}/<day>/index.html"
    )
    serve_all(portfolio, configs, webhook_url=args.overdue_webhook, limit=args.limit)
    return EXIT_OK


def cmd_deploy(args: argparse.Namespace) -> int:
    portfolio = portfolio_of(args)
    if prefect_server.local_server_mode():
        raise UsageError("deploy needs a running Prefect server: set PREFECT_API_URL (e.g. http://127.0.0.1:4200/api)")
    from flows.serving import register_deployments

    ids = register_deployments(portfolio, Path(args.configs).resolve(), args.pool)
    print(
        f"Registered {len(ids)} deployments for work pool {args.pool}; "
        f"start workers with: prefect worker start --pool {args.pool}"
    )
    return EXIT_OK
