"""Window metrics: hand-computed values, missing instead of 0, and the exact GMV decomposition."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brandsteps.catalogue import BASE_COLUMNS, GMV_FACTORS, UV_COLUMNS
from brandsteps.engine.window import compute_window_metrics, gmv_factor_product


def daily(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    frame["date"] = pd.to_datetime(frame["date"])
    for c in BASE_COLUMNS:
        if c not in frame:
            frame[c] = np.nan
        frame[c] = frame[c].astype(float)
    frame["uv"] = frame[list(UV_COLUMNS)].sum(axis=1, min_count=3)
    return frame


def windows(brands: dict[str, tuple[str, str]]) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "window_start": [pd.Timestamp(s) for s, _ in brands.values()],
            "window_end": [pd.Timestamp(e) for _, e in brands.values()],
        },
        index=pd.Index(list(brands), name="brand_id"),
    )
    out["window_len"] = (out["window_end"] - out["window_start"]).dt.days + 1
    return out


TWO_DAYS = [
    {
        "brand_id": "a",
        "date": "2026-01-01",
        "gmv": 1000,
        "orders": 10,
        "buyers": 8,
        "refund_amount": 100,
        "store_rating": 4.8,
        "uv_private": 100,
        "uv_public_organic": 200,
        "uv_public_paid": 100,
        "watch_minutes": 800,
        "live_minutes": 120,
    },
    {
        "brand_id": "a",
        "date": "2026-01-02",
        "gmv": 3000,
        "orders": 30,
        "buyers": 22,
        "refund_amount": 500,
        "store_rating": np.nan,
        "uv_private": 300,
        "uv_public_organic": 100,
        "uv_public_paid": 200,
        "watch_minutes": 1200,
        "live_minutes": 240,
    },
    # outside the window: must not count
    {"brand_id": "a", "date": "2026-01-03", "gmv": 99999, "orders": 1, "buyers": 1},
]


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        pytest.param("gmv", 4000.0, id="gmv-sum"),  # 1000 + 3000
        # a ratio of sums (0.15), not the mean of daily ratios (0.133)
        pytest.param("refund_rate", 600 / 4000, id="refund-rate-ratio-of-sums"),
        pytest.param("aov", 4000 / 40, id="aov"),  # gmv / orders
        pytest.param("repurchase_frequency", 40 / 30, id="repurchase-frequency"),  # orders / buyers
        pytest.param("uv", 1000.0, id="uv"),  # 400 + 600 visitors
        pytest.param("gpm", 4000 / 1000 * 1000, id="gpm"),  # gmv per thousand visitors
        pytest.param("private_uv_share", 400 / 1000, id="private-uv-share"),
        pytest.param("watch_minutes_per_uv", 2000 / 1000, id="watch-per-uv"),
        pytest.param("conversion_per_watch_minute", 30 / 2000, id="conversion-per-minute"),  # buyers / minutes
        pytest.param("store_rating", 4.8, id="store-rating-last-measured"),  # day 2 has no rating: day 1's
        pytest.param("live_hours_per_day", 360 / 60 / 2, id="live-hours-per-day"),  # 6 hours over a 2-day window
        pytest.param("days_with_data", 2.0, id="days-with-data"),  # the third row is outside the window
    ],
)
def test_hand_computed_metrics(metric: str, expected: float) -> None:
    m = compute_window_metrics(daily(TWO_DAYS), windows({"a": ("2026-01-01", "2026-01-02")}))
    assert m.loc["a", metric] == pytest.approx(expected)


def test_missing_is_never_zero() -> None:
    rows = [{"brand_id": "a", "date": "2026-01-01", "gmv": 0, "orders": 0, "refund_amount": 0}]
    m = compute_window_metrics(
        daily(rows), windows({"a": ("2026-01-01", "2026-01-01"), "ghost": ("2026-01-01", "2026-01-01")})
    )
    assert np.isnan(m.loc["a", "refund_rate"])  # 0 / 0 GMV has no value
    assert np.isnan(m.loc["a", "aov"])
    assert np.isnan(m.loc["a", "paid_roi"])  # ad columns never measured
    assert m.loc["a", "gmv"] == 0.0  # a measured 0 stays 0
    assert np.isnan(m.loc["ghost", "gmv"]) and m.loc["ghost", "days_with_data"] == 0  # no rows at all


def test_burst_coefficient_peak_week_over_median() -> None:
    # 14 days of 100 with a 5-day burst of 400 on days 8..12
    values = [100] * 7 + [400] * 5 + [100] * 2
    rows = [{"brand_id": "a", "date": f"2026-01-{d + 1:02d}", "gmv_affiliate": v} for d, v in enumerate(values)]
    m = compute_window_metrics(daily(rows), windows({"a": ("2026-01-01", "2026-01-14")}))
    peak = (5 * 400 + 2 * 100) / 7  # the best 7-day window holds the whole burst
    assert m.loc["a", "burst_coefficient"] == pytest.approx(peak / 100)  # median day is 100


def test_burst_needs_a_week() -> None:
    rows = [{"brand_id": "a", "date": f"2026-01-0{d + 1}", "gmv_affiliate": 100} for d in range(4)]
    m = compute_window_metrics(daily(rows), windows({"a": ("2026-01-01", "2026-01-04")}))
    assert np.isnan(m.loc["a", "burst_coefficient"])  # 4 days cannot make a 7-day mean


positive = st.floats(min_value=1e-3, max_value=1e7, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(positive, positive, positive, positive, positive, positive), min_size=1, max_size=20))
def test_gmv_factors_multiply_back_to_window_gmv(days: list[tuple[float, ...]]) -> None:
    rows = [
        {
            "brand_id": "a",
            "date": pd.Timestamp("2026-01-01") + pd.Timedelta(days=i),
            "gmv": g,
            "orders": o,
            "buyers": b,
            "watch_minutes": w,
            "uv_private": u,
            "uv_public_organic": u2,
            "uv_public_paid": 0.0,
        }
        for i, (g, o, b, w, u, u2) in enumerate(days)
    ]
    frame = daily(rows)
    m = compute_window_metrics(frame, windows({"a": ("2026-01-01", "2026-01-31")}))
    assert gmv_factor_product(m).loc["a"] == pytest.approx(frame["gmv"].sum(), rel=1e-9)
    assert all(m.loc["a", f] > 0 for f in GMV_FACTORS)


@pytest.mark.parametrize(
    ("num", "den", "expected"),
    [
        pytest.param(3.0, 2.0, 1.5, id="a-number"),
        pytest.param(3.0, 0.0, None, id="zero-denominator"),  # nothing to divide by: missing, not inf
        pytest.param(float("nan"), 2.0, None, id="numerator-not-measured"),
        pytest.param(1e300, 1e-10, None, id="beyond-a-float"),  # no measurement, not inf
    ],
)
def test_ratio_is_a_number_or_missing(num: float, den: float, expected: float | None) -> None:
    from brandsteps.engine.window import _ratio

    out = float(_ratio(np.array([num]), np.array([den]))[0])
    assert np.isnan(out) if expected is None else out == expected


def test_burst_only_for_the_brands_whose_rules_read_it() -> None:
    # the same 14 days for a and b; only a's rules read burst_coefficient (windows' burst column)
    values = [100] * 7 + [400] * 5 + [100] * 2
    rows = [
        {"brand_id": b, "date": f"2026-01-{d + 1:02d}", "gmv_affiliate": v}
        for b in ("a", "b")
        for d, v in enumerate(values)
    ]
    w = windows({"a": ("2026-01-01", "2026-01-14"), "b": ("2026-01-01", "2026-01-14")}).assign(burst=[True, False])
    m = compute_window_metrics(daily(rows), w)
    assert m.loc["a", "burst_coefficient"] == pytest.approx((5 * 400 + 2 * 100) / 7 / 100)  # as when computed for all
    assert (
        np.isnan(m.loc["b", "burst_coefficient"]) and m.loc["b", "sum_gmv_affiliate"] == m.loc["a", "sum_gmv_affiliate"]
    )  # the rest is unchanged


# Rows of brands a and b as (brand, day of January, hour, store_rating); the window is January 1 to 3.
@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        # the latest day wins, whatever the order of the rows; b has no row: missing
        pytest.param([("a", 1, 0, 1.0), ("a", 3, 0, 3.0), ("a", 2, 0, 2.0)], [3.0, None], id="rows-out-of-date-order"),
        # a's last day is not measured: the day before it is the latest measured one
        pytest.param([("a", 1, 0, 1.0), ("a", 3, 0, None), ("b", 2, 0, 5.0)], [1.0, 5.0], id="unmeasured-last-day"),
        # two rows of one day: the later time of day is the later value
        pytest.param([("a", 2, 18, 2.0), ("a", 2, 9, 1.0)], [2.0, None], id="two-rows-of-one-day"),
        # a later day wins even at an earlier time of day
        pytest.param([("b", 1, 23, 4.0), ("b", 2, 1, 6.0)], [None, 6.0], id="later-day-earlier-hour"),
    ],
)
def test_last_metrics_read_each_brands_latest_measured_row(
    rows: list[tuple[str, int, int, float | None]], expected: list[float | None]
) -> None:
    frame = daily([{"brand_id": b, "date": "2026-01-01", "store_rating": v} for b, _, _, v in rows])
    frame["date"] = [pd.Timestamp(2026, 1, day, hour) for _, day, hour, _ in rows]
    m = compute_window_metrics(frame, windows({"a": ("2026-01-01", "2026-01-03"), "b": ("2026-01-01", "2026-01-03")}))
    assert [None if np.isnan(v) else v for v in m["store_rating"].tolist()] == expected


def test_a_brand_with_an_unmeasured_day_sums_only_its_measured_days() -> None:
    frame = pd.DataFrame(
        {
            "brand_id": ["a", "a", "b", "b", "c"],
            "date": pd.to_datetime(["2026-01-01", "2026-01-02"] * 2 + ["2026-01-01"]),
        }
    )
    for col in (*BASE_COLUMNS, "uv"):
        frame[col] = 1.0
    frame["gmv"] = [10.0, np.nan, np.inf, -np.inf, np.nan]
    w = windows({b: ("2026-01-01", "2026-01-02") for b in ("a", "b", "c")})
    m = compute_window_metrics(frame, w)
    assert m.loc["a", "gmv"] == 10.0  # one measured day of two
    assert np.isnan(m.loc["b", "gmv"])  # inf + -inf has no value
    assert np.isnan(m.loc["c", "gmv"])  # never measured: missing, not 0
    assert m["sum_orders"].tolist() == [2.0, 2.0, 1.0]  # every day of the other columns counts


def test_categorical_brand_ids_give_the_metrics_of_text_ids() -> None:
    # load_metrics hands brand_id over as a Categorical (categories in any order, some unused)
    text = daily(TWO_DAYS + [{"brand_id": "stranger", "date": "2026-01-01", "gmv": 5}])
    categorical = text.assign(brand_id=pd.Categorical(text["brand_id"], categories=["stranger", "unused", "a"]))
    w = windows({"a": ("2026-01-01", "2026-01-02"), "ghost": ("2026-01-01", "2026-01-02")})
    pd.testing.assert_frame_equal(
        compute_window_metrics(categorical, w), compute_window_metrics(text, w), check_exact=True
    )
    assert compute_window_metrics(categorical, w).loc["a", "gmv"] == 4000.0  # 1000 + 3000; the stranger's row not read
