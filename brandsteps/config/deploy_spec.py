"""The deployments declared in prefect.yaml, read safely, and where they disagree with onboarding.yaml."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from brandsteps.config.errors import ConfigError, format_validation_error
from brandsteps.config.models import Onboarding
from brandsteps.config.yaml_files import read_yaml
from brandsteps.engine.events import METRICS_IMPORTED_EVENT

CYCLE_DEPLOYMENT = "onboarding-cycle"
IMPORT_DEPLOYMENT = "import-exports"
EXPECTED_DEPLOYMENTS: tuple[str, ...] = (
    CYCLE_DEPLOYMENT,
    "onboard-brand",
    "review-brand",
    "backtest",
    IMPORT_DEPLOYMENT,
)
CYCLE_SCHEDULE_SLUG = "daily-onboarding-cycle"
DEADLINE_SCHEDULE_SLUG = "onboarding-cycle-at-data-deadline"
# serve and workers start a scheduled run up to 10 s before its time (their prefetch): the delayed
# run must still start after the last import its trigger's window swallowed.
EARLY_START_SECONDS = 10.0
PREFECT_YAML = "prefect.yaml"


@dataclass(frozen=True)
class ScheduleSpec:
    """A cron schedule, or one every `interval` seconds (cron empty)."""

    cron: str
    timezone: str | None
    slug: str | None
    active: bool = True
    interval: float | None = None


class TriggerSpec(BaseModel):
    """A deployment trigger (Prefect's event trigger, durations in seconds): run the deployment when events arrive.

    Only keys that `prefect deploy` and `brandsteps serve` both pass on are accepted, so the two
    create the same automation.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["event"] = "event"
    name: str | None = Field(default=None, min_length=1, description="the automation's name")
    description: str = ""
    enabled: bool = True
    expect: list[str] = Field(min_length=1, description="the event names that count")
    after: list[str] = Field(default_factory=list)
    match: dict[str, str | list[str]] = Field(default_factory=dict, description="labels the event's resource must have")
    for_each: list[str] = Field(default_factory=list)
    posture: Literal["Reactive", "Proactive"] = "Reactive"
    threshold: int = Field(default=1, ge=1)
    within: float = Field(default=0.0, description="seconds the events are counted over")
    schedule_after: float = Field(default=0.0, description="seconds between firing and the run's scheduled start")
    parameters: dict[str, Any] | None = Field(default=None, description="the run's parameters (none: the deployment's)")

    @field_validator("match", mode="before")
    @classmethod
    def _labels(cls, value: Any) -> Any:
        def is_label(v: Any) -> bool:
            return isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v))

        if isinstance(value, dict) and not all(isinstance(k, str) and is_label(v) for k, v in value.items()):
            raise ValueError("must map resource labels to text or lists of text")
        return value

    @field_validator("within", "schedule_after")
    @classmethod
    def _seconds(cls, value: float, info: ValidationInfo) -> float:
        if value < 0:
            raise ValueError("must be 0 or more seconds")
        # Prefect refuses a Proactive trigger counting over less than 10 s; say so before it does.
        if info.field_name == "within" and info.data.get("posture") == "Proactive" and value < 10:
            raise ValueError("must be at least 10 seconds for a Proactive trigger")
        return value

    def prefect_fields(self) -> dict[str, Any]:
        """The keyword arguments of Prefect's DeploymentEventTrigger, as `prefect deploy` reads this entry."""
        fields = self.model_dump(exclude={"type"})
        fields.update(
            expect=set(self.expect),
            after=set(self.after),
            for_each=set(self.for_each),
            within=timedelta(seconds=self.within),
            schedule_after=timedelta(seconds=self.schedule_after),
        )
        return fields

    def starts_on_imports(self) -> bool:
        return METRICS_IMPORTED_EVENT in self.expect


class _EntryTriggers(BaseModel):
    # Only the triggers: the rest of an entry is read (and checked) by read_deployment_specs.
    model_config = ConfigDict(extra="ignore")

    triggers: list[TriggerSpec] | None = None


class _FileTriggers(BaseModel):
    model_config = ConfigDict(extra="ignore")

    deployments: list[_EntryTriggers]


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
    triggers: tuple[TriggerSpec, ...] = ()


def deployments_file(configs: Path, project_root: Path) -> Path:
    """The prefect.yaml beside the configs folder (the one `validate` checks), else the project's own."""
    beside = configs.resolve().parent / PREFECT_YAML
    return beside if beside.exists() else project_root / PREFECT_YAML


def _schedules(raw: Any, where: str) -> tuple[ScheduleSpec, ...]:
    out = []
    for i, item in enumerate(raw or []):
        if not isinstance(item, dict) or ("cron" in item) == ("interval" in item):
            problem = "must be a map with a cron expression or an interval in seconds"
            raise ConfigError([f"{where}.schedules[{i}]: {problem}"])
        interval = item.get("interval")
        is_seconds = isinstance(interval, (int, float)) and not isinstance(interval, bool) and interval > 0
        if interval is not None and not is_seconds:
            raise ConfigError([f"{where}.schedules[{i}].interval: must be a positive number of seconds"])
        cron = str(item.get("cron") or "")
        seconds = None if interval is None else float(interval)
        out.append(ScheduleSpec(cron, item.get("timezone"), item.get("slug"), bool(item.get("active", True)), seconds))
    return tuple(out)


def _triggers(entries: list[Any], display: str) -> list[tuple[TriggerSpec, ...]]:
    try:
        parsed = _FileTriggers.model_validate({"deployments": entries})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(display, exc)) from None
    return [tuple(entry.triggers or ()) for entry in parsed.deployments]


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
    triggers = _triggers(entries, path.name)
    return [replace(spec, triggers=t) for spec, t in zip(specs, triggers, strict=True)]


def deadline_cron(data_deadline: str) -> str:
    """The daily cron of a data_deadline ('12:30' → '30 12 * * *'): the cycle that decides the brands still waiting."""
    hours, minutes = data_deadline.split(":")
    return f"{int(minutes)} {int(hours)} * * *"


def cycle_spec(specs: list[DeploymentSpec]) -> DeploymentSpec | None:
    return next((s for s in specs if s.name == CYCLE_DEPLOYMENT), None)


def main_schedule(spec: DeploymentSpec) -> ScheduleSpec | None:
    """The cycle's daily schedule: the first one that is not the data deadline's."""
    return next((s for s in spec.schedules if s.slug != DEADLINE_SCHEDULE_SLUG), None)


def arrival_trigger(spec: DeploymentSpec) -> TriggerSpec | None:
    """The cycle's trigger on imported metrics, if prefect.yaml declares one."""
    return next((t for t in spec.triggers if t.starts_on_imports()), None)


SERVE_FOLLOWS = "`brandsteps serve` follows onboarding.yaml, `prefect deploy` follows prefect.yaml"
ARRIVAL = f"{CYCLE_DEPLOYMENT}'s trigger on {METRICS_IMPORTED_EVENT}"


def schedule_mismatch(specs: list[DeploymentSpec], onboarding: Onboarding) -> str | None:
    """A warning when prefect.yaml's cycle schedule is not onboarding.yaml's (serve follows onboarding.yaml)."""
    cycle = cycle_spec(specs)
    first = main_schedule(cycle) if cycle is not None else None
    if first is None:
        return f"prefect.yaml: the {CYCLE_DEPLOYMENT} deployment has no schedule"
    if (first.cron, first.timezone) != (onboarding.schedule, onboarding.timezone):
        return (
            f"prefect.yaml: {CYCLE_DEPLOYMENT} runs on '{first.cron}' ({first.timezone}) but "
            f"configs/onboarding.yaml says '{onboarding.schedule}' ({onboarding.timezone}); {SERVE_FOLLOWS}"
        )
    return None


def deadline_mismatch(specs: list[DeploymentSpec], onboarding: Onboarding) -> str | None:
    """A warning when prefect.yaml's deadline schedule is not the one onboarding.yaml's data_deadline gives serve."""
    cycle = cycle_spec(specs)
    schedules = cycle.schedules if cycle else ()
    declared = next((s for s in schedules if s.slug == DEADLINE_SCHEDULE_SLUG and s.active), None)
    deadline = onboarding.data_deadline
    if deadline is None:
        if declared is None:
            return None
        return (
            f"prefect.yaml: {CYCLE_DEPLOYMENT} schedule '{DEADLINE_SCHEDULE_SLUG}' runs on '{declared.cron}' but "
            "configs/onboarding.yaml sets no data_deadline; `brandsteps serve` leaves that schedule out, "
            "`prefect deploy` follows prefect.yaml"
        )
    wanted = deadline_cron(deadline)
    if declared is not None and (declared.cron, declared.timezone) == (wanted, onboarding.timezone):
        return None
    missing = f"has no active schedule '{DEADLINE_SCHEDULE_SLUG}'"
    declared_text = missing if declared is None else f"runs it on '{declared.cron}' ({declared.timezone})"
    return (
        f"prefect.yaml: {CYCLE_DEPLOYMENT} {declared_text} but configs/onboarding.yaml's data_deadline {deadline} "
        f"means '{wanted}' ({onboarding.timezone}); {SERVE_FOLLOWS}"
    )


def trigger_mismatch(specs: list[DeploymentSpec], onboarding: Onboarding) -> str | None:
    """A warning when prefect.yaml's data-arrival trigger is not serve's (on exactly when data_deadline is set)."""
    cycle = cycle_spec(specs)
    trigger = arrival_trigger(cycle) if cycle else None
    deadline = onboarding.data_deadline
    if trigger is None:
        if deadline is None:
            return None
        return (
            f"prefect.yaml: {CYCLE_DEPLOYMENT} has no trigger on {METRICS_IMPORTED_EVENT}: with data_deadline "
            f"{deadline} in configs/onboarding.yaml, brands whose data arrives after the daily schedule wait for "
            "the deadline"
        )
    if deadline is not None and not trigger.enabled:
        return (
            f"prefect.yaml: {ARRIVAL} is disabled but configs/onboarding.yaml sets data_deadline {deadline}; "
            "`brandsteps serve` enables it, `prefect deploy` would not (set enabled: true)"
        )
    if deadline is None and trigger.enabled:
        return (
            f"prefect.yaml: {ARRIVAL} is enabled but configs/onboarding.yaml sets no data_deadline, so a cycle an "
            "import starts would decide every brand on what has arrived; `brandsteps serve` disables it, "
            "`prefect deploy` would not (set enabled: false)"
        )
    return None


def debounce_problem(specs: list[DeploymentSpec]) -> str | None:
    """A warning when the arrival trigger's run could start before the imports its window swallowed."""
    cycle = cycle_spec(specs)
    trigger = arrival_trigger(cycle) if cycle else None
    if trigger is None or trigger.posture != "Reactive":
        return None
    if trigger.schedule_after >= trigger.within + EARLY_START_SECONDS:
        return None
    return (
        f"prefect.yaml: {ARRIVAL}: schedule_after {trigger.schedule_after:g} s is less than within "
        f"{trigger.within:g} s + {EARLY_START_SECONDS:g} s, so its run can start before an import that started no run "
        "of its own (one late in the window) and leave that import's brands to the deadline"
    )


def deployment_warnings(specs: list[DeploymentSpec], onboarding: Onboarding) -> list[str]:
    """Every way `prefect deploy` of this prefect.yaml would start the cycle differently from `brandsteps serve`."""
    checks = (
        schedule_mismatch(specs, onboarding),
        deadline_mismatch(specs, onboarding),
        trigger_mismatch(specs, onboarding),
        debounce_problem(specs),
    )
    return [w for w in checks if w is not None]


def cycle_starts(onboarding: Onboarding) -> str:
    """When serve starts the cycle, in words: daily; with data_deadline also at the deadline and when data arrives."""
    daily = f"'{onboarding.schedule}' {onboarding.timezone}"
    if onboarding.data_deadline is None:
        return daily
    return f"{daily}, at the data deadline {onboarding.data_deadline} and when data arrives"
