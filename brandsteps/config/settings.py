"""Resolve where a run reads and writes: command line over environment over onboarding.yaml."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from brandsteps.config.models import Onboarding
from brandsteps.ledger import Ledger
from brandsteps.sources.metrics_source import MetricsSource


@dataclass(frozen=True)
class RunTargets:
    """The metrics source and ledger of one run, with the project root they resolve against."""

    metrics: MetricsSource
    ledger_url: str
    project_root: Path
    timezone: str

    def open_ledger(self) -> Ledger:
        ledger = Ledger(self.ledger_url, self.project_root)
        ledger.create()
        return ledger


class ConfigsFolder(Protocol):
    """What a run's targets come from: a loaded portfolio, or the roster `status` reads."""

    @property
    def root(self) -> Path: ...

    @property
    def onboarding(self) -> Onboarding: ...


def targets(portfolio: ConfigsFolder, metrics: str | None = None, ledger: str | None = None) -> RunTargets:
    project_root = portfolio.root.parent
    spec = metrics if metrics else portfolio.onboarding.metrics
    return RunTargets(
        metrics=MetricsSource.parse(spec, project_root),
        ledger_url=ledger or portfolio.onboarding.ledger,
        project_root=project_root,
        timezone=portfolio.onboarding.timezone,
    )


CLOCK_ENV = "BRANDSTEPS_NOW"


def now_in(tz: str) -> datetime:
    """The time in tz: BRANDSTEPS_NOW when set (an ISO time, in tz unless it has an offset: rehearsals and tests
    pin the clock the data deadline is checked against), else the system clock."""
    pinned = os.environ.get(CLOCK_ENV, "").strip()
    if not pinned:
        return datetime.now(ZoneInfo(tz))
    try:
        moment = datetime.fromisoformat(pinned)
    except ValueError:
        raise ValueError(f"{CLOCK_ENV}: must be an ISO time like 2026-12-07T10:30 (got {pinned!r})") from None
    return moment.replace(tzinfo=ZoneInfo(tz)) if moment.tzinfo is None else moment.astimezone(ZoneInfo(tz))


def today_in(tz: str) -> date:
    return now_in(tz).date()


def yesterday_in(tz: str) -> date:
    """A daily cycle decides the last complete day."""
    return today_in(tz) - timedelta(days=1)


def report_sources(configs_dir: Path | str) -> Mapping[str, Sequence[str]]:
    """base column → the import profiles (built-in Kuaishou reports and configs/imports/*.yaml) that fill it.

    The profiles say it once brandsteps.sources.imports is there; until then, coverage's table of the known
    Kuaishou reports (docs/domain.md#kuaishou-exports) stands in.
    """
    from brandsteps.sources.coverage import FALLBACK_SOURCES, sources_from_profiles

    try:
        from brandsteps.sources.imports import load_profiles
    except ImportError:
        return FALLBACK_SOURCES
    return sources_from_profiles(load_profiles(configs_dir))
