"""The brandsteps command line: validate, run, status, explain, coverage, approve, serve, demo, schema."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any, NoReturn

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


_QUIET_ALWAYS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
}
_QUIET_UNLESS_VERBOSE = {
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL",
}
QUIET_PREFECT_VARIABLES = (*_QUIET_ALWAYS, *_QUIET_UNLESS_VERBOSE)


def quiet_prefect_defaults(verbose: bool = False) -> None:
    """Local server mode without telemetry noise; our own lines report progress."""
    for key, value in (_QUIET_ALWAYS if verbose else {**_QUIET_ALWAYS, **_QUIET_UNLESS_VERBOSE}).items():
        os.environ.setdefault(key, value)


def _local_server_mode() -> bool:
    from prefect.settings import PREFECT_API_URL

    return not PREFECT_API_URL.value()


def _settle_prefect() -> None:
    """Let the server record the last task-run events and logs before the command (and a temporary server) ends."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all()
    EventsWorker.drain_all()


@contextmanager
def prefect_api(start_now: bool = True) -> Iterator[Any]:
    """The Prefect API for this command: PREFECT_API_URL's server, or a temporary one that dies with this process.

    Yields the temporary server (None with PREFECT_API_URL), started but perhaps not yet ready: call
    `wait_ready()` before the first flow. Its start (about 10 s) can overlap other work meanwhile.
    """
    if not _local_server_mode():
        yield None
        return
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    from brandsteps.server.local_server import TemporaryServer

    print(
        "Starting a temporary Prefect server (about 10 s; set PREFECT_API_URL to use a running one)…", file=sys.stderr
    )
    server = TemporaryServer()
    server.start()
    try:
        # the temporary server's own login, not one set for another server (brandsteps/server/local_server.py says why)
        with temporary_settings({PREFECT_API_URL: server.api_url, PREFECT_API_AUTH_STRING: server.auth_string}):
            if start_now:
                server.wait_ready()
            yield server
            _settle_prefect()  # while the server still runs
    finally:
        server.stop()


def prefect_ui_hint() -> str:
    """Where this command's runs can be seen: the configured server's UI, or how to start one (its host and port settings)."""
    from prefect.settings import PREFECT_SERVER_API_HOST, PREFECT_SERVER_API_PORT, PREFECT_UI_URL

    from brandsteps.server.api_auth import without_credentials

    if not _local_server_mode():
        return f"open {without_credentials(PREFECT_UI_URL.value())}"
    host, port = PREFECT_SERVER_API_HOST.value(), PREFECT_SERVER_API_PORT.value()
    return f"run `prefect server start`, then open http://{host}:{port} (the runs of a temporary server are kept in PREFECT_HOME)"


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
    from brandsteps.config.settings import targets

    return targets(portfolio, args.metrics, args.ledger).open_ledger()


# ---------------------------------------------------------------- commands


def cmd_validate(args: argparse.Namespace) -> int:
    from brandsteps.config import ConfigError
    from brandsteps.sources.imports import BUILTIN_PROFILES, load_profiles

    problems: list[str] = []
    brand_ids: list[str] | None = None  # known once the brands loaded: approvers.yaml's brands are checked against them
    try:
        portfolio = _load(args)
        brand_ids = list(portfolio.brands)
    except ConfigError as exc:
        problems += exc.problems
    try:  # configs/imports/*.yaml too: every problem of the folder in one report
        profiles = load_profiles(args.configs)
    except ConfigError as exc:
        problems += exc.problems
    approvers, approver_problems = _read_approvers(args.configs, brand_ids)
    problems += approver_problems
    if problems:
        raise ConfigError(problems)
    stages = len(portfolio.playbook.stages)
    overrides = len(portfolio.brand_versions)
    print(
        f"{args.configs}: OK — {stages} stages, {len(portfolio.brands)} brands ({overrides} with overrides), playbook version {portfolio.playbook_version}"
    )
    own = [n for n in profiles if n not in BUILTIN_PROFILES]
    print(
        f"import profiles: {len(BUILTIN_PROFILES)} built-in, {len(own)} in {args.configs}/imports{': ' + ', '.join(own) if own else ''}"
    )
    _report_approvers(args.configs, approvers)
    prefect_yaml = Path(args.configs).resolve().parent / "prefect.yaml"
    if prefect_yaml.exists():
        from brandsteps.config.deploy_spec import deployment_warnings, read_deployment_specs

        for warning in deployment_warnings(read_deployment_specs(prefect_yaml), portfolio.onboarding):
            print(f"warning: {warning}", file=sys.stderr)
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from brandsteps.config import write_json_schemas

    for path in write_json_schemas(Path(args.out)):
        print(path)
    return EXIT_OK


def _check_day(day: date, portfolio: Any) -> None:
    from brandsteps.config.settings import today_in

    today = today_in(portfolio.onboarding.timezone)
    if day > today:
        raise UsageError(f"--as-of {day} is in the future (today is {today} in {portfolio.onboarding.timezone})")


def cmd_run(args: argparse.Namespace) -> int:
    portfolio = _load(args)
    from brandsteps.config.settings import yesterday_in

    day = args.as_of or yesterday_in(portfolio.onboarding.timezone)
    _check_day(day, portfolio)
    if args.to:
        _check_day(args.to, portfolio)
        if args.to < day:
            raise UsageError(f"--to {args.to} is before --as-of {day}")
    with prefect_api():
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
            last = summaries[-1] if summaries else {}
            print(f"Decided {sum(int(s['decided']) for s in summaries)} brand-days from {day} to {args.to}.")
            _print_funnel(last.get("funnel", {}))
        else:
            from flows.onboarding_cycle import onboarding_cycle

            summary = onboarding_cycle(as_of=day, configs=args.configs, metrics=args.metrics, ledger=args.ledger)
            _print_funnel(summary["funnel"])
            _print_summary(summary)
    return EXIT_OK


def _print_summary(summary: dict[str, Any]) -> None:
    """What the cycle did, as its cycle-summary artifact says it (the same lines)."""
    from brandsteps.engine.cycle import CycleSummary
    from brandsteps.reports.report import summary_lines

    print(f"Cycle {summary['as_of']}:")
    for line in summary_lines(CycleSummary(**summary)):
        print(f"  {line}")


def _print_funnel(funnel: dict[str, int]) -> None:
    from brandsteps.reports.report import funnel_text

    if funnel:
        print("Brands per stage:")
        print(funnel_text(funnel))


def cmd_status(args: argparse.Namespace) -> int:
    from brandsteps.reports.roster import load_roster
    from brandsteps.reports.status import portfolio_status

    roster = load_roster(args.configs)
    ledger = _ledger(args, roster)
    status = portfolio_status(roster.brands, ledger)
    if args.format == "json":
        print(_status_json(status))
    else:
        from brandsteps.reports.report import change_label, funnel_text

        last = status["last_cycle"]
        print(f"Ledger {status['ledger']}; last cycle {last['as_of'] if last else 'none yet'}")
        print(funnel_text(status["funnel"]))
        print()
        lines = [
            f"{'brand':<28} {'stage':<20} {'last day':<11} {'verdict':<13} {'action':<15} {'last stage change':<48} flags"
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
                f"{b['brand_id']:<28} {b['stage']:<20} {b['last_as_of'] or '-':<11} {b['verdict'] or '-':<13} {b['action'] or '-':<15} {change:<48} {flags}"
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
    ledger = _ledger(args, portfolio)
    decision = ledger.decision(args.brand, args.as_of)
    if decision is None:
        when = f"on {args.as_of}" if args.as_of else "yet"
        raise UsageError(f"{args.brand} has no decision {when}")
    history = ledger.history(args.brand)
    revised, record = _revised_inputs(args, portfolio, decision)
    if args.format == "json":
        from brandsteps.reports.report import revised_inputs_records

        out = dict(decision)
        out["criteria"] = json.loads(out["criteria"])
        out["gmv_factors"] = json.loads(out["gmv_factors"])
        out["stage_history"] = history.to_dict(
            "records"
        )  # None, never NaN, for a missing actor or cycle (Ledger.history)
        out["revised_inputs"] = revised_inputs_records(revised)
        # allow_nan=False: a NaN would be printed as the invalid JSON token NaN; better a clear failure than output no parser reads
        print(json.dumps(out, ensure_ascii=False, indent=2, default=str, allow_nan=False))
    else:
        from brandsteps.reports.report import explain_text

        print(explain_text(decision, portfolio.brands[args.brand].name, history, revised, record))
    return EXIT_OK


def _revised_inputs(args: argparse.Namespace, portfolio: Any, decision: dict[str, Any]) -> tuple[Any, str]:
    """Revisions of the decision's input days recorded after it was made, and where they are kept (explain marks them)."""
    import numpy as np
    import pandas as pd

    from brandsteps.config.settings import targets
    from brandsteps.engine.gates import window_days_for
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
    portfolio = _load(args)
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
    _check_day(day, portfolio)
    days = args.days or default_days(portfolio)
    first = day - timedelta(days=days - 1)
    # brands the ledger does not know yet (day one) are in their configured start stage
    cohorts = prepare_cohorts(portfolio, _ledger(args, portfolio).read_state(), day)
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
        f"Data coverage of {coverage.total} brands over {days} days, {first} to {day} (criteria without a value keep a brand INCONCLUSIVE)"
    )
    if note:
        print(note)
    print("\n".join(coverage_text(coverage, sources)))
    return EXIT_OK


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days (1 or more)")
    return value


def cmd_approve(args: argparse.Namespace) -> int:
    from brandsteps.config import load_brand_only

    portfolio = load_brand_only(args.configs, args.brand)  # one brand file, not the whole portfolio
    if args.brand not in portfolio.brands:
        raise UsageError(f"unknown brand {args.brand!r}: no {args.configs}/brands/{args.brand}.yaml")
    from brandsteps.approvals.approvers import load_approvers

    answer = _approval_answer(args)
    approvers = load_approvers(args.configs)
    if approvers is None and answer.code:
        print(
            f"warning: no {args.configs}/approvers.yaml: --code is not checked (any name may approve)", file=sys.stderr
        )
    ledger = _ledger(args, portfolio)
    by, step, stage = _proved_approver(args, portfolio.brands[args.brand], approvers, ledger, answer)
    from brandsteps.ledger import ApprovalProof, CodeAlreadyUsed, LedgerError

    try:
        change = ledger.resolve_approval(
            args.brand, by=by, reason=answer.reason, approve=not args.reject, proof=ApprovalProof("cli", step, stage)
        )
    except CodeAlreadyUsed as exc:  # the same code accepted a moment ago for another answer
        _refuse(ledger, args, answer, stage, "replayed", str(exc))
    except LedgerError as exc:
        raise UsageError(str(exc)) from None
    verb = "rejected" if args.reject else "approved"
    print(f"{args.brand}: {verb} by {by}: {change['from_stage']} -> {change['to_stage']}")
    if not _local_server_mode():  # a temporary server runs no review forms: only a real one has them open
        _close_review_forms(args.brand, answer)
    return EXIT_OK


def _approval_answer(args: argparse.Namespace) -> Any:
    from pydantic import ValidationError

    from brandsteps.approvals.review import REASON_MAX, REVIEWER_MAX, ReviewAnswer

    try:
        return ReviewAnswer(
            decision="reject" if args.reject else "approve", reviewer=args.by, reason=args.reason, code=args.code
        )
    except ValidationError as exc:
        if any(err["loc"] == ("code",) for err in exc.errors()):
            raise UsageError("--code must be the 6 digits your authenticator app shows now") from None
        raise UsageError(
            f"--by (2–{REVIEWER_MAX} characters) and --reason (3–{REASON_MAX} characters) are required"
        ) from None


def _proved_approver(
    args: argparse.Namespace, brand: Any, approvers: Any, ledger: Any, answer: Any
) -> tuple[str, int | None, str]:
    """The approver's name as listed, their code's time step and the stage answered; a refusal is recorded and exits 2."""
    from datetime import UTC, datetime

    from brandsteps.approvals.approvers import Refusal, check_approval
    from flows.totp_secrets import totp_secret

    state = ledger.read_state([brand.brand_id])
    if not len(state) or not bool(state.iloc[0]["awaiting"]):
        raise UsageError(f"{brand.brand_id} is not awaiting approval")
    stage = str(state.iloc[0]["stage"])
    use_blocks = not _local_server_mode()  # Secret blocks live on the Prefect server PREFECT_API_URL names

    def secret_of(env_name: str) -> str | None:
        return totp_secret(env_name, use_blocks)

    verdict = check_approval(
        approvers, brand, stage, answer.reviewer, answer.code, datetime.now(UTC), secret_of, ledger.last_code_step
    )
    if isinstance(verdict, Refusal):
        _refuse(ledger, args, answer, stage, verdict.kind, verdict.reason)
    return verdict.approver, verdict.step, stage


def _refuse(ledger: Any, args: argparse.Namespace, answer: Any, stage: str, kind: str, reason: str) -> NoReturn:
    """Record the refused answer (who, when, why) and end with exit 2; the brand is left as it was."""
    from brandsteps.ledger import Attempt

    ledger.record_attempt(
        Attempt(args.brand, stage, "refused", answer.reviewer, reason, "cli", answer=answer.decision, refusal=kind)
    )
    raise UsageError(f"refused: {reason}; {args.brand} is unchanged")


def _read_approvers(configs: str, brand_ids: list[str] | None) -> tuple[Any, list[str]]:
    """configs/approvers.yaml (None if absent) and its problems, for a report of every problem at once."""
    from brandsteps.approvals.approvers import load_approvers
    from brandsteps.config import ConfigError

    try:
        return load_approvers(configs, brand_ids), []
    except ConfigError as exc:
        return None, exc.problems


def _report_approvers(configs: str, approvers: Any) -> None:
    if approvers is None:
        print(
            f"warning: no {configs}/approvers.yaml: any name may approve a brand awaiting approval (list approvers to require their codes)",
            file=sys.stderr,
        )
        return
    escalation = (
        f"; escalation after {approvers.escalate_after_hours:g} hours" if approvers.escalate_after_hours else ""
    )
    print(f"approvers: {len(approvers.approvers)} in {configs}/approvers.yaml{escalation}")


def cmd_approvers_enroll(args: argparse.Namespace) -> int:
    """A new TOTP secret for an approver, as an otpauth:// URI and its QR code for an authenticator app."""
    import segno

    from brandsteps.approvals.approvers import (
        APPROVERS_FILE,
        enrolment_uri,
        load_approvers,
        new_secret,
        secret_block_name,
        suggested_env_name,
    )

    approvers = load_approvers(args.configs)
    listed = approvers.find(args.name) if approvers else None
    name = listed.name if listed else args.name
    env = listed.totp_secret_env if listed else suggested_env_name(name)
    secret = new_secret()
    uri = enrolment_uri(secret, name)
    print(f"A new TOTP secret for {name}. Scan the QR code with an authenticator app (or give it the URI below):")
    segno.make(uri, error="m").terminal(out=sys.stdout, compact=True, border=2)
    print(uri)
    print(
        "Keep the secret where brandsteps reads it, on the machines that run `brandsteps approve` and `brandsteps serve`:"
    )
    print(f"  export {env}='{secret}'")
    print(f"  or a Prefect Secret block named {secret_block_name(env)} (`--save-block` saves it there)")
    if args.save_block:
        _save_secret_block(secret_block_name(env), secret)
    if listed is None:
        print(
            f"{name} is not in {args.configs}/{APPROVERS_FILE}: add them with `- {{name: {name}, totp_secret_env: {env}}}` and their stages and brands"
        )
    return EXIT_OK


def _save_secret_block(block: str, secret: str) -> None:
    if _local_server_mode():
        raise UsageError("--save-block needs the Prefect server that runs the reviews: set PREFECT_API_URL")
    from prefect.blocks.system import Secret
    from pydantic import SecretStr

    Secret(value=SecretStr(secret)).save(block, overwrite=True)
    print(f"saved as the Prefect Secret block {block}")


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
    ledger = _ledger(args, SimpleNamespace(root=root, onboarding=onboarding))
    entries = audit_entries(ledger, args.brand, args.date_from, args.to, onboarding.timezone)
    print(audit_json(entries) if args.format == "json" else audit_text(entries, onboarding.timezone))
    return EXIT_OK


def _close_review_forms(brand_id: str, answer: Any) -> None:
    """The brand's paused review runs get this answer and complete; the decision above stands either way."""
    from flows.review_brand import answer_paused_reviews

    try:
        closed = answer_paused_reviews(brand_id, answer)
    except Exception as exc:  # the ledger has the decision; a server that is down must not turn it into a failure
        from brandsteps.server.api_auth import api_refusal, redact_auth

        why = api_refusal(exc) or redact_auth(f"{type(exc).__name__}: {exc}")
        print(f"warning: could not close {brand_id}'s review runs on the Prefect server ({why})", file=sys.stderr)
        return
    for name in closed:
        print(f"  review run {name}: answered, it completes saying who decided")


def _replay_in_process(configs: str, first: date, last: date) -> None:
    """The demo's history, day by day, with the cycle's own functions (run_day), printing progress.

    The same days through Prefect are `brandsteps run --as-of FIRST --to LAST` (the onboarding-replay
    flow); the demo decides them here while Prefect's server starts, then runs the last day as a flow.
    """
    from brandsteps.config import load_portfolio
    from brandsteps.config.settings import targets, today_in
    from brandsteps.engine.cycle import brand_table, metrics_start, run_day
    from brandsteps.reports.report import print_progress
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
    from brandsteps.sources.demo_data import write_demo_folder

    folder = Path(args.dir).resolve()
    end = args.end or yesterday_in("Asia/Shanghai")
    if (folder / "data" / "ledger.sqlite").exists() and not args.keep:
        for suffix in ("", "-wal", "-shm"):
            p = folder / "data" / f"ledger.sqlite{suffix}"
            if p.exists():
                p.unlink()
    print(
        f"Writing a demo portfolio of {args.brands} brands × {args.days} days into {folder}: the reports' exports, imported as `brandsteps import` does …"
    )
    summary = write_demo_folder(folder, n_brands=args.brands, days=args.days, end=end, seed=args.seed)
    for report in summary.imports:
        print(f"  {report.line()}")
    configs = str(folder / "configs")
    start = end - timedelta(days=args.days - 1)
    with prefect_api(start_now=False) as server:  # the server starts while the history is decided
        print(f"Running daily cycles from {start} to {end - timedelta(days=1)} …", file=sys.stderr)
        _replay_in_process(configs, start, end - timedelta(days=1))
        if server is not None:
            server.wait_ready()
        from flows.onboarding_cycle import onboarding_cycle

        print(f"Running the onboarding-cycle flow for {end} …", file=sys.stderr)
        result = onboarding_cycle(as_of=end, configs=configs)
    print()
    print(
        f"Demo portfolio on {end}: {summary.n_brands} brands, {summary.n_rows:,} metric rows, ledger {folder / 'data' / 'ledger.sqlite'}"
    )
    print(f"The exports behind the metrics: {summary.exports_dir} (imported into {summary.metrics_path})")
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
    print(f"  Prefect UI: {prefect_ui_hint()} → Runs and Artifacts")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    portfolio = _load(args)
    approvers, approver_problems = _read_approvers(args.configs, list(portfolio.brands))
    if approver_problems:
        from brandsteps.config import ConfigError

        raise ConfigError(approver_problems)
    if approvers is None:
        _report_approvers(args.configs, None)
    if args.report_url and not re.match(r"https?://[^/\s]+", args.report_url):
        raise UsageError(f"--report-url {args.report_url!r} is not an http(s) URL like http://reports.example.com:4280")
    if _local_server_mode():
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
        f"Serving onboarding-cycle ({cycle_starts(portfolio.onboarding)}), onboard-brand, review-brand, backtest, {inbox}"
    )
    api = without_credentials(PREFECT_API_URL.value())  # a user:password@ in the URL stays off the screen
    print(
        f"  configs {configs}; Prefect API {api}; overdue alerts {'to a webhook' if args.overdue_webhook else 'recorded as events only'}"
    )
    print(
        f"  reports {report_dir}, served read-only on {reports.url}; each cycle's artifact visual-report links {report_url}/<day>/index.html"
    )
    serve_all(portfolio, configs, webhook_url=args.overdue_webhook, limit=args.limit)
    return EXIT_OK


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0 to 65535; 0: any free port)")
    return port


def cmd_import_kuaishou(args: argparse.Namespace) -> int:
    from brandsteps.config import BRAND_ID_PATTERN
    from brandsteps.sources.kuaishou import KuaishouFormatError, append_to_source, import_kuaishou, write_new_table

    if not re.fullmatch(BRAND_ID_PATTERN, args.brand):
        raise UsageError(f"--brand {args.brand!r} is not a brand id (lowercase letters, digits and -)")
    try:
        result = import_kuaishou([Path(f) for f in args.files], args.brand)
        for line in result.summary_lines():
            print(line)
        if args.out:
            written = write_new_table(result, Path(args.out))
        else:
            portfolio = _load(args)
            if args.brand not in portfolio.brands:
                print(f"warning: {args.brand} has no {args.configs}/brands/{args.brand}.yaml yet", file=sys.stderr)
            from brandsteps.config.settings import targets

            written = append_to_source(result, targets(portfolio, args.metrics, None).metrics)
    except KuaishouFormatError as exc:
        raise UsageError(str(exc)) from None
    for line in written or ["nothing to write"]:
        print(line)
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    from brandsteps.config import BRAND_ID_PATTERN
    from brandsteps.sources.imports import ImportFormatError, load_profiles, read_import
    from brandsteps.sources.imports.summary import check_out, summary_lines, write_out

    if args.brand is not None and not re.fullmatch(BRAND_ID_PATTERN, args.brand):
        raise UsageError(f"--brand {args.brand!r} is not a brand id (lowercase letters, digits and -)")
    portfolio = _load(args)  # brands' accounts and exclusive_items decide where rows go
    profiles = load_profiles(args.configs)
    if args.brand is not None and args.brand not in portfolio.brands:
        print(f"warning: {args.brand} has no {args.configs}/brands/{args.brand}.yaml yet", file=sys.stderr)
    try:
        if args.out:
            check_out(Path(args.out))  # before reading: a wrong name is not found out after the work
        imported, problems = [], []
        for name in args.files:  # every file is read before any is stored: one bad file stores nothing
            try:
                imported.append(
                    read_import(Path(name), portfolio.brands, profiles, brand=args.brand, profile=args.profile)
                )
            except ImportFormatError as exc:
                problems.append(str(exc))
        if problems:
            raise UsageError("\n".join(problems))
        for one in imported:
            print("\n".join(summary_lines(one, profiles[one.profile], portfolio.brands)))
        written = write_out(imported, Path(args.out)) if args.out else _restate_all(args, portfolio, imported)
    except ImportFormatError as exc:
        raise UsageError(str(exc)) from None
    print("\n".join(written))
    return EXIT_OK


def _restate_all(args: argparse.Namespace, portfolio: Any, imported: list[Any]) -> list[str]:
    """The files into the configured metrics in one go: a brand-day imported again takes the file's columns (old values kept on record).

    The target is read and written once for all of them. A file whose rows cannot be stored changes
    nothing and is reported (exit 2); the other files are stored.
    """
    from brandsteps.config.settings import targets
    from brandsteps.sources.imports.restate import RestateError, restate_many

    source = targets(portfolio, args.metrics, None).metrics
    try:
        results = restate_many(source, imported)
    except RestateError as exc:  # the target itself cannot take them: nothing was stored
        raise UsageError(str(exc)) from None
    _announce_imported(imported, results)
    failed = [line for r in results if r.error is not None for line in r.lines()]
    lines = [line for r in results if r.error is None for line in r.lines()]
    if failed:
        print("\n".join(lines))  # the files stored
        others = "; the others were stored" if len(failed) < len(results) else ""
        raise UsageError("\n".join([*failed, f"{len(failed)} of {len(results)} files not stored{others}"]))
    return lines


def _announce_imported(imported: list[Any], results: list[Any]) -> None:
    """With PREFECT_API_URL, announce brandsteps.metrics.imported as the inbox does: data from a terminal arrives too.

    Only files stored now count (not one already imported, nor one refused): a cycle waiting for them may start.
    """
    if _local_server_mode():  # no server to tell (and no temporary one started for an event)
        return
    from brandsteps.engine.events import METRICS_IMPORTED_EVENT, imported_payload
    from brandsteps.wording import counted

    pairs = zip(imported, results, strict=True)
    stored = [(str(one.path), one.rows) for one, r in pairs if r.error is None and not r.already_imported]
    payload = imported_payload(stored)
    if payload is None:
        return
    try:
        _send_imported_event(payload)
    # Prefect's events client gives up with a plain Exception; the files are stored whatever it says.
    except Exception as exc:  # noqa: BLE001
        unsent = f"the files are stored, but {METRICS_IMPORTED_EVENT} was not announced ({exc})"
        print(f"warning: {unsent}; cycles waiting for them start on schedule", file=sys.stderr)
        return
    changed = f"{counted(len(payload['brands']), 'brand')}, {counted(len(payload['days']), 'day')}"
    print(f"announced {METRICS_IMPORTED_EVENT}: {changed}", file=sys.stderr)


def _send_imported_event(payload: dict[str, list[str]]) -> None:
    """The event, sent before returning: no background worker left to drain (and say so) as the command ends."""
    import asyncio

    from prefect.events import Event
    from prefect.events.clients import get_events_client

    from brandsteps.engine.events import METRICS_IMPORTED_EVENT, METRICS_RESOURCE

    async def send() -> None:
        async with get_events_client(reconnection_attempts=2) as client:
            await client.emit(Event(event=METRICS_IMPORTED_EVENT, resource=dict(METRICS_RESOURCE), payload=payload))

    asyncio.run(send())


def cmd_backtest(args: argparse.Namespace) -> int:
    from brandsteps.reports.report import print_progress

    portfolio = _load(args)
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
            f"Each day sees the figures as they stood at its data deadline: {len(revisions):,} later restatements undone",
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


def cmd_report(args: argparse.Namespace) -> int:
    from brandsteps.reports.report import print_progress

    portfolio = _load(args)
    if args.date_from and args.to and args.to < args.date_from:
        raise UsageError(f"--to {args.to} is before --from {args.date_from}")
    from brandsteps.reports.visual_report import write_report

    ledger = _ledger(args, portfolio)
    page = write_report(portfolio, ledger, Path(args.out), args.date_from, args.to, progress=print_progress)
    print(f"Report: {page}")
    return EXIT_OK


def cmd_deploy(args: argparse.Namespace) -> int:
    portfolio = _load(args)
    if _local_server_mode():
        raise UsageError("deploy needs a running Prefect server: set PREFECT_API_URL (e.g. http://127.0.0.1:4200/api)")
    from flows.serving import register_deployments

    ids = register_deployments(portfolio, Path(args.configs).resolve(), args.pool)
    print(
        f"Registered {len(ids)} deployments for work pool {args.pool}; start workers with: prefect worker start --pool {args.pool}"
    )
    return EXIT_OK


# ---------------------------------------------------------------- parser


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
        help="each day sees the figures as they stood at its data deadline (restatements imported later undone, from the revision record)",
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
