"""Which events a cycle announces: moves, new approval waits, brands that just became overdue."""

from __future__ import annotations

import pandas as pd
import pytest

from brandsteps.config import load_portfolio
from brandsteps.engine.events import (
    EVENT_NAMES,
    brand_events,
    imported_payload,
    max_days_by_brand,
    newly_awaiting,
    newly_overdue,
)
from tests.conftest import simple_playbook, write_configs

AS_OF = pd.Timestamp("2026-01-10")


def decision(
    brand_id: str,
    action: str = "hold",
    *,
    overdue: bool = False,
    days: int = 5,
    awaiting_since: str | None = None,
    stage: str = "affiliate_trial",
) -> dict:
    to_stage = {
        "advance": "public_traffic",
        "graduate": "graduated",
        "exit": "exited",
        "demote": "affiliate_trial",
    }.get(action, stage)
    return {
        "brand_id": brand_id,
        "as_of": AS_OF,
        "stage": stage,
        "to_stage": to_stage,
        "verdict": "PASS",
        "action": action,
        "score": 1.0,
        "reason": "r",
        "action_reason": "a",
        "overdue": overdue,
        "days_in_stage": days,
        "pass_streak": 0,
        "policy_version": "v1",
        "awaiting_since": awaiting_since,
        "stage_entered_on": AS_OF - pd.Timedelta(days=days - 1),
    }


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        pytest.param(decision("a", "advance"), ["brandsteps.brand.advanced"], id="advance"),
        pytest.param(decision("a", "demote"), ["brandsteps.brand.demoted"], id="demote"),
        pytest.param(decision("a", "recycle"), ["brandsteps.brand.recycled"], id="recycle"),
        pytest.param(decision("a", "exit"), ["brandsteps.brand.exited"], id="exit"),
        pytest.param(decision("a", "graduate"), ["brandsteps.brand.graduated"], id="graduate"),
        # the wait began today: news
        pytest.param(
            decision("a", "await_approval", awaiting_since="2026-01-10"),
            ["brandsteps.brand.awaiting-approval"],
            id="wait-begins-today",
        ),
        # still waiting since an earlier day: announced then, not again
        pytest.param(decision("a", "await_approval", awaiting_since="2026-01-08"), [], id="still-waiting"),
        # an ordinary hold is the normal day
        pytest.param(decision("a", "hold"), [], id="hold"),
        # day 11 of a 10-day limit, previous decision yesterday at day 10: just became overdue
        pytest.param(decision("a", "hold", overdue=True, days=11), ["brandsteps.brand.overdue"], id="just-overdue"),
        # day 12: it was overdue yesterday already (day 11 > 10)
        pytest.param(decision("a", "hold", overdue=True, days=12), [], id="overdue-already"),
    ],
)
def test_events_per_decision(row: dict, expected: list[str]) -> None:
    decisions = pd.DataFrame([row])
    last = pd.Series({"a": AS_OF - pd.Timedelta(days=1)})
    events = brand_events(decisions, pd.Series({"a": "品牌 A"}), last, pd.Series({"a": 10.0}))
    assert [e.event for e in events] == expected
    for e in events:
        assert e.event in EVENT_NAMES
        assert e.resource == {"prefect.resource.id": "brandsteps.brand.a", "prefect.resource.name": "品牌 A"}
        assert (
            e.payload["brand_id"] == "a" and e.payload["as_of"] == "2026-01-10" and e.payload["action"] == row["action"]
        )


def test_only_written_brands_are_announced() -> None:
    # a rerun writes nothing, so nothing is announced twice
    decisions = pd.DataFrame([decision("a", "advance"), decision("b", "advance")])
    last = pd.Series({"a": AS_OF, "b": AS_OF})
    events = brand_events(decisions, pd.Series(dtype=object), last, pd.Series({"a": 10.0, "b": 10.0}), written={"b"})
    assert [e.payload["brand_id"] for e in events] == ["b"]
    assert brand_events(decisions, pd.Series(dtype=object), last, pd.Series(dtype=float), written=set()) == []


@pytest.mark.parametrize(
    ("days", "gap_days", "limit", "expected"),
    [
        pytest.param(11, 1, 10.0, True, id="crossed-today"),  # 10 days yesterday, 11 today: crossed now
        # last decided 3 days ago at day 10: crossed during the gap, first decision past it
        pytest.param(13, 3, 10.0, True, id="crossed-during-a-gap"),
        pytest.param(13, 2, 10.0, False, id="past-already"),  # last decided at day 11, already past
        # never decided before: its first overdue decision is news
        pytest.param(11, None, 10.0, True, id="first-decision-overdue"),
    ],
)
def test_newly_overdue(days: int, gap_days: int | None, limit: float, expected: bool) -> None:
    decisions = pd.DataFrame([decision("a", "hold", overdue=True, days=days)])
    last = pd.Series({"a": AS_OF - pd.Timedelta(days=gap_days)} if gap_days else {"a": pd.NaT})
    assert bool(newly_overdue(decisions, last, pd.Series({"a": limit})).iloc[0]) is expected


def test_newly_awaiting_compares_the_day() -> None:
    frame = pd.DataFrame(
        [
            decision("a", "await_approval", awaiting_since="2026-01-10"),
            decision("b", "await_approval", awaiting_since="2026-01-09"),
        ]
    )
    assert newly_awaiting(frame).tolist() == [True, False]


def test_max_days_follow_brand_overrides(tmp_path) -> None:
    configs = write_configs(
        tmp_path,
        {"plain": {}, "custom": {"gates": {"affiliate_trial": {"max_days_in_stage": 30}}}},
        playbook=simple_playbook(),
    )
    portfolio = load_portfolio(configs)
    stages = pd.Series({"plain": "affiliate_trial", "custom": "affiliate_trial"})
    # the playbook says 10 (simple_playbook); the custom brand's override says 30
    assert max_days_by_brand(portfolio, stages).to_dict() == {"plain": 10.0, "custom": 30.0}


def _rows(*brand_days: tuple[str, str]) -> pd.DataFrame:
    brands, days = [b for b, _ in brand_days], [d for _, d in brand_days]
    return pd.DataFrame({"brand_id": brands, "date": pd.to_datetime(days), "gmv": 1.0})


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param(
            [("b.csv", _rows(("b", "2026-01-02"), ("b", "2026-01-01"))), ("a.csv", _rows(("a", "2026-01-02")))],
            {"brands": ["a", "b"], "days": ["2026-01-01", "2026-01-02"], "files": ["b.csv", "a.csv"]},
            id="brands-and-days-sorted-files-in-order",  # the union of what the files changed, each once
        ),
        pytest.param(
            [("empty.csv", _rows()), ("a.csv", _rows(("a", "2026-01-02")))],
            {"brands": ["a"], "days": ["2026-01-02"], "files": ["a.csv"]},
            id="a-file-without-rows-is-not-named",
        ),
        pytest.param([("empty.csv", _rows())], None, id="nothing-changed-nothing-announced"),  # no cycle to start
    ],
)
def test_imported_payload(files: list[tuple[str, pd.DataFrame]], expected: dict[str, list[str]] | None) -> None:
    assert imported_payload(files) == expected
