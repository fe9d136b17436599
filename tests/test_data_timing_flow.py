"""The onboarding-cycle flow with a data deadline, on a pinned clock: the data-readiness artifact, one decision each."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import simple_playbook, write_configs
from tests.flow_helpers import AS_OF, artifact_data

pytestmark = pytest.mark.integration


def _metrics(root: Path, through: dict[str, date]) -> None:
    rows = [
        {"brand_id": b, "date": d, "gmv": 600.0, "orders": 5.0}
        for b, last in through.items()
        for d in pd.date_range("2026-01-01", last)
    ]
    pd.DataFrame(rows).to_csv(root / "data" / "metrics.csv", index=False)


def test_a_cycle_before_the_deadline_waits_for_late_data(
    prefect_server: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.onboarding_cycle import onboarding_cycle

    onboarding = {"metrics": "data/metrics.csv", "ledger": "sqlite:///data/ledger.sqlite", "data_deadline": "12:00"}
    configs = write_configs(
        tmp_path, {"early": {}, "late": {"name": "迟到"}}, playbook=simple_playbook(), onboarding=onboarding
    )
    (tmp_path / "data").mkdir(exist_ok=True)
    _metrics(tmp_path, {"early": AS_OF, "late": date(2026, 1, 4)})

    # 09:00 Shanghai on the day after: late's day is missing, so it waits and the artifact says for what
    monkeypatch.setenv("BRANDSTEPS_NOW", "2026-01-06T09:00")
    state = onboarding_cycle(as_of=AS_OF, configs=str(configs), return_state=True)
    summary = state.result()
    assert (summary.decided, summary.unready) == (1, 1)
    readiness = str(asyncio.run(artifact_data(str(state.state_details.flow_run_id)))["data-readiness"])
    assert '"brand_id": "late"' in readiness and '"missing": "gmv on 2026-01-05"' in readiness

    # 10:30: late's export is in; the run decides late alone (early stays decided once)
    _metrics(tmp_path, {"early": AS_OF, "late": AS_OF})
    monkeypatch.setenv("BRANDSTEPS_NOW", "2026-01-06T10:30")
    summary = onboarding_cycle(as_of=AS_OF, configs=str(configs))
    assert (summary.decided, summary.unready, summary.already_decided) == (1, 0, 1)
