"""Shared by the flow tests: a small portfolio with its metrics, and reads of the temporary Prefect API."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from tests.conftest import simple_playbook, write_configs

AS_OF = date(2026, 1, 5)


def portfolio_dir(tmp_path: Path, n: int) -> Path:
    """n brands b00000… under the simple playbook, metrics from 2026-01-01 to AS_OF; odd brands sell more.

    Even brands' gmv is 100 a day, odd brands' 600: over the 3-day window 300 and 1,800, so every
    brand meets the playbook's `gmv >= 300` and passes.
    """
    brands = {f"b{i:05d}": {"name": f"品牌 {i}"} for i in range(n)}
    configs = write_configs(tmp_path, brands, playbook=simple_playbook())
    dates = pd.date_range("2026-01-01", AS_OF)
    rows = pd.DataFrame(
        [
            {"brand_id": b, "date": d, "gmv": 100.0 + 500 * (i % 2), "orders": 5.0}
            for i, b in enumerate(brands)
            for d in dates
        ]
    )
    (tmp_path / "data").mkdir(exist_ok=True)
    rows.to_csv(tmp_path / "data" / "metrics.csv", index=False)
    return configs


async def post_filter(path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """A filter endpoint of the REST API, given a complete body (this client version sends nulls the server refuses)."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        response = await client._client.post(path, json={"offset": 0, "limit": 200, **body})
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result


async def artifact_data(flow_run_id: str) -> dict[str, Any]:
    """The run's artifacts, key → data; the newest version of each key."""
    arts = await post_filter(
        "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}, "sort": "CREATED_DESC"}
    )
    return {a["key"]: a["data"] for a in reversed(arts)}
