"""The demo's metrics as the Kuaishou exports an operator downloads, imported through the same door as `brandsteps import`.

write_demo_folder generates the daily table (demo_data); `write_exports` renders it into export files of the real
reports under <demo>/exports/ (one helper per report, each vectorised over the whole table) and `import_exports`
reads them with `read_import` and stores them with `restate`, as `brandsteps import` does. Every value that stays
reads back exactly: money to the fen on one row per brand-day (the per-item rows that are added up are whole yuan:
floats of fen added up do not give the fen's float), watch time in whole seconds, counts whole. So the metrics the
demo decides on are the generated ones.

In import order (every base column comes from some export):

| report | files | profile | base columns |
|---|---|---|---|
| 快分销 效果明细 | the end day of brands in their first 30 days, one each | kuaifenxiao-effect | active_affiliates, commission (estimated) |
| 全店成交分析 daily | one per brand: UTF-8-BOM or GBK CSV, a few XLSX | kuaishou-store-daily | gmv, orders, buyers, refund_amount, commission … |
| 全店成交分析, re-exported | slow stores' last 30 days, weekly, one each | kuaishou-store-daily | gmv, refund_amount: grown |
| 磁力金牛 account report | one: every ad account, GBK | cililiujin-accounts | ad_spend, ad_gmv |
| 直播 live room | one, by 快手ID | live-room (configs/imports) | live_minutes, watch_minutes (seconds), followers_new |
| 流量来源 traffic | one, by 店铺ID | traffic | uv_private, uv_public_organic, uv_public_paid |
| 客户分析 customers | one, by 店铺ID | customers | returning_buyers |
| 店铺服务 service | one, by 店铺ID | service | orders_shipped_48h, store_rating |
| 快分销 数据概览 | one, by 店铺ID | affiliates | active_affiliates |
| per-item sales | one per brand old enough for channel_exclusive | kuaishou-items-daily | gmv_exclusive, exclusive_skus |

Two restatements reach the revision record: the 快分销 detail's estimated commission, settled by the store
report (affiliate orders settle over weeks), and the refunds by payment date of the slow stores (apparel, and the
late_refunds brand) as operators live them (docs/domain.md#data-maturity): a day's refunds first arrive with the
daily export made the next morning, 42% of what they become (refunds_as_exported), and every week a re-export of the
last 30 days restates them as they have grown, all of them 18 days on. Each re-export is recorded at the time it was
made (10:00 on its morning, Asia/Shanghai, before the 12:00 data deadline), so `brandsteps backtest --as-known`
replays each day with the refunds a live cycle saw at its deadline. A last re-export, made as the demo is built,
shows the settled (generated) figures: the metrics the demo decides on are the settled ones. Two simplifications
keep the demo quick (a small export takes ~30 ms to read): a slow store's daily exports are written as one file
(each day's row as its first export showed it), imported with the other stores' exports, and only the slow stores
are re-exported (the others' refunds are taken as settled).

active_affiliates comes from an overview because the detail has a row per 达人:
a large brand's 5,000 selling 达人 a day make millions of rows over the portfolio, far too many to read for a demo.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from brandsteps.wording import counted

__all__ = [
    "ACCOUNT_NOBODY",
    "AFFILIATE_DETAIL_BRAND_DAYS",
    "DEMO_TIMEZONE",
    "REEXPORT_EVERY",
    "REEXPORT_TIME",
    "REFUNDS_FIRST_SHARE",
    "REFUNDS_SETTLE_DAYS",
    "RESTATED_DAYS",
    "RESTATED_REPORT",
    "USER_PROFILES",
    "ExportFile",
    "ReportImport",
    "export_ids",
    "import_exports",
    "reexport_mornings",
    "refunds_as_exported",
    "remove_old_exports",
    "split_whole",
    "write_exports",
]

RESTATED_DAYS = 30  # the re-exported trailing days (operators re-export 30–45 days: docs/domain.md#data-maturity)
RESTATED_REPORT = "全店成交分析, last 30 days re-exported weekly"
REEXPORT_EVERY = 7  # days between two re-exports of a slow store, counted back from the day after the end
# After the 09:00 daily exports (and the cycle's 09:00 run), before the 12:00 data deadline: that day's cycle sees it.
REEXPORT_TIME = dt.time(10, 0)
DEMO_TIMEZONE = "Asia/Shanghai"  # the demo's onboarding.yaml timezone, in which exports are made
# Apparel refunds come after delivery and the 7-day no-reason return: the next morning's export shows 42% of a day's
# refunds by payment date, a week later 76%, two weeks later 97%; 18 days after the payment every refund is in.
REFUNDS_FIRST_SHARE = 0.42
REFUNDS_SETTLE_DAYS = 18
AFFILIATE_DETAIL_BRAND_DAYS = (
    30  # 快分销 效果明细 for brands this young, which are in (or just past) the affiliate trial
)
ACCOUNT_NOBODY = "90000001"  # a 磁力金牛 test account of the service provider that no brand lists: skipped
_AD_ACCOUNT_BASE = 71_000_000  # 账户ID of brand number i (its place in the plan, from 1): base + i
_SHOP_BASE = 52_000_000  # 店铺ID of brand i
_ITEM_BASE = 600_000_000  # 商品ID of brand i's item j: base + 100 i + j (j = 0: its regular range)
# The demo's own exports: per brand (d001-…_全店成交分析_….csv) and the multi-brand reports (磁力金牛_账户报表_20260611-20261206.csv).
_DEMO_FILE = re.compile(
    r"^(d\d{3,}-[a-z0-9-]+_|(磁力金牛_账户报表|直播数据|流量来源|客户分析|店铺服务|快分销_数据概览)_\d{8}-\d{8}\.)"
)

# The operator's own profiles (README "Imports": configs/imports/<name>.yaml) for the reports no built-in profile
# describes; their headers are the demo files'. A real export is mapped the same way, once.
USER_PROFILES: dict[str, str] = {
    "live-room": """\
# 直播 live-room export (demo): one row per 快手ID and day.
description: 直播 live-room export, one row per 快手ID and day
match: [日期, 快手ID, 直播时长(分钟)]
date: 日期
account: 快手ID
columns:
  live_minutes: {header: 直播时长(分钟), unit: minute}
  watch_minutes: {header: 观看总时长, unit: second}   # the file's header says (秒) as well
  followers_new: {header: 新增粉丝}
""",
    "traffic": """\
# 流量来源 traffic-source export (demo): visitors by source, one row per shop (店铺ID) and day.
description: 流量来源 visitors by source, one row per 店铺ID and day
match: [日期, 店铺ID, 私域访客数]
date: 日期
account: 店铺ID
columns:
  uv_private: {header: 私域访客数}            # 关注页 and fan groups: the private domain
  uv_public_organic: {header: 公域自然访客数}
  uv_public_paid: {header: 公域付费访客数}
""",
    "customers": """\
# 客户分析 customers export (demo): new and returning buyers, one row per 店铺ID and day.
description: 客户分析 new and returning buyers, one row per 店铺ID and day
match: [日期, 店铺ID, 老买家数]
date: 日期
account: 店铺ID
columns:
  returning_buyers: {header: 老买家数}
""",
    "service": """\
# 店铺服务 service export (demo): orders shipped within 48 hours and the store rating, one row per 店铺ID and day.
description: 店铺服务 48-hour shipping and 店铺体验分, one row per 店铺ID and day
match: [日期, 店铺ID, 48小时发货订单数]
date: 日期
account: 店铺ID
columns:
  orders_shipped_48h: {header: 48小时发货订单数}
  store_rating: {header: 店铺体验分, aggregate: last}   # a score, not a flow: never added up
""",
    "affiliates": """\
# 快分销 数据概览 affiliate overview (demo): 达人 with orders, one row per 店铺ID and day.
description: 快分销 数据概览, selling 达人 per 店铺ID and day
match: [日期, 店铺ID, 出单达人数]
date: 日期
account: 店铺ID
columns:
  active_affiliates: {header: 出单达人数}
""",
}


@dataclass(frozen=True)
class ExportFile:
    """One export the demo wrote: the report it is (its summary line groups by it), the brand it is for, if one, and
    when it was made, if not as the demo is built."""

    path: Path
    report: str
    brand: str | None = None  # --brand: a report without an account column is one brand's
    at: dt.datetime | None = None  # the time its import is recorded at (restate_many's at); None: when imported


@dataclass(frozen=True)
class ReportImport:
    """What importing one report's files did, summed over its files: one line of the demo's output."""

    report: str
    profiles: tuple[str, ...]
    files: int
    brands: int
    days: int
    brand_days: int
    columns: tuple[str, ...]
    new_rows: int
    filled: int  # values added to brand-days already there (another report's), where none was
    revisions: int
    unchanged: int
    skipped: tuple[str, ...]  # "account 90000001 (7 rows, 2026-11-30 to 2026-12-06)": accounts no brand lists
    record: str  # where the revisions are kept

    def line(self) -> str:
        head = f"{self.report}: {counted(self.files, 'file')}, {counted(self.brands, 'brand')} × {counted(self.days, 'day')}"
        columns = (
            ", ".join(self.columns) if len(self.columns) <= 3 else f"{len(self.columns)} columns"
        )  # the store report's 9: counted
        parts = [f"{head} ({', '.join(self.profiles)}: {columns})"]
        counts = [
            (self.new_rows, "new brand-day", ""),
            (self.filled, "value", " filled in"),
            (self.revisions, "value", " restated"),
            (self.unchanged, "value", " unchanged"),
        ]
        parts += [counted(count, noun) + what for count, noun, what in counts if count]
        if self.revisions:
            parts[-2 if self.unchanged else -1] += f" (kept in {self.record})"
        if self.skipped:
            parts.append(f"skipped {'; '.join(self.skipped)}: no brand lists it")
        return "; ".join(parts)


# ---------------------------------------------------------------------------------------------------------------
# Ids: the accounts and items the brands list, so that multi-brand and per-item reports find their brand


def _index(brand_ids: Sequence[str]) -> dict[str, int]:
    return {b: i for i, b in enumerate(brand_ids, start=1)}


def _kuaishou_id(brand_id: pd.Series) -> pd.Series:
    return "ks_" + brand_id.str.replace("-", "_", regex=False)


def export_ids(brands: pd.DataFrame, metrics: pd.DataFrame) -> dict[str, dict[str, list[str]]]:
    """brand_id → {accounts, exclusive_items} for its YAML: its 账户ID (if it advertises), 快手ID and 店铺ID, and for
    brands with per-item exports the 商品ID of every exclusive SKU it sells in the period.

    brands: brand_id, ads (a 磁力金牛 account), items (per-item exports), in the plan's order (which numbers the ids).
    """
    most = metrics.groupby("brand_id", sort=False)["exclusive_skus"].max().fillna(0).astype(int)
    out: dict[str, dict[str, list[str]]] = {}
    for i, (brand_id, ads, items) in enumerate(
        brands[["brand_id", "ads", "items"]].itertuples(index=False), start=1
    ):  # a YAML file each
        accounts = [str(_AD_ACCOUNT_BASE + i)] if ads else []
        accounts += [f"ks_{brand_id.replace('-', '_')}", str(_SHOP_BASE + i)]
        skus = [str(_ITEM_BASE + 100 * i + j) for j in range(1, int(most.get(brand_id, 0)) + 1)] if items else []
        out[brand_id] = {"accounts": accounts, "exclusive_items": skus} if skus else {"accounts": accounts}
    return out


# ---------------------------------------------------------------------------------------------------------------
# Cells as the exports write them


def split_whole(total: np.ndarray, group: np.ndarray, weight: np.ndarray, least: int) -> np.ndarray:
    """Each group's total (a whole number of units: yuan, fen) split over its rows by weight, in whole units.

    group: each row's group (0 … len(total) - 1), non-decreasing, every group with a row. Every row gets at least
    `least` units where the total allows (a SKU on sale sold something); the last row of a group takes the rest.
    Whole numbers add up exactly in binary floating point in any order, so the rows read back add up to the
    total however the reader adds them (pandas adds a sorted group pairwise: fen would not survive that).
    """
    total = np.asarray(total, dtype=np.float64)
    n = len(total)
    last = np.r_[group[1:] != group[:-1], True] if len(group) else np.zeros(0, dtype=bool)
    share = weight / np.bincount(group, weights=weight, minlength=n)[group]
    part: np.ndarray = np.maximum(np.floor(total[group] * share), float(least))
    part[last] = 0.0
    rest = total - np.bincount(group, weights=part, minlength=n)
    short = rest < least  # the floors took too much: the group's biggest row gives it back
    if short.any():
        order = np.lexsort((-np.where(last, -np.inf, part), group))
        biggest = order[np.r_[True, group[order][1:] != group[order][:-1]]]
        biggest = biggest[short[group[biggest]] & ~last[biggest]]
        need = least - rest[group[biggest]]
        part[biggest] -= need
        rest[group[biggest]] += need
    part[last] = rest[group[last]]
    return part


def _text(values: Any, spec: str, prefix: str = "") -> np.ndarray:
    """Numbers as an export's text cells ('¥1,234.56', '1,234', '12.34%'); '-' where not measured."""
    v = np.asarray(values, dtype=np.float64)
    out = np.full(len(v), "-", dtype=object)
    has = ~np.isnan(v)
    out[has] = pd.Series(v[has]).map((prefix + "{:" + spec + "}").format).to_numpy(dtype=object)
    return out


def _money(values: Any, symbol: str) -> np.ndarray:
    return _text(values, ",.2f", symbol)  # a float of fen formats back to its fen: '¥1,234.56' reads as that float


def _count(values: Any) -> np.ndarray:
    return _text(values, ",.0f")


def _wan(values: Any) -> np.ndarray:
    """Counts of 10,000 or more as 生意通 shows them: '12.3456万' (every digit kept, so it reads back exactly)."""
    v = np.asarray(values, dtype=np.float64)
    out = _count(v)
    big = v >= 10_000
    wan = pd.Series(_text(v[big] / 10_000, ".4f")).str.replace(r"\.?0+$", "", regex=True) + "万"
    out[big] = wan.to_numpy(dtype=object)
    return out


def _share(num: Any, den: Any) -> np.ndarray:
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return _text(np.divide(num, den, out=np.full(len(num), np.nan), where=den != 0), ".2%")


def _days(dates: pd.Series) -> np.ndarray:
    days: np.ndarray = dates.dt.strftime("%Y-%m-%d").to_numpy(dtype=object)
    return days


@dataclass(frozen=True)
class _Format:
    """How one file is written: its suffix, its text encoding and the money symbol that encoding holds."""

    suffix: str
    encoding: str  # "" for a workbook
    symbol: str


UTF8_BOM = _Format(".csv", "utf-8-sig", "¥")
GBK = _Format(".csv", "gbk", "￥")  # GBK has no ¥: 生意通's GBK files write the fullwidth ￥
PLAIN = _Format(".csv", "utf-8", "")
XLSX = _Format(".xlsx", "", "")


def _write(path: Path, titles: Sequence[str], table: pd.DataFrame, fmt: _Format) -> Path:
    """The table under its title lines, as a CSV in the format's encoding or as a workbook (numbers as numbers)."""
    path = path.with_name(path.name + fmt.suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt is XLSX:
        with pd.ExcelWriter(path, engine="openpyxl") as writer:
            table.to_excel(writer, index=False, startrow=len(titles))
            sheet = writer.sheets["Sheet1"]
            for row, title in enumerate(titles, start=1):
                sheet.cell(row=row, column=1, value=title)
        return path
    buffer = io.StringIO()
    buffer.write("".join(f"{t}\r\n" for t in titles))
    table.to_csv(buffer, index=False, lineterminator="\r\n")
    path.write_bytes(buffer.getvalue().encode(fmt.encoding))
    return path


def _per_brand(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The frame's rows by brand, in order (one file each): a loop over brands, not rows."""
    return [(str(b), part.drop(columns="brand_id")) for b, part in frame.groupby("brand_id", sort=False)]


def _span(dates: pd.Series) -> str:
    return f"{dates.min():%Y%m%d}-{dates.max():%Y%m%d}"


def _names(brands: pd.DataFrame, brand_id: pd.Series) -> np.ndarray:
    """Each row's brand name in Chinese (the first word of its configured name)."""
    names = brands.set_index("brand_id")["name"].str.split(" ", n=1).str[0]
    return brand_id.map(names).to_numpy(dtype=object)


# ---------------------------------------------------------------------------------------------------------------
# One helper per report: the generated rows in the report's shape


def _kuaifenxiao(
    folder: Path, m: pd.DataFrame, index: Mapping[str, int], end: dt.date, young: np.ndarray, seed: int
) -> list[ExportFile]:
    """快分销 效果明细 of the end day for the young brands, one file each (no account column): a row per 达人 and product,
    money in 分. The 达人 with orders are the day's active_affiliates; a tenth more promoted a product without one
    (not counted). 预估佣金 is an estimate, 3–10% above the commission that settles: orders are still refunded."""
    day = m[
        (m["date"] == pd.Timestamp(end)).to_numpy() & young & (m["active_affiliates"].fillna(0) > 0).to_numpy()
    ].reset_index(drop=True)
    if day.empty:
        return []
    rng = np.random.default_rng(seed + 101)
    active = day["active_affiliates"].to_numpy().astype(np.int64)
    size = active + (active + 9) // 10
    group = np.repeat(np.arange(len(day)), size)
    rank = np.arange(len(group)) - np.repeat(np.cumsum(size) - size, size)  # 达人 number within the brand-day
    sells = rank < active[group]
    weight = rng.pareto(1.5, int(sells.sum())) + 0.05  # affiliate sales are heavy-tailed
    estimated = np.rint(day["commission"].to_numpy() * rng.uniform(1.03, 1.10, len(day)) * 100)
    commission, pay = np.zeros(len(group)), np.zeros(len(group))
    commission[sells] = split_whole(estimated, group[sells], weight, 0)
    pay[sells] = split_whole(np.rint(day["gmv_affiliate"].to_numpy() * 100), group[sells], weight, 0)
    kol = pd.Series(rank).astype(str)
    rate = np.divide(commission, pay, out=np.full(len(pay), 0.2), where=pay > 0)
    table = pd.DataFrame(
        {
            "brand_id": day["brand_id"].to_numpy()[group],
            "日期": f"{end:%Y-%m-%d}",
            "达人id": ("kol" + kol.str.zfill(5)).to_numpy(dtype=object),
            "达人昵称": ("达人" + kol).to_numpy(dtype=object),
            "商品ID": (_ITEM_BASE + 100 * day["brand_id"].map(index).to_numpy()[group] + rank % 3).astype(
                str
            ),  # the brand's items
            "支付订单数": np.where(sells, np.maximum(np.rint(pay / 6000), 1), 0).astype(np.int64),
            "支付金额(分)": pay.astype(np.int64),
            "佣金比例": pd.Series(np.rint(rate * 1000).astype(np.int64)).astype(str).to_numpy(dtype=object) + "‰",
            "预估佣金(分)": commission.astype(np.int64),
            "技术服务费(分)": np.rint(pay / 100).astype(np.int64),
        }
    )
    return [
        ExportFile(
            _write(folder / f"{brand_id}_快分销_效果明细_{end:%Y%m%d}", [], part, UTF8_BOM), "快分销 效果明细", brand_id
        )
        for brand_id, part in _per_brand(table)
    ]


REEXPORTED = (
    "成交金额",
    "退款金额（支付日）",
)  # a re-export's indicators (成交金额: the profile knows the report by it)
_STORE_MONEY = ("成交金额", "客单价", "退款金额（支付日）", "结算佣金", "自营成交", "达人合作成交")
_STORE_SHARES = ("金额退款率（支付日）", "点击成交转化率(订单)")


def _store_numbers(m: pd.DataFrame, refund: np.ndarray) -> pd.DataFrame:
    """全店成交分析 daily, as numbers; headers as the report writes them (fullwidth and ASCII brackets both)."""
    gmv, orders, buyers, clicks = (m[c].to_numpy() for c in ("gmv", "orders", "buyers", "product_clicks"))
    return pd.DataFrame(
        {
            "brand_id": m["brand_id"].to_numpy(),
            "日期": m["date"].to_numpy(),
            "成交金额": gmv,
            "成交订单数": orders,
            "成交人数": buyers,
            "客单价": np.round(gmv / buyers, 2),  # derived figures: import-kuaishou cross-checks them; never stored
            "退款金额（支付日）": refund,
            "金额退款率（支付日）": refund / gmv,
            "结算佣金": m["commission"].to_numpy(),
            "商品曝光次数": m["product_impressions"].to_numpy(),
            "商品点击次数": clicks,
            "点击成交转化率(订单)": orders / clicks,
            "自营成交": m["gmv_self"].to_numpy(),
            "达人合作成交": m["gmv_affiliate"].to_numpy(),
        }
    )


def _store_text(numbers: pd.DataFrame, fmt: _Format) -> pd.DataFrame:
    """The report's cells as text: ¥ (￥) amounts with separators, counts (万 for impressions in GBK files), percentages."""
    out: dict[str, Any] = {"brand_id": numbers["brand_id"].to_numpy(), "日期": _days(numbers["日期"])}
    for column in numbers.columns[2:]:
        values = numbers[column].to_numpy()
        if column in _STORE_MONEY:
            out[column] = _money(values, fmt.symbol)
        elif column in _STORE_SHARES:
            out[column] = _text(values, ".2%")
        else:
            out[column] = _wan(values) if fmt is GBK and column == "商品曝光次数" else _count(values)
    return pd.DataFrame(out)


def _store_format(i: int) -> _Format:
    """Operators' files differ: every twentieth brand's is a workbook (few: openpyxl is slow), the odd ones GBK,
    the rest UTF-8 with a BOM."""
    return XLSX if i % 20 == 4 else GBK if i % 2 else UTF8_BOM


def refunds_as_exported(settled: np.ndarray, age: np.ndarray) -> np.ndarray:
    """A slow store's refunds by payment date as an export made `age` days after the payment day shows them, to the
    fen: REFUNDS_FIRST_SHARE of the settled amount the next morning (age 1), growing ever slower, all of it from
    REFUNDS_SETTLE_DAYS on."""
    still_out = np.clip((REFUNDS_SETTLE_DAYS - age) / (REFUNDS_SETTLE_DAYS - 1), 0.0, 1.0)  # 1 the next morning
    to_come = still_out**2 * (1.0 - REFUNDS_FIRST_SHARE)
    return np.where(to_come > 0, np.round(settled * (1.0 - to_come), 2), settled)


def reexport_mornings(first: dt.date, end: dt.date) -> list[dt.date]:
    """The mornings of a slow store's weekly re-exports, oldest first: every REEXPORT_EVERY days back from the day
    after `end`, each covering the RESTATED_DAYS days before it, while it covers a day from `first` on."""
    last = end + dt.timedelta(days=1)
    weeks = ((last - first).days - 1) // REEXPORT_EVERY  # the earliest morning after `first`, in weeks back
    return [last - dt.timedelta(days=REEXPORT_EVERY * k) for k in range(weeks, -1, -1)]


def _made_at(morning: dt.date, now: dt.datetime) -> dt.datetime:
    """When a re-export made on `morning` was imported: REEXPORT_TIME in the demo's timezone, never after now."""
    return min(dt.datetime.combine(morning, REEXPORT_TIME, tzinfo=ZoneInfo(DEMO_TIMEZONE)), now)


def _store_files(
    folder: Path,
    m: pd.DataFrame,
    index: Mapping[str, int],
    refund: np.ndarray,
    report: str,
    at: dt.datetime | None = None,
    narrow: bool = False,
) -> list[ExportFile]:
    """全店成交分析 daily, one file per brand (the report has no account column: imported with --brand). narrow: with
    the indicators REEXPORTED only, always as CSV (a re-export: the operator picks the figures that keep changing)."""
    numbers = _store_numbers(m, refund)
    if narrow:
        numbers = numbers[["brand_id", "日期", *REEXPORTED]]

    def fmt_of(brand_id: str) -> _Format:
        fmt = _store_format(index[brand_id])
        return UTF8_BOM if fmt is XLSX and narrow else fmt

    used = {fmt_of(b) for b in m["brand_id"].unique()}
    texts = {fmt: _store_text(numbers, fmt) for fmt in (UTF8_BOM, GBK) if fmt in used}
    files = []
    for brand_id, part in _per_brand(numbers):
        fmt = fmt_of(brand_id)
        table = part if fmt is XLSX else texts[fmt].loc[part.index].drop(columns="brand_id")
        titles = ["全店成交分析", f"统计时间：{part['日期'].min():%Y-%m-%d} 至 {part['日期'].max():%Y-%m-%d}"]
        path = _write(folder / f"{brand_id}_全店成交分析_{_span(part['日期'])}", titles, table, fmt)
        files.append(ExportFile(path, report, brand_id, at))
    return files


def _reexports(
    folder: Path,
    m: pd.DataFrame,
    index: Mapping[str, int],
    slow: np.ndarray,
    end: dt.date,
) -> list[ExportFile]:
    """The slow stores' re-exports of their last RESTATED_DAYS days, oldest first: one a week up to the morning after
    `end`, refunds as they had grown by then, and a last one made as the demo is built (recorded then) with the
    settled figures, which the demo decides on."""
    now = dt.datetime.now(dt.UTC)
    days = m["date"].to_numpy(dtype="datetime64[D]")
    files = []
    mornings = reexport_mornings(m["date"].min().date(), end)
    for morning, settled in [*((day, False) for day in mornings), (mornings[-1], True)]:
        age = (np.datetime64(morning, "D") - days).astype(np.int64)
        covered = slow & (age >= 1) & (age <= RESTATED_DAYS)
        if not covered.any():
            continue
        part = m[covered]
        amounts = part["refund_amount"].to_numpy()
        if settled:  # the same store and days as the morning's: another file
            files += _store_files(folder / "settled", part, index, amounts, RESTATED_REPORT, narrow=True)
        else:
            grown = refunds_as_exported(amounts, age[covered])
            files += _store_files(folder, part, index, grown, RESTATED_REPORT, _made_at(morning, now), narrow=True)
    return files


def _cililiujin(
    folder: Path, m: pd.DataFrame, brands: pd.DataFrame, index: Mapping[str, int], end: dt.date
) -> ExportFile:
    """磁力金牛 account report, GBK: one row per ad account and day, every brand's account in one file, plus the
    service provider's own test account for the last week, which no brand lists (skipped on import)."""
    ads = m[m["ad_spend"].notna()]
    ids = ads["brand_id"]
    name = _names(brands, ids)
    spend, gmv = ads["ad_spend"].to_numpy(), ads["ad_gmv"].to_numpy()
    table = pd.DataFrame(
        {
            "账户名称": name + "-主号",
            "账户ID": (_AD_ACCOUNT_BASE + ids.map(index)).astype(str).to_numpy(),
            "时间": _days(ads["date"]),
            "账户类型": "标准账户",
            "快手昵称": name,
            "快手ID": _kuaishou_id(ids).to_numpy(),
            "总花费(元)": _money(spend, GBK.symbol),
            "当日累计GMV(元)": _money(gmv, GBK.symbol),
            "当日累计ROI": _text(gmv / spend, ".2f"),
        }
    )
    week = pd.Series(pd.date_range(end - dt.timedelta(days=6), end, freq="D"))
    test = pd.DataFrame(
        {
            "账户名称": "某服务商测试账户",
            "账户ID": ACCOUNT_NOBODY,
            "时间": _days(week),
            "账户类型": "标准账户",
            "快手昵称": "测试",
            "快手ID": "ks_agency_test",
            "总花费(元)": _money(np.full(len(week), 10.0), GBK.symbol),
            "当日累计GMV(元)": _money(np.zeros(len(week)), GBK.symbol),
            "当日累计ROI": "0.00",
        }
    )
    table = pd.concat([table, test], ignore_index=True).sort_values(["时间", "账户ID"], kind="stable")  # day by day
    titles = [f"磁力金牛 账户报表 {m['date'].min():%Y-%m-%d} 至 {end:%Y-%m-%d}"]
    return ExportFile(
        _write(folder / f"磁力金牛_账户报表_{_span(m['date'])}", titles, table, GBK), "磁力金牛 account report"
    )


def _live_room(folder: Path, m: pd.DataFrame, brands: pd.DataFrame) -> ExportFile:
    """直播 live-room export by 快手ID: minutes live, watch time in seconds (0.1 minute is 6 s: whole seconds), new fans."""
    table = pd.DataFrame(
        {
            "日期": _days(m["date"]),
            "快手ID": _kuaishou_id(m["brand_id"]).to_numpy(),
            "快手昵称": _names(brands, m["brand_id"]),
            "直播时长(分钟)": _count(m["live_minutes"]),
            "观看总时长(秒)": _count(np.rint(m["watch_minutes"].to_numpy() * 60)),
            "新增粉丝": _count(m["followers_new"]),
        }
    ).sort_values(["日期", "快手ID"], kind="stable")
    return ExportFile(_write(folder / f"直播数据_{_span(m['date'])}", [], table, PLAIN), "直播 live room")


def _by_shop(path: Path, report: str, columns: dict[str, Any], fmt: _Format) -> ExportFile:
    """A report of a kind the operator mapped (configs/imports): every shop in one file, day by day."""
    table = pd.DataFrame(columns).sort_values(["日期", "店铺ID"], kind="stable")
    return ExportFile(_write(path, [], table, fmt), report)


def _items(
    folder: Path, m: pd.DataFrame, brands: pd.DataFrame, index: Mapping[str, int], seed: int
) -> list[ExportFile]:
    """Per-item daily sales, one file per brand: its regular range on one row, then each exclusive SKU on sale that
    day (whole yuan, at least one each: split_whole), which add up to gmv_exclusive."""
    if m.empty:
        return []
    rng = np.random.default_rng(seed + 202)
    skus = m["exclusive_skus"].fillna(0).to_numpy().astype(np.int64)
    rows = np.repeat(np.arange(len(m)), skus)
    j = np.arange(len(rows)) - np.repeat(np.cumsum(skus) - skus, skus) + 1  # the brand's exclusive item j: 1 … skus
    number = m["brand_id"].map(index).to_numpy()
    popularity = rng.lognormal(0.0, 0.6, (max(index.values()) + 1, int(skus.max()) + 1))  # some SKUs sell better
    amount = split_whole(
        m["gmv_exclusive"].fillna(0).to_numpy(),
        rows,
        popularity[number[rows], j] * rng.lognormal(0.0, 0.2, len(rows)),
        1,
    )
    aov = m["gmv"].to_numpy() / np.maximum(m["orders"].to_numpy(), 1)
    names = _names(brands, m["brand_id"])
    exclusive = pd.DataFrame(
        {
            "brand_id": m["brand_id"].to_numpy()[rows],
            "日期": m["date"].to_numpy()[rows],
            "商品ID": (_ITEM_BASE + 100 * number[rows] + j).astype(str),
            "商品名称": names[rows] + " 特供款" + pd.Series(j).astype(str).to_numpy(dtype=object),
            "成交金额": amount,
            "成交订单数": np.maximum(np.rint(amount / np.abs(aov[rows])), 1),
            "_item": j,
        }
    )
    regular = pd.DataFrame(
        {
            "brand_id": m["brand_id"].to_numpy(),
            "日期": m["date"].to_numpy(),
            "商品ID": (_ITEM_BASE + 100 * number).astype(str),
            "商品名称": names + " 常规款",
            "成交金额": np.round(m["gmv"].to_numpy() - m["gmv_exclusive"].fillna(0).to_numpy(), 2),
            "成交订单数": np.maximum(np.rint(m["orders"].to_numpy() * 0.8), 0),
            "_item": 0,
        }
    )
    table = (
        pd.concat([regular, exclusive], ignore_index=True)
        .sort_values(["brand_id", "日期", "_item"], kind="stable")
        .drop(columns="_item")
    )
    text = table.assign(
        日期=_days(table["日期"]), 成交金额=_text(table["成交金额"], ".2f"), 成交订单数=_count(table["成交订单数"])
    )
    files = []
    for brand_id, part in _per_brand(table):
        fmt = XLSX if index[brand_id] % 20 == 7 else PLAIN
        body = part if fmt is XLSX else text.loc[part.index].drop(columns="brand_id")
        files.append(
            ExportFile(
                _write(folder / f"{brand_id}_商品成交明细_{_span(part['日期'])}", [], body, fmt),
                "per-item sales",
                brand_id,
            )
        )
    return files


# ---------------------------------------------------------------------------------------------------------------
# All reports


def remove_old_exports(exports: Path) -> None:
    """An earlier demo's exports go (another period or portfolio leaves files of other names); other files stay."""
    if exports.is_dir():
        for old in exports.rglob("*"):
            if old.is_file() and _DEMO_FILE.match(old.name):
                old.unlink()


def write_exports(
    folder: Path, brands: pd.DataFrame, metrics: pd.DataFrame, end: dt.date, seed: int
) -> list[ExportFile]:
    """Render the generated metrics into the reports' export files under folder, in the order they are imported.

    brands: brand_id, name, category, start_date, ads, items (see export_ids), slow_refunds (its refunds arrive over
    weeks: re-exported weekly), in the plan's order (it numbers the ids). metrics: the generated table, corrupt rows
    included (the exports carry a bad day as a real one would).
    """
    index = _index(brands["brand_id"].tolist())
    m = metrics.reset_index(drop=True)
    info = brands.set_index("brand_id")
    per_row = {key: m["brand_id"].map(info[key]).to_numpy() for key in ("slow_refunds", "items")}
    slow = per_row["slow_refunds"].astype(bool)
    young = (
        (pd.Timestamp(end) - m["brand_id"].map(pd.to_datetime(info["start_date"]))).dt.days
        < AFFILIATE_DETAIL_BRAND_DAYS
    ).to_numpy()
    uv = m[["uv_private", "uv_public_organic", "uv_public_paid"]].to_numpy()
    buyers, returning = m["buyers"].to_numpy(), m["returning_buyers"].to_numpy()
    shipped, orders = m["orders_shipped_48h"].to_numpy(), m["orders"].to_numpy()
    shop = {
        "日期": _days(m["date"]),
        "店铺ID": (_SHOP_BASE + m["brand_id"].map(index)).astype(str).to_numpy(),
        "店铺名称": _names(brands, m["brand_id"]),
    }
    span = _span(m["date"])
    traffic = {
        "访客数": _count(uv.sum(axis=1)),
        "私域访客数": _count(uv[:, 0]),
        "公域自然访客数": _count(uv[:, 1]),
        "公域付费访客数": _count(uv[:, 2]),
    }
    customers = {"成交人数": _count(buyers), "新买家数": _count(buyers - returning), "老买家数": _count(returning)}
    service = {
        "店铺体验分": _text(m["store_rating"], ".1f"),
        "支付订单数": _count(orders),
        "48小时发货订单数": _count(shipped),
        "48小时发货率": _share(shipped, orders),
    }
    affiliates = {
        "出单达人数": _count(m["active_affiliates"]),
        "支付金额(元)": _money(m["gmv_affiliate"], UTF8_BOM.symbol),
    }
    settled = m["refund_amount"].to_numpy()
    first_refunds = np.where(slow, refunds_as_exported(settled, np.ones(len(m))), settled)  # the next morning's
    return [
        *_kuaifenxiao(folder / "快分销", m, index, end, young, seed),
        *_store_files(folder / "全店成交分析", m, index, first_refunds, "全店成交分析 daily"),
        # then its re-exports, while the metrics hold few columns (each re-export's time is one more pass over them)
        *_reexports(folder / "全店成交分析-重新导出", m, index, slow, end),
        _cililiujin(folder, m, brands, index, end),
        _live_room(folder, m, brands),
        _by_shop(folder / f"流量来源_{span}", "流量来源 traffic", {**shop, **traffic}, UTF8_BOM),
        _by_shop(folder / f"客户分析_{span}", "客户分析 customers", {**shop, **customers}, UTF8_BOM),
        _by_shop(folder / f"店铺服务_{span}", "店铺服务 service", {**shop, **service}, GBK),
        _by_shop(folder / f"快分销_数据概览_{span}", "快分销 数据概览", {**shop, **affiliates}, UTF8_BOM),
        *_items(folder / "商品成交明细", m[per_row["items"].astype(bool)], brands, index, seed),
    ]


def import_exports(configs_dir: Path, exports: Sequence[ExportFile], metrics: Path) -> list[ReportImport]:
    """Import the exports into the metrics file as `brandsteps import --metrics FILE` does, report by report in order:
    a report's files are all read (read_import; the profile recognised from the header row) before any is stored
    (restate_many, one pass over the target per report, or per time a report's files were made, in order: each
    file's digest in the import log, replaced values in the revision record, both with the file's time)."""
    from brandsteps.config import load_portfolio
    from brandsteps.config.settings import targets
    from brandsteps.sources.imports import load_profiles, read_import
    from brandsteps.sources.imports.restate import RestateError, restate_many

    portfolio = load_portfolio(configs_dir)
    profiles = load_profiles(configs_dir)
    target = targets(portfolio, str(metrics), None).metrics
    out = []
    for report in dict.fromkeys(f.report for f in exports):  # a dozen reports, a file at a time as the command does
        files = [f for f in exports if f.report == report]
        imported = [read_import(f.path, portfolio.brands, profiles, brand=f.brand) for f in files]
        results = []
        # the report's files made at one time (consecutive: write_exports orders them) in one pass, at that time
        for at, made in itertools.groupby(zip(files, imported, strict=True), key=lambda pair: pair[0].at):
            results += restate_many(target, [one for _, one in made], at)
        failed = [r.error for r in results if r.error]
        if failed:  # the demo's own exports: a file that cannot be stored is a bug in the generator
            raise RestateError("; ".join(failed))
        keys = pd.concat([one.rows[["brand_id", "date"]] for one in imported], ignore_index=True)
        skipped = pd.concat([one.skipped_accounts for one in imported], ignore_index=True)
        out.append(
            ReportImport(
                report=report,
                profiles=tuple(dict.fromkeys(one.profile for one in imported)),
                files=len(files),
                brands=int(keys["brand_id"].nunique()),
                days=int(keys["date"].nunique()),
                brand_days=len(keys.drop_duplicates()),
                columns=tuple(dict.fromkeys(c for one in imported for c in one.columns)),
                new_rows=sum(r.new_rows for r in results),
                filled=sum(r.filled_cells for r in results),
                revisions=sum(r.revisions for r in results),
                unchanged=sum(r.unchanged_cells for r in results),
                skipped=tuple(
                    f"account {a} ({counted(int(n), 'row')}, {d})" for a, n, d in skipped.itertuples(index=False)
                ),
                record=results[0].record,
            )
        )
    return out
