"""`brandsteps import` and `import-kuaishou`: exports read, checked and stored into the configured metrics."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from brandsteps.cli import prefect_server
from brandsteps.cli.common import EXIT_OK, UsageError, portfolio_of


def cmd_import_kuaishou(args: argparse.Namespace) -> int:
    from brandsteps.config import BRAND_ID_PATTERN
    from brandsteps.sources.kuaishou.cells import KuaishouFormatError
    from brandsteps.sources.kuaishou.storing import append_to_source, import_kuaishou, write_new_table

    if not re.fullmatch(BRAND_ID_PATTERN, args.brand):
        raise UsageError(f"--brand {args.brand!r} is not a brand id (lowercase letters, digits and -)")
    try:
        result = import_kuaishou([Path(f) for f in args.files], args.brand)
        for line in result.summary_lines():
            print(line)
        if args.out:
            written = write_new_table(result, Path(args.out))
        else:
            portfolio = portfolio_of(args)
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
    portfolio = portfolio_of(args)  # brands' accounts and exclusive_items decide where rows go
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
    """The files into the configured metrics in one go.

    A brand-day imported again takes the file's columns (the old values are kept on record).

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
    if prefect_server.local_server_mode():  # no server to tell (and no temporary one started for an event)
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

    from prefect.events import Event, Resource
    from prefect.events.clients import get_events_client

    from brandsteps.engine.events import METRICS_IMPORTED_EVENT, METRICS_RESOURCE

    async def send() -> None:
        async with get_events_client(reconnection_attempts=2) as client:
            event = Event(event=METRICS_IMPORTED_EVENT, resource=Resource(dict(METRICS_RESOURCE)), payload=payload)
            await client.emit(event)

    asyncio.run(send())
