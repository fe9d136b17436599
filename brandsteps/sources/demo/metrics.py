"""Vectorised daily metrics for a planned portfolio, all brands at once, and the demo's corrupt rows."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pandas as pd

from brandsteps.catalogue import BASE_COLUMNS, TIERS
from brandsteps.sources.demo.archetypes import (
    ARCHETYPES,
    BURST_DAYS,
    CATEGORIES,
    CATEGORY_AOV,
    CATEGORY_REFUND,
    EXIT_REFUND,
    LATE_REFUND,
    SPIKE_REFUND,
    STUCK_VALUES,
    TIER_PROFILES,
)
from brandsteps.sources.demo.portfolio import DemoBrand


def _by_tier(rng: np.random.Generator, tier_idx: np.ndarray, key: str, log: bool = False) -> np.ndarray:
    """One value per brand drawn uniformly (or log-uniformly) from its tier's TIER_PROFILES range."""
    bounds = np.array([TIER_PROFILES[t][key] for t in TIERS], dtype=np.float64)
    lo, hi = bounds[tier_idx, 0], bounds[tier_idx, 1]
    u = rng.random(tier_idx.shape[0])
    values: np.ndarray = np.exp(np.log(lo) + (np.log(hi) - np.log(lo)) * u) if log else lo + (hi - lo) * u
    return values


def _noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Multiplicative day-to-day noise with median 1: exp of a triangular variable with standard deviation
    sigma (bell-shaped, bounded at ±2.45 sigma, and cheaper to draw than a normal one)."""
    out = rng.random(shape, dtype=np.float32)
    out += rng.random(shape, dtype=np.float32)
    out -= 1.0
    out *= sigma * math.sqrt(6.0)
    return np.exp(out, out=out).astype(np.float64)


def _promo_calendar(dates: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    """Per day: the promotion shape (0 normal, 0.35 in the 618 / Double 11 pre-sales, 1 on the three peak
    days of each) and whether the day lies within 3 days of a peak day (but is not one)."""
    month, day = dates.month.to_numpy(), dates.day.to_numpy()
    pre = ((month == 6) & (day <= 15)) | ((month == 11) & (day <= 8))
    peak = ((month == 6) & (day >= 16) & (day <= 18)) | ((month == 11) & (day >= 9) & (day <= 11))
    near_peak = (np.convolve(peak.astype(float), np.ones(7), mode="same") > 0) & ~peak
    return np.where(peak, 1.0, np.where(pre, 0.35, 0.0)), near_peak


def generate_daily_metrics(brands: list[DemoBrand], start: dt.date, days: int, seed: int) -> pd.DataFrame:
    """Daily metrics for every brand from max(start_date, start) to start + days - 1, all brands at once.

    Columns: brand_id, date (datetime64[ns]), then catalogue.BASE_COLUMNS as float64 (NaN = not measured).
    Rows are ordered by brand (in the given order) then date; archetype gaps have no rows. Every column is
    built as a (brands × days) array and flattened once it is final.
    """
    rng = np.random.default_rng(seed)
    n = len(brands)
    shape = (n, days)
    arch_names = list(ARCHETYPES)
    arch = np.array([arch_names.index(b.archetype) for b in brands], dtype=np.int64)
    tier = np.array([TIERS.index(b.config["tier"]) for b in brands], dtype=np.int64)
    category = np.array(  # a category outside CATEGORIES is generated like "home" (refunds 8–20%)
        [CATEGORIES.index(c) if (c := str(b.config["category"])) in CATEGORIES else 3 for b in brands],
        dtype=np.int64,
    )
    offset = np.array([(b.start_date - start).days for b in brands], dtype=np.int64)

    def is_arch(name: str) -> np.ndarray:
        mask: np.ndarray = arch == arch_names.index(name)
        return mask

    def in_archetype_window(attr: str, age: np.ndarray) -> np.ndarray:
        """(brands × days) mask of the days inside the archetype's (first day, length) window `attr`."""
        mask = np.zeros(shape, dtype=bool)
        for a in ARCHETYPES.values():
            window = getattr(a, attr)
            if window is not None:
                mask |= is_arch(a.name)[:, None] & (age >= window[0]) & (age < window[0] + window[1])
        return mask

    age = np.arange(days, dtype=np.int64)[None, :] - offset[:, None]  # days since the brand's start_date
    flat_keep = ((age >= 0) & ~in_archetype_window("gap", age)).ravel()
    refund_spike = in_archetype_window("refund_spike", age)
    unmeasured = {
        col: np.isin(arch, [arch_names.index(a.name) for a in ARCHETYPES.values() if col in a.unmeasured])
        for col in BASE_COLUMNS
    }
    out: dict[str, np.ndarray] = {}

    def emit(col: str, values: np.ndarray) -> None:
        """Store a finished column: kept rows only, NaN where the brand's archetype does not measure it."""
        if unmeasured[col].any():
            values = np.where(unmeasured[col][:, None], np.nan, values)
        out[col] = values.ravel()[flat_keep].astype(np.float64, copy=False)

    age_pos = np.maximum(age, 0)
    trend = np.exp(rng.uniform(0.0, 0.002, n)[:, None] * age_pos)  # slow growth, up to 0.2% a day

    # Calendar shared by all brands: weekends sell more, promotions burst 2–5× on their peak days.
    dates = pd.date_range(pd.Timestamp(start), periods=days, freq="D")
    weekday = dates.day_of_week.to_numpy()
    weekly = np.where(weekday >= 5, np.where(weekday == 6, 1.16, 1.12), 0.93)[None, :]
    promo_shape, near_peak = _promo_calendar(dates)
    peak = (promo_shape == 1.0)[None, :]
    promo = 1.0 + (rng.uniform(2.0, 5.0, n)[:, None] - 1.0) * promo_shape[None, :]

    # Per-brand levels of the GMV formula's factors (docs/domain.md#gmv-decomposition), by tier.
    uv0 = _by_tier(rng, tier, "uv", log=True)
    watch = _by_tier(rng, tier, "watch")
    buyer_rate = watch * _by_tier(rng, tier, "conv_per_minute")  # visitor → buyer
    freq = rng.uniform(1.2, 1.4, n)  # orders per buyer
    gpm_floor = _by_tier(rng, tier, "gpm_floor")
    aov_bounds = np.array([TIER_PROFILES[t]["aov"] for t in TIERS])[tier] * np.array([1.05, 0.95])
    aov = _by_tier(rng, tier, "aov", log=True) * np.array([CATEGORY_AOV[c] for c in CATEGORIES])[category]
    aov = np.clip(aov, aov_bounds[:, 0], aov_bounds[:, 1])
    aov = np.maximum(aov, gpm_floor / 1000 / (buyer_rate * freq))  # at most 95% of the tier's top AOV
    gmv_per_uv = buyer_rate * freq * aov

    # GMV split on a day without an affiliate burst: own accounts, affiliates, other (super link, cards).
    self_share = rng.uniform(0.50, 0.60, n)
    aff_share = rng.uniform(0.10, 0.18, n)
    stuck_self = is_arch("stuck_self_broadcast")
    self_share[stuck_self] = _stuck(rng, "stuck_self_broadcast", tier[stuck_self])
    aff_share[stuck_self] = 0.12
    other_share = 1.0 - self_share - aff_share

    # Visitors: private domain (fans), public organic, public paid.
    uv = (uv0[:, None] * weekly) * trend * promo * _noise(rng, shape, 0.12)
    priv = np.rint(uv * (rng.uniform(0.50, 0.60, n)[:, None] * _noise(rng, shape, 0.04)))
    paid = np.rint(uv * (rng.uniform(0.12, 0.22, n)[:, None] * _noise(rng, shape, 0.06)))
    organic = np.maximum(np.rint(uv) - priv - paid, 0.0)
    uv = priv + organic + paid
    emit("uv_private", priv)
    emit("uv_public_organic", organic)
    emit("uv_public_paid", paid)
    del priv, organic, paid
    emit("watch_minutes", np.round(uv * watch[:, None] * _noise(rng, shape, 0.08), 1))
    live = _by_tier(rng, tier, "live_minutes")[:, None] * (1.0 + 0.3 * promo_shape[None, :])
    emit("live_minutes", np.minimum(np.rint(live * _noise(rng, shape, 0.1)), 1440.0))
    del live

    # Hit-SKU bursts: two days every 9–10 days at 6–10× (heavy-tailed) lift affiliate GMV, so every 14-day
    # window holds one whole burst and its burst coefficient stays well above target. Affiliates sell at
    # their normal level through a pre-sale and burst on its peak days; periodic bursts pause around them.
    period = rng.integers(9, 11, n)[:, None]
    phase = rng.integers(0, 10, n)[:, None]
    is_burst = ((((age + phase) % period) < BURST_DAYS) & ~near_peak[None, :]) | peak
    lomax = rng.random(shape) ** (-1 / 2.5) - 1.0  # Pareto (Lomax) with shape 2.5, by inversion
    burst = np.where(is_burst, np.minimum(6.0 + 1.5 * lomax, 10.0), 1.0)
    del lomax, age

    # GMV = self + affiliate + other; the brand's own traffic drives self and other. Affiliates sell to
    # their own fans: their GMV follows the brand's trend, not its daily traffic.
    funnel = uv * gmv_per_uv[:, None] * _noise(rng, shape, 0.10)
    gmv_self = np.round(funnel * self_share[:, None] * _noise(rng, shape, 0.05), 2)
    gmv = np.round(funnel * other_share[:, None] * _noise(rng, shape, 0.10), 2)
    gmv_aff = (uv0 * gmv_per_uv * aff_share)[:, None] * weekly * trend * burst
    gmv_aff = np.round(gmv_aff * _noise(rng, shape, 0.15), 2)
    gmv += gmv_self
    gmv += gmv_aff
    np.round(
        gmv, 2, out=gmv
    )  # three amounts in fen add up to fen, but not always in binary floating point: exports carry fen
    del burst
    emit("gmv", gmv)
    emit("gmv_self", gmv_self)
    emit("gmv_affiliate", gmv_aff)
    del gmv_self

    orders = np.maximum(np.rint(gmv / (aov[:, None] * _noise(rng, shape, 0.05))), 1.0)
    buyers = np.clip(np.rint(orders / (freq[:, None] * _noise(rng, shape, 0.03))), 1.0, orders)
    returning_share = rng.uniform(0.38, 0.55, n)
    stuck_rep = is_arch("stuck_private_repurchase")
    returning_share[stuck_rep] = _stuck(rng, "stuck_private_repurchase", tier[stuck_rep])
    returning = np.rint(buyers * returning_share[:, None] * _noise(rng, shape, 0.08))
    emit("returning_buyers", np.minimum(returning, buyers))
    emit("buyers", buyers)
    del returning, buyers
    clicks = np.rint(orders / (rng.uniform(0.04, 0.07, n)[:, None] * _noise(rng, shape, 0.08)))
    clicks = np.maximum(clicks, orders)
    impressions = np.rint(clicks / (rng.uniform(0.06, 0.10, n)[:, None] * _noise(rng, shape, 0.08)))
    emit("product_impressions", np.maximum(impressions, clicks))
    emit("product_clicks", clicks)
    del impressions, clicks
    shipped = np.rint(orders * rng.uniform(0.92, 0.99, n)[:, None] * _noise(rng, shape, 0.02))
    emit("orders_shipped_48h", np.minimum(shipped, orders))
    emit("orders", orders)
    del shipped, orders

    # Exclusive SKUs: a few at start, one more every 25–45 days; their GMV share grows with them.
    sku0 = np.floor(_by_tier(rng, tier, "exclusive_skus") + 0.5)
    sku_step = rng.uniform(25, 45, n)
    stuck_sku = is_arch("stuck_channel_exclusive")
    sku0[stuck_sku] = _stuck(rng, "stuck_channel_exclusive", tier[stuck_sku])
    sku_step[stuck_sku] = np.inf
    new_skus = np.minimum(np.floor(age_pos / sku_step[:, None]), 4.0)
    exclusive_share = rng.uniform(0.14, 0.22, n)[:, None] * (1.0 + 0.04 * new_skus)
    # Whole yuan, as the SKUs' prices: a per-item export's rows then add up to it exactly in any order (floats
    # of fen do not: 0.1 + 0.2 != 0.3), and a reader may add them pairwise.
    emit("gmv_exclusive", np.floor(gmv * exclusive_share * _noise(rng, shape, 0.10)))
    emit("exclusive_skus", sku0[:, None] + new_skus)
    del new_skus, exclusive_share, age_pos

    # Refunds by payment date: the category's rate; ~75% of GMV in a refund spike.
    refund_bounds = np.array([CATEGORY_REFUND[c] for c in CATEGORIES])[category]
    refund_rate = refund_bounds[:, 0] + (refund_bounds[:, 1] - refund_bounds[:, 0]) * rng.random(n)
    exits = is_arch("exit_candidate")
    refund_rate[exits] = rng.uniform(*EXIT_REFUND, int(exits.sum()))
    late = np.isin(arch, [arch_names.index(a.name) for a in ARCHETYPES.values() if a.late_refunds])
    refund_rate[late] = np.array([LATE_REFUND[t] for t in TIERS])[tier[late]]
    daily_refund = np.where(refund_spike, SPIKE_REFUND, refund_rate[:, None])
    refund_noise = _noise(rng, shape, 0.08)
    # late_refunds' rate holds steady (3% a day, not 8%): its decisions turn on how far its refunds had arrived
    refund_noise[late] **= 0.375
    emit("refund_amount", np.minimum(np.round(gmv * daily_refund * refund_noise, 2), gmv))
    del daily_refund, refund_spike, refund_noise

    affiliates = _by_tier(rng, tier, "affiliates", log=True)
    stuck_aff = is_arch("stuck_affiliate_trial")
    affiliates[stuck_aff] = _stuck(rng, "stuck_affiliate_trial", tier[stuck_aff])
    active = (affiliates[:, None] * weekly) * (1.0 + 0.3 * promo_shape[None, :]) * np.where(is_burst, 1.6, 1.0)
    emit("active_affiliates", np.rint(active * _noise(rng, shape, 0.10)))
    del active, is_burst
    commission_rate = _by_tier(rng, tier, "commission")
    emit("commission", np.round(gmv_aff * commission_rate[:, None] * _noise(rng, shape, 0.03), 2))
    del gmv_aff

    # Paid traffic: ad GMV is a share of the own-traffic GMV, ad spend follows from the brand's ROI.
    roi = _by_tier(rng, tier, "roi")
    stuck_roi = is_arch("stuck_public_traffic")
    roi[stuck_roi] = _stuck(rng, "stuck_public_traffic", tier[stuck_roi])
    ad_gmv = np.round(funnel * rng.uniform(0.20, 0.30, n)[:, None] * _noise(rng, shape, 0.10), 2)
    emit("ad_spend", np.round(ad_gmv / (roi[:, None] * _noise(rng, shape, 0.10)), 2))
    emit("ad_gmv", ad_gmv)
    del ad_gmv, funnel

    u = rng.random(shape, dtype=np.float32)
    rating_jitter = np.where(u < 0.15, -0.1, np.where(u > 0.85, 0.1, 0.0))  # ±0.1 on 15% of days each
    rating = rng.choice(np.array([4.7, 4.8, 4.9]), size=n)[:, None] + rating_jitter
    emit("store_rating", np.round(np.clip(rating, 0.0, 5.0), 1))
    del u, rating_jitter, rating
    followers = np.maximum(rng.uniform(0.04, 0.07, n), 1.4 * _by_tier(rng, tier, "followers_floor") / (0.93 * uv0))
    emit("followers_new", np.rint(uv * followers[:, None] * _noise(rng, shape, 0.15)))
    del uv, gmv

    # One row per kept brand-day, brand-major.
    keep_per_brand = flat_keep.reshape(shape).sum(axis=1)
    day_index = np.broadcast_to(np.arange(days), shape).ravel()[flat_keep]
    data: dict[str, Any] = {
        "brand_id": _repeat_strings([b.brand_id for b in brands], np.repeat(np.arange(n), keep_per_brand)),
        "date": (np.datetime64(start, "D") + day_index).astype("datetime64[ns]"),
    }
    data.update((col, out.pop(col)) for col in BASE_COLUMNS)
    return pd.DataFrame(data, copy=False)


def _repeat_strings(values: list[str], take: np.ndarray) -> Any:
    """pd.array of values[take] with the default string dtype, taken in Arrow (7× faster than Python strings)."""
    import pyarrow as pa

    return pd.array(pa.array(values, type=pa.string()).take(pa.array(take)), dtype="str")


def _stuck(rng: np.random.Generator, archetype: str, tier_idx: np.ndarray) -> np.ndarray:
    """The failing value of a stuck archetype for each of its brands, by tier."""
    bounds = np.array([STUCK_VALUES[archetype][t] for t in TIERS], dtype=np.float64)
    lo, hi = bounds[tier_idx, 0], bounds[tier_idx, 1]
    values: np.ndarray = lo + (hi - lo) * rng.random(tier_idx.shape[0])
    return values


def corrupt_rows(df: pd.DataFrame, brands: list[DemoBrand], seed: int) -> pd.DataFrame:
    """A copy of df where each corrupt_row brand gets orders = -3 on one row and store_rating = 7.5 on another."""
    rng = np.random.default_rng(seed)
    targets = [b.brand_id for b in brands if b.archetype == "corrupt_row"]
    positions = np.flatnonzero(df["brand_id"].isin(targets).to_numpy())
    # Two random rows per brand (brands with a single row are left alone): the first gets the bad orders.
    picks = pd.DataFrame({"position": positions, "brand_id": df["brand_id"].to_numpy()[positions]})
    picks = picks.iloc[rng.permutation(len(picks))]
    rank = picks.groupby("brand_id").cumcount().to_numpy()
    enough = picks.groupby("brand_id")["position"].transform("size").to_numpy() >= 2
    chosen = picks["position"].to_numpy()
    orders = df["orders"].to_numpy(dtype=np.float64, copy=True)
    orders[chosen[(rank == 0) & enough]] = -3.0
    rating = df["store_rating"].to_numpy(dtype=np.float64, copy=True)
    rating[chosen[(rank == 1) & enough]] = 7.5
    return df.assign(orders=orders, store_rating=rating)  # the other columns are shared, not copied
