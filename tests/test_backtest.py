"""Tests of backtests: per-stage summaries, policy differences, and a real replay into a scratch ledger."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from brandsteps.config import ConfigError, load_portfolio
from brandsteps.engine.backtest import BacktestRun, differences, replay, stage_table, with_playbook
from brandsteps.sources.metrics_source import validate
from tests.conftest import simple_playbook, write_configs


def _run(
    rows: list[tuple[str, str, str, str, int]], changes: list[tuple[str, str, str, str]] | None = None
) -> BacktestRun:
    """rows: (brand, day, stage, action, days_in_stage); changes: (brand, day, from, to)."""
    d = pd.DataFrame(rows, columns=["brand_id", "as_of", "stage", "action", "days_in_stage"])
    d["as_of"] = pd.to_datetime(d["as_of"])
    d["verdict"] = np.where(d["action"].isin(["advance", "graduate"]), "PASS", "FAIL")
    d["reason"] = d["action_reason"] = "x"
    c = pd.DataFrame(changes or [], columns=["brand_id", "as_of", "from_stage", "to_stage"])
    return BacktestRun("p", "v", date(2026, 1, 1), date(2026, 1, 31), d, c)


RUN = _run(
    [
        ("a", "2026-01-10", "affiliate_trial", "advance", 10),
        ("a", "2026-01-11", "public_traffic", "hold", 1),
        ("b", "2026-01-05", "affiliate_trial", "hold", 5),
        ("b", "2026-01-20", "affiliate_trial", "advance", 20),
        ("c", "2026-01-05", "affiliate_trial", "exit", 5),
        ("d", "2026-01-05", "self_broadcast", "demote", 30),
        ("d", "2026-01-06", "public_traffic", "advance", 40),
    ],
    [
        ("a", "2026-01-10", "affiliate_trial", "public_traffic"),
        ("b", "2026-01-20", "affiliate_trial", "public_traffic"),
        ("d", "2026-01-05", "self_broadcast", "public_traffic"),
        ("d", "2026-01-06", "public_traffic", "self_broadcast"),
    ],
)


@pytest.mark.parametrize(
    ("stage", "column", "expected"),
    [
        pytest.param("affiliate_trial", "brands", 3, id="affiliate-brands"),  # a, b, c
        pytest.param("affiliate_trial", "entering", 3, id="affiliate-entering"),  # each started the backtest there
        pytest.param("affiliate_trial", "advancing", 2, id="affiliate-advancing"),  # a and b
        # median of 10 and 20
        pytest.param("affiliate_trial", "median_days_to_advance", 15.0, id="affiliate-median-days"),
        # 10 + 0.9 × (20 - 10), linear interpolation
        pytest.param("affiliate_trial", "p90_days_to_advance", 19.0, id="affiliate-p90-days"),
        pytest.param("affiliate_trial", "exits", 1, id="affiliate-exits"),  # c
        # a and b advanced into it, d was demoted into it
        pytest.param("public_traffic", "entering", 3, id="public-entering"),
        pytest.param("public_traffic", "advancing", 1, id="public-advancing"),  # d, on its 40th day
        pytest.param("public_traffic", "median_days_to_advance", 40.0, id="public-median-days"),
        # d started there, and advanced back into it
        pytest.param("self_broadcast", "entering", 2, id="self-broadcast-entering"),
        pytest.param("self_broadcast", "demotions", 1, id="self-broadcast-demotions"),
        pytest.param("graduated", "brands", 0, id="graduated-brands"),
    ],
)
def test_stage_table(stage: str, column: str, expected: float) -> None:
    assert stage_table(RUN).at[stage, column] == expected


def test_differences_first_day_and_reasons() -> None:
    base = _run(
        [
            ("a", "2026-01-01", "affiliate_trial", "hold", 1),
            ("a", "2026-01-02", "affiliate_trial", "advance", 2),
            ("a", "2026-01-03", "public_traffic", "hold", 1),
            ("b", "2026-01-01", "affiliate_trial", "hold", 1),
        ]
    )
    other = _run(
        [
            ("a", "2026-01-01", "affiliate_trial", "hold", 1),
            ("a", "2026-01-02", "affiliate_trial", "hold", 2),
            ("a", "2026-01-03", "affiliate_trial", "hold", 3),
            ("b", "2026-01-01", "affiliate_trial", "hold", 1),
        ]
    )
    other.decisions.loc[1, "reason"] = "PASS 1 of 2 in a row needed"
    diff = differences(base, other)
    assert list(diff["brand_id"]) == ["a"]  # b decided the same every day
    assert diff.at[0, "as_of"] == pd.Timestamp("2026-01-02")  # the first day a differs
    assert diff.at[0, "days_differing"] == 2  # 01-02 (advance vs hold) and 01-03 (other stage)
    assert (diff.at[0, "action_a"], diff.at[0, "action_b"], diff.at[0, "reason_b"]) == (
        "advance",
        "hold",
        "PASS 1 of 2 in a row needed",
    )


def test_policy_file_is_validated(tmp_path: Path) -> None:
    configs = write_configs(tmp_path, {"aa": {}}, simple_playbook())
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"stages": [{"id": "affiliate_trial"}]}), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        with_playbook(load_portfolio(configs, apply_env=False), bad)
    assert "bad.yaml" in str(err.value.problems)
    with pytest.raises(ConfigError, match="no such policy file"):
        with_playbook(load_portfolio(configs, apply_env=False), tmp_path / "missing.yaml")


def test_replay_two_policies_into_scratch_ledgers(tmp_path: Path) -> None:
    # simple playbook: window 3 days, min 2 days in stage, 2 passes to advance; gmv ≥ 300 passes
    configs = write_configs(tmp_path, {"aa": {}, "bb": {}}, simple_playbook())
    portfolio = load_portfolio(configs, apply_env=False)
    slow = tmp_path / "slow.yaml"
    slow.write_text(
        yaml.safe_dump(simple_playbook(affiliate_trial={"consecutive_passes": 4, "max_days_in_stage": 20})),
        encoding="utf-8",
    )
    days = pd.date_range("2026-01-01", "2026-01-08")
    # bb's gmv falls below 300 from 01-05 on: a replay must not see that before 01-05
    gmv = np.r_[np.full(8, 400.0), np.where(days < "2026-01-05", 400.0, 100.0)]
    raw = pd.DataFrame(
        {
            "brand_id": np.repeat(["aa", "bb"], 8),
            "date": np.tile(days.strftime("%Y-%m-%d"), 2),
            "gmv": gmv,
            "orders": 10.0,
        }
    )
    history = validate(raw, as_of=date(2026, 1, 8), today=date(2026, 1, 9))
    base = replay(portfolio, history, date(2026, 1, 1), date(2026, 1, 6), "base")
    other = replay(with_playbook(portfolio, slow), history, date(2026, 1, 1), date(2026, 1, 6), "slow")
    table = stage_table(base)
    # days 1 and 2 pass (min 2 days → day 1 inconclusive, days 2, 3 pass): both advance on 01-03, day 3 in stage
    assert (
        table.at["affiliate_trial", "advancing"] == 2 and table.at["affiliate_trial", "median_days_to_advance"] == 3.0
    )
    assert (
        stage_table(other).at["affiliate_trial", "advancing"] == 2
    )  # 4 passes (days 2-5): bb's window sum on 01-05 is 400 + 400 + 100, still ≥ 300
    diff = differences(base, other)
    assert list(diff["brand_id"]) == ["aa", "bb"] and (diff["as_of"] == pd.Timestamp("2026-01-03")).all()
    assert not (configs.parent / "data" / "ledger.sqlite").exists()  # the configured ledger is never opened


@pytest.mark.integration
def test_backtest_flow_publishes_the_report(tmp_path: Path, prefect_server: None) -> None:
    import asyncio

    from prefect.client.orchestration import get_client

    from flows.backtest import backtest

    configs = write_configs(tmp_path, {"aa": {}}, simple_playbook())
    days = pd.date_range("2026-01-01", "2026-01-04")
    pd.DataFrame({"brand_id": "aa", "date": days.strftime("%Y-%m-%d"), "gmv": 400.0, "orders": 10.0}).to_csv(
        tmp_path / "m.csv", index=False
    )
    slow = tmp_path / "slow.yaml"
    slow.write_text(yaml.safe_dump(simple_playbook(affiliate_trial={"consecutive_passes": 3})), encoding="utf-8")
    markdown = backtest(
        date_from=date(2026, 1, 1),
        date_to=date(2026, 1, 4),
        compare=str(slow),
        configs=str(configs),
        metrics=str(tmp_path / "m.csv"),
    )
    # passes on days 2 and 3 advance aa on 01-03 under the playbook; the slow policy needs day 4 as well
    assert "## Brands whose decisions differ (1)" in markdown and "| aa | 2026-01-03 |" in markdown

    async def latest() -> str:
        async with get_client() as client:  # a plain filter request, as tests/test_flows.py does
            body = {
                "offset": 0,
                "limit": 1,
                "artifacts": {"key": {"any_": ["backtest-report"]}},
                "sort": "CREATED_DESC",
            }
            response = await client._client.post("/artifacts/filter", json=body)
            response.raise_for_status()
            return str(response.json()[0]["data"])

    assert "| aa | 2026-01-03 |" in asyncio.run(latest())
