"""The other reports' exports, one function per report, each vectorised over the whole metrics table."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brandsteps.sources.demo.accounts import ACCOUNT_NOBODY, AD_ACCOUNT_BASE, ITEM_BASE, kuaishou_id
from brandsteps.sources.demo.files import (
    GBK,
    PLAIN,
    UTF8_BOM,
    XLSX,
    ExportFile,
    ExportFormat,
    as_count,
    as_days,
    as_money,
    as_text,
    brand_names,
    per_brand,
    span_of,
    split_whole,
    write_file,
)

AFFILIATE_DETAIL_BRAND_DAYS = (
    30  # 快分销 效果明细 for brands this young, which are in (or just past) the affiliate trial
)


def kuaifenxiao_files(
    folder: Path, m: pd.DataFrame, index: Mapping[str, int], end: dt.date, young: np.ndarray, seed: int
) -> list[ExportFile]:
    """快分销 效果明细 of the end day for the young brands, one file each (no account column).

    A row per 达人 and product, money in 分. The 达人 with orders are the day's active_affiliates; a tenth more
    promoted a product without one (not counted). 预估佣金 is an estimate, 3–10% above the commission that settles:
    orders are still refunded.
    """
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
            "商品ID": (ITEM_BASE + 100 * day["brand_id"].map(index).to_numpy()[group] + rank % 3).astype(
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
            write_file(folder / f"{brand_id}_快分销_效果明细_{end:%Y%m%d}", [], part, UTF8_BOM),
            "快分销 效果明细",
            brand_id,
        )
        for brand_id, part in per_brand(table)
    ]


def cililiujin_file(
    folder: Path, m: pd.DataFrame, brands: pd.DataFrame, index: Mapping[str, int], end: dt.date
) -> ExportFile:
    """磁力金牛 account report, GBK: one row per ad account and day, every brand's account in one file, plus the
    service provider's own test account for the last week, which no brand lists (skipped on import)."""
    ads = m[m["ad_spend"].notna()]
    ids = ads["brand_id"]
    name = brand_names(brands, ids)
    spend, gmv = ads["ad_spend"].to_numpy(), ads["ad_gmv"].to_numpy()
    table = pd.DataFrame(
        {
            "账户名称": name + "-主号",
            "账户ID": (AD_ACCOUNT_BASE + ids.map(index)).astype(str).to_numpy(),
            "时间": as_days(ads["date"]),
            "账户类型": "标准账户",
            "快手昵称": name,
            "快手ID": kuaishou_id(ids).to_numpy(),
            "总花费(元)": as_money(spend, GBK.symbol),
            "当日累计GMV(元)": as_money(gmv, GBK.symbol),
            "当日累计ROI": as_text(gmv / spend, ".2f"),
        }
    )
    week = pd.Series(pd.date_range(end - dt.timedelta(days=6), end, freq="D"))
    test = pd.DataFrame(
        {
            "账户名称": "某服务商测试账户",
            "账户ID": ACCOUNT_NOBODY,
            "时间": as_days(week),
            "账户类型": "标准账户",
            "快手昵称": "测试",
            "快手ID": "ks_agency_test",
            "总花费(元)": as_money(np.full(len(week), 10.0), GBK.symbol),
            "当日累计GMV(元)": as_money(np.zeros(len(week)), GBK.symbol),
            "当日累计ROI": "0.00",
        }
    )
    table = pd.concat([table, test], ignore_index=True).sort_values(["时间", "账户ID"], kind="stable")  # day by day
    titles = [f"磁力金牛 账户报表 {m['date'].min():%Y-%m-%d} 至 {end:%Y-%m-%d}"]
    return ExportFile(
        write_file(folder / f"磁力金牛_账户报表_{span_of(m['date'])}", titles, table, GBK), "磁力金牛 account report"
    )


def live_room_file(folder: Path, m: pd.DataFrame, brands: pd.DataFrame) -> ExportFile:
    """直播 live-room export by 快手ID: minutes live, watch time in seconds, new fans.

    Watch time is in whole seconds: 0.1 minute is 6 s.
    """
    table = pd.DataFrame(
        {
            "日期": as_days(m["date"]),
            "快手ID": kuaishou_id(m["brand_id"]).to_numpy(),
            "快手昵称": brand_names(brands, m["brand_id"]),
            "直播时长(分钟)": as_count(m["live_minutes"]),
            "观看总时长(秒)": as_count(np.rint(m["watch_minutes"].to_numpy() * 60)),
            "新增粉丝": as_count(m["followers_new"]),
        }
    ).sort_values(["日期", "快手ID"], kind="stable")
    return ExportFile(write_file(folder / f"直播数据_{span_of(m['date'])}", [], table, PLAIN), "直播 live room")


def by_shop_file(path: Path, report: str, columns: dict[str, Any], fmt: ExportFormat) -> ExportFile:
    """A report of a kind the operator mapped (configs/imports): every shop in one file, day by day."""
    table = pd.DataFrame(columns).sort_values(["日期", "店铺ID"], kind="stable")
    return ExportFile(write_file(path, [], table, fmt), report)


def item_files(
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
    names = brand_names(brands, m["brand_id"])
    exclusive = pd.DataFrame(
        {
            "brand_id": m["brand_id"].to_numpy()[rows],
            "日期": m["date"].to_numpy()[rows],
            "商品ID": (ITEM_BASE + 100 * number[rows] + j).astype(str),
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
            "商品ID": (ITEM_BASE + 100 * number).astype(str),
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
        日期=as_days(table["日期"]),
        成交金额=as_text(table["成交金额"], ".2f"),
        成交订单数=as_count(table["成交订单数"]),
    )
    files = []
    for brand_id, part in per_brand(table):
        fmt = XLSX if index[brand_id] % 20 == 7 else PLAIN
        body = part if fmt is XLSX else text.loc[part.index].drop(columns="brand_id")
        files.append(
            ExportFile(
                write_file(folder / f"{brand_id}_商品成交明细_{span_of(part['日期'])}", [], body, fmt),
                "per-item sales",
                brand_id,
            )
        )
    return files
