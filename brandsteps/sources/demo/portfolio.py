"""Plan a demo portfolio: brands with names, tiers, categories, staggered starts and every archetype."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from brandsteps.catalogue import TIERS
from brandsteps.sources.demo.archetypes import APPAREL_GATES, ARCHETYPES, CATEGORIES, DEMO_DAYS
from brandsteps.sources.demo.store_exports import REEXPORT_EVERY

_DAY = dt.timedelta(days=1)

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
    """The start offset moved to the weekday of the weekly re-exports (store_exports.reexport_mornings: every
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
