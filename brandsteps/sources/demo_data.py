"""Synthetic demo portfolios and vectorised daily metrics for the STEPS onboarding flows."""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from brandsteps.catalogue import BASE_COLUMNS, TIERS
from brandsteps.sources.demo_exports import (
    DEMO_TIMEZONE,
    REEXPORT_EVERY,
    USER_PROFILES,
    ExportFile,
    ReportImport,
    export_ids,
    import_exports,
    remove_old_exports,
    write_exports,
)

CATEGORIES: tuple[str, ...] = ("apparel", "beauty", "food", "home", "digital", "mother-baby")
DEMO_DAYS = 180  # the period that the archetypes' start windows are laid out for
_DAY = dt.timedelta(days=1)


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

# Fictional brands: (Chinese name, pinyin/English name) by category.
BRAND_NAMES: dict[str, tuple[tuple[str, str], ...]] = {
    "apparel": (
        ("云裳记", "Yunshang Ji"),
        ("织梦坊", "Zhimeng Fang"),
        ("北纬衣橱", "Beiwei Closet"),
        ("棉麻集", "Mianma Linen"),
        ("潮町", "Chaoting Street"),
        ("素衣阁", "Suyi Studio"),
        ("锦绣年华", "Jinxiu Nianhua"),
        ("小野鹿", "Xiaoye Deer"),
        ("青衫客", "Qingshan Ke"),
        ("暖阳针织", "Nuanyang Knit"),
        ("江南布语", "Jiangnan Buyu"),
        ("白桦林", "Baihualin Wear"),
    ),
    "beauty": (
        ("花漾研", "Huayang Lab"),
        ("玉肌坊", "Yuji Fang"),
        ("初颜", "Chuyan Beauty"),
        ("水光计", "Shuiguang Ji"),
        ("青黛", "Qingdai Cosmetics"),
        ("雪莲萃", "Xuelian Essence"),
        ("芷若", "Zhiruo Skin"),
        ("蜜桃时光", "Mitao Shiguang"),
        ("草本札记", "Caoben Notes"),
        ("凝露", "Ninglu Dew"),
        ("朱颜", "Zhuyan Rouge"),
        ("月见", "Yuejian Beauty"),
    ),
    "food": (
        ("山岚茶舍", "Shanlan Tea"),
        ("老灶坊", "Laozao Fang"),
        ("蜀香居", "Shuxiang Ju"),
        ("五谷丰", "Wugu Feng"),
        ("椰林小铺", "Yelin Coconut"),
        ("塞上牧场", "Saishang Ranch"),
        ("果园日记", "Guoyuan Diary"),
        ("川味小厨", "Chuanwei Kitchen"),
        ("黑土稻香", "Heitu Rice"),
        ("滇红记", "Dianhong Tea"),
        ("海之味", "Haizhiwei Seafood"),
        ("麻辣研究所", "Mala Lab"),
    ),
    "home": (
        ("木语家居", "Muyu Home"),
        ("暖居坊", "Nuanju Fang"),
        ("净界", "Jingjie Clean"),
        ("安眠岛", "Anmian Island"),
        ("竹里馆", "Zhuli Bamboo"),
        ("陶然居", "Taoran Ceramics"),
        ("简物", "Jianwu Living"),
        ("小窝日记", "Xiaowo Diary"),
        ("清风纸品", "Qingfeng Tissue"),
        ("厨工坊", "Chugong Kitchenware"),
        ("拾光灯饰", "Shiguang Lighting"),
        ("素雅布艺", "Suya Textiles"),
    ),
    "digital": (
        ("极光数码", "Jiguang Digital"),
        ("声浪", "Shenglang Audio"),
        ("快充侠", "Kuaichong Xia"),
        ("星轨科技", "Xinggui Tech"),
        ("小智家", "Xiaozhi Smart"),
        ("镜界影像", "Jingjie Imaging"),
        ("云途电器", "Yuntu Appliances"),
        ("酷玩派", "Kuwan Pai"),
        ("光速配件", "Guangsu Accessories"),
        ("墨客键盘", "Moke Keyboards"),
        ("听涛耳机", "Tingtao Earphones"),
        ("掌心游", "Zhangxin Games"),
    ),
    "mother-baby": (
        ("小树苗", "Xiaoshumiao Sprout"),
        ("贝贝乐", "Beibei Le"),
        ("萌宝屋", "Mengbao House"),
        ("暖暖妈咪", "Nuannuan Mommy"),
        ("童趣园", "Tongqu Garden"),
        ("安心宝贝", "Anxin Baby"),
        ("小象成长", "Xiaoxiang Grow"),
        ("星星童装", "Xingxing Kids"),
        ("有机宝宝", "Youji Baby"),
        ("稻米熊", "Daomi Bear"),
        ("摇篮曲", "Yaolanqu Cradle"),
        ("奶瓶先生", "Mr Naiping"),
    ),
}
OWNERS: tuple[str, ...] = (
    "王敏 Wang Min",
    "李强 Li Qiang",
    "陈静 Chen Jing",
    "张伟 Zhang Wei",
    "刘洋 Liu Yang",
    "赵丽 Zhao Li",
)
TIER_WEIGHTS: tuple[float, ...] = (0.45, 0.35, 0.20)  # small, mid, large


@dataclass(frozen=True)
class DemoBrand:
    """One planned brand: its config (the configs/brands/<brand_id>.yaml content) and its archetype."""

    config: dict[str, Any]
    archetype: str

    @property
    def brand_id(self) -> str:
        return str(self.config["brand_id"])

    @property
    def start_date(self) -> dt.date:
        value: dt.date = self.config["start_date"]
        return value

    def gap_dates(self) -> list[dt.date]:
        """The dates this brand has no rows for (its archetype's gap), possibly beyond the period."""
        gap = ARCHETYPES[self.archetype].gap
        if gap is None:
            return []
        return [self.start_date + (gap[0] + i) * _DAY for i in range(gap[1])]


@dataclass(frozen=True)
class DemoSummary:
    """What write_demo_folder wrote."""

    folder: Path
    configs_dir: Path
    playbook_path: Path
    onboarding_path: Path
    metrics_path: Path  # the metrics file the exports were imported into (configs/onboarding.yaml's metrics)
    archetypes_path: Path
    brand_files: tuple[Path, ...]
    start: dt.date
    end: dt.date
    n_brands: int
    n_rows: int
    n_corrupt_rows: int
    archetypes: dict[str, str]  # brand_id → archetype
    exports_dir: Path
    exports: tuple[ExportFile, ...]  # in the order they were imported
    imports: tuple[ReportImport, ...]  # one per report


# ---------------------------------------------------------------------------------------------------------------
# Portfolio planning


def archetype_counts(n_brands: int) -> dict[str, int]:
    """How many brands of each archetype a portfolio of n_brands gets (per_50 scaled; steady takes the rest)."""
    counts: dict[str, int] = {}
    for name, arch in ARCHETYPES.items():
        if name == "steady":
            continue
        scaled = round(arch.per_50 * n_brands / 50)
        counts[name] = max(scaled, 1) if n_brands >= 20 else scaled
    excess = sum(counts.values()) - n_brands
    for name in reversed(list(counts)):  # tiny portfolios: drop the least essential archetypes first
        take = min(max(excess, 0), counts[name])
        counts[name] -= take
        excess -= take
    counts["steady"] = n_brands - sum(counts.values())
    return {name: counts[name] for name in ARCHETYPES}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _brand_config(
    brand_id: str, name: str, tier: str, category: str, start_date: dt.date, owner: str, archetype: str
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "brand_id": brand_id,
        "name": name,
        "tier": tier,
        "category": category,
        "start_date": start_date,
        "owner": owner,
    }
    if archetype == "paused":
        config["paused"] = True
    if archetype == "awaiting_approval":
        config["requires_approval"] = ["public_traffic"]
    gates: dict[str, Any] = {}
    if category == "apparel":
        gates.update(
            {
                stage: {key: [dict(c) for c in rules] for key, rules in gate.items()}
                for stage, gate in APPAREL_GATES.items()
            }
        )
    if archetype == "exit_candidate":
        gates.setdefault("affiliate_trial", {})["on_fail"] = "exit"
    if gates:
        config["gates"] = gates
    return config


def _default_start(start: dt.date | None, days: int) -> dt.date:
    return start if start is not None else dt.date.today() - (days - 1) * _DAY


def _on_reexport_weekday(offset: int, days: int) -> int:
    """The start offset moved to the weekday of the weekly re-exports (demo_exports.reexport_mornings: every
    REEXPORT_EVERY days back from the day after the period's last day), the nearest one in the period."""
    later = offset + (days - offset) % REEXPORT_EVERY
    return later if later < days else max(later - REEXPORT_EVERY, 0)


def plan_demo_portfolio(
    n_brands: int = 50, start: dt.date | None = None, seed: int = 7, days: int = DEMO_DAYS
) -> list[DemoBrand]:
    """Plan a demo portfolio of n_brands with realistic names, staggered starts and every archetype.

    start is the first day of the period (default: today - days + 1); the archetypes' start windows are
    laid out for a DEMO_DAYS period and scaled to `days`. Brand ids are numbered in start order.
    """
    start = _default_start(start, days)
    rng = np.random.default_rng(seed)
    scale = days / DEMO_DAYS
    planned: list[tuple[int, str]] = []  # (start offset, archetype)
    for name, count in archetype_counts(n_brands).items():
        lo, hi = ARCHETYPES[name].start_window
        for i in range(count):  # stratified: brands of one archetype spread over its window
            offset = min(int((lo + (hi - lo) * (i + rng.uniform(0.2, 0.8)) / count) * scale), max(days - 1, 0))
            planned.append((_on_reexport_weekday(offset, days) if ARCHETYPES[name].late_refunds else offset, name))
    planned.sort(key=lambda p: p[0])

    categories = [CATEGORIES[i % len(CATEGORIES)] for i in range(n_brands)]  # balanced, then shuffled
    rng.shuffle(categories)
    for i, (_, name) in enumerate(planned):  # anomalies that apparel overrides would hide: swap categories
        if ARCHETYPES[name].non_apparel and categories[i] == "apparel":
            j = next(
                (
                    j
                    for j, (_, other) in enumerate(planned)
                    if categories[j] != "apparel" and not ARCHETYPES[other].non_apparel
                ),
                i,
            )
            categories[i], categories[j] = categories[j], categories[i]
    tiers = rng.choice(np.array(TIERS), size=n_brands, p=TIER_WEIGHTS)
    pools = {cat: [names[k] for k in rng.permutation(len(names))] for cat, names in BRAND_NAMES.items()}
    used: dict[str, int] = dict.fromkeys(CATEGORIES, 0)
    width = max(3, len(str(n_brands)))

    brands: list[DemoBrand] = []
    for i, ((offset, name), category) in enumerate(zip(planned, categories, strict=True)):
        pool = pools[category]
        cn, en = pool[used[category] % len(pool)]
        round_ = used[category] // len(pool)
        used[category] += 1
        if round_:
            cn, en = f"{cn}{round_ + 1}号", f"{en} {round_ + 1}"
        brand_id = f"d{i + 1:0{width}d}-{_slug(en)}"
        config = _brand_config(
            brand_id,
            f"{cn} {en}",
            str(tiers[i]),
            category,
            start + offset * _DAY,
            OWNERS[int(rng.integers(len(OWNERS)))],
            name,
        )
        brands.append(DemoBrand(config, name))
    return brands


def plan_synthetic_portfolio(n_brands: int, start: dt.date, seed: int = 7, stagger_days: int = 0) -> list[DemoBrand]:
    """Plan a large synthetic portfolio cheaply: archetypes by synthetic_weight (mostly steady), plain names.

    Start dates fall uniformly in [start, start + stagger_days]; with the default 0 every brand has a row
    on every day of the period (the worst case for scale tests).
    """
    rng = np.random.default_rng(seed)
    names = list(ARCHETYPES)
    weights = np.array([ARCHETYPES[n].synthetic_weight for n in names])
    arch_idx = rng.choice(len(names), size=n_brands, p=weights / weights.sum())
    tier_idx = rng.choice(len(TIERS), size=n_brands, p=TIER_WEIGHTS)
    cat_idx = rng.integers(len(CATEGORIES), size=n_brands)
    non_apparel = np.array([ARCHETYPES[n].non_apparel for n in names])[arch_idx]
    cat_idx[non_apparel & (cat_idx == 0)] = 1  # beauty instead of apparel
    offsets = rng.integers(stagger_days + 1, size=n_brands)
    owner_idx = rng.integers(len(OWNERS), size=n_brands)
    return [
        DemoBrand(
            _brand_config(
                f"b{i:06d}",
                f"品牌 {i:05d} Brand {i}",
                TIERS[t],
                CATEGORIES[c],
                start + int(o) * _DAY,
                OWNERS[w],
                names[a],
            ),
            names[a],
        )
        for i, (a, t, c, o, w) in enumerate(
            zip(
                arch_idx.tolist(),
                tier_idx.tolist(),
                cat_idx.tolist(),
                offsets.tolist(),
                owner_idx.tolist(),
                strict=True,
            )
        )
    ]


# ---------------------------------------------------------------------------------------------------------------
# Daily metrics


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
    """pd.array of values[take] with the default string dtype; through Arrow when available (7× faster)."""
    try:
        import pyarrow as pa
    except ImportError:  # pragma: no cover - pandas without pyarrow
        return pd.array(np.array(values, dtype=object)[take], dtype="str")
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


# ---------------------------------------------------------------------------------------------------------------
# Demo folder


def playbook_source() -> Path:
    """The playbook to copy: the repository's configs/steps.yaml, else a packaged brandsteps/data/steps.yaml."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[2] / "configs" / "steps.yaml", here.parents[1] / "data" / "steps.yaml"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("no playbook found: neither configs/steps.yaml nor brandsteps/data/steps.yaml exists")


# One Parquet file: the demo imports a hundred-odd export files, and restating into a folder reads every file of
# the folder for each import.
DEMO_METRICS = "data/metrics.parquet"
ONBOARDING_YAML = f"""\
# The demo deployment. Relative paths resolve against the folder that holds configs/.
metrics: {DEMO_METRICS}
ledger: sqlite:///data/ledger.sqlite
timezone: {DEMO_TIMEZONE}
schedule: "0 9 * * *"
data_deadline: "12:00"
"""
_DEMO_ID = re.compile(r"^d\d{3,}-[a-z0-9-]+$")


def earliest_day_in(stage_id: str, playbook: dict[str, Any]) -> int:
    """The first day after its start_date on which a brand can be decided in stage_id: every stage before it takes
    min_days_in_stage days before its first pass and consecutive_passes - 1 days more (85 days for
    channel_exclusive in configs/steps.yaml)."""
    days = 0
    for stage in playbook["stages"]:
        if stage["id"] == stage_id:
            return days
        days += int(stage["min_days_in_stage"]) + int(stage["consecutive_passes"]) - 1
    raise KeyError(f"no stage {stage_id!r} in the playbook")


def _reset_metrics(folder: Path) -> None:
    """An earlier demo's metrics go: they are rebuilt from the exports, and its import log would take the same
    files for already imported."""
    from brandsteps.sources.imports.records import file_records

    metrics = folder / DEMO_METRICS
    records = file_records(metrics)
    for old in (
        metrics,
        records.revisions,
        records.imports,
        folder / "data" / "metrics" / "daily_metrics.parquet",
    ):  # the last: demos before the exports
        old.unlink(missing_ok=True)


def write_demo_folder(
    folder: Path, n_brands: int = 50, days: int = DEMO_DAYS, end: dt.date | None = None, seed: int = 7
) -> DemoSummary:
    """Write a runnable demo: configs (playbook, deployment, one YAML per brand, import profiles), the exports of the
    Kuaishou reports the generated metrics make (exports/), and the metrics they import into (data/metrics.parquet).

    The metrics reach data/metrics.parquet the way an operator's do: as export files imported with read_import and
    restate, the code of `brandsteps import` (demo_exports). The period is the `days` days ending on `end`
    (default today). Brand files (d###-*.yaml) and per-brand exports of an earlier demo are replaced, and its
    metrics rebuilt; other files are left alone.
    """
    folder = Path(folder)
    end = end if end is not None else dt.date.today()
    start = end - (days - 1) * _DAY
    brands = plan_demo_portfolio(n_brands, start, seed, days)
    metrics = corrupt_rows(generate_daily_metrics(brands, start, days, seed), brands, seed)

    configs_dir = folder / "configs"
    brands_dir = configs_dir / "brands"
    data_dir = folder / "data"
    exports_dir = folder / "exports"
    brands_dir.mkdir(parents=True, exist_ok=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    for old in brands_dir.glob("*.yaml"):
        if _DEMO_ID.match(old.stem):
            old.unlink()
    _reset_metrics(folder)
    remove_old_exports(exports_dir)

    playbook_path = configs_dir / "steps.yaml"
    shutil.copyfile(playbook_source(), playbook_path)
    onboarding_path = configs_dir / "onboarding.yaml"
    onboarding_path.write_text(ONBOARDING_YAML, encoding="utf-8")
    (configs_dir / "imports").mkdir(exist_ok=True)
    for name, text in USER_PROFILES.items():
        (configs_dir / "imports" / f"{name}.yaml").write_text(text, encoding="utf-8")

    # What the reports need to know of each brand: unmeasured_ads brands have no ad account, and per-item exports
    # (with the exclusive SKUs listed in the brand's YAML) are for brands old enough to reach channel_exclusive.
    reach = earliest_day_in("channel_exclusive", yaml.safe_load(playbook_path.read_text(encoding="utf-8")))
    table = pd.DataFrame(
        {
            **{key: [b.config[key] for b in brands] for key in ("brand_id", "name", "category", "start_date")},
            "ads": ["ad_spend" not in ARCHETYPES[b.archetype].unmeasured for b in brands],
            "items": [(end - b.start_date).days >= reach for b in brands],
            # refunds that arrive over weeks: the stores the operator re-exports every week
            "slow_refunds": [b.config["category"] == "apparel" or ARCHETYPES[b.archetype].late_refunds for b in brands],
        }
    )
    ids = export_ids(table, metrics)
    brand_files = []
    for brand in brands:
        path = brands_dir / f"{brand.brand_id}.yaml"
        text = yaml.safe_dump(
            {**brand.config, **ids[brand.brand_id]}, allow_unicode=True, sort_keys=False, default_flow_style=False
        )
        path.write_text(
            f"# Demo brand, archetype {brand.archetype}: {ARCHETYPES[brand.archetype].description}\n" + text,
            encoding="utf-8",
        )
        brand_files.append(path)

    archetypes_path = data_dir / "archetypes.csv"
    with archetypes_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["brand_id", "archetype"])
        writer.writerows((b.brand_id, b.archetype) for b in brands)

    exports = write_exports(exports_dir, table, metrics, end, seed)
    # into the demo's own metrics, whatever BRANDSTEPS_METRICS says (as `brandsteps import --metrics` would)
    imports = import_exports(configs_dir, exports, folder / DEMO_METRICS)

    n_corrupt = int((metrics["orders"] < 0).sum() + (metrics["store_rating"] > 5).sum())
    return DemoSummary(
        folder=folder,
        configs_dir=configs_dir,
        playbook_path=playbook_path,
        onboarding_path=onboarding_path,
        metrics_path=folder / DEMO_METRICS,
        archetypes_path=archetypes_path,
        brand_files=tuple(brand_files),
        start=start,
        end=end,
        n_brands=len(brands),
        n_rows=len(metrics),
        n_corrupt_rows=n_corrupt,
        archetypes={b.brand_id: b.archetype for b in brands},
        exports_dir=exports_dir,
        exports=tuple(exports),
        imports=tuple(imports),
    )


__all__ = [
    "APPAREL_GATES",
    "ARCHETYPES",
    "CATEGORIES",
    "GOOD_ARCHETYPES",
    "LATE_REFUND",
    "Archetype",
    "DemoBrand",
    "DemoSummary",
    "archetype_counts",
    "corrupt_rows",
    "earliest_day_in",
    "generate_daily_metrics",
    "plan_demo_portfolio",
    "plan_synthetic_portfolio",
    "playbook_source",
    "write_demo_folder",
]
