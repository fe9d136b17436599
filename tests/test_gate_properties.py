"""Property-based tests (hypothesis) of the gate engine and the cycle around it."""

from __future__ import annotations

import tempfile
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from brandsteps.catalogue import GUARD_COLUMNS, METRICS, MOVING_ACTIONS
from brandsteps.config import load_portfolio
from brandsteps.engine.cycle import run_day
from brandsteps.engine.gates import decide_stage
from brandsteps.ledger import Ledger, metadata
from brandsteps.sources.metrics_source import validate
from tests.conftest import simple_playbook, write_configs

AS_OF = date(2026, 3, 10)
SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# public_traffic: a must on gmv, weighted shoulds (one of them a <=), a minimum sample, and a
# guardrail inherited from affiliate_trial, so every verdict rule and the guardrail can fire.
STAGES = {
    "affiliate_trial": {
        "guardrails": [{"metric": "refund_rate", "op": "<=", "threshold": 0.5}],
        "consecutive_passes": 2,
    },
    "public_traffic": {
        "criteria": [
            {"metric": "gmv", "op": ">=", "threshold": 300, "kind": "must"},
            {"metric": "click_through_rate", "op": ">=", "threshold": 0.04, "kind": "should", "weight": 2},
            {"metric": "refund_rate", "op": "<=", "threshold": 0.3, "kind": "should"},
            {"metric": "paid_roi", "op": ">=", "threshold": 1.5, "kind": "should"},
        ],
        "pass_score": 0.5,
        "min_sample": {"orders": 100},
    },
}
GE_METRICS = ["gmv", "click_through_rate", "paid_roi"]  # the >= criteria


def _portfolio(brands: int):
    root = Path(tempfile.mkdtemp(prefix="props-"))
    write_configs(root, {f"b{i:03d}": {} for i in range(brands)}, playbook=simple_playbook(**STAGES))
    return load_portfolio(root / "configs", apply_env=False)


PORTFOLIO = _portfolio(1)
value = st.one_of(st.none(), st.floats(min_value=0, max_value=1e6, allow_nan=False))
share = st.one_of(st.none(), st.floats(min_value=0, max_value=1, allow_nan=False))
brand_case = st.fixed_dictionaries(
    {
        "gmv": value,
        "click_through_rate": share,
        "refund_rate": share,
        "paid_roi": st.one_of(st.none(), st.floats(0, 20)),
        "sum_orders": st.one_of(st.none(), st.floats(0, 500)),
        "days_in_stage": st.integers(1, 20),
        "pass_streak": st.integers(0, 3),
        "awaiting": st.booleans(),
        "paused": st.booleans(),
        "data_error": st.sampled_from(["", "", "", "row 3 (2026-03-09): orders: negative value -3"]),
        "g_affiliate_trial": st.integers(0, 3),
    }
)


def frames(cases: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One cohort row and one window-metrics row per generated brand (None = not measured)."""
    ids = pd.Index([f"b{i:03d}" for i in range(len(cases))], name="brand_id")
    metrics = pd.DataFrame({m: np.nan for m in METRICS}, index=ids)
    for col in ("gmv", "click_through_rate", "refund_rate", "paid_roi", "sum_orders"):
        metrics[col] = [np.nan if c[col] is None else c[col] for c in cases]
    metrics["days_with_data"] = 3.0
    cohort = pd.DataFrame(
        {
            "tier": "small",
            "paused": [c["paused"] for c in cases],
            "awaiting": [c["awaiting"] for c in cases],
            "awaiting_since": ["2026-03-01" if c["awaiting"] else None for c in cases],
            "days_in_stage": [c["days_in_stage"] for c in cases],
            "pass_streak": [c["pass_streak"] for c in cases],
            "stage_entered_on": [pd.Timestamp(AS_OF) - pd.Timedelta(days=c["days_in_stage"] - 1) for c in cases],
            "data_error": [c["data_error"] for c in cases],
            "policy_version": "v1",
            **{g: 0 for g in GUARD_COLUMNS},
        },
        index=ids,
    )
    cohort["g_affiliate_trial"] = [c["g_affiliate_trial"] for c in cases]
    return cohort, metrics


def decide(cohort: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    out = decide_stage(PORTFOLIO, "public_traffic", cohort, metrics, AS_OF).set_index("brand_id")
    # "missing" is None or NaN depending on the batch's dtype (object vs string): one value, compared as None
    return out.astype(object).where(out.notna(), None)


@SETTINGS
@given(st.lists(brand_case, min_size=1, max_size=30), st.sampled_from(GE_METRICS), st.floats(0, 1e6), st.data())
def test_raising_a_ge_metric_never_turns_pass_into_fail(cases, metric, raise_by, data) -> None:
    cohort, metrics = frames(cases)
    before = decide(cohort, metrics)
    higher = metrics.copy()
    higher[metric] = higher[metric] + raise_by
    if metric == "click_through_rate":
        higher[metric] = higher[metric].clip(upper=1.0)  # a share cannot pass 1; clipping still never lowers it
    after = decide(cohort, higher)
    was_pass = before["verdict"] == "PASS"
    assert (after.loc[was_pass, "verdict"] == "PASS").all()
    # and a FAIL may only turn into PASS, never into something else: raising a value adds no missing data
    was_fail = before["verdict"] == "FAIL"
    assert after.loc[was_fail, "verdict"].isin(["FAIL", "PASS"]).all()


@SETTINGS
@given(st.lists(brand_case, min_size=1, max_size=30))
def test_inconclusive_and_error_never_move_a_brand(cases) -> None:
    cohort, metrics = frames(cases)
    out = decide(cohort, metrics)
    error = out[out["verdict"] == "ERROR"]
    # ERROR: the brand's data is untrusted, so nothing about it moves (no guardrail either)
    assert (error["to_stage"] == "public_traffic").all() and not error["action"].isin(list(MOVING_ACTIONS)).any()
    assert (error["pass_streak"] == cohort.loc[error.index, "pass_streak"]).all()  # the streak stands still
    inconclusive = out[out["verdict"] == "INCONCLUSIVE"]
    # INCONCLUSIVE: no move at all (docs/design.md#action-rules); a tripped guardrail makes the verdict FAIL instead
    assert not inconclusive["action"].isin(list(MOVING_ACTIONS)).any()
    assert (inconclusive["to_stage"] == "public_traffic").all()
    assert (inconclusive["pass_streak"] == cohort.loc[inconclusive.index, "pass_streak"]).all()
    tripped = out[out["action_reason"].str.startswith("guardrail affiliate_trial failed")]
    assert (tripped["verdict"] == "FAIL").all() and (tripped["action"] == "demote").all()


@SETTINGS
@given(st.lists(brand_case, min_size=2, max_size=30), st.randoms(use_true_random=False))
def test_decision_is_a_pure_function_of_its_inputs(cases, rnd) -> None:
    cohort, metrics = frames(cases)
    first = decide(cohort, metrics)
    again = decide(cohort.copy(), metrics.copy())
    pd.testing.assert_frame_equal(first, again)
    # the order brands arrive in, and other brands in the cohort, change nothing about a brand
    order = list(cohort.index)
    rnd.shuffle(order)
    shuffled = decide(cohort.loc[order], metrics.loc[order[::-1]])
    # dtypes of all-None columns follow the batch (object vs string); the values must be identical
    pd.testing.assert_frame_equal(first, shuffled.loc[first.index], check_dtype=False)
    alone = decide(cohort.iloc[:1], metrics.iloc[:1])
    pd.testing.assert_frame_equal(first.iloc[:1], alone, check_dtype=False)


CYCLE_PORTFOLIO = _portfolio(6)
daily = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 11), st.floats(0, 400), st.floats(0, 30)), min_size=1, max_size=60
)


def _ledger() -> Ledger:
    ledger = Ledger(f"sqlite:///{tempfile.mkdtemp(prefix='props-ledger-')}/l.sqlite")
    ledger.create()
    return ledger


def _dump(ledger: Ledger) -> dict:
    with ledger.engine.connect() as conn:
        return {t.name: sorted(map(repr, conn.execute(sa.select(t)).all())) for t in metadata.sorted_tables}


def _history(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["b", "d", "gmv", "orders"]).drop_duplicates(["b", "d"])
    return pd.DataFrame(
        {
            "brand_id": "b" + frame["b"].map("{:03d}".format),
            "date": pd.Timestamp("2026-01-01") + pd.to_timedelta(frame["d"], unit="D"),
            "gmv": frame["gmv"],
            "orders": frame["orders"],
        }
    )


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@pytest.mark.slow
@given(daily, daily, st.integers(2, 5))
def test_cycles_see_nothing_after_as_of_and_reruns_change_nothing(rows, later_rows, last_day) -> None:
    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(last_day)]
    history = _history(rows)
    future = _history(later_rows)
    future["date"] = future["date"] + pd.Timedelta(days=20)  # all after the last as_of, before "today"
    today = date(2026, 2, 28)
    plain, noisy = _ledger(), _ledger()
    batch_plain = validate(history, as_of=days[-1], today=today)
    batch_noisy = validate(
        pd.concat([history, future], ignore_index=True), as_of=max(days[-1], date(2026, 2, 20)), today=today
    )
    for day in days:
        run_day(CYCLE_PORTFOLIO, batch_plain, plain, day, None)
        run_day(CYCLE_PORTFOLIO, batch_noisy, noisy, day, None)
    # metrics dated after as_of do not exist for a cycle: both ledgers hold the same decisions
    strip = lambda led: {k: [r for r in v] for k, v in _dump(led).items() if k == "brand_state"}  # noqa: E731
    assert len(strip(plain)["brand_state"]) == len(strip(noisy)["brand_state"])
    a = (
        plain.decisions_for(days[-1])
        .drop(columns=["id", "cycle_id", "decided_at"])
        .sort_values("brand_id")
        .reset_index(drop=True)
    )
    b = (
        noisy.decisions_for(days[-1])
        .drop(columns=["id", "cycle_id", "decided_at"])
        .sort_values("brand_id")
        .reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(a, b)
    # rerunning every day again changes nothing at all (idempotent), not even the order of history
    before = {k: v for k, v in _dump(plain).items() if k != "cycles"}
    for day in days:
        again = run_day(CYCLE_PORTFOLIO, batch_plain, plain, day, None)
        assert again.decided == 0
    assert {k: v for k, v in _dump(plain).items() if k != "cycles"} == before
    plain.dispose()
    noisy.dispose()


@pytest.mark.parametrize(("metric", "op"), [pytest.param("refund_rate", "<=", id="refund_rate")])
def test_lowering_a_le_metric_is_the_mirror_case(metric: str, op: str) -> None:
    # refund_rate 0.2 <= 0.3 passes its should (weight 1 of 4): lowering it to 0.1 keeps the PASS
    cases = [
        {
            "gmv": 500.0,
            "click_through_rate": 0.05,
            "refund_rate": 0.2,
            "paid_roi": 2.0,
            "sum_orders": 200.0,
            "days_in_stage": 5,
            "pass_streak": 0,
            "awaiting": False,
            "paused": False,
            "data_error": "",
            "g_affiliate_trial": 0,
        }
    ]
    cohort, metrics = frames(cases)
    assert decide(cohort, metrics).iloc[0]["verdict"] == "PASS"
    metrics[metric] = 0.1
    assert decide(cohort, metrics).iloc[0]["verdict"] == "PASS"
