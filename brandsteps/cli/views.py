"""Commands that show what the ledger holds: status, explain, coverage, audit and the HTML report."""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from brandsteps.cli.common import EXIT_OK, UsageError, check_day, ledger_of, portfolio_of


def cmd_status(args: argparse.Namespace) -> int:
    from brandsteps.reports.roster import load_roster
    from brandsteps.reports.status import portfolio_status

    roster = load_roster(args.configs)
    ledger = ledger_of(args, roster)
    status = portfolio_status(roster.brands, ledger)
    if args.format == "json":
        print(_status_json(status))
    else:
        from brandsteps.reports.explain import change_label
        from brandsteps.reports.summary import funnel_text

        last = status["last_cycle"]
        print(f"Ledger {status['ledger']}; last cycle {last['as_of'] if last else 'none yet'}")
        print(funnel_text(status["funnel"]))
        print()
        lines = [
            f"{'brand':<28} {'stage':<20} {'last day':<11} {'verdict':<13} {'action':<15} "
            f"{'last stage change':<48} flags"
        ]
        for b in status["brands"]:
            flags = " ".join(
                f
                for f in (
                    "paused" if b["paused"] else "",
                    "awaiting-approval" if b["awaiting"] else "",
                    "overdue" if b["overdue"] else "",
                )
                if f
            )
            lc = b["last_change"]
            change = f"{lc['as_of']} {change_label(lc['action'], lc['cause'], lc['actor'])}" if lc else "-"
            lines.append(
                f"{b['brand_id']:<28} {b['stage']:<20} {b['last_as_of'] or '-':<11} "
                f"{b['verdict'] or '-':<13} {b['action'] or '-':<15} {change:<48} {flags}"
            )
        print("\n".join(lines))  # one write, not one per brand
    return EXIT_OK


def _status_json(status: dict[str, Any]) -> str:
    """The status as indented JSON with one brand per line.

    json's indenting encoder is pure Python (about 5 s for 100,000 brands); each brand's line comes
    from the C encoder instead. The same JSON value as json.dumps(status, indent=2).
    """
    head = json.dumps({k: v for k, v in status.items() if k != "brands"}, ensure_ascii=False, indent=2, default=str)
    encode = json.JSONEncoder(ensure_ascii=False, default=str).encode  # one encoder: json.dumps builds one per call
    rows = ",\n    ".join(map(encode, status["brands"]))
    brands = f"[\n    {rows}\n  ]" if rows else "[]"
    fields = head[1:-1].rstrip()  # between the braces: "\n  "ledger": ...", or nothing
    return f'{{{fields}{"," if fields else ""}\n  "brands": {brands}\n}}'


def cmd_explain(args: argparse.Namespace) -> int:
    from brandsteps.config import load_brand_only

    portfolio = load_brand_only(args.configs, args.brand)  # one brand file, not the whole portfolio
    if args.brand not in portfolio.brands:
        raise UsageError(f"unknown brand {args.brand!r}: no {args.configs}/brands/{args.brand}.yaml")
    ledger = ledger_of(args, portfolio)
    decision = ledger.decision(args.brand, args.as_of)
    if decision is None:
        when = f"on {args.as_of}" if args.as_of else "yet"
        raise UsageError(f"{args.brand} has no decision {when}")
    history = ledger.history(args.brand)
    revised, record = _revised_inputs(args, portfolio, decision)
    if args.format == "json":
        from brandsteps.reports.explain import revised_inputs_records

        out = dict(decision)
        out["criteria"] = json.loads(out["criteria"])
        out["gmv_factors"] = json.loads(out["gmv_factors"])
        # None, never NaN, for a missing actor or cycle (Ledger.history)
        out["stage_history"] = history.to_dict("records")
        out["revised_inputs"] = revised_inputs_records(revised)
        # allow_nan=False: a NaN would be printed as the invalid JSON token NaN;
        # a clear failure beats output that no parser reads
        print(json.dumps(out, ensure_ascii=False, indent=2, default=str, allow_nan=False))
    else:
        from brandsteps.reports.explain import explain_text

        print(explain_text(decision, portfolio.brands[args.brand].name, history, revised, record))
    return EXIT_OK


def _revised_inputs(args: argparse.Namespace, portfolio: Any, decision: dict[str, Any]) -> tuple[Any, str]:
    """Revisions of the decision's input days recorded after it was made, and where they are kept (explain marks them).

    None for the revisions when the record cannot be read (a warning says why).
    """
    import numpy as np
    import pandas as pd

    from brandsteps.config.settings import targets
    from brandsteps.engine.rules import window_days_for
    from brandsteps.sources.imports.records import record_location, revised_inputs

    source = targets(portfolio, args.metrics, args.ledger).metrics
    try:
        # the window as the decision's stage has it configured now (the ledger keeps as_of and days in stage)
        window_days = int(
            window_days_for(portfolio, pd.Index([decision["brand_id"]]), np.array([decision["stage"]], dtype=object))[0]
        )
        return revised_inputs(source, decision, window_days), record_location(source)
    except Exception as exc:  # the record unreadable (database down, file damaged): the decision is still worth showing
        print(
            f"warning: the revision record of {source.describe()} could not be read ({type(exc).__name__}: {exc})",
            file=sys.stderr,
        )
        return None, record_location(source)


def cmd_coverage(args: argparse.Namespace) -> int:
    portfolio = portfolio_of(args)
    from brandsteps.config.settings import report_sources, targets, today_in, yesterday_in
    from brandsteps.engine.cycle import prepare_cohorts
    from brandsteps.engine.window import compute_window_metrics
    from brandsteps.sources.coverage import (
        coverage_records,
        coverage_text,
        data_coverage,
        default_days,
        uniform_windows,
    )
    from brandsteps.sources.metrics_source import MetricsBatch, load_metrics

    day = args.as_of or yesterday_in(portfolio.onboarding.timezone)
    check_day(day, portfolio.onboarding.timezone)
    days = args.days or default_days(portfolio)
    first = day - timedelta(days=days - 1)
    # brands the ledger does not know yet (day one) are in their configured start stage
    cohorts = prepare_cohorts(portfolio, ledger_of(args, portfolio).read_state(), day)
    where = targets(portfolio, args.metrics, args.ledger)
    if where.metrics.path is not None and not where.metrics.path.exists():
        batch, note = MetricsBatch.empty(), f"no metrics at {where.metrics.path} yet: every column is missing"
    else:
        batch = load_metrics(where.metrics, as_of=day, today=today_in(where.timezone), start=first)
        note = (
            f"{len(batch.quarantine)} invalid rows set aside are not counted (`brandsteps run` lists them)"
            if len(batch.quarantine)
            else ""
        )
    metrics = compute_window_metrics(batch.daily, uniform_windows(portfolio, cohorts, day, days))
    coverage = data_coverage(portfolio, cohorts[["stage", "tier"]], metrics)
    sources = report_sources(portfolio.root)
    if args.format == "json":
        out = {
            "as_of": day.isoformat(),
            "from": first.isoformat(),
            "days": days,
            "brands": coverage.total,
            "note": note or None,
            "stages": coverage_records(coverage, sources),
        }
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return EXIT_OK
    print(
        f"Data coverage of {coverage.total} brands over {days} days, {first} to {day} "
        "(criteria without a value keep a brand INCONCLUSIVE)"
    )
    if note:
        print(note)
    print("\n".join(coverage_text(coverage, sources)))
    return EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    from types import SimpleNamespace

    from brandsteps.config import BRAND_ID_PATTERN, ConfigError, load_settings
    from brandsteps.reports.audit import audit_entries, audit_json, audit_text

    if args.brand is not None and not re.fullmatch(BRAND_ID_PATTERN, args.brand):
        raise UsageError(f"{args.brand!r} is not a brand id (lowercase letters, digits and -)")
    if args.date_from and args.to and args.to < args.date_from:
        raise UsageError(f"--to {args.to} is before --from {args.date_from}")
    root, _, onboarding, problems = load_settings(
        args.configs, apply_env=True
    )  # the ledger and timezone; no brand file is read
    if problems:
        raise ConfigError(problems)
    ledger = ledger_of(args, SimpleNamespace(root=root, onboarding=onboarding))
    entries = audit_entries(ledger, args.brand, args.date_from, args.to, onboarding.timezone)
    print(audit_json(entries) if args.format == "json" else audit_text(entries, onboarding.timezone))
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from brandsteps.reports.summary import print_progress

    portfolio = portfolio_of(args)
    if args.date_from and args.to and args.to < args.date_from:
        raise UsageError(f"--to {args.to} is before --from {args.date_from}")
    from brandsteps.reports.visual import write_report

    ledger = ledger_of(args, portfolio)
    page = write_report(portfolio, ledger, Path(args.out), args.date_from, args.to, progress=print_progress)
    print(f"Report: {page}")
    return EXIT_OK
