"""prefect.yaml: the five deployments, and a cycle schedule that agrees with configs/onboarding.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from brandsteps.config import ConfigError, Onboarding, load_portfolio
from brandsteps.deploy_spec import EXPECTED_DEPLOYMENTS, read_deployment_specs, schedule_mismatch

REPO = Path(__file__).resolve().parents[1]


def test_repository_prefect_yaml_declares_every_deployment() -> None:
    specs = read_deployment_specs(REPO / "prefect.yaml")
    assert tuple(s.name for s in specs) == EXPECTED_DEPLOYMENTS
    for spec in specs:
        path, _, func = spec.entrypoint.partition(":")
        assert (REPO / path).exists() and func, spec.entrypoint
    cycle = specs[0]
    # daily 09:00 Shanghai by default, with a slug so redeploys replace rather than add
    assert [(s.cron, s.timezone, s.slug) for s in cycle.schedules] == [("0 9 * * *", "Asia/Shanghai", "daily-onboarding-cycle")]
    by_name = {s.name: s for s in specs}
    # the inbox is looked at every 15 minutes (900 s), with a slug so redeploys replace rather than add
    assert [(s.interval, s.slug) for s in by_name["import-exports"].schedules] == [(900.0, "import-exports-every-15-minutes")]
    assert all(not by_name[n].schedules for n in ("onboard-brand", "review-brand", "backtest"))  # on demand


def test_prefect_yaml_agrees_with_onboarding_yaml() -> None:
    portfolio = load_portfolio(REPO / "configs")
    assert schedule_mismatch(read_deployment_specs(REPO / "prefect.yaml"), portfolio.onboarding) is None


def test_a_different_schedule_is_reported() -> None:
    warning = schedule_mismatch(read_deployment_specs(REPO / "prefect.yaml"), Onboarding(schedule="30 8 * * *"))
    assert warning is not None and "'30 8 * * *'" in warning and "'0 9 * * *'" in warning


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
    ],
)
def test_broken_prefect_yaml(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "prefect.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        read_deployment_specs(path)
    assert err.value.problems == [message]
