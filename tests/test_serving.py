"""What `brandsteps serve` and `brandsteps deploy` register: the cycle's schedules and trigger, by onboarding.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import simple_playbook, write_configs

REPO = Path(__file__).resolve().parents[1]
DAILY = ("0 9 * * *", "Asia/Shanghai", "daily-onboarding-cycle", True)


def _cycle(root: Path, onboarding: dict[str, Any]) -> Any:
    from brandsteps.config import load_portfolio
    from flows.serving import runner_deployments

    configs = write_configs(
        root, {"riser": {}}, playbook=simple_playbook(), onboarding={"metrics": "data/metrics.csv", **onboarding}
    )
    deployments = runner_deployments(load_portfolio(configs, apply_env=False), configs)
    assert [d.name for d in deployments] == [
        "onboarding-cycle",
        "onboard-brand",
        "review-brand",
        "backtest",
        "import-exports",
    ]
    assert all(not d.triggers for d in deployments[1:])
    return deployments[0]


@pytest.mark.parametrize(
    ("onboarding", "schedules", "trigger_enabled"),
    [
        # without a deadline brands are decided on what is there: an import must not start a cycle early
        pytest.param({}, [DAILY], False, id="no-deadline"),
        pytest.param(
            {"data_deadline": "12:30"},
            [DAILY, ("30 12 * * *", "Asia/Shanghai", "onboarding-cycle-at-data-deadline", True)],
            True,
            id="deadline",  # the run at 12:30 decides the brands still waiting; imports start cycles before it
        ),
        pytest.param(
            {"data_deadline": "06:00", "timezone": "Europe/Berlin", "schedule": "15 5 * * *"},
            [
                ("15 5 * * *", "Europe/Berlin", "daily-onboarding-cycle", True),
                ("0 6 * * *", "Europe/Berlin", "onboarding-cycle-at-data-deadline", True),
            ],
            True,
            id="deadline-in-the-portfolio-timezone",
        ),
    ],
)
def test_the_cycle_follows_onboarding_yaml(
    tmp_path: Path, onboarding: dict[str, Any], schedules: list[tuple[Any, ...]], trigger_enabled: bool
) -> None:
    cycle = _cycle(tmp_path, onboarding)
    assert [(s.schedule.cron, s.schedule.timezone, s.slug, s.active) for s in cycle.schedules] == schedules
    # prefect.yaml says how the trigger counts (its values: see test_deploy_spec), onboarding.yaml whether it is on
    assert [
        (t.name, t.expect, t.enabled, t.within.total_seconds(), t.schedule_after.total_seconds(), t.parameters)
        for t in cycle.triggers
    ] == [("onboarding-cycle-when-data-arrives", {"brandsteps.metrics.imported"}, trigger_enabled, 240.0, 300.0, None)]
    # the run an event starts decides yesterday of this portfolio: no as_of, only where its configs are
    assert cycle.parameters == {"configs": str(tmp_path / "configs")}


def test_serve_reads_the_prefect_yaml_beside_the_configs(tmp_path: Path) -> None:
    doc = yaml.safe_load((REPO / "prefect.yaml").read_text(encoding="utf-8"))
    doc["deployments"][0]["triggers"][0].update(within=20, schedule_after=30)
    (tmp_path / "prefect.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    cycle = _cycle(tmp_path, {"data_deadline": "12:00"})
    # the portfolio's own debounce, not the checkout's 240 s / 300 s
    assert [(t.within.total_seconds(), t.schedule_after.total_seconds(), t.enabled) for t in cycle.triggers] == [
        (20.0, 30.0, True)
    ]
