"""Gate engine: every verdict and action path, table-driven, with why each expectation holds."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from brandsteps.catalogue import GUARD_COLUMNS, METRICS, STAGE_IDS
from brandsteps.config import load_portfolio
from brandsteps.engine.criteria import evaluate_criteria, metric_table
from brandsteps.engine.evidence import fmt
from brandsteps.engine.gates import decide_stage
from tests.conftest import simple_playbook, write_configs

AS_OF = date(2026, 3, 10)


def metrics_frame(brand_id: str = "b", **values: float) -> pd.DataFrame:
    """A one-brand window frame with every metric missing unless given, and enough sample."""
    row = {m: np.nan for m in METRICS}
    row.update({"days_with_data": 3.0, "sum_orders": 1000.0})
    row.update(values)
    return pd.DataFrame([row], index=pd.Index([brand_id], name="brand_id"))


def cohort_frame(brand_id: str = "b", **fields: object) -> pd.DataFrame:
    row: dict[str, object] = {
        "tier": "small",
        "paused": False,
        "awaiting": False,
        "awaiting_since": None,
        "days_in_stage": 5,
        "pass_streak": 0,
        "stage_entered_on": pd.Timestamp("2026-03-06"),
        "data_error": "",
        "policy_version": "v1",
        **{c: 0 for c in GUARD_COLUMNS},
    }
    row.update(fields)
    return pd.DataFrame([row], index=pd.Index([brand_id], name="brand_id"))


def portfolio(tmp_path: Path, playbook: dict | None = None, brand: dict | None = None):
    write_configs(tmp_path, {"b": brand or {}}, playbook=playbook or simple_playbook())
    return load_portfolio(tmp_path / "configs", apply_env=False)


def decide(
    tmp_path: Path,
    stage: str,
    metrics: dict,
    cohort: dict | None = None,
    playbook: dict | None = None,
    brand: dict | None = None,
) -> dict:
    p = portfolio(tmp_path, playbook, brand)
    out = decide_stage(p, stage, cohort_frame(**(cohort or {})), metrics_frame(**metrics), AS_OF)
    return out.iloc[0].to_dict()


# (stage, metrics, cohort fields, playbook changes, brand config, expected verdict, action, to_stage, reason)
CASES = [
    # gmv 500 >= 300 is the only must; first pass of the 2 needed: hold with streak 1.
    pytest.param(
        "affiliate_trial",
        {"gmv": 500},
        {},
        {},
        {},
        "PASS",
        "hold",
        "affiliate_trial",
        "all must criteria pass; score 1 >= pass_score 1",
        id="first-pass-holds",
    ),
    # the second pass in a row meets consecutive_passes 2: advance to the next stage.
    pytest.param(
        "affiliate_trial",
        {"gmv": 500},
        {"pass_streak": 1},
        {},
        {},
        "PASS",
        "advance",
        "public_traffic",
        "all must criteria pass; score 1 >= pass_score 1",
        id="second-pass-advances",
    ),
    # gmv 100 < 300 fails the must; on_fail defaults to hold.
    pytest.param(
        "public_traffic",
        {"gmv": 100},
        {"pass_streak": 1},
        {},
        {},
        "FAIL",
        "hold",
        "public_traffic",
        "gmv ¥100.00 < ¥300.00",
        id="must-fails-holds",
    ),
    pytest.param(
        "affiliate_trial",
        {"gmv": 100},
        {},
        {"affiliate_trial": {"on_fail": "recycle"}},
        {},
        "FAIL",
        "recycle",
        "affiliate_trial",
        "gmv ¥100.00 < ¥300.00",
        id="fail-recycles",
    ),
    pytest.param(
        "affiliate_trial",
        {"gmv": 100},
        {},
        {"affiliate_trial": {"on_fail": "exit"}},
        {},
        "FAIL",
        "exit",
        "exited",
        "gmv ¥100.00 < ¥300.00",
        id="fail-exits",
    ),
    pytest.param(
        "public_traffic",
        {"gmv": 100},
        {},
        {"public_traffic": {"on_fail": "demote"}},
        {},
        "FAIL",
        "demote",
        "affiliate_trial",
        "gmv ¥100.00 < ¥300.00",
        id="fail-demotes",
    ),
    # day 1 of a stage needing 2 days: too early to judge, whatever the numbers say.
    pytest.param(
        "affiliate_trial",
        {"gmv": 500},
        {"days_in_stage": 1},
        {},
        {},
        "INCONCLUSIVE",
        "hold",
        "affiliate_trial",
        "1 days in stage < min_days_in_stage 2",
        id="too-early",
    ),
    # gmv not measured is missing, never 0, so no FAIL.
    pytest.param(
        "affiliate_trial", {}, {}, {}, {}, "INCONCLUSIVE", "hold", "affiliate_trial", "no value: gmv", id="no-value"
    ),
    # 150 orders in the window is below min_sample 200.
    pytest.param(
        "affiliate_trial",
        {"gmv": 500, "sum_orders": 150},
        {},
        {"affiliate_trial": {"min_sample": {"orders": 200}}},
        {},
        "INCONCLUSIVE",
        "hold",
        "affiliate_trial",
        "min_sample orders 150 < 200",
        id="sample-short",
    ),
    # quarantined rows in the window: ERROR, and ERROR never moves a brand even with a 2nd pass due.
    pytest.param(
        "affiliate_trial",
        {"gmv": 500},
        {"data_error": "row 3: orders negative", "pass_streak": 1},
        {},
        {},
        "ERROR",
        "hold",
        "affiliate_trial",
        "data failed validation: row 3: orders negative",
        id="data-error",
    ),
    pytest.param(
        "affiliate_trial",
        {"gmv": 500},
        {"pass_streak": 1},
        {"affiliate_trial": {"requires_approval": True}},
        {},
        "PASS",
        "await_approval",
        "affiliate_trial",
        "all must criteria pass; score 1 >= pass_score 1",
        id="approval-needed",
    ),
    pytest.param(
        "affiliate_trial",
        {"gmv": 500},
        {"pass_streak": 1},
        {},
        {"requires_approval": ["affiliate_trial"]},
        "PASS",
        "await_approval",
        "affiliate_trial",
        "all must criteria pass; score 1 >= pass_score 1",
        id="brand-approval-list",
    ),
    # still waiting: a FAIL does not cancel the request, a person decides.
    pytest.param(
        "affiliate_trial",
        {"gmv": 100},
        {"awaiting": True, "awaiting_since": "2026-03-08"},
        {},
        {},
        "FAIL",
        "await_approval",
        "affiliate_trial",
        "gmv ¥100.00 < ¥300.00",
        id="still-awaiting",
    ),
    pytest.param(
        "channel_exclusive",
        {"gmv": 500},
        {"pass_streak": 1},
        {},
        {},
        "PASS",
        "graduate",
        "graduated",
        "all must criteria pass; score 1 >= pass_score 1",
        id="last-stage-graduates",
    ),
    pytest.param(
        "affiliate_trial",
        {"gmv": 500},
        {"paused": True, "pass_streak": 1},
        {},
        {},
        "PASS",
        "hold",
        "affiliate_trial",
        "all must criteria pass; score 1 >= pass_score 1",
        id="paused-holds",
    ),
    # tier thresholds: a mid brand needs 600, so 500 fails.
    pytest.param(
        "affiliate_trial",
        {"gmv": 500},
        {"tier": "mid"},
        {
            "affiliate_trial": {
                "criteria": [{"metric": "gmv", "op": ">=", "threshold": {"small": 300, "mid": 600, "large": 900}}]
            }
        },
        {},
        "FAIL",
        "hold",
        "affiliate_trial",
        "gmv ¥500.00 < ¥600.00",
        id="tier-threshold",
    ),
    # the brand's override replaces the gmv criterion by metric name: 500 >= 400 passes.
    pytest.param(
        "affiliate_trial",
        {"gmv": 500},
        {"tier": "mid"},
        {
            "affiliate_trial": {
                "criteria": [{"metric": "gmv", "op": ">=", "threshold": {"small": 300, "mid": 600, "large": 900}}]
            }
        },
        {"tier": "mid", "gates": {"affiliate_trial": {"criteria": [{"metric": "gmv", "op": ">=", "threshold": 400}]}}},
        "PASS",
        "hold",
        "affiliate_trial",
        "all must criteria pass; score 1 >= pass_score 1",
        id="brand-override",
    ),
]


@pytest.mark.parametrize(
    ("stage", "metrics", "cohort", "changes", "brand", "verdict", "action", "to_stage", "reason"), CASES
)
def test_verdict_and_action(
    tmp_path: Path,
    stage: str,
    metrics: dict,
    cohort: dict,
    changes: dict,
    brand: dict,
    verdict: str,
    action: str,
    to_stage: str,
    reason: str,
) -> None:
    d = decide(tmp_path, stage, metrics, cohort, simple_playbook(**changes), brand)
    assert (d["verdict"], d["action"], d["to_stage"], d["reason"]) == (verdict, action, to_stage, reason)


@pytest.mark.parametrize(
    ("passing", "verdict", "score"),
    [
        # weights 2 (gpm) and 1 (aov): gpm alone passes 2/3 = 0.667 >= pass_score 0.6
        pytest.param(["gpm"], "PASS", 2 / 3, id="heavier-passes"),
        # aov alone passes 1/3 = 0.333 < 0.6
        pytest.param(["aov"], "FAIL", 1 / 3, id="lighter-short"),
        pytest.param(["gpm", "aov"], "PASS", 1.0, id="both-pass"),  # 3/3
    ],
)
def test_should_criteria_are_scored_by_weight(tmp_path: Path, passing: list[str], verdict: str, score: float) -> None:
    stage = {
        "criteria": [
            {"metric": "gmv", "op": ">=", "threshold": 300},
            {"metric": "gpm", "op": ">=", "threshold": 100, "kind": "should", "weight": 2},
            {"metric": "aov", "op": ">=", "threshold": 50, "kind": "should"},
        ],
        "pass_score": 0.6,
    }
    values = {"gmv": 500, "gpm": 150 if "gpm" in passing else 50, "aov": 60 if "aov" in passing else 10}
    d = decide(tmp_path, "affiliate_trial", values, {}, simple_playbook(affiliate_trial=stage))
    assert d["verdict"] == verdict
    assert d["score"] == pytest.approx(score)


def test_pass_streak_and_clock_after_moves(tmp_path: Path) -> None:
    d = decide(tmp_path, "affiliate_trial", {"gmv": 500}, {"pass_streak": 1})
    # advancing restarts everything for the new stage, which starts the next day
    assert (d["pass_streak"], pd.Timestamp(d["stage_entered_on"])) == (0, pd.Timestamp("2026-03-11"))
    d = decide(tmp_path, "affiliate_trial", {"gmv": 100}, {"pass_streak": 1})
    assert (d["pass_streak"], pd.Timestamp(d["stage_entered_on"])) == (
        0,
        pd.Timestamp("2026-03-06"),
    )  # FAIL resets, clock runs on
    d = decide(tmp_path, "affiliate_trial", {}, {"pass_streak": 1})
    assert d["pass_streak"] == 1  # INCONCLUSIVE neither counts nor resets


GUARDED = {"public_traffic": {"guardrails": [{"metric": "refund_rate", "op": "<=", "threshold": 0.5}]}}


@pytest.mark.parametrize(
    ("refund", "streak_before", "action", "to_stage", "streak_after"),
    [
        # second failure in a row reaches public_traffic's consecutive_passes (2): demote to it, streaks reset
        pytest.param(0.7, 1, "demote", "public_traffic", 0, id="second-failure-demotes"),
        # a first failure only counts
        pytest.param(0.7, 0, "hold", "self_broadcast", 1, id="first-failure-counts"),
        # a pass resets the count
        pytest.param(0.2, 1, "hold", "self_broadcast", 0, id="pass-resets"),
        # no value: the count stands still
        pytest.param(np.nan, 1, "hold", "self_broadcast", 1, id="no-value-stands"),
    ],
)
def test_guardrails_demote_after_consecutive_failures(
    tmp_path: Path, refund: float, streak_before: int, action: str, to_stage: str, streak_after: int
) -> None:
    d = decide(
        tmp_path,
        "self_broadcast",
        {"gmv": 100, "refund_rate": refund},
        {"g_public_traffic": streak_before},
        simple_playbook(**GUARDED),
    )
    assert (d["action"], d["to_stage"], d["g_public_traffic"]) == (action, to_stage, streak_after)
    if action == "demote":
        assert "refund_rate 70% > 50%" in d["action_reason"]


@pytest.mark.parametrize(
    ("stage", "metrics", "cohort", "changes", "action", "action_reason"),
    [
        # the verdict is PASS, but the brand holds because it is paused: that is the why, not "all must criteria pass"
        pytest.param(
            "affiliate_trial",
            {"gmv": 500},
            {"paused": True, "pass_streak": 1},
            {},
            "hold",
            "brand is paused",
            id="paused",
        ),
        # a wait that began earlier says since when (the state's date), whatever today's verdict
        pytest.param(
            "affiliate_trial",
            {"gmv": 100},
            {"awaiting": True, "awaiting_since": "2026-03-08"},
            {},
            "await_approval",
            "awaiting approval to advance to public_traffic since 2026-03-08",
            id="still-awaiting",
        ),
        # a wait that begins today says so, with today's date
        pytest.param(
            "affiliate_trial",
            {"gmv": 500},
            {"pass_streak": 1},
            {"affiliate_trial": {"requires_approval": True}},
            "await_approval",
            "PASS 2 of 2 in a row; advancing to public_traffic needs approval, awaiting it since 2026-03-10",
            id="begins-waiting",
        ),
        # the guardrail's reason, its value formatted as the share it is
        pytest.param(
            "self_broadcast",
            {"gmv": 500, "refund_rate": 0.7},
            {"g_public_traffic": 1},
            GUARDED,
            "demote",
            "guardrail public_traffic failed 2 evaluations in a row (refund_rate 70% > 50%)",
            id="guardrail-demotes",
        ),
        # on_fail actions quote the failing criterion, money as money
        pytest.param(
            "affiliate_trial",
            {"gmv": 100},
            {},
            {"affiliate_trial": {"on_fail": "recycle"}},
            "recycle",
            "on_fail recycle: restart the affiliate_trial clock (gmv ¥100.00 < ¥300.00)",
            id="recycle",
        ),
        pytest.param(
            "public_traffic",
            {"gmv": 100},
            {},
            {"public_traffic": {"on_fail": "demote"}},
            "demote",
            "on_fail demote: back to affiliate_trial (gmv ¥100.00 < ¥300.00)",
            id="on-fail-demote",
        ),
        pytest.param(
            "affiliate_trial",
            {"gmv": 100},
            {},
            {"affiliate_trial": {"on_fail": "exit"}},
            "exit",
            "on_fail exit: leave the programme (gmv ¥100.00 < ¥300.00)",
            id="exit",
        ),
        pytest.param(
            "affiliate_trial", {"gmv": 100}, {}, {}, "hold", "on_fail hold (gmv ¥100.00 < ¥300.00)", id="on-fail-hold"
        ),
        # no move on INCONCLUSIVE, and why it is inconclusive
        pytest.param(
            "affiliate_trial",
            {"gmv": 500},
            {"days_in_stage": 1},
            {},
            "hold",
            "no move on INCONCLUSIVE (1 days in stage < min_days_in_stage 2)",
            id="too-early",
        ),
        pytest.param("affiliate_trial", {"gmv": 500}, {}, {}, "hold", "PASS 1 of 2 in a row needed", id="first-pass"),
    ],
)
def test_action_reasons_say_why_the_action(
    tmp_path: Path, stage: str, metrics: dict, cohort: dict, changes: dict, action: str, action_reason: str
) -> None:
    d = decide(tmp_path, stage, metrics, cohort, simple_playbook(**changes))
    assert (d["action"], d["action_reason"]) == (action, action_reason)


def test_graduated_brands_keep_their_guardrails(tmp_path: Path) -> None:
    d = decide(tmp_path, "graduated", {"refund_rate": 0.7}, {"g_public_traffic": 1}, simple_playbook(**GUARDED))
    # a graduated brand is judged by every stage's guardrails; the 2nd failure demotes it
    assert (d["verdict"], d["action"], d["to_stage"]) == ("FAIL", "demote", "public_traffic")


@pytest.mark.parametrize(
    ("days", "overdue"),
    [pytest.param(10, False, id="day-10-in-time"), pytest.param(11, True, id="day-11-overdue")],
)
def test_overdue_past_max_days(tmp_path: Path, days: int, overdue: bool) -> None:
    # max_days_in_stage is 10 in the simple playbook: day 11 is past it
    d = decide(tmp_path, "affiliate_trial", {"gmv": 100}, {"days_in_stage": days})
    assert bool(d["overdue"]) is overdue


def test_shadow_criteria_are_recorded_but_never_decide(tmp_path: Path) -> None:
    stage = {
        "criteria": [
            {"metric": "gmv", "op": ">=", "threshold": 300},
            {"metric": "aov", "op": ">=", "threshold": 999, "shadow": True},
        ]
    }
    d = decide(tmp_path, "affiliate_trial", {"gmv": 500, "aov": 10}, {}, simple_playbook(affiliate_trial=stage))
    assert d["verdict"] == "PASS"
    assert '"result":"fail"' in d["criteria"] and "shadow aov ¥10.00 < ¥999.00" in d["criteria"]


@pytest.mark.parametrize(
    ("op", "value", "result", "reason"),
    [
        pytest.param(">=", 0.3, "pass", "refund_rate 30% >= 30%", id="equal-passes-ge"),
        pytest.param(">", 0.3, "fail", "refund_rate 30% <= 30%", id="equal-fails-gt"),  # the relation that held
        pytest.param("<=", 0.41, "fail", "refund_rate 41% > 30%", id="le-fails"),
        pytest.param("<", 0.2, "pass", "refund_rate 20% < 30%", id="lt-passes"),
        pytest.param("<=", np.nan, "no_value", "refund_rate has no value", id="no-value"),
    ],
)
def test_criterion_reasons(op: str, value: float, result: str, reason: str) -> None:
    criteria = pd.DataFrame(
        [
            {
                "brand_id": "b",
                "role": "criterion",
                "source_stage": "x",
                "metric": "refund_rate",
                "op": op,
                "threshold": 0.3,
                "kind": "must",
                "weight": 1.0,
                "shadow": False,
            }
        ]
    )
    out = evaluate_criteria(criteria, metrics_frame(refund_rate=value)).iloc[0]
    assert (out["result"], out["reason"]) == (result, reason)


def test_fmt_is_readable() -> None:
    assert list(fmt(np.array([0.123456, 472278.3, np.nan, 12]))) == ["0.1235", "472,278", "n/a", "12"]


def test_all_stages_decide_many_brands_at_once(tmp_path: Path) -> None:
    p = portfolio(tmp_path)
    n = 1000
    ids = pd.Index([f"b{i}" for i in range(n)], name="brand_id")
    cohort = pd.concat([cohort_frame()] * n).set_axis(ids)
    metrics = pd.concat([metrics_frame()] * n).set_axis(ids)
    metrics["gmv"] = np.where(np.arange(n) % 2 == 0, 500.0, 100.0)
    for stage in STAGE_IDS:
        out = decide_stage(p, stage, cohort, metrics, AS_OF)
        # even brands pass, odd fail: exactly half each, one decision per brand
        assert out["verdict"].value_counts().to_dict() == {"PASS": 500, "FAIL": 500}
        assert out["brand_id"].is_unique and len(out) == n


@pytest.mark.parametrize(
    ("stage", "guardrail", "brand", "expected"),
    [
        pytest.param("affiliate_trial", False, {}, True, id="own-criterion"),  # the stage's own should criterion
        # not read there: the window skips its day-by-day grid
        pytest.param("public_traffic", False, {}, False, id="not-read"),
        # the brand's own override reads it
        pytest.param(
            "public_traffic",
            False,
            {"gates": {"public_traffic": {"criteria": [{"metric": "burst_coefficient", "op": "<=", "threshold": 3}]}}},
            True,
            id="brand-override",
        ),
        # an affiliate guardrail watches every later stage
        pytest.param("self_broadcast", True, {}, True, id="guardrail-later-stage"),
        pytest.param("graduated", True, {}, True, id="guardrail-graduated"),  # and graduated brands
        pytest.param("graduated", False, {}, False, id="graduated-no-guardrail"),
    ],
)
def test_uses_metric(tmp_path: Path, stage: str, guardrail: bool, brand: dict, expected: bool) -> None:
    from brandsteps.engine.rules import uses_metric

    burst = {"metric": "burst_coefficient", "op": ">=", "threshold": 1.5, "kind": "should"}
    affiliate = {
        "criteria": [{"metric": "gmv", "op": ">=", "threshold": 300}, burst],
        "guardrails": [burst] if guardrail else [],
    }
    p = portfolio(tmp_path, simple_playbook(affiliate_trial=affiliate), brand)
    assert uses_metric(p, pd.Index(["b"]), np.array([stage], dtype=object), "burst_coefficient").tolist() == [expected]


def test_metric_table_reads_the_named_columns_at_each_brands_row() -> None:
    metrics = pd.DataFrame({"gmv": [1.0, 2.0, 3.0], "aov": [10.0, 20.0, 30.0]}, index=pd.Index(["b0", "b1", "b2"]))
    table = metric_table(metrics, np.array([2, -1, 0]), ["aov", "not_a_column", "gmv"])
    # rows 2 and 0 as asked; row -1 (a brand without metrics) and a column metrics lacks are missing
    expected = [[30.0, None, 3.0], [None, None, None], [10.0, None, 1.0]]
    assert [[None if np.isnan(v) else v for v in row] for row in table.tolist()] == expected
