"""The demo's kinds of brand (archetypes) and the magnitudes their metrics are drawn from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CATEGORIES: tuple[str, ...] = ("apparel", "beauty", "food", "home", "digital", "mother-baby")
DEMO_DAYS = 180  # the period that the archetypes' start windows are laid out for


@dataclass(frozen=True)
class Archetype:
    """A kind of brand in the demo portfolio: how many there are, when they start, how their data looks."""

    name: str
    description: str
    per_50: int  # brands of this kind in a 50-brand demo portfolio
    synthetic_weight: float  # share of this kind in plan_synthetic_portfolio
    start_window: tuple[int, int]  # first and last start day within a DEMO_DAYS period
    fails: tuple[str, str] | None = None  # (stage id, metric) of the must criterion it keeps failing
    gap: tuple[int, int] | None = None  # (first day after start_date, number of days) without rows
    refund_spike: tuple[int, int] | None = None  # (first day after start_date, days) refunds ≈ 75% of gmv
    unmeasured: tuple[str, ...] = ()  # base columns that are never measured (NaN)
    non_apparel: bool = False  # the anomaly must not be hidden by the apparel refund overrides
    # Refunds settle at LATE_REFUND, just above the affiliate_trial limit, and arrive over weeks like apparel's (its
    # store is re-exported weekly); it starts on a re-export's weekday, so its first decisions see a fresh re-export.
    late_refunds: bool = False

    @property
    def stuck_stage(self) -> str | None:
        """The stage a stuck_<stage id> brand stays in."""
        return self.fails[0] if self.fails and self.name.startswith("stuck_") else None


ARCHETYPES: dict[str, Archetype] = {
    a.name: a
    for a in (
        Archetype("fast_riser", "passes every criterion from day one; graduates in about 115 days", 3, 0.03, (0, 9)),
        Archetype("steady", "passes every stage; starts staggered so the end funnel is spread", 0, 0.80, (0, 170)),
        Archetype(
            "stuck_affiliate_trial",
            "too few selling affiliates for the affiliate_trial must criterion",
            1,
            0.02,
            (20, 130),
            fails=("affiliate_trial", "selling_affiliates"),
        ),
        Archetype(
            "stuck_public_traffic",
            "paid ROI well below target in public_traffic",
            2,
            0.02,
            (10, 120),
            fails=("public_traffic", "paid_roi"),
        ),
        Archetype(
            "stuck_self_broadcast",
            "self-broadcast GMV share under target, above its guardrail",
            1,
            0.02,
            (10, 100),
            fails=("self_broadcast", "self_broadcast_share"),
        ),
        Archetype(
            "stuck_private_repurchase",
            "returning-buyer share under target, above its guardrail",
            1,
            0.02,
            (5, 80),
            fails=("private_repurchase", "returning_buyer_share"),
        ),
        Archetype(
            "stuck_channel_exclusive",
            "one exclusive SKU short of the target count",
            1,
            0.02,
            (0, 40),
            fails=("channel_exclusive", "exclusive_sku_count"),
        ),
        Archetype(
            "refund_spike",
            "refunds jump to ~75% of GMV for 12 days: trips the refund guardrail and demotes",
            1,
            0.01,
            (0, 40),
            refund_spike=(76, 12),
            non_apparel=True,
        ),
        Archetype(
            "data_gaps",
            "no rows for 9 days early in public_traffic: days_with_data below min_sample",
            1,
            0.01,
            (10, 100),
            gap=(20, 9),
        ),
        Archetype(
            "unmeasured_ads",
            "ad_spend and ad_gmv not measured: paid_roi has no value",
            1,
            0.01,
            (10, 100),
            unmeasured=("ad_spend", "ad_gmv"),
        ),
        Archetype(
            "exit_candidate",
            "refund rate far above the norm in affiliate_trial, whose on_fail is exit",
            1,
            0.01,
            (30, 140),
            fails=("affiliate_trial", "refund_rate"),
            non_apparel=True,
        ),
        Archetype(
            "late_refunds",
            "refunds by payment date settle just above the affiliate_trial limit but arrive late (the next "
            "morning's export shows 42% of them): unlagged, the playbook would advance it on immature refunds; "
            "lag_days 7 recycles it",
            1,
            0.01,
            (40, 100),
            non_apparel=True,
            late_refunds=True,
        ),
        Archetype("awaiting_approval", "good data; public_traffic needs a person's approval", 1, 0.01, (20, 120)),
        Archetype("paused", "good data; the brand is paused", 1, 0.01, (0, 120)),
        Archetype(
            "corrupt_row",
            "good data; corrupt_rows gives it one negative orders and one 7.5 rating",
            1,
            0.01,
            (0, 100),
        ),
    )
}
GOOD_ARCHETYPES: frozenset[str] = frozenset({"fast_riser", "steady", "awaiting_approval", "paused", "corrupt_row"})

# Apparel refunds run at 30–60%: gate them against the category norm in every stage that checks refund_rate.
APPAREL_GATES: dict[str, dict[str, Any]] = {
    "affiliate_trial": {"criteria": [{"metric": "refund_rate", "op": "<=", "threshold": 0.65, "kind": "must"}]},
    "public_traffic": {"guardrails": [{"metric": "refund_rate", "op": "<=", "threshold": 0.7, "kind": "must"}]},
    "channel_exclusive": {"criteria": [{"metric": "refund_rate", "op": "<=", "threshold": 0.65, "kind": "must"}]},
}

# Per-tier parameter ranges (lo, hi) for good brands: docs/domain.md#realistic-magnitudes, chosen so that every
# criterion, guardrail and min_sample of configs/steps.yaml is cleared in every window, with margin.
TIER_PROFILES: dict[str, dict[str, tuple[float, float]]] = {
    "small": {
        "uv": (3_000, 12_000),  # visitors per day, before growth
        "watch": (0.6, 0.85),  # watch minutes per visitor (36–51 s)
        "conv_per_minute": (0.011, 0.0145),  # buyers per watch minute → visitor→buyer 0.7–1.2%
        "aov": (40, 100),
        "affiliates": (20, 100),
        "commission": (0.16, 0.28),
        "roi": (1.9, 2.5),
        "live_minutes": (170, 300),
        "gpm_floor": (520, 520),  # GMV per thousand visitors, without affiliate bursts
        "followers_floor": (150, 150),  # new followers per day
        "exclusive_skus": (3, 4),  # at start; one more every 25–45 days
    },
    "mid": {
        "uv": (30_000, 120_000),
        "watch": (1.1, 1.5),
        "conv_per_minute": (0.013, 0.0175),
        "aov": (60, 200),
        "affiliates": (180, 1_000),
        "commission": (0.11, 0.24),
        "roi": (2.5, 4.0),
        "live_minutes": (320, 540),
        "gpm_floor": (1_950, 1_950),
        "followers_floor": (1_500, 1_500),
        "exclusive_skus": (4, 5),
    },
    "large": {
        "uv": (300_000, 1_100_000),
        "watch": (1.5, 2.0),
        "conv_per_minute": (0.013, 0.017),
        "aov": (80, 300),
        "affiliates": (1_800, 10_000),
        "commission": (0.06, 0.20),
        "roi": (3.2, 6.0),
        "live_minutes": (480, 900),
        "gpm_floor": (3_900, 3_900),
        "followers_floor": (15_000, 15_000),
        "exclusive_skus": (6, 7),
    },
}
# Refund rate (refund amount / GMV) of good brands by category (docs/domain.md#realistic-magnitudes).
CATEGORY_REFUND: dict[str, tuple[float, float]] = {
    "apparel": (0.30, 0.55),
    "beauty": (0.10, 0.22),
    "food": (0.03, 0.10),
    "home": (0.08, 0.20),
    "digital": (0.08, 0.18),
    "mother-baby": (0.08, 0.20),
}
CATEGORY_AOV: dict[str, float] = {
    "apparel": 0.8,
    "beauty": 1.0,
    "food": 0.7,
    "home": 1.1,
    "digital": 1.6,
    "mother-baby": 1.0,
}
# The failing value of each stuck archetype, by tier (between guardrail and target where a guardrail exists).
STUCK_VALUES: dict[str, dict[str, tuple[float, float]]] = {
    "stuck_affiliate_trial": {"small": (3, 6), "mid": (30, 60), "large": (300, 600)},  # active affiliates
    "stuck_public_traffic": {"small": (0.8, 1.05), "mid": (1.0, 1.4), "large": (1.3, 1.8)},  # paid ROI
    "stuck_self_broadcast": {"small": (0.16, 0.16), "mid": (0.20, 0.20), "large": (0.25, 0.25)},  # self share
    "stuck_private_repurchase": {"small": (0.15, 0.15), "mid": (0.185, 0.185), "large": (0.225, 0.225)},
    "stuck_channel_exclusive": {"small": (1, 1), "mid": (2, 2), "large": (4, 4)},  # exclusive SKUs
}
EXIT_REFUND = (0.52, 0.60)
# late_refunds' settled refund rate by tier: about 23% above the affiliate_trial (and channel_exclusive) limits of
# 40/35/30%, below the public_traffic guardrail's 50/45/40%. The unlagged window, with its youngest days as the
# weekly re-exports left them, sees at most ~78% of it (below the limit); lagged 7 days ~88% (above).
LATE_REFUND: dict[str, float] = {"small": 0.49, "mid": 0.43, "large": 0.37}
SPIKE_REFUND = 0.75
BURST_DAYS = 2  # a hit-SKU burst lasts two days and comes back every 9–10 days
