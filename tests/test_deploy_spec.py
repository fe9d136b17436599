"""prefect.yaml: the five deployments, the cycle's schedules and data-arrival trigger, where onboarding.yaml differs."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from brandsteps.config import ConfigError, Onboarding, load_portfolio
from brandsteps.config.deploy_spec import (
    EXPECTED_DEPLOYMENTS,
    deadline_cron,
    deployment_warnings,
    deployments_file,
    read_deployment_specs,
    schedule_mismatch,
)

REPO = Path(__file__).resolve().parents[1]
CYCLE = "onboarding-cycle"
EVENT = "brandsteps.metrics.imported"
DEADLINE_SLUG = "onboarding-cycle-at-data-deadline"
SERVE_DEPLOY = "`brandsteps serve` follows onboarding.yaml, `prefect deploy` follows prefect.yaml"
ARRIVAL = f"prefect.yaml: {CYCLE}'s trigger on {EVENT}"
NOON = {"cron": "0 12 * * *"}


def test_repository_prefect_yaml_declares_every_deployment() -> None:
    specs = read_deployment_specs(REPO / "prefect.yaml")
    assert tuple(s.name for s in specs) == EXPECTED_DEPLOYMENTS
    for spec in specs:
        path, _, func = spec.entrypoint.partition(":")
        assert (REPO / path).exists() and func, spec.entrypoint
    cycle = specs[0]
    # daily 09:00 Shanghai by default and at configs/onboarding.yaml's data_deadline 12:00, with slugs
    # so redeploys replace rather than add
    assert [(s.cron, s.timezone, s.slug, s.active) for s in cycle.schedules] == [
        ("0 9 * * *", "Asia/Shanghai", "daily-onboarding-cycle", True),
        ("0 12 * * *", "Asia/Shanghai", "onboarding-cycle-at-data-deadline", True),
    ]
    by_name = {s.name: s for s in specs}
    # the inbox is looked at every 15 minutes (900 s), with a slug so redeploys replace rather than add
    inbox = [(s.interval, s.slug) for s in by_name["import-exports"].schedules]
    assert inbox == [(900.0, "import-exports-every-15-minutes")]
    assert all(not by_name[n].schedules for n in ("onboard-brand", "review-brand", "backtest"))  # on demand
    assert all(not s.triggers for s in specs[1:])  # only the cycle starts on events


def test_the_cycle_starts_once_for_a_burst_of_imports() -> None:
    (trigger,) = read_deployment_specs(REPO / "prefect.yaml")[0].triggers
    # Reactive, threshold 1: the first import fires; the next 240 s of imports are swallowed by the
    # window; the run starts 300 s after the first, late enough to read them all (+60 s for runs
    # started up to 10 s early). Enabled: configs/onboarding.yaml sets a data_deadline.
    assert (trigger.name, trigger.expect, trigger.match, trigger.posture, trigger.threshold) == (
        "onboarding-cycle-when-data-arrives",
        [EVENT],
        {"prefect.resource.id": "brandsteps.metrics"},
        "Reactive",
        1,
    )
    assert (trigger.within, trigger.schedule_after, trigger.enabled, trigger.parameters) == (240.0, 300.0, True, None)


def test_prefect_deploy_reads_the_trigger_as_serve_does() -> None:
    """`prefect deploy` reads the entry with Prefect's own model, serve builds it from ours: the same automation."""
    from prefect.events import DeploymentTriggerTypes
    from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger
    from pydantic import TypeAdapter

    entry = yaml.safe_load((REPO / "prefect.yaml").read_text(encoding="utf-8"))["deployments"][0]["triggers"][0]
    theirs = TypeAdapter(DeploymentTriggerTypes).validate_python(entry)
    ours = DeploymentEventTrigger(**read_deployment_specs(REPO / "prefect.yaml")[0].triggers[0].prefect_fields())
    deployment = uuid.uuid4()
    theirs.set_deployment_id(deployment)
    ours.set_deployment_id(deployment)
    assert ours.as_automation().model_dump() == theirs.as_automation().model_dump()


def test_prefect_yaml_agrees_with_onboarding_yaml() -> None:
    portfolio = load_portfolio(REPO / "configs")
    assert deployment_warnings(read_deployment_specs(REPO / "prefect.yaml"), portfolio.onboarding) == []


def test_a_different_schedule_is_reported() -> None:
    warning = schedule_mismatch(read_deployment_specs(REPO / "prefect.yaml"), Onboarding(schedule="30 8 * * *"))
    assert warning == (
        "prefect.yaml: onboarding-cycle runs on '0 9 * * *' (Asia/Shanghai) but configs/onboarding.yaml says "
        f"'30 8 * * *' (Asia/Shanghai); {SERVE_DEPLOY}"
    )


@pytest.mark.parametrize(
    ("deadline", "cron"),
    [
        pytest.param("12:00", "0 12 * * *", id="noon"),
        pytest.param("07:05", "5 7 * * *", id="leading-zeros-dropped"),  # cron fields are plain numbers
        pytest.param("00:00", "0 0 * * *", id="midnight"),
    ],
)
def test_deadline_cron(deadline: str, cron: str) -> None:
    assert deadline_cron(deadline) == cron


def _prefect_yaml(tmp_path: Path, deadline_schedule: dict[str, Any] | None = None, **trigger: Any) -> Path:
    """The repository's prefect.yaml with this deadline schedule (or none), its trigger changed (removed: gone)."""
    doc = yaml.safe_load((REPO / "prefect.yaml").read_text(encoding="utf-8"))
    cycle = doc["deployments"][0]
    cycle["schedules"] = [s for s in cycle["schedules"] if s["slug"] != DEADLINE_SLUG]
    if deadline_schedule is not None:
        at_deadline = {"slug": DEADLINE_SLUG, "timezone": "Asia/Shanghai", "active": True, **deadline_schedule}
        cycle["schedules"].append(at_deadline)
    if trigger.pop("removed", False):
        del cycle["triggers"]
    else:
        cycle["triggers"][0].update(trigger)
    path = tmp_path / "prefect.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("deadline", "deadline_schedule", "trigger", "warnings"),
    [
        pytest.param("12:00", NOON, {"enabled": True}, [], id="deadline-mirrored"),
        pytest.param(None, None, {"enabled": False}, [], id="no-deadline-trigger-disabled"),
        pytest.param(
            "12:00",
            None,
            {"enabled": True},
            [
                f"prefect.yaml: {CYCLE} has no active schedule '{DEADLINE_SLUG}' but configs/onboarding.yaml's "
                f"data_deadline 12:00 means '0 12 * * *' (Asia/Shanghai); {SERVE_DEPLOY}"
            ],
            id="deadline-schedule-missing",
        ),
        pytest.param(
            "12:30",
            NOON,
            {"enabled": True},
            [
                f"prefect.yaml: {CYCLE} runs it on '0 12 * * *' (Asia/Shanghai) but configs/onboarding.yaml's "
                f"data_deadline 12:30 means '30 12 * * *' (Asia/Shanghai); {SERVE_DEPLOY}"
            ],
            id="deadline-moved",
        ),
        pytest.param(
            None,
            NOON,
            {"enabled": False},
            [
                f"prefect.yaml: {CYCLE} schedule '{DEADLINE_SLUG}' runs on '0 12 * * *' but configs/onboarding.yaml "
                "sets no data_deadline; `brandsteps serve` leaves that schedule out, "
                "`prefect deploy` follows prefect.yaml"
            ],
            id="deadline-schedule-without-deadline",
        ),
        pytest.param(
            None, {**NOON, "active": False}, {"enabled": False}, [], id="inactive-deadline-schedule-is-an-example"
        ),
        pytest.param(
            "12:00",
            NOON,
            {"enabled": False},
            [
                f"{ARRIVAL} is disabled but configs/onboarding.yaml sets data_deadline 12:00; "
                "`brandsteps serve` enables it, `prefect deploy` would not (set enabled: true)"
            ],
            id="trigger-left-disabled",
        ),
        pytest.param(
            None,
            None,
            {"enabled": True},
            [
                f"{ARRIVAL} is enabled but configs/onboarding.yaml sets no data_deadline, so a cycle an import starts "
                "would decide every brand on what has arrived; `brandsteps serve` disables it, `prefect deploy` "
                "would not (set enabled: false)"
            ],
            id="trigger-enabled-without-deadline",
        ),
        pytest.param(
            "12:00",
            NOON,
            {"removed": True},
            [
                f"prefect.yaml: {CYCLE} has no trigger on {EVENT}: with data_deadline 12:00 in "
                "configs/onboarding.yaml, "
                "brands whose data arrives after the daily schedule wait for the deadline"
            ],
            id="trigger-removed",
        ),
        pytest.param(
            "12:00",
            NOON,
            {"enabled": True, "schedule_after": 245},
            [
                f"{ARRIVAL}: schedule_after 245 s is less than within 240 s + 10 s, so its run can start before "
                "an import that started no run of its own (one late in the window) and leave that import's brands "
                "to the deadline"
            ],
            id="run-could-start-before-a-swallowed-import",  # 245 < 240 + 10: prefetching 10 s starts it at 235
        ),
    ],
)
def test_deployment_warnings(
    tmp_path: Path,
    deadline: str | None,
    deadline_schedule: dict[str, Any] | None,
    trigger: dict[str, Any],
    warnings: list[str],
) -> None:
    specs = read_deployment_specs(_prefect_yaml(tmp_path, deadline_schedule, **trigger))
    assert deployment_warnings(specs, Onboarding(data_deadline=deadline)) == warnings


def test_deadline_schedule_in_another_timezone_is_reported(tmp_path: Path) -> None:
    specs = read_deployment_specs(_prefect_yaml(tmp_path, {**NOON, "timezone": "UTC"}, enabled=True))
    # the same clock time in UTC is eight hours later in Shanghai: not the deadline serve schedules
    assert deployment_warnings(specs, Onboarding(data_deadline="12:00")) == [
        f"prefect.yaml: {CYCLE} runs it on '0 12 * * *' (UTC) but configs/onboarding.yaml's data_deadline 12:00 "
        f"means '0 12 * * *' (Asia/Shanghai); {SERVE_DEPLOY}"
    ]


def test_the_prefect_yaml_beside_the_configs_wins(tmp_path: Path) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    assert deployments_file(configs, REPO) == REPO / "prefect.yaml"  # none beside: the checkout's
    (tmp_path / "prefect.yaml").write_text("deployments: []\n", encoding="utf-8")
    assert deployments_file(configs, REPO) == tmp_path / "prefect.yaml"  # the one `validate` checks


TRIGGER = "deployments:\n  - name: a\n    entrypoint: f.py:f\n    triggers:\n      - "
AT = "prefect.yaml: deployments[0].triggers[0]."


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\n", "prefect.yaml: deployments: must be a non-empty list"),
        ("deployments:\n  - name: a\n", "prefect.yaml: deployments[0]: needs a name and an entrypoint"),
        pytest.param(
            "deployments:\n  - name: a\n    entrypoint: f.py:f\n    schedules: [{timezone: UTC}]\n",
            "prefect.yaml: deployments[0].schedules[0]: must be a map with a cron expression or an interval in seconds",
            id="neither-cron-nor-interval",
        ),
        pytest.param(
            "deployments:\n  - name: a\n    entrypoint: f.py:f\n    schedules: [{interval: -5}]\n",
            "prefect.yaml: deployments[0].schedules[0].interval: must be a positive number of seconds",
            id="negative-interval",
        ),
        pytest.param(TRIGGER + "{expect: [x], whithin: 60}\n", AT + "whithin: unknown key", id="misspelt-key"),
        pytest.param(TRIGGER + "{within: 60}\n", AT + "expect: is required", id="no-expect"),  # else any event fires it
        pytest.param(
            TRIGGER + "{expect: [x], within: -1}\n", AT + "within: must be 0 or more seconds", id="negative-within"
        ),
        pytest.param(
            TRIGGER + "{expect: [x], schedule_after: -5}\n",
            AT + "schedule_after: must be 0 or more seconds",
            id="negative-delay",
        ),
        pytest.param(
            TRIGGER + "{expect: [x], within: PT5M}\n",
            AT + "within: must be a number (got 'PT5M')",
            id="duration-text",  # seconds only: one way to write it, checked the same by serve and validate
        ),
        pytest.param(TRIGGER + "{expect: [x], threshold: 0}\n", AT + "threshold: must be >= 1", id="threshold-0"),
        pytest.param(
            TRIGGER + "{expect: [x], posture: Proactive, within: 5}\n",
            AT + "within: must be at least 10 seconds for a Proactive trigger",
            id="proactive-too-short",  # Prefect's own minimum
        ),
        pytest.param(
            TRIGGER + "{expect: [x], posture: Metric}\n",
            AT + "posture: must be one of 'Reactive' or 'Proactive' (got 'Metric')",
            id="metric-posture",
        ),
        pytest.param(
            TRIGGER + "{type: compound, expect: [x]}\n",
            AT + "type: must be one of 'event' (got 'compound')",
            id="compound-trigger",  # serve passes event triggers on only
        ),
        pytest.param(
            TRIGGER + "{expect: [x], match: {prefect.resource.id: 3}}\n",
            AT + "match: must map resource labels to text or lists of text",
            id="match-number",
        ),
        pytest.param(
            "deployments:\n  - name: a\n    entrypoint: f.py:f\n"
            "  - name: b\n    entrypoint: g.py:g\n    triggers: {expect: [x]}\n",
            "prefect.yaml: deployments[1].triggers: must be a list",
            id="triggers-not-a-list",  # the entry named by its place
        ),
    ],
)
def test_broken_prefect_yaml(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "prefect.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        read_deployment_specs(path)
    assert err.value.problems == [message]
