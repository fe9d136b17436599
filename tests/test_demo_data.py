"""Tests of the demo portfolio and the synthetic daily metrics (brandsteps.sources.demo)."""

from __future__ import annotations

import datetime as dt
import math
import operator
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
import yaml

from brandsteps.catalogue import BASE_COLUMNS, STAGE_IDS, TIERS, UV_COLUMNS
from brandsteps.config import load_portfolio
from brandsteps.sources.demo.accounts import ACCOUNT_NOBODY
from brandsteps.sources.demo.archetypes import ARCHETYPES, CATEGORIES, GOOD_ARCHETYPES
from brandsteps.sources.demo.folder import DemoSummary, earliest_day_in, write_demo_folder
from brandsteps.sources.demo.metrics import corrupt_rows, generate_daily_metrics
from brandsteps.sources.demo.portfolio import DemoBrand, archetype_counts, plan_demo_portfolio, plan_synthetic_portfolio
from brandsteps.sources.demo.profiles import USER_PROFILES
from brandsteps.sources.demo.store_exports import RESTATED_REPORT, reexport_mornings
from brandsteps.sources.imports import BUILTIN_PROFILES, load_profiles
from brandsteps.sources.imports.records import IMPORT_COLUMNS, REVISION_COLUMNS, file_records, read_jsonl

REPO = Path(__file__).resolve().parents[1]
PLAYBOOK = yaml.safe_load((REPO / "configs" / "steps.yaml").read_text(encoding="utf-8"))
STAGES: dict[str, dict[str, Any]] = {stage["id"]: stage for stage in PLAYBOOK["stages"]}
# 2026-05-26 .. 2026-11-21: the period holds both 618 (June 1–18) and Double 11 (Nov 1–11).
START = dt.date(2026, 5, 26)
DAYS = 180
END = START + dt.timedelta(days=DAYS - 1)
SEED = 7
OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}
CONFIG_KEYS = {"brand_id", "name", "tier", "category", "start_date", "owner", "paused", "requires_approval", "gates"}


@pytest.fixture(scope="module")
def brands() -> list[DemoBrand]:
    return plan_demo_portfolio(50, START, SEED)


@pytest.fixture(scope="module")
def metrics(brands: list[DemoBrand]) -> pd.DataFrame:
    return generate_daily_metrics(brands, START, DAYS, SEED)


@pytest.fixture(scope="module")
def by_brand(metrics: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Each brand's base columns, indexed by date (one float block: fast window slices)."""
    frame = metrics.set_index("date")
    return {
        str(brand_id): pd.DataFrame(rows[list(BASE_COLUMNS)].to_numpy(), index=rows.index, columns=list(BASE_COLUMNS))
        for brand_id, rows in frame.groupby("brand_id", sort=False)
    }


# --- plain-pandas window metrics, as docs/domain.md#metrics defines them (all ratios are ratios of window sums) ----


def _ratio(num: float, den: float) -> float:
    return num / den if den and not math.isnan(den) else math.nan


def window_metrics(rows: pd.DataFrame, end: dt.date, days: int) -> dict[str, float]:
    """The derived metrics of the window of `days` days ending on `end`, from one brand's date-indexed rows."""
    w = rows.loc[pd.Timestamp(end - dt.timedelta(days=days - 1)) : pd.Timestamp(end)]
    s = w.sum(min_count=1).to_dict()  # an all-NaN column sums to NaN: not measured, never 0
    uv = s["uv_private"] + s["uv_public_organic"] + s["uv_public_paid"]
    aff = w["gmv_affiliate"]
    return {
        "uv": uv,
        "watch_minutes_per_uv": _ratio(s["watch_minutes"], uv),
        "conversion_per_watch_minute": _ratio(s["buyers"], s["watch_minutes"]),
        "repurchase_frequency": _ratio(s["orders"], s["buyers"]),
        "gpm": _ratio(s["gmv"], uv) * 1000,
        "burst_coefficient": _ratio(aff.rolling(7).mean().max(), aff.median()),
        "selling_affiliates": w["active_affiliates"].mean(),
        "commission_rate": _ratio(s["commission"], s["gmv_affiliate"]),
        "click_through_rate": _ratio(s["product_clicks"], s["product_impressions"]),
        "click_conversion": _ratio(s["orders"], s["product_clicks"]),
        "refund_rate": _ratio(s["refund_amount"], s["gmv"]),
        "paid_roi": _ratio(s["ad_gmv"], s["ad_spend"]),
        "ship_48h_rate": _ratio(s["orders_shipped_48h"], s["orders"]),
        "store_rating": w["store_rating"].dropna().iloc[-1],
        "live_hours_per_day": s["live_minutes"] / 60 / days,
        "self_broadcast_share": _ratio(s["gmv_self"], s["gmv"]),
        "private_uv_share": _ratio(s["uv_private"], uv),
        "returning_buyer_share": _ratio(s["returning_buyers"], s["buyers"]),
        "follower_growth": s["followers_new"],
        "exclusive_sku_count": w["exclusive_skus"].dropna().iloc[-1],
        "exclusive_gmv_share": _ratio(s["gmv_exclusive"], s["gmv"]),
        "days_with_data": float(len(w)),
        **{f"sum:{col}": s[col] for col in BASE_COLUMNS},
    }


def rules(brand: DemoBrand, stage_id: str) -> list[dict[str, Any]]:
    """The stage's criteria and guardrails for this brand: brand overrides replace by metric name."""
    out = []
    for key in ("criteria", "guardrails"):
        by_metric = {rule["metric"]: rule for rule in STAGES[stage_id].get(key, [])}
        for rule in brand.config.get("gates", {}).get(stage_id, {}).get(key, []):
            by_metric[rule["metric"]] = rule
        out += [{**rule, "key": key} for rule in by_metric.values()]
    return out


def failures(brand: DemoBrand, rows: pd.DataFrame, stage_id: str, end: dt.date) -> set[str]:
    """Criteria, guardrails and min_sample entries of the stage that the window ending on `end` does not clear."""
    stage = STAGES[stage_id]
    values = window_metrics(rows, end, stage["window_days"])
    failed = set()
    for rule in rules(brand, stage_id):
        threshold = rule["threshold"]
        limit = threshold[brand.config["tier"]] if isinstance(threshold, dict) else threshold
        value = values[rule["metric"]]
        if math.isnan(value) or not OPS[rule["op"]](value, limit):
            failed.add(f"{rule['key']}:{rule['metric']}")
    for column, minimum in stage.get("min_sample", {}).items():
        value = values["days_with_data"] if column == "days_with_data" else values[f"sum:{column}"]
        if math.isnan(value) or value < minimum:
            failed.add(f"min_sample:{column}")
    return failed


def window_ends(brand: DemoBrand, days: int, ages: tuple[int, ...]) -> list[dt.date]:
    """Window end dates `age` days after the brand's start whose full window lies in the period."""
    first = brand.start_date + dt.timedelta(days=days - 1)
    ends = [brand.start_date + dt.timedelta(days=age) for age in ages]
    return [end for end in ends if first <= end <= END]


# --- the portfolio ------------------------------------------------------------------------------------------


def test_counts_for_fifty_brands() -> None:
    counts = archetype_counts(50)
    # The brief: ≥3 fast risers, ≥1 of every other archetype, steady is the bulk, 50 in all.
    assert sum(counts.values()) == 50
    assert counts["fast_riser"] >= 3
    assert all(count >= 1 for count in counts.values())
    assert counts["steady"] == max(counts.values()) and counts["steady"] >= 25


@pytest.mark.parametrize(
    ("n_brands", "every_archetype"),
    [
        pytest.param(20, True, id="20-brands"),  # the brief: at least one of each archetype from 20 brands on
        pytest.param(50, True, id="50-brands"),
        pytest.param(200, True, id="200-brands"),
        pytest.param(5, False, id="5-brands"),  # a tiny portfolio cannot hold all 15 archetypes, but still adds up
    ],
)
def test_counts_scale(n_brands: int, every_archetype: bool) -> None:
    counts = archetype_counts(n_brands)
    assert sum(counts.values()) == n_brands
    assert all(count >= 0 for count in counts.values())
    assert all(count >= 1 for count in counts.values()) == every_archetype


def test_plan_is_deterministic(brands: list[DemoBrand]) -> None:
    again = plan_demo_portfolio(50, START, SEED)
    assert [(b.config, b.archetype) for b in again] == [(b.config, b.archetype) for b in brands]
    other = plan_demo_portfolio(50, START, SEED + 1)
    assert [b.config for b in other] != [b.config for b in brands]


def test_configs_have_the_brand_file_shape(brands: list[DemoBrand]) -> None:
    counts = archetype_counts(50)
    assert {name: sum(b.archetype == name for b in brands) for name in ARCHETYPES} == counts
    assert len({b.brand_id for b in brands}) == len(brands)
    for brand in brands:
        config = brand.config
        assert set(config) <= CONFIG_KEYS  # configs forbid unknown keys: no archetype in there
        assert re.fullmatch(r"[a-z0-9-]+", config["brand_id"])
        assert re.search(r"[\u4e00-\u9fff]", config["name"]) and re.search(r"[A-Za-z]", config["name"])
        assert config["tier"] in TIERS and config["category"] in CATEGORIES
        assert START <= config["start_date"] <= END
        assert set(config.get("gates", {})) <= set(STAGE_IDS)
        assert config.get("paused", False) == (brand.archetype == "paused")
        assert ("requires_approval" in config) == (brand.archetype == "awaiting_approval")


def test_every_stage_that_checks_refunds_has_an_apparel_override(brands: list[DemoBrand]) -> None:
    # Apparel refunds run at 30–60%: every stage whose criteria or guardrails check refund_rate is overridden.
    refund_stages = {
        (stage_id, key)
        for stage_id, stage in STAGES.items()
        for key in ("criteria", "guardrails")
        if any(rule["metric"] == "refund_rate" for rule in stage.get(key, []))
    }
    apparel = [b for b in brands if b.config["category"] == "apparel"]
    assert apparel
    for brand in apparel:
        gates = brand.config["gates"]
        for stage_id, key in refund_stages:
            assert [r["metric"] for r in gates[stage_id][key]] == ["refund_rate"]


def test_fast_risers_start_early_and_exit_candidate_can_exit(brands: list[DemoBrand]) -> None:
    fast = [b for b in brands if b.archetype == "fast_riser"]
    # The perfect path takes ~115 days, so a start in the first 10 days graduates inside 180 days.
    assert len(fast) >= 3 and all((b.start_date - START).days < 10 for b in fast)
    exits = [b for b in brands if b.archetype == "exit_candidate"]
    assert all(b.config["gates"]["affiliate_trial"]["on_fail"] == "exit" for b in exits)


# --- the daily metrics --------------------------------------------------------------------------------------


def test_columns_and_dtypes(metrics: pd.DataFrame) -> None:
    assert list(metrics.columns) == ["brand_id", "date", *BASE_COLUMNS]
    assert metrics["date"].dtype == np.dtype("datetime64[ns]")
    assert (metrics["date"] == metrics["date"].dt.normalize()).all()
    assert pd.api.types.is_string_dtype(metrics["brand_id"])
    assert all(metrics[col].dtype == np.float64 for col in BASE_COLUMNS)


def test_generation_is_deterministic(brands: list[DemoBrand], metrics: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(generate_daily_metrics(brands, START, DAYS, SEED), metrics)
    assert not generate_daily_metrics(brands, START, DAYS, SEED + 1)["gmv"].equals(metrics["gmv"])


def test_one_row_per_brand_day_from_start_date(brands: list[DemoBrand], metrics: pd.DataFrame) -> None:
    assert not metrics.duplicated(["brand_id", "date"]).any()
    starts = pd.Series({b.brand_id: pd.Timestamp(b.start_date) for b in brands})
    assert (metrics["date"] >= metrics["brand_id"].map(starts)).all()
    assert metrics["date"].max() == pd.Timestamp(END)
    rows = metrics.groupby("brand_id").size()
    for brand in brands:
        gap = sum(START <= day <= END for day in brand.gap_dates())
        assert rows[brand.brand_id] == (END - brand.start_date).days + 1 - gap


def test_gaps_exactly_where_the_archetype_says(brands: list[DemoBrand], by_brand: dict[str, pd.DataFrame]) -> None:
    gappy = [b for b in brands if b.archetype == "data_gaps"]
    assert gappy
    for brand in gappy:
        gap = set(brand.gap_dates())
        assert len(gap) == 9  # 9 missing days leave 5 of 14: below min_sample days_with_data 10
        expected = [day for day in pd.date_range(brand.start_date, END, freq="D").date if day not in gap]
        assert list(pd.DatetimeIndex(by_brand[brand.brand_id].index).date) == expected


@pytest.mark.parametrize(
    ("small", "large"),
    [
        pytest.param("buyers", "orders", id="buyers-within-orders"),  # a buyer places at least one order
        pytest.param("orders", "product_clicks", id="orders-within-product-clicks"),  # an order follows a click
        pytest.param("product_clicks", "product_impressions", id="product-clicks-within-product-impressions"),
        pytest.param("returning_buyers", "buyers", id="returning-buyers-within-buyers"),
        pytest.param("orders_shipped_48h", "orders", id="orders-shipped-48h-within-orders"),
        pytest.param("gmv_exclusive", "gmv", id="gmv-exclusive-within-gmv"),  # exclusive SKUs' GMV is part of GMV
        # refunds by payment date cannot exceed that day's GMV
        pytest.param("refund_amount", "gmv", id="refund-amount-within-gmv"),
        pytest.param("commission", "gmv_affiliate", id="commission-within-gmv-affiliate"),
        pytest.param("gmv_affiliate", "gmv", id="gmv-affiliate-within-gmv"),
        pytest.param("gmv_self", "gmv", id="gmv-self-within-gmv"),
    ],
)
def test_consistency(metrics: pd.DataFrame, small: str, large: str) -> None:
    assert (metrics[small] <= metrics[large] + 1e-6).all()


def test_gmv_decomposes_and_counts_are_whole(metrics: pd.DataFrame) -> None:
    other = metrics["gmv"] - metrics["gmv_self"] - metrics["gmv_affiliate"]  # super link, product cards, ...
    assert (other >= -0.01).all()
    counts = [
        *UV_COLUMNS,
        "orders",
        "buyers",
        "returning_buyers",
        "product_clicks",
        "product_impressions",
        "orders_shipped_48h",
        "followers_new",
        "active_affiliates",
        "exclusive_skus",
        "live_minutes",
    ]
    assert (metrics[counts] % 1 == 0).all().all()
    assert (metrics[list(BASE_COLUMNS)].fillna(0) >= 0).all().all()
    assert metrics["store_rating"].between(0, 5).all()
    assert np.allclose(metrics["store_rating"] * 10, np.round(metrics["store_rating"] * 10))
    assert metrics["exclusive_skus"].between(0, 20).all()
    assert (metrics["live_minutes"] <= 24 * 60).all()


def test_exclusive_skus_grow_for_good_brands(brands: list[DemoBrand], by_brand: dict[str, pd.DataFrame]) -> None:
    for brand in brands:
        if brand.archetype in GOOD_ARCHETYPES:
            skus = by_brand[brand.brand_id]["exclusive_skus"]
            assert skus.is_monotonic_increasing
            if len(skus) > 60:  # one more SKU every 25–45 days
                assert skus.iloc[-1] > skus.iloc[0]


def _good_brand_rows(brands: list[DemoBrand], metrics: pd.DataFrame, tier: str) -> pd.DataFrame:
    ids = [b.brand_id for b in brands if b.archetype in GOOD_ARCHETYPES and b.config["tier"] == tier]
    return metrics[metrics["brand_id"].isin(ids)]


@pytest.mark.parametrize(
    ("tier", "name", "lo", "hi"),
    [
        # docs/domain.md#realistic-magnitudes, one row per tier and measure, checked on each good brand's
        # whole-period ratios of sums (median for daily levels).
        pytest.param("small", "uv_per_day", 1_000, 20_000, id="small-uv-per-day"),
        pytest.param("mid", "uv_per_day", 20_000, 200_000, id="mid-uv-per-day"),
        pytest.param("large", "uv_per_day", 200_000, 2_000_000, id="large-uv-per-day"),
        pytest.param("small", "watch_seconds_per_uv", 20, 60, id="small-watch-seconds-per-uv"),
        pytest.param("mid", "watch_seconds_per_uv", 45, 120, id="mid-watch-seconds-per-uv"),
        pytest.param("large", "watch_seconds_per_uv", 60, 180, id="large-watch-seconds-per-uv"),
        pytest.param("small", "buyer_rate", 0.003, 0.015, id="small-buyer-rate"),
        pytest.param("mid", "buyer_rate", 0.01, 0.03, id="mid-buyer-rate"),
        pytest.param("large", "buyer_rate", 0.015, 0.04, id="large-buyer-rate"),
        pytest.param("small", "aov", 40, 100, id="small-aov"),
        pytest.param("mid", "aov", 60, 200, id="mid-aov"),
        pytest.param("large", "aov", 80, 300, id="large-aov"),
        pytest.param("small", "affiliates_per_day", 10, 100, id="small-affiliates-per-day"),
        pytest.param("mid", "affiliates_per_day", 100, 1_000, id="mid-affiliates-per-day"),
        pytest.param("large", "affiliates_per_day", 1_000, 10_000, id="large-affiliates-per-day"),
        pytest.param("small", "commission_rate", 0.15, 0.35, id="small-commission-rate"),
        pytest.param("mid", "commission_rate", 0.10, 0.30, id="mid-commission-rate"),
        pytest.param("large", "commission_rate", 0.05, 0.25, id="large-commission-rate"),
        pytest.param("small", "paid_roi", 1.0, 2.5, id="small-paid-roi"),
        pytest.param("mid", "paid_roi", 1.5, 4.0, id="mid-paid-roi"),
        pytest.param("large", "paid_roi", 2.0, 6.0, id="large-paid-roi"),
    ],
)
def test_magnitudes_by_tier(
    brands: list[DemoBrand], metrics: pd.DataFrame, tier: str, name: str, lo: float, hi: float
) -> None:
    rows = _good_brand_rows(brands, metrics, tier)
    assert not rows.empty
    g = rows.groupby("brand_id")
    s = g[list(BASE_COLUMNS)].sum()
    uv = s[list(UV_COLUMNS)].sum(axis=1)
    value = {
        "uv_per_day": rows.assign(uv=rows[list(UV_COLUMNS)].sum(axis=1)).groupby("brand_id")["uv"].median(),
        "watch_seconds_per_uv": s["watch_minutes"] * 60 / uv,
        "buyer_rate": s["buyers"] / uv,
        "aov": s["gmv"] / s["orders"],
        "affiliates_per_day": g["active_affiliates"].median(),
        "commission_rate": s["commission"] / s["gmv_affiliate"],
        "paid_roi": s["ad_gmv"] / s["ad_spend"],
    }[name]
    assert value.between(lo, hi).all(), value[~value.between(lo, hi)]


@pytest.mark.parametrize(
    ("category", "lo", "hi"),
    [
        # the category ranges of docs/domain.md#realistic-magnitudes
        pytest.param("apparel", 0.30, 0.60, id="apparel"),
        pytest.param("beauty", 0.10, 0.25, id="beauty"),
        pytest.param("food", 0.03, 0.10, id="food"),
    ],
)
def test_refund_rate_by_category(
    brands: list[DemoBrand], metrics: pd.DataFrame, category: str, lo: float, hi: float
) -> None:
    ids = [b.brand_id for b in brands if b.archetype in GOOD_ARCHETYPES and b.config["category"] == category]
    s = metrics[metrics["brand_id"].isin(ids)].groupby("brand_id")[["refund_amount", "gmv"]].sum()
    assert ids and (s["refund_amount"] / s["gmv"]).between(lo, hi).all()


@pytest.mark.parametrize(
    ("peak", "normal"),
    [
        # Each brand's visitors on the promotion's three peak days against its own four normal weeks
        # (weekday mix of 4 whole weeks averages out): 618 and Double 11 burst 2–5×.
        pytest.param(("2026-06-16", "2026-06-18"), ("2026-07-06", "2026-08-02"), id="618"),
        pytest.param(("2026-11-09", "2026-11-11"), ("2026-10-05", "2026-11-01"), id="double-11"),
    ],
)
def test_promotions_lift_visitors(metrics: pd.DataFrame, peak: tuple[str, str], normal: tuple[str, str]) -> None:
    uv = metrics.assign(uv=metrics[list(UV_COLUMNS)].sum(axis=1)).pivot(index="date", columns="brand_id", values="uv")
    base = uv.loc[normal[0] : normal[1]].dropna(axis=1)  # brands with all four normal weeks
    lift = (uv.loc[peak[0] : peak[1], base.columns].mean() / base.mean()).dropna()
    assert len(lift) >= 3 and lift.between(1.7, 6.0).all() and 2.0 <= lift.median() <= 5.0


def test_weekends_sell_more(metrics: pd.DataFrame) -> None:
    uv = metrics[list(UV_COLUMNS)].sum(axis=1)
    weekend = metrics["date"].dt.day_of_week >= 5
    assert uv[weekend].median() > uv[~weekend].median()


# --- the gates: good brands clear everything, anomalies show where they should ---------------------------------


@pytest.mark.parametrize("stage_id", STAGE_IDS)
def test_good_brands_clear_every_stage(
    brands: list[DemoBrand], by_brand: dict[str, pd.DataFrame], stage_id: str
) -> None:
    # A good brand's data clears every criterion, guardrail and min_sample of every stage at any time,
    # so it passes each stage whenever the engine gets there. A few windows per brand.
    days = STAGES[stage_id]["window_days"]
    checked = 0
    for brand in brands:
        if brand.archetype not in GOOD_ARCHETYPES:
            continue
        for end in window_ends(brand, days, (days - 1, 40, 70, 100, 130, 160)):
            assert failures(brand, by_brand[brand.brand_id], stage_id, end) == set(), (brand.brand_id, end)
            checked += 1
    assert checked >= 40


def test_burst_coefficient_of_good_brands(brands: list[DemoBrand], by_brand: dict[str, pd.DataFrame]) -> None:
    # Periodic hit-SKU bursts: ≥ 1.6 in most 14-day windows (the threshold is ≤ 1.5 for every tier).
    values = [
        window_metrics(by_brand[b.brand_id], end, 14)["burst_coefficient"]
        for b in brands
        if b.archetype in GOOD_ARCHETYPES
        for end in window_ends(b, 14, (13, 30, 47, 64, 81))
    ]
    assert np.mean(np.array(values) >= 1.6) >= 0.9


@pytest.mark.parametrize(
    ("archetype", "failing"),
    [
        # Each stuck brand fails exactly one must criterion of its stage and clears every earlier stage.
        pytest.param("stuck_affiliate_trial", "criteria:selling_affiliates", id="stuck-affiliate-trial"),
        pytest.param("stuck_public_traffic", "criteria:paid_roi", id="stuck-public-traffic"),
        # its guardrail (lower) still holds
        pytest.param("stuck_self_broadcast", "criteria:self_broadcast_share", id="stuck-self-broadcast"),
        # its guardrail (lower) still holds too
        pytest.param("stuck_private_repurchase", "criteria:returning_buyer_share", id="stuck-private-repurchase"),
        pytest.param("stuck_channel_exclusive", "criteria:exclusive_sku_count", id="stuck-channel-exclusive"),
    ],
)
def test_stuck_brands_fail_one_must(
    brands: list[DemoBrand], by_brand: dict[str, pd.DataFrame], archetype: str, failing: str
) -> None:
    stuck_stage = ARCHETYPES[archetype].stuck_stage
    assert stuck_stage is not None and f"criteria:{ARCHETYPES[archetype].fails[1]}" == failing  # type: ignore[index]
    for brand in (b for b in brands if b.archetype == archetype):
        rows = by_brand[brand.brand_id]
        for stage_id in STAGE_IDS[: STAGE_IDS.index(stuck_stage) + 1]:
            days = STAGES[stage_id]["window_days"]
            expected = {failing} if stage_id == stuck_stage else set()
            for end in window_ends(brand, days, (days - 1, 60, 100)):
                assert failures(brand, rows, stage_id, end) == expected, (brand.brand_id, stage_id, end)


def test_refund_spike_trips_the_guardrail(brands: list[DemoBrand], by_brand: dict[str, pd.DataFrame]) -> None:
    for brand in (b for b in brands if b.archetype == "refund_spike"):
        first, length = ARCHETYPES["refund_spike"].refund_spike or (0, 0)
        rows = by_brand[brand.brand_id]
        spike_end = brand.start_date + dt.timedelta(days=first + length - 1)
        # Windows ending on the spike's last day and the two before hold ≥ 10 spike days of ~75% refunds:
        # three evaluations in a row fail the public_traffic refund guardrail (≤ 50% at most).
        for back in range(3):
            end = spike_end - dt.timedelta(days=back)
            assert "guardrails:refund_rate" in failures(brand, rows, "public_traffic", end)
        # Before the spike the brand is good.
        before = brand.start_date + dt.timedelta(days=first - 1)
        assert failures(brand, rows, "public_traffic", before) == set()


def test_data_gaps_leave_too_few_days(brands: list[DemoBrand], by_brand: dict[str, pd.DataFrame]) -> None:
    for brand in (b for b in brands if b.archetype == "data_gaps"):
        last_gap_day = brand.gap_dates()[-1]
        values = window_metrics(by_brand[brand.brand_id], last_gap_day + dt.timedelta(days=4), 14)
        # 14 days minus 9 missing = 5 days with data, below min_sample days_with_data of public_traffic.
        assert values["days_with_data"] == 5 < STAGES["public_traffic"]["min_sample"]["days_with_data"]


def test_unmeasured_ads_have_no_paid_roi(brands: list[DemoBrand], by_brand: dict[str, pd.DataFrame]) -> None:
    for brand in (b for b in brands if b.archetype == "unmeasured_ads"):
        rows = by_brand[brand.brand_id]
        assert rows[["ad_spend", "ad_gmv"]].isna().all().all()  # not measured, never 0
        end = brand.start_date + dt.timedelta(days=40)
        assert math.isnan(window_metrics(rows, end, 14)["paid_roi"])
        assert "criteria:paid_roi" in failures(brand, rows, "public_traffic", end)


def test_exit_candidate_fails_affiliate_trial(brands: list[DemoBrand], by_brand: dict[str, pd.DataFrame]) -> None:
    for brand in (b for b in brands if b.archetype == "exit_candidate"):
        end = brand.start_date + dt.timedelta(days=13)  # the first full affiliate_trial window
        # Its refunds run at 52–60% of GMV, above every tier's affiliate_trial limit (≤ 40%): the first
        # evaluation FAILs, and on_fail: exit takes it out of the programme.
        assert ARCHETYPES["exit_candidate"].fails == ("affiliate_trial", "refund_rate")
        assert failures(brand, by_brand[brand.brand_id], "affiliate_trial", end) == {"criteria:refund_rate"}


def test_late_refunds_settle_above_the_limit(brands: list[DemoBrand], by_brand: dict[str, pd.DataFrame]) -> None:
    late = [b for b in brands if b.archetype == "late_refunds"]
    assert len(late) == 1 and late[0].config["category"] != "apparel"  # the playbook's limits apply, not apparel's
    for brand in late:
        # settled (the metrics), its refunds fail the first full affiliate_trial window: 23% above its tier's limit
        end = brand.start_date + dt.timedelta(days=13)
        assert failures(brand, by_brand[brand.brand_id], "affiliate_trial", end) == {"criteria:refund_rate"}
        # the weekly re-exports come every 7 days back from the day after END: its 14th day's is one of them
        assert (END + dt.timedelta(days=1) - brand.start_date).days % 7 == 0


# --- corrupt rows, demo folder, synthetic scale ---------------------------------------------------------------


def test_corrupt_rows(brands: list[DemoBrand], metrics: pd.DataFrame) -> None:
    before = metrics.copy()
    bad = corrupt_rows(metrics, brands, SEED)
    pd.testing.assert_frame_equal(metrics, before)  # the input is left alone
    target = {b.brand_id for b in brands if b.archetype == "corrupt_row"}
    negative = bad[bad["orders"] < 0]
    rating = bad[bad["store_rating"] > 5]
    # Exactly one orders = -3 and one store_rating = 7.5, on different rows of the corrupt_row brand.
    assert len(negative) == len(rating) == len(target) == 1
    assert set(negative["brand_id"]) == set(rating["brand_id"]) == target
    assert negative["orders"].iloc[0] == -3 and rating["store_rating"].iloc[0] == 7.5
    assert negative.index[0] != rating.index[0]
    changed = (bad != metrics) & ~(bad.isna() & metrics.isna())
    assert int(changed.to_numpy().sum()) == 2


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoSummary:
    """The 50-brand demo folder, written once: configs, the exports and the metrics they were imported into (~10 s)."""
    return write_demo_folder(tmp_path_factory.mktemp("demo"), n_brands=50, days=DAYS, end=END, seed=SEED)


@pytest.fixture(scope="module")
def demo_configs(demo: DemoSummary) -> dict[str, dict[str, Any]]:
    return {p.stem: yaml.safe_load(p.read_text(encoding="utf-8")) for p in demo.brand_files}


def test_write_demo_folder(demo: DemoSummary, demo_configs: dict[str, dict[str, Any]], brands: list[DemoBrand]) -> None:
    files = sorted((demo.configs_dir / "brands").glob("*.yaml"))
    assert len(files) == demo.n_brands == 50
    for path in files:
        config = demo_configs[path.stem]
        assert config["brand_id"] == path.stem
        assert isinstance(config["start_date"], dt.date)  # written as an ISO date, read back as a date
        assert demo.archetypes[path.stem] in ARCHETYPES
    # the brand files are the plan plus the ids the exports name brands by (accounts, exclusive SKUs)
    assert {
        b.brand_id: {k: v for k, v in demo_configs[b.brand_id].items() if k not in ("accounts", "exclusive_items")}
        for b in brands
    } == {b.brand_id: b.config for b in brands}
    onboarding = yaml.safe_load(demo.onboarding_path.read_text(encoding="utf-8"))
    assert onboarding["metrics"] == "data/metrics.parquet" and onboarding["ledger"] == "sqlite:///data/ledger.sqlite"
    assert demo.metrics_path == demo.folder / "data" / "metrics.parquet"
    assert yaml.safe_load(demo.playbook_path.read_text(encoding="utf-8")) == PLAYBOOK
    frame = pd.read_parquet(demo.metrics_path)
    assert len(frame) == demo.n_rows and demo.n_corrupt_rows == 2
    assert frame["date"].max() == pd.Timestamp(END) and demo.start == START
    archetypes = pd.read_csv(demo.archetypes_path)
    assert dict(zip(archetypes["brand_id"], archetypes["archetype"], strict=True)) == demo.archetypes
    # every export under <demo>/exports, and the configs (brands' accounts, the operator's profiles) valid
    assert all(e.path.is_file() and e.path.is_relative_to(demo.exports_dir) for e in demo.exports)
    portfolio = load_portfolio(demo.configs_dir)
    assert set(load_profiles(demo.configs_dir)) == set(BUILTIN_PROFILES) | set(USER_PROFILES)
    assert len(portfolio.brands) == 50


# Why each base column comes back from its export exactly (demo.files writes the cells, read_import parses them).
ROUND_TRIP: dict[str, str] = {
    "uv_private": "流量来源 (user profile traffic): a whole count, with thousands separators",
    "uv_public_organic": "流量来源: a whole count",
    "uv_public_paid": "流量来源: a whole count",
    "watch_minutes": "直播 (live-room): minutes to the tenth as whole seconds (0.1 min = 6 s); seconds / 60 is the tenth's float",
    "live_minutes": "直播: whole minutes",
    "product_impressions": "全店成交分析: a whole count; GBK files write '12.3456万', every digit kept",
    "product_clicks": "全店成交分析: a whole count",
    "orders": "全店成交分析: a whole count (the corrupt row's -3 too)",
    "buyers": "全店成交分析: a whole count",
    "returning_buyers": "客户分析 (customers): a whole count",
    "gmv": "全店成交分析: '¥1,234.56': a float of fen formats to its fen and parses back to that float (the generator rounds to the fen)",
    "gmv_self": "全店成交分析: an amount to the fen (not a % share, which would round)",
    "gmv_affiliate": "全店成交分析: an amount to the fen",
    "gmv_exclusive": "per-item sales: whole yuan per SKU, which add up exactly in any order; none for brands without per-item exports",
    "refund_amount": "全店成交分析 to the fen; the slow stores' (apparel, late_refunds) from their last re-export, settled",
    "active_affiliates": "快分销 数据概览 (affiliates): a whole count (the 效果明细's distinct selling 达人 say the same)",
    "commission": "全店成交分析 结算佣金 to the fen, settling the 快分销 estimate imported before it",
    "ad_spend": "磁力金牛: ￥ to the fen; no rows (not measured) for unmeasured_ads",
    "ad_gmv": "磁力金牛: ￥ to the fen",
    "orders_shipped_48h": "店铺服务 (service): a whole count",
    "store_rating": "店铺服务: one decimal ('4.8'; the corrupt row's 7.5 too)",
    "followers_new": "直播: a whole count",
    "exclusive_skus": "per-item sales: exclusive 商品ID with sales that day (count_distinct); none for brands without per-item exports",
}


def test_every_base_column_comes_from_an_export(demo: DemoSummary) -> None:
    imports = read_jsonl(file_records(demo.metrics_path).imports, IMPORT_COLUMNS)
    assert len(imports) == len(demo.exports)  # one import per file, as `brandsteps import` logs them
    assert set(",".join(imports["columns"]).split(",")) == set(BASE_COLUMNS) == set(ROUND_TRIP)


@pytest.mark.parametrize("column", [pytest.param(c, id=c) for c in BASE_COLUMNS])
def test_exports_reimport_to_the_generated_values(
    demo: DemoSummary,
    demo_configs: dict[str, dict[str, Any]],
    brands: list[DemoBrand],
    metrics: pd.DataFrame,
    column: str,
) -> None:
    # Exact, not approximate: the demo decides on what went through the exports (ROUND_TRIP says why it can be exact).
    expected = corrupt_rows(metrics, brands, SEED).set_index(["brand_id", "date"])[column]
    if column in ("gmv_exclusive", "exclusive_skus"):
        # per-item exports only for brands old enough to reach channel_exclusive: the others list no exclusive_items
        listed = {b for b, c in demo_configs.items() if c.get("exclusive_items")}
        reach = earliest_day_in("channel_exclusive", PLAYBOOK)
        assert listed == {b.brand_id for b in brands if (END - b.start_date).days >= reach} and len(listed) >= 30
        expected = expected.where(expected.index.get_level_values("brand_id").isin(listed))
    imported = pd.read_parquet(demo.metrics_path).set_index(["brand_id", "date"])[column].reindex(expected.index)
    assert len(pd.read_parquet(demo.metrics_path, columns=["brand_id"])) == len(
        expected
    )  # no brand-day more, none less
    assert np.array_equal(imported.to_numpy(), expected.to_numpy(), equal_nan=True), ROUND_TRIP[column]


def test_revision_record_holds_the_restated_values(
    demo: DemoSummary, brands: list[DemoBrand], metrics: pd.DataFrame
) -> None:
    final = metrics.set_index(["brand_id", "date"])
    revisions = read_jsonl(file_records(demo.metrics_path).revisions, REVISION_COLUMNS)
    revisions["date"] = pd.to_datetime(revisions["date"])
    assert set(revisions["column_name"]) == {"refund_amount", "commission"}
    now = final.loc[list(zip(revisions["brand_id"], revisions["date"], strict=True))]
    old, new = revisions["old_value"].astype(float).to_numpy(), revisions["new_value"].astype(float).to_numpy()
    refunds = (revisions["column_name"] == "refund_amount").to_numpy()
    # Refunds by payment date of the slow stores (apparel, late_refunds) only: the daily exports showed 42% of them,
    # the weekly re-exports of the last 30 days (recorded at 10:00 on their mornings) and the settled one made as the
    # demo is built (recorded then, after them) grew them to the generated values.
    slow = {b.brand_id for b in brands if b.config["category"] == "apparel" or b.archetype == "late_refunds"}
    assert set(revisions["brand_id"][refunds]) == slow
    folder = revisions["file"].map(lambda f: Path(f).parent.name).to_numpy()
    assert set(folder[refunds]) == {"全店成交分析-重新导出", "settled"}
    recorded = pd.to_datetime(revisions["recorded_at"], utc=True, format="ISO8601")
    ten = dt.time(10, tzinfo=ZoneInfo("Asia/Shanghai"))
    mornings = {pd.Timestamp(dt.datetime.combine(day, ten)) for day in reexport_mornings(START, END)}
    weekly = refunds & (folder != "settled")
    assert set(recorded[weekly]) <= mornings and recorded[weekly].max() < recorded[refunds & ~weekly].min()
    settled = now["refund_amount"].to_numpy()
    # growing from the first export's 42% on, never past the settled amount
    assert ((old < new) & (old >= 0.42 * settled - 0.01) & (new <= settled))[refunds].all()
    # each slow brand-day's last restatement is the settled amount the metrics hold; nearly every one was restated (a
    # brand-day with almost no refunds rounds to the same fen)
    last = revisions[refunds].drop_duplicates(["brand_id", "date"], keep="last")
    held = final.loc[list(zip(last["brand_id"], last["date"], strict=True)), "refund_amount"].to_numpy()
    assert np.array_equal(last["new_value"].astype(float).to_numpy(), held)
    slow_days = int(metrics["brand_id"].isin(slow).sum())
    assert 0.95 * slow_days <= len(last) <= slow_days
    # Commission: the 快分销 效果明细's estimate (3–10% above) settled by the store report's 结算佣金, on the end day
    # of the brands in their first 30 days.
    commission = ~refunds
    assert set(revisions["file"][commission].map(lambda f: Path(f).parent.name)) == {"全店成交分析"}
    assert set(revisions["date"][commission]) == {pd.Timestamp(END)}
    assert set(revisions["brand_id"][commission]) == {b.brand_id for b in brands if (END - b.start_date).days < 30}
    assert np.array_equal(new[commission], now["commission"].to_numpy()[commission])
    assert ((old[commission] / new[commission] > 1.02) & (old[commission] / new[commission] < 1.11)).all()


def test_each_report_is_imported_and_summarised(demo: DemoSummary, brands: list[DemoBrand]) -> None:
    reports = {r.report: r for r in demo.imports}
    # the profile recognised from each report's header row, as `brandsteps import` recognises it
    assert {name: r.profiles for name, r in reports.items()} == {
        "快分销 效果明细": ("kuaifenxiao-effect",),
        "全店成交分析 daily": ("kuaishou-store-daily",),
        "磁力金牛 account report": ("cililiujin-accounts",),
        "直播 live room": ("live-room",),
        "流量来源 traffic": ("traffic",),
        "客户分析 customers": ("customers",),
        "店铺服务 service": ("service",),
        "快分销 数据概览": ("affiliates",),
        "per-item sales": ("kuaishou-items-daily",),
        RESTATED_REPORT: ("kuaishou-store-daily",),
    }
    store = reports["全店成交分析 daily"]
    # every brand-day comes with the store report, but the few the 快分销 detail (imported first) brought
    assert store.files == store.brands == 50 and store.brand_days == demo.n_rows
    assert store.new_rows == demo.n_rows - reports["快分销 效果明细"].new_rows
    # the store report writes UTF-8 with a BOM, GBK and a few workbooks
    suffixes = pd.Series([e.path.suffix for e in demo.exports if e.report == "全店成交分析 daily"]).value_counts()
    assert set(suffixes.index) == {".csv", ".xlsx"} and 0 < suffixes[".xlsx"] <= 5
    # one 磁力金牛 file for every ad account; the provider's test account is skipped, the brand without ads has no rows
    ads = reports["磁力金牛 account report"]
    assert (
        ads.files == 1
        and ads.brands == 49
        and ads.skipped == (f"account {ACCOUNT_NOBODY} (7 rows, 2026-11-15 to 2026-11-21)",)
    )
    # the overview's selling 达人 are the detail's: the detail's brand-days come back unchanged
    assert reports["快分销 数据概览"].unchanged == reports["快分销 效果明细"].brand_days > 0
    again = reports[RESTATED_REPORT]
    assert again.revisions > 0 and "restated (kept in" in again.line()
    # the slow stores' re-exports, of the two indicators that matter: a file for each weekly morning after the store's
    # start (one covering a day of it) and the settled one
    slow = [b for b in brands if b.config["category"] == "apparel" or b.archetype == "late_refunds"]
    assert again.brands == len(slow) and again.columns == ("gmv", "refund_amount")
    assert again.files == sum(1 + sum(day > b.start_date for day in reexport_mornings(START, END)) for b in slow)


def test_a_demo_written_again_is_rebuilt_from_its_own_exports(tmp_path: Path) -> None:
    # A second demo into the same folder (another period, fewer brands): the metrics come from its exports
    # alone, none already imported by the first is skipped, and the first's exports are gone.
    write_demo_folder(tmp_path, n_brands=14, days=40, end=END - dt.timedelta(days=3), seed=SEED)
    second = write_demo_folder(tmp_path, n_brands=12, days=40, end=END, seed=SEED)
    frame = pd.read_parquet(second.metrics_path)
    assert (
        len(frame) == second.n_rows and frame["date"].max() == pd.Timestamp(END) and frame["brand_id"].nunique() == 12
    )
    assert len(read_jsonl(file_records(second.metrics_path).imports, IMPORT_COLUMNS)) == len(second.exports)
    assert sorted(p for p in second.exports_dir.rglob("*") if p.is_file()) == sorted(e.path for e in second.exports)


def test_the_demo_imports_into_its_own_metrics_whatever_the_environment_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # BRANDSTEPS_METRICS overrides onboarding.yaml for every command; the demo's imports never go there.
    elsewhere = tmp_path / "production" / "metrics.parquet"
    monkeypatch.setenv("BRANDSTEPS_METRICS", str(elsewhere))
    summary = write_demo_folder(tmp_path / "demo", n_brands=12, days=40, end=END, seed=SEED)
    assert not elsewhere.parent.exists() and len(pd.read_parquet(summary.metrics_path)) == summary.n_rows


def test_synthetic_portfolio_and_metrics() -> None:
    portfolio = plan_synthetic_portfolio(3_000, START, seed=3)
    kinds = pd.Series([b.archetype for b in portfolio]).value_counts(normalize=True)
    assert kinds.idxmax() == "steady" and kinds["steady"] > 0.7  # mostly steady by weight
    assert len({b.brand_id for b in portfolio}) == 3_000
    assert all(set(b.config) <= CONFIG_KEYS for b in portfolio)
    frame = generate_daily_metrics(portfolio[:500], START, 35, seed=3)
    # stagger_days=0: every brand starts on START, so each has all 35 days (the gap starts on day 20).
    gaps = sum(len([d for d in b.gap_dates() if d <= START + dt.timedelta(days=34)]) for b in portfolio[:500])
    assert len(frame) == 500 * 35 - gaps
