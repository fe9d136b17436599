"""Shared fixtures: small portfolios built in code, and one Prefect test server per session."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import prefect.context  # noqa: F401
import pytest
import yaml

from brandsteps.catalogue import STAGE_IDS

# Prefect freezes the environment's PREFECT_* settings into its global settings context when first imported: imported
# here, before any test sets a variable (an auth string, an API URL) with monkeypatch, no test's values outlive it.
REPO = Path(__file__).resolve().parents[1]
PLAYBOOK = REPO / "configs" / "steps.yaml"


def write_configs(
    root: Path, brands: dict[str, dict], playbook: dict | None = None, onboarding: dict | None = None
) -> Path:
    """A configs folder under root with the repository playbook (or the given one) and these brands."""
    configs = root / "configs"
    (configs / "brands").mkdir(parents=True, exist_ok=True)
    if playbook is None:
        shutil.copy(PLAYBOOK, configs / "steps.yaml")
    else:
        (configs / "steps.yaml").write_text(yaml.safe_dump(playbook, sort_keys=False), encoding="utf-8")
    (configs / "onboarding.yaml").write_text(
        yaml.safe_dump(onboarding or {"metrics": "data/metrics.csv", "ledger": "sqlite:///data/ledger.sqlite"}),
        encoding="utf-8",
    )
    for brand_id, body in brands.items():
        doc = {
            "brand_id": brand_id,
            "name": brand_id.title(),
            "tier": "small",
            "category": "food",
            "start_date": "2026-01-01",
            **body,
        }
        (configs / "brands" / f"{brand_id}.yaml").write_text(
            yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8"
        )
    return configs


def simple_playbook(**stage_overrides: object) -> dict:
    """The five stages, each tiny: one must criterion (gmv window sum >= 300), 3-day windows, 2 passes to advance."""
    stages = []
    for stage_id in STAGE_IDS:
        stage = {
            "id": stage_id,
            "title": stage_id,
            "window_days": 3,
            "min_days_in_stage": 2,
            "max_days_in_stage": 10,
            "consecutive_passes": 2,
            "criteria": [{"metric": "gmv", "op": ">=", "threshold": 300, "kind": "must"}],
        }
        stage.update(stage_overrides.get(stage_id, {}))  # type: ignore[arg-type]
        stages.append(stage)
    return {"stages": stages}


@pytest.fixture(scope="session", autouse=True)
def _config_cache_in_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Config parse caches go to a temporary folder (inherited by subprocesses), never the real ~/.cache."""
    with pytest.MonkeyPatch.context() as patch:  # restores the variable (or its absence) afterwards
        patch.setenv("BRANDSTEPS_CACHE_DIR", str(tmp_path_factory.mktemp("brandsteps-cache")))
        yield


@contextmanager
def quiet_variables_restored() -> Iterator[None]:
    """The CLI quiets Prefect's logging through the environment: put the variables back as they were afterwards."""
    from brandsteps.cli.prefect_server import QUIET_PREFECT_VARIABLES

    before = {k: os.environ.get(k) for k in QUIET_PREFECT_VARIABLES}
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(autouse=True)
def _cli_quiet_defaults_end_with_the_test() -> Iterator[None]:
    """A test that ran the CLI must not silence the next test's flow logs."""
    with quiet_variables_restored():
        yield


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One temporary Prefect API for every integration test (it takes ~12 s to start)."""
    home = tmp_path_factory.mktemp("prefect-home")
    os.environ["PREFECT_HOME"] = str(home)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
