"""The demo's metrics as the Kuaishou exports an operator downloads, imported as `brandsteps import` imports them.

write_demo_folder generates the daily table (demo.metrics); `write_exports` renders it into export files of the real
reports under <demo>/exports/ (one function per report, each vectorised over the whole table) and `import_exports`
reads them with `read_import` and stores them with `restate`, as `brandsteps import` does. Every value that stays
reads back exactly: money to the fen on one row per brand-day (the per-item rows that are added up are whole yuan:
floats of fen added up do not give the fen's float), watch time in whole seconds, counts whole. So the metrics the
demo decides on are the generated ones.

The reports in import order (report: files; profile; base columns), every base column from some export:

- 快分销 效果明细: the end day of brands in their first 30 days, one each; kuaifenxiao-effect;
  active_affiliates, commission (estimated)
- 全店成交分析 daily: one per brand, UTF-8-BOM or GBK CSV, a few XLSX; kuaishou-store-daily;
  gmv, orders, buyers, refund_amount, commission …
- 全店成交分析, re-exported: slow stores' last 30 days, weekly, one each; kuaishou-store-daily;
  gmv, refund_amount: grown
- 磁力金牛 account report: one, every ad account, GBK; cililiujin-accounts; ad_spend, ad_gmv
- 直播 live room: one, by 快手ID; live-room (configs/imports); live_minutes, watch_minutes (seconds), followers_new
- 流量来源 traffic: one, by 店铺ID; traffic; uv_private, uv_public_organic, uv_public_paid
- 客户分析 customers: one, by 店铺ID; customers; returning_buyers
- 店铺服务 service: one, by 店铺ID; service; orders_shipped_48h, store_rating
- 快分销 数据概览: one, by 店铺ID; affiliates; active_affiliates
- per-item sales: one per brand old enough for channel_exclusive; kuaishou-items-daily; gmv_exclusive, exclusive_skus

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
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from brandsteps.sources.demo.accounts import SHOP_BASE, number_brands
from brandsteps.sources.demo.files import (
    GBK,
    UTF8_BOM,
    ExportFile,
    as_count,
    as_days,
    as_money,
    as_share,
    as_text,
    brand_names,
    span_of,
)
from brandsteps.sources.demo.report_exports import (
    AFFILIATE_DETAIL_BRAND_DAYS,
    by_shop_file,
    cililiujin_file,
    item_files,
    kuaifenxiao_files,
    live_room_file,
)
from brandsteps.sources.demo.store_exports import reexport_files, refunds_as_exported, store_files
from brandsteps.wording import counted

# The demo's own exports: per brand (d001-…_全店成交分析_….csv) and the multi-brand reports
# (磁力金牛_账户报表_20260611-20261206.csv).
_DEMO_FILE = re.compile(
    r"^(d\d{3,}-[a-z0-9-]+_|(磁力金牛_账户报表|直播数据|流量来源|客户分析|店铺服务|快分销_数据概览)_\d{8}-\d{8}\.)"
)


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
        head = (
            f"{self.report}: {counted(self.files, 'file')}, "
            f"{counted(self.brands, 'brand')} × {counted(self.days, 'day')}"
        )
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
    index = number_brands(brands["brand_id"].tolist())
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
        "日期": as_days(m["date"]),
        "店铺ID": (SHOP_BASE + m["brand_id"].map(index)).astype(str).to_numpy(),
        "店铺名称": brand_names(brands, m["brand_id"]),
    }
    span = span_of(m["date"])
    traffic = {
        "访客数": as_count(uv.sum(axis=1)),
        "私域访客数": as_count(uv[:, 0]),
        "公域自然访客数": as_count(uv[:, 1]),
        "公域付费访客数": as_count(uv[:, 2]),
    }
    customers = {
        "成交人数": as_count(buyers),
        "新买家数": as_count(buyers - returning),
        "老买家数": as_count(returning),
    }
    service = {
        "店铺体验分": as_text(m["store_rating"], ".1f"),
        "支付订单数": as_count(orders),
        "48小时发货订单数": as_count(shipped),
        "48小时发货率": as_share(shipped, orders),
    }
    affiliates = {
        "出单达人数": as_count(m["active_affiliates"]),
        "支付金额(元)": as_money(m["gmv_affiliate"], UTF8_BOM.symbol),
    }
    settled = m["refund_amount"].to_numpy()
    first_refunds = np.where(slow, refunds_as_exported(settled, np.ones(len(m))), settled)  # the next morning's
    return [
        *kuaifenxiao_files(folder / "快分销", m, index, end, young, seed),
        *store_files(folder / "全店成交分析", m, index, first_refunds, "全店成交分析 daily"),
        # then its re-exports, while the metrics hold few columns (each re-export's time is one more pass over them)
        *reexport_files(folder / "全店成交分析-重新导出", m, index, slow, end),
        cililiujin_file(folder, m, brands, index, end),
        live_room_file(folder, m, brands),
        by_shop_file(folder / f"流量来源_{span}", "流量来源 traffic", {**shop, **traffic}, UTF8_BOM),
        by_shop_file(folder / f"客户分析_{span}", "客户分析 customers", {**shop, **customers}, UTF8_BOM),
        by_shop_file(folder / f"店铺服务_{span}", "店铺服务 service", {**shop, **service}, GBK),
        by_shop_file(folder / f"快分销_数据概览_{span}", "快分销 数据概览", {**shop, **affiliates}, UTF8_BOM),
        *item_files(folder / "商品成交明细", m[per_row["items"].astype(bool)], brands, index, seed),
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
