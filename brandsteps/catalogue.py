"""The STEPS domain as data: stages, verdicts and actions, the measured base columns and the derived metrics."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, get_args

# The five stages in order: a type for the config models, and the same names as a tuple for everything else.
StageId = Literal["affiliate_trial", "public_traffic", "self_broadcast", "private_repurchase", "channel_exclusive"]
STAGE_IDS: tuple[str, ...] = get_args(StageId)
GRADUATED = "graduated"
EXITED = "exited"
# The stages the gates judge: the five, then graduated (watched by every stage's guardrails).
EVALUATED_STAGES: tuple[str, ...] = (*STAGE_IDS, GRADUATED)
# Everywhere a brand can stand, in funnel order.
STAGE_ORDER: tuple[str, ...] = (*STAGE_IDS, GRADUATED, EXITED)
TIERS: tuple[str, ...] = ("small", "mid", "large")
# The ledger's guardrail streak columns: per stage, its guardrails' failed evaluations in a row.
GUARD_COLUMNS: tuple[str, ...] = tuple(f"g_{s}" for s in STAGE_IDS)


def next_stage(stage_id: str) -> str:
    """The stage a brand advances to from stage_id: the next one, or graduated after the last."""
    i = STAGE_IDS.index(stage_id)
    return STAGE_IDS[i + 1] if i + 1 < len(STAGE_IDS) else GRADUATED


class Verdict(StrEnum):
    """A gate's verdict on a brand, most severe first: a cycle's worst verdict is the first of these it holds."""

    ERROR = "ERROR"
    INCONCLUSIVE = "INCONCLUSIVE"
    FAIL = "FAIL"
    PASS = "PASS"  # noqa: S105 - a verdict, not a password


class Action(StrEnum):
    """What a decision does with a brand, in the order summaries count them."""

    ADVANCE = "advance"
    GRADUATE = "graduate"
    AWAIT_APPROVAL = "await_approval"
    DEMOTE = "demote"
    RECYCLE = "recycle"
    EXIT = "exit"
    HOLD = "hold"


# The actions that end the brand's time in its stage (a recycle restarts the same stage's clock).
MOVING_ACTIONS: frozenset[Action] = frozenset(
    {Action.ADVANCE, Action.GRADUATE, Action.DEMOTE, Action.RECYCLE, Action.EXIT}
)

# One row per brand per day; a missing column or value means "not measured", never 0.
BASE_COLUMNS: tuple[str, ...] = (
    "uv_private",
    "uv_public_organic",
    "uv_public_paid",
    "watch_minutes",
    "live_minutes",
    "product_impressions",
    "product_clicks",
    "orders",
    "buyers",
    "returning_buyers",
    "gmv",
    "gmv_self",
    "gmv_affiliate",
    "gmv_exclusive",
    "refund_amount",
    "active_affiliates",
    "commission",
    "ad_spend",
    "ad_gmv",
    "orders_shipped_48h",
    "store_rating",
    "followers_new",
    "exclusive_skus",
)
KEY_COLUMNS: tuple[str, ...] = ("brand_id", "date")
# Columns whose values are levels on a day rather than flows summed over days.
LEVEL_COLUMNS: frozenset[str] = frozenset({"store_rating", "exclusive_skus", "active_affiliates"})
UV_COLUMNS: tuple[str, ...] = ("uv_private", "uv_public_organic", "uv_public_paid")
# min_sample accepts the base columns plus this count of days that have a row.
SAMPLE_KEYS: tuple[str, ...] = (*BASE_COLUMNS, "days_with_data")

Unit = Literal["money", "share", "count", "ratio", "minutes", "hours", "rating", "days"]


@dataclass(frozen=True)
class MetricDef:
    """One derived metric: how it is computed over a window and how it is shown."""

    name: str
    kind: Literal["sum", "ratio", "mean", "last", "special"]
    unit: Unit
    description: str
    numerator: str = ""
    denominator: str = ""
    scale: float = 1.0
    upper_bound: float | None = None  # thresholds above this cannot be meant (shares ≤ 1)


def _ratio(name: str, num: str, den: str, unit: Unit, description: str, scale: float = 1.0) -> MetricDef:
    upper = 1.0 if unit == "share" else None
    return MetricDef(name, "ratio", unit, description, num, den, scale, upper)


# The metric table of docs/domain.md#metrics; every ratio is a ratio of window sums.
METRICS: dict[str, MetricDef] = {
    m.name: m
    for m in (
        MetricDef("gmv", "sum", "money", "sum of gmv", "gmv"),
        MetricDef("uv", "sum", "count", "visitors: uv_private + uv_public_organic + uv_public_paid", "uv"),
        _ratio("watch_minutes_per_uv", "watch_minutes", "uv", "minutes", "watch minutes per visitor"),
        _ratio("conversion_per_watch_minute", "buyers", "watch_minutes", "ratio", "buyers per watch minute"),
        _ratio("repurchase_frequency", "orders", "buyers", "ratio", "orders per buyer"),
        _ratio("aov", "gmv", "orders", "money", "GMV per order"),
        _ratio("gpm", "gmv", "uv", "money", "GMV per thousand visitors", scale=1000.0),
        MetricDef(
            "burst_coefficient",
            "special",
            "ratio",
            "peak 7-day rolling mean of daily gmv_affiliate / median daily gmv_affiliate",
            "gmv_affiliate",
        ),
        MetricDef("selling_affiliates", "mean", "count", "mean daily active_affiliates", "active_affiliates"),
        _ratio("commission_rate", "commission", "gmv_affiliate", "share", "commission / affiliate GMV"),
        _ratio("click_through_rate", "product_clicks", "product_impressions", "share", "clicks / impressions"),
        _ratio("click_conversion", "orders", "product_clicks", "share", "orders / product clicks"),
        _ratio("refund_rate", "refund_amount", "gmv", "share", "refund amount / GMV (by payment date)"),
        _ratio("paid_roi", "ad_gmv", "ad_spend", "ratio", "ad GMV / ad spend"),
        _ratio("ship_48h_rate", "orders_shipped_48h", "orders", "share", "orders shipped within 48h / orders"),
        MetricDef("store_rating", "last", "rating", "last store rating in the window", "store_rating", upper_bound=5.0),
        MetricDef("live_hours_per_day", "special", "hours", "live minutes / 60 / days in window", "live_minutes"),
        _ratio("self_broadcast_share", "gmv_self", "gmv", "share", "own-account GMV / GMV"),
        _ratio("affiliate_share", "gmv_affiliate", "gmv", "share", "affiliate GMV / GMV"),
        _ratio("private_uv_share", "uv_private", "uv", "share", "private-domain visitors / visitors"),
        _ratio("returning_buyer_share", "returning_buyers", "buyers", "share", "returning buyers / buyers"),
        MetricDef("follower_growth", "sum", "count", "sum of followers_new", "followers_new"),
        MetricDef("exclusive_sku_count", "last", "count", "last exclusive_skus in the window", "exclusive_skus"),
        _ratio("exclusive_gmv_share", "gmv_exclusive", "gmv", "share", "channel-exclusive GMV / GMV"),
        MetricDef("days_with_data", "special", "days", "days in the window that have a row"),
    )
}
METRIC_NAMES: tuple[str, ...] = tuple(METRICS)

# GMV = UV × watch time per visitor × buyer conversion per minute × repurchase frequency × AOV.
GMV_FACTORS: tuple[str, ...] = (
    "uv",
    "watch_minutes_per_uv",
    "conversion_per_watch_minute",
    "repurchase_frequency",
    "aov",
)


def base_columns(metric: str) -> tuple[str, ...]:
    """The measured columns a metric reads, in BASE_COLUMNS order (uv is the sum of the three visitor columns)."""
    spec = METRICS[metric]
    named = {spec.numerator, spec.denominator} - {""}
    if "uv" in named:
        named = (named - {"uv"}) | set(UV_COLUMNS)
    return tuple(c for c in BASE_COLUMNS if c in named)
