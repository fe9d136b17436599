"""Tests of the GMV driver diagnosis and of shadow verdicts."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest

from brandsteps.catalogue import BASE_COLUMNS, GMV_FACTORS
from brandsteps.config import load_portfolio
from brandsteps.engine.diagnosis import diagnose, factor_diagnosis, from_records, shadow_verdicts
from brandsteps.engine.evidence import render
from brandsteps.engine.window import compute_window_metrics
from tests.conftest import REPO

PORTFOLIO = load_portfolio(REPO / "configs", apply_env=False)


def _daily(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    frame["date"] = pd.to_datetime(frame["date"])
    for col in BASE_COLUMNS:  # the unmeasured columns are missing, as metrics_source gives them
        if col not in frame:
            frame[col] = np.nan
    frame["uv"] = frame[["uv_private", "uv_public_organic", "uv_public_paid"]].sum(axis=1)
    return frame


@pytest.mark.parametrize(
    ("days", "gmv"),
    [
        # two days of one brand: the window sums give gmv 3,000 + 5,000
        pytest.param([(100, 200, 50, 700, 20, 22, 3000.0), (150, 100, 80, 900, 30, 35, 5000.0)], 8000.0, id="two-days"),
        # one day with a fractional AOV: 7 orders of ¥1,234.5 / 7 each
        pytest.param([(10, 0, 5, 31, 6, 7, 1234.5)], 1234.5, id="fractional-aov"),
    ],
)
def test_factors_multiply_to_gmv(days: list[tuple], gmv: float) -> None:
    rows = [
        {
            "brand_id": "b",
            "date": f"2026-01-0{i + 1}",
            "uv_private": p,
            "uv_public_organic": o,
            "uv_public_paid": q,
            "watch_minutes": w,
            "buyers": bu,
            "orders": od,
            "gmv": g,
        }
        for i, (p, o, q, w, bu, od, g) in enumerate(days)
    ]
    window = pd.DataFrame(
        {"window_start": [pd.Timestamp("2026-01-01")], "window_end": [pd.Timestamp("2026-01-05")], "window_len": [5]},
        index=pd.Index(["b"], name="brand_id"),
    )
    metrics = compute_window_metrics(_daily(rows), window)
    product = np.prod([metrics.at["b", f] for f in GMV_FACTORS])
    assert metrics.at["b", "gmv"] == gmv
    assert product == pytest.approx(
        gmv, rel=1e-12
    )  # UV × watch/UV × buyers/watch × orders/buyers × gmv/orders telescopes to gmv


def _criterion(
    metric: str,
    threshold: float,
    op: str = ">=",
    kind: str = "should",
    shadow: bool = False,
    value: float = float("nan"),
    result: str = "pass",
) -> dict:
    return {
        "role": "criterion",
        "source_stage": "self_broadcast",
        "metric": metric,
        "op": op,
        "threshold": threshold,
        "kind": kind,
        "weight": 1.0,
        "shadow": shadow,
        "value": value,
        "result": result,
        "reason": f"{metric} {value} {op} {threshold}",
    }


def _decisions(
    brands: dict[str, tuple[float, float, float, float, float]],
    stage: str = "self_broadcast",
    criteria: dict[str, list[dict]] | None = None,
) -> pd.DataFrame:
    rows = []
    for b, (uv, wm, conv, rf, aov) in brands.items():
        factors = {
            "gmv": uv * wm * conv * rf * aov,
            "uv": uv,
            "watch_minutes_per_uv": wm,
            "conversion_per_watch_minute": conv,
            "repurchase_frequency": rf,
            "aov": aov,
        }
        rows.append(
            {
                "brand_id": b,
                "stage": stage,
                "verdict": "PASS",
                "reason": "all must criteria pass",
                "gmv_factors": json.dumps(factors),
                "criteria": json.dumps((criteria or {}).get(b, [])),
            }
        )
    return pd.DataFrame(rows)


# Self-broadcast small-tier targets as the gate records them: watch ≥ 0.5, conversion ≥ 0.008.
SMALL_TARGETS = [_criterion("watch_minutes_per_uv", 0.5), _criterion("conversion_per_watch_minute", 0.008)]
THREE = {
    "a": (14000, 0.6, 0.010, 1.2, 80.0),  # 1,000 UV a day against a median of 1,500
    "b": (28000, 0.4, 0.012, 1.0, 100.0),  # watch 0.4: 1/3 below the median 0.6, 20% below the 0.5 target
    "c": (21000, 0.8, 0.006, 1.1, 60.0),  # conversion 0.006: 40% below the median 0.01, 25% below the target
}


@pytest.mark.parametrize(
    ("brand", "limiting", "shortfall", "action_stage"),
    [
        pytest.param("a", "uv", 1 / 3, "public_traffic", id="uv"),  # 1 - 1000/1500
        # max(1 - 0.4/0.6, 1 - 0.4/0.5)
        pytest.param("b", "watch_minutes_per_uv", 1 / 3, "self_broadcast", id="watch-per-uv"),
        # max(1 - 0.006/0.01, 1 - 0.006/0.008); AOV is only 25% short
        pytest.param("c", "conversion_per_watch_minute", 0.4, "self_broadcast", id="conversion"),
    ],
)
def test_limiting_factor_against_cohort_median_and_targets(
    brand: str, limiting: str, shortfall: float, action_stage: str
) -> None:
    decisions = _decisions(THREE, criteria={b: SMALL_TARGETS for b in THREE})
    cohorts = pd.DataFrame({"tier": "small", "window_len": 14}, index=pd.Index(list(THREE), name="brand_id"))
    diag = factor_diagnosis(from_records(decisions), cohorts, PORTFOLIO).set_index(decisions["brand_id"])
    assert diag.at[brand, "limiting_factor"] == limiting
    assert diag.at[brand, "limiting_shortfall"] == pytest.approx(shortfall)
    assert diag.at[brand, "action_stage"] == action_stage
    assert diag.at[brand, "action"] == PORTFOLIO.playbook.stage(action_stage).actions.strip()
    assert diag.at[brand, "cohort_brands"] == 3
    assert diag.at["a", "uv.median"] == 1500.0  # per-day UV medians: 1000, 2000, 1500


def test_target_shortfall_counts_when_the_brand_is_its_own_cohort() -> None:
    # one mid-tier brand: each median is its own value (no shortfall), but watch 0.45 is half the 0.9 target
    decisions = _decisions(
        {"m": (280000, 0.45, 0.02, 1.2, 120.0)}, criteria={"m": [_criterion("watch_minutes_per_uv", 0.9)]}
    )
    cohorts = pd.DataFrame({"tier": "mid", "window_len": 14}, index=pd.Index(["m"], name="brand_id"))
    diag = factor_diagnosis(from_records(decisions), cohorts, PORTFOLIO)
    assert diag.at[0, "limiting_factor"] == "watch_minutes_per_uv"
    assert diag.at[0, "limiting_shortfall"] == pytest.approx(0.5)
    assert diag.at[0, "watch_minutes_per_uv.vs_median"] == 0.0


def test_no_limiting_factor_when_nothing_is_short() -> None:
    # two identical brands: every factor equals the median and there are no targets
    decisions = _decisions(
        {"x": (1400, 1.0, 0.01, 1.0, 50.0), "y": (1400, 1.0, 0.01, 1.0, 50.0)}, stage="affiliate_trial"
    )
    cohorts = pd.DataFrame({"tier": "small", "window_len": 14}, index=pd.Index(["x", "y"], name="brand_id"))
    diag = factor_diagnosis(from_records(decisions), cohorts, PORTFOLIO)
    assert diag["limiting_factor"].isna().all()


def test_tiers_are_separate_cohorts() -> None:
    # same stage, different tiers: each brand is alone in its cohort, so no shortfall vs a median
    decisions = _decisions(
        {"s": (1400, 0.3, 0.01, 1.0, 50.0), "l": (2_800_000, 1.5, 0.02, 1.3, 200.0)}, stage="affiliate_trial"
    )
    cohorts = pd.DataFrame({"tier": ["small", "large"], "window_len": 14}, index=pd.Index(["s", "l"], name="brand_id"))
    diag = factor_diagnosis(from_records(decisions), cohorts, PORTFOLIO)
    assert list(diag["cohort_brands"]) == [1, 1]
    assert diag["limiting_factor"].isna().all()


def test_diagnose_extends_gmv_factors_and_leaves_exited_alone() -> None:
    decisions = _decisions(THREE, criteria={b: SMALL_TARGETS for b in THREE})
    exited = pd.DataFrame(
        [
            {
                "brand_id": "gone",
                "stage": "exited",
                "verdict": "INCONCLUSIVE",
                "reason": "exited",
                "gmv_factors": "{}",
                "criteria": "[]",
            }
        ]
    )
    frame = pd.concat([decisions, exited], ignore_index=True)
    cohorts = pd.DataFrame({"tier": "small", "window_len": 14}, index=pd.Index([*THREE, "gone"], name="brand_id"))
    out = render(diagnose(from_records(frame), cohorts, PORTFOLIO))
    assert sorted(out.columns) == sorted(frame.columns)  # same ledger columns
    first = json.loads(out.at[0, "gmv_factors"])
    assert first["uv"] == 14000 and first["gmv"] == pytest.approx(14000 * 0.6 * 0.01 * 1.2 * 80)  # original keys kept
    assert first["diagnosis"]["limiting_factor"] == "uv"
    assert first["diagnosis"]["factors"]["uv"]["basis"] == 1000.0  # 14,000 over 14 days
    assert out.at[3, "gmv_factors"] == "{}"


@pytest.mark.parametrize(
    ("verdict", "reason", "criteria", "pass_score", "expected"),
    [
        # a shadow must that fails turns a PASS into FAIL
        pytest.param(
            "PASS",
            "all must criteria pass",
            [
                _criterion("gpm", 400, kind="must"),
                _criterion("aov", 999, kind="must", shadow=True, value=80, result="fail"),
            ],
            1.0,
            "FAIL",
            id="shadow-must-fails",
        ),
        # one live should passes, the shadow should fails: score 0.5 < 0.6
        pytest.param(
            "PASS",
            "all must criteria pass",
            [_criterion("gpm", 400), _criterion("aov", 999, shadow=True, value=80, result="fail")],
            0.6,
            "FAIL",
            id="shadow-should-short",
        ),
        # the same with pass_score 0.5: 0.5 is enough
        pytest.param(
            "PASS",
            "all must criteria pass",
            [_criterion("gpm", 400), _criterion("aov", 999, shadow=True, value=80, result="fail")],
            0.5,
            "PASS",
            id="shadow-should-enough",
        ),
        # a shadow without a value makes the would-be verdict INCONCLUSIVE
        pytest.param(
            "PASS",
            "all must criteria pass",
            [_criterion("gpm", 400), _criterion("aov", 10, shadow=True, result="no_value")],
            0.5,
            "INCONCLUSIVE",
            id="shadow-no-value",
        ),
        # decided before the criteria (too few days in stage): shadow changes nothing
        pytest.param(
            "INCONCLUSIVE",
            "3 days in stage < min_days_in_stage 21",
            [_criterion("aov", 999, kind="must", shadow=True, value=80, result="fail")],
            1.0,
            "INCONCLUSIVE",
            id="decided-before-criteria",
        ),
        # a live FAIL with a passing shadow stays FAIL
        pytest.param(
            "FAIL",
            "gpm 300 < 400",
            [
                _criterion("gpm", 400, kind="must", value=300, result="fail"),
                _criterion("aov", 10, shadow=True, value=80),
            ],
            1.0,
            "FAIL",
            id="live-fail-stays",
        ),
        # no shadow criteria: no shadow verdict
        pytest.param("PASS", "all must criteria pass", [_criterion("gpm", 400)], 1.0, None, id="no-shadow"),
    ],
)
def test_shadow_verdicts(
    verdict: str, reason: str, criteria: list[dict], pass_score: float, expected: str | None
) -> None:
    decisions = pd.DataFrame(
        [
            {
                "brand_id": "b",
                "stage": "self_broadcast",
                "verdict": verdict,
                "reason": reason,
                "criteria": json.dumps(criteria),
                "gmv_factors": "{}",
            }
        ]
    )
    recorded = from_records(decisions)
    out = shadow_verdicts(recorded.decisions, recorded.evidence, np.array([pass_score]))
    assert out.at[0, "shadow_verdict"] == expected


def test_diagnosis_is_recorded_by_a_real_cycle(tmp_path) -> None:
    from brandsteps.engine.cycle import run_day
    from brandsteps.ledger import Ledger
    from brandsteps.sources.metrics_source import MetricsBatch, validate
    from tests.conftest import simple_playbook, write_configs

    playbook = simple_playbook(
        affiliate_trial={
            "criteria": [
                {"metric": "gmv", "op": ">=", "threshold": 300},
                {"metric": "aov", "op": ">=", "threshold": 50, "shadow": True},
            ]
        }
    )
    configs = write_configs(tmp_path, {"aa": {}, "bb": {}}, playbook)
    portfolio = load_portfolio(configs, apply_env=False)
    days = pd.date_range("2026-01-01", "2026-01-03")
    raw = pd.DataFrame(
        {
            "brand_id": np.repeat(["aa", "bb"], 3),
            "date": np.tile(days.strftime("%Y-%m-%d"), 2),
            "uv_private": 100.0,
            "uv_public_organic": 0.0,
            "uv_public_paid": 0.0,
            "watch_minutes": 50.0,
            "buyers": 5.0,
            "orders": np.repeat([5.0, 10.0], 3),
            "gmv": 400.0,
        }
    )
    batch: MetricsBatch = validate(raw, as_of=date(2026, 1, 3), today=date(2026, 1, 4))
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.sqlite'}")
    ledger.create()
    run_day(portfolio, batch, ledger, date(2026, 1, 3), None)
    bb = json.loads(ledger.decision("bb", date(2026, 1, 3))["gmv_factors"])
    # bb sells 10 orders of ¥40 a day against aa's 5 of ¥80: orders per buyer 2 vs median 1.5, AOV 40 vs median 60
    assert bb["diagnosis"]["limiting_factor"] == "aov"
    assert bb["diagnosis"]["factors"]["aov"]["vs_median"] == pytest.approx(1 / 3)
    assert bb["shadow"]["verdict"] == "FAIL"  # shadow aov ≥ 50 fails at 40 while the live gmv criterion passes
