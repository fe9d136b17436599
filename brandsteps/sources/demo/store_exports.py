"""The 全店成交分析 exports: daily ones, and the slow stores' weekly re-exports with refunds as they grew."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from brandsteps.sources.demo.files import (
    GBK,
    UTF8_BOM,
    XLSX,
    ExportFile,
    ExportFormat,
    as_count,
    as_days,
    as_money,
    as_text,
    as_wan,
    per_brand,
    span_of,
    write_file,
)

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


def _store_text(numbers: pd.DataFrame, fmt: ExportFormat) -> pd.DataFrame:
    """The report's cells as text: ¥ (￥) amounts with separators, counts, percentages.

    GBK files show impressions in 万.
    """
    out: dict[str, Any] = {"brand_id": numbers["brand_id"].to_numpy(), "日期": as_days(numbers["日期"])}
    for column in numbers.columns[2:]:
        values = numbers[column].to_numpy()
        if column in _STORE_MONEY:
            out[column] = as_money(values, fmt.symbol)
        elif column in _STORE_SHARES:
            out[column] = as_text(values, ".2%")
        else:
            out[column] = as_wan(values) if fmt is GBK and column == "商品曝光次数" else as_count(values)
    return pd.DataFrame(out)


def _store_format(i: int) -> ExportFormat:
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


def store_files(
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

    def fmt_of(brand_id: str) -> ExportFormat:
        fmt = _store_format(index[brand_id])
        return UTF8_BOM if fmt is XLSX and narrow else fmt

    used = {fmt_of(b) for b in m["brand_id"].unique()}
    texts = {fmt: _store_text(numbers, fmt) for fmt in (UTF8_BOM, GBK) if fmt in used}
    files = []
    for brand_id, part in per_brand(numbers):
        fmt = fmt_of(brand_id)
        table = part if fmt is XLSX else texts[fmt].loc[part.index].drop(columns="brand_id")
        titles = ["全店成交分析", f"统计时间：{part['日期'].min():%Y-%m-%d} 至 {part['日期'].max():%Y-%m-%d}"]
        path = write_file(folder / f"{brand_id}_全店成交分析_{span_of(part['日期'])}", titles, table, fmt)
        files.append(ExportFile(path, report, brand_id, at))
    return files


def reexport_files(
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
            files += store_files(folder / "settled", part, index, amounts, RESTATED_REPORT, narrow=True)
        else:
            grown = refunds_as_exported(amounts, age[covered])
            files += store_files(folder, part, index, grown, RESTATED_REPORT, _made_at(morning, now), narrow=True)
    return files
