"""What every command shares: exit codes, the usage error, loading the configs and opening the ledger."""

from __future__ import annotations

import argparse
from datetime import date
from typing import TYPE_CHECKING

# The core is imported by the commands that need it, not with the parser: `brandsteps --help` answers at once.
if TYPE_CHECKING:
    from brandsteps.config import Portfolio
    from brandsteps.config.settings import ConfigsFolder
    from brandsteps.ledger import Ledger

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A command given wrong arguments or asked for what cannot be: one line to the user, exit 2."""


def portfolio_of(args: argparse.Namespace) -> Portfolio:
    from brandsteps.config import load_portfolio

    return load_portfolio(args.configs)


def ledger_of(args: argparse.Namespace, portfolio: ConfigsFolder) -> Ledger:
    from brandsteps.config.settings import targets

    return targets(portfolio, args.metrics, args.ledger).open_ledger()


def check_day(day: date, timezone: str) -> None:
    """A day to decide may not be later than today in the configured timezone."""
    from brandsteps.config.settings import today_in

    today = today_in(timezone)
    if day > today:
        raise UsageError(f"--as-of {day} is in the future (today is {today} in {timezone})")
