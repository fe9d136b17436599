"""The deployments declared in prefect.yaml, read safely, and whether their schedule agrees with onboarding.yaml."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from brandsteps.config import ConfigError, Onboarding, read_yaml

CYCLE_DEPLOYMENT = "onboarding-cycle"
IMPORT_DEPLOYMENT = "import-exports"
EXPECTED_DEPLOYMENTS: tuple[str, ...] = (CYCLE_DEPLOYMENT, "onboard-brand", "review-brand", "backtest", IMPORT_DEPLOYMENT)


@dataclass(frozen=True)
class ScheduleSpec:
    """A cron schedule, or one every `interval` seconds (cron empty)."""

    cron: str
    timezone: str | None
    slug: str | None
    active: bool = True
    interval: float | None = None


@dataclass(frozen=True)
class DeploymentSpec:
    """One entry of prefect.yaml's `deployments:` list."""

    name: str
    entrypoint: str
    description: str = ""
    tags: tuple[str, ...] = ()
    parameters: dict[str, Any] = field(default_factory=dict)
    schedules: tuple[ScheduleSpec, ...] = ()
    work_pool: str | None = None


def _schedules(raw: Any, where: str) -> tuple[ScheduleSpec, ...]:
    out = []
    for i, item in enumerate(raw or []):
        if not isinstance(item, dict) or ("cron" in item) == ("interval" in item):
            raise ConfigError([f"{where}.schedules[{i}]: must be a map with a cron expression or an interval in seconds"])
        interval = item.get("interval")
        if interval is not None and (isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval <= 0):
            raise ConfigError([f"{where}.schedules[{i}].interval: must be a positive number of seconds"])
        cron = str(item.get("cron") or "")
        out.append(ScheduleSpec(cron, item.get("timezone"), item.get("slug"), bool(item.get("active", True)), None if interval is None else float(interval)))
    return tuple(out)


def read_deployment_specs(path: Path) -> list[DeploymentSpec]:
    """prefect.yaml's deployments, with errors naming the file and entry."""
    raw = read_yaml(path, path.name)
    entries = raw.get("deployments") if isinstance(raw, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError([f"{path.name}: deployments: must be a non-empty list"])
    specs = []
    for i, entry in enumerate(entries):
        where = f"{path.name}: deployments[{i}]"
        if not isinstance(entry, dict) or not entry.get("name") or not entry.get("entrypoint"):
            raise ConfigError([f"{where}: needs a name and an entrypoint"])
        pool = entry.get("work_pool") or {}
        specs.append(
            DeploymentSpec(
                name=str(entry["name"]),
                entrypoint=str(entry["entrypoint"]),
                description=str(entry.get("description") or ""),
                tags=tuple(str(t) for t in entry.get("tags") or ()),
                parameters=dict(entry.get("parameters") or {}),
                schedules=_schedules(entry.get("schedules"), where),
                work_pool=pool.get("name") if isinstance(pool, dict) else None,
            )
        )
    return specs


def schedule_mismatch(specs: list[DeploymentSpec], onboarding: Onboarding) -> str | None:
    """A warning when prefect.yaml's cycle schedule is not onboarding.yaml's (serve follows onboarding.yaml)."""
    cycle = next((s for s in specs if s.name == CYCLE_DEPLOYMENT), None)
    if cycle is None or not cycle.schedules:
        return f"prefect.yaml: the {CYCLE_DEPLOYMENT} deployment has no schedule"
    first = cycle.schedules[0]
    if (first.cron, first.timezone) != (onboarding.schedule, onboarding.timezone):
        return (
            f"prefect.yaml: {CYCLE_DEPLOYMENT} runs on '{first.cron}' ({first.timezone}) but configs/onboarding.yaml says "
            f"'{onboarding.schedule}' ({onboarding.timezone}); `brandsteps serve` follows onboarding.yaml, `prefect deploy` follows prefect.yaml"
        )
    return None
