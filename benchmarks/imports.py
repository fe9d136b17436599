"""Import benchmark (issue 13, point 9): read_import over a large 磁力金牛 file and many store exports, then restate.

    .venv/bin/python benchmarks/imports.py        # 1,000 accounts × 30 days; 1,000 store files × 100 days
    .venv/bin/python benchmarks/imports.py --accounts 200 --store-brands 100 --repeat 3

Data (generated under --work once per size and reused; the generation is not timed): a 磁力金牛 account
report in GBK with ￥ and thousands separators, `--accounts` ad accounts × `--days` days (two accounts
per brand, matched by 账户ID for one and 快手ID for the other), plus a 合计 row; and `--store-brands`
全店成交分析 daily exports of `--store-days` days each (UTF-8 with BOM, a title line, 万 values, 合计 row),
one file per brand: 100,000 brand-days by default. Timed: read_import of the 磁力金牛 file and of every
store file; then, into a fresh Parquet file and a fresh metrics folder, the 磁力金牛 file stored
(restate_many) and then the first `--restate-files` store files (default all) stored in one
restate_many call, as `brandsteps import exports/*.csv` does. Each import is reported end to end
(its read_import time plus its restate time) against the targets: ≤ 5 s for the 磁力金牛 file,
≤ 60 s for the store files. `--one-by-one` restates the store files with a restate call each
instead (the per-file path, for comparison).
This is a measurement, not a test: it prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from brandsteps.config import Brand  # noqa: E402
from brandsteps.sources.imports import BUILTIN_PROFILES, ImportedFile, read_import  # noqa: E402

SEED = 13
FIRST = date(2025, 6, 1)
TARGETS = {"cililiujin": 5.0, "store": 60.0}


def _money(values: np.ndarray, sign: str) -> pd.Series:
    return pd.Series(values).map(lambda v: f"{sign}{v:,.2f}")  # as 生意通 writes it: ￥12,345.67


def cililiujin_file(folder: Path, accounts: int, days: int) -> Path:
    """One 磁力金牛 account report: accounts × days rows, GBK."""
    path = folder / f"cililiujin_{accounts}x{days}.csv"
    if path.exists():
        return path
    rng = np.random.default_rng(SEED)
    account = np.repeat(np.arange(accounts), days)
    day = np.tile(pd.date_range(FIRST, periods=days).strftime("%Y-%m-%d").to_numpy(), accounts)
    spend = rng.gamma(2.0, 800.0, accounts * days).round(2)
    gmv = (spend * rng.uniform(1.0, 4.0, accounts * days)).round(2)
    frame = pd.DataFrame(
        {
            "账户名称": pd.Series(account).map(lambda a: f"品牌{a // 2}-{'主号' if a % 2 == 0 else '直播'}"),
            "账户ID": account + 100_000,
            "时间": day,
            "账户类型": "标准账户",
            "快手昵称": pd.Series(account).map(lambda a: f"昵称{a}"),
            "快手ID": pd.Series(account).map(lambda a: f"ks_{a}"),
            "总花费(元)": _money(spend, "￥"),
            "当日累计GMV(元)": _money(gmv, "￥"),
            "当日累计ROI": (gmv / spend).round(2),
        }
    )
    total = pd.DataFrame(
        [{"账户名称": "合计", "总花费(元)": f"￥{spend.sum():,.2f}", "当日累计GMV(元)": f"￥{gmv.sum():,.2f}"}]
    )
    pd.concat([frame, total]).to_csv(path, index=False, encoding="gbk")
    return path


def store_files(folder: Path, brands: int, days: int) -> list[Path]:
    """One 全店成交分析 daily export per brand, days rows each, UTF-8 with BOM."""
    target = folder / f"store_{brands}x{days}"
    paths = [target / f"brand{b:05d}.csv" for b in range(brands)]
    if (target / ".complete").exists():
        return paths
    target.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED + 1)
    dates = pd.date_range(FIRST, periods=days).strftime("%Y-%m-%d").to_numpy()
    for path in paths:
        gmv = rng.gamma(2.0, 20_000.0, days).round(2)
        orders = (gmv / rng.uniform(40, 120, days)).round()
        frame = pd.DataFrame(
            {
                "日期": dates,
                "成交金额": (pd.Series(gmv / 10_000).round(4).astype(str) + "万").to_numpy(),
                "成交订单数": orders.astype(int),
                "成交人数": (orders * 0.9).round().astype(int),
                "退款金额（支付日）": _money((gmv * 0.2).round(2), "¥"),
                "预估佣金": _money((gmv * 0.1).round(2), "¥"),
                "商品曝光次数": (orders * 300).astype(int),
                "商品点击次数": (orders * 25).astype(int),
                "自营成交": pd.Series(rng.uniform(0, 30, days)).map(lambda s: f"{s:.2f}%"),
                "达人合作成交": _money((gmv * 0.6).round(2), "¥"),
            }
        )
        text = "全店成交分析\n" + frame.to_csv(index=False) + f"合计,{gmv.sum():.2f}\n"
        path.write_bytes(text.encode("utf-8-sig"))
    (target / ".complete").touch()
    return paths


def brands_for(accounts: int, store_brands: int) -> dict[str, Brand]:
    """Two ad accounts per brand: the first by 账户ID, the second by 快手ID; store brands by file."""
    count = max((accounts + 1) // 2, store_brands)
    out = {}
    for b in range(count):
        listed = [str(100_000 + 2 * b), f"ks_{2 * b + 1}"] if 2 * b < accounts else []
        out[f"brand{b:05d}"] = Brand(
            brand_id=f"brand{b:05d}", name=f"品牌{b}", tier="mid", category="food", start_date=FIRST, accounts=listed
        )
    return out


def timed(label: str, repeat: int, work: Callable[[], Any]) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--store-brands", type=int, default=1000)
    parser.add_argument("--store-days", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=1, help="best of N for the reads")
    parser.add_argument(
        "--restate-files",
        type=int,
        default=None,
        help="store files restated into each target after the 磁力金牛 file (default all)",
    )
    parser.add_argument(
        "--one-by-one",
        action="store_true",
        help="a restate call per store file (the per-file path) instead of one restate_many",
    )
    parser.add_argument("--targets", default="parquet,folder", help="comma-separated: parquet, folder (default both)")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "brandsteps-bench-imports")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    jinniu = cililiujin_file(args.work, args.accounts, args.days)
    stores = store_files(args.work, args.store_brands, args.store_days)
    brands = brands_for(args.accounts, args.store_brands)
    print(f"data in {args.work} ({time.perf_counter() - started:.1f} s to generate or find)")

    read_jinniu, one = timed("cililiujin", args.repeat, lambda: read_import(jinniu, brands, BUILTIN_PROFILES))
    rows = args.accounts * args.days
    print(
        f"read_import 磁力金牛 {args.accounts:,} accounts × {args.days} days ({rows:,} rows): {read_jinniu:.2f} s "
        f"→ {len(one.rows):,} brand-days, {len(one.skipped_accounts)} skipped accounts"
    )

    some_stores = stores if args.restate_files is None else stores[: args.restate_files]

    def read_stores() -> list[ImportedFile]:
        return [read_import(p, brands, BUILTIN_PROFILES, brand=p.stem) for p in some_stores]

    read_store, imported = timed("store", args.repeat, read_stores)
    brand_days = sum(len(f.rows) for f in imported)
    each = read_store / max(len(imported), 1) * 1000
    print(
        f"read_import 全店成交分析 {len(imported):,} files × {args.store_days} days ({brand_days:,} brand-days): "
        f"{read_store:.2f} s ({each:.1f} ms a file)"
    )

    from brandsteps.sources.imports.restate import restate, restate_many
    from brandsteps.sources.metrics_source import MetricsSource

    kinds = {
        "parquet": ("Parquet file", args.work / "restate" / "metrics.parquet"),
        "folder": ("folder", args.work / "restate" / "metrics"),
    }
    for name in args.targets.split(","):
        kind, target = kinds[name.strip()]
        shutil.rmtree(target.parent, ignore_errors=True)
        target.parent.mkdir(parents=True)
        source = MetricsSource(path=target)
        start = time.perf_counter()
        restate_many(source, [one])
        store_jinniu = time.perf_counter() - start
        start = time.perf_counter()
        results = [restate(source, f) for f in imported] if args.one_by_one else restate_many(source, imported)
        store_all = time.perf_counter() - start
        failed = sum(r.error is not None for r in results)
        how = ("a restate call each" if args.one_by_one else "one restate_many call") + (
            f"; {failed} failed" if failed else ""
        )
        print(f"into a {kind}:")
        print(_against(f"  磁力金牛 {len(one.rows):,} brand-days", read_jinniu, store_jinniu, TARGETS["cililiujin"]))
        print(
            _against(
                f"  全店成交分析 {brand_days:,} brand-days in {len(imported):,} files ({how})",
                read_store,
                store_all,
                TARGETS["store"],
            )
        )


def _against(label: str, read: float, stored: float, target: float) -> str:
    total = read + stored
    verdict = "within" if total <= target else "OVER"
    return (
        f"{label}: read {read:.2f} s + restate {stored:.2f} s = {total:.2f} s end to end "
        f"({verdict} the {target:.0f} s target)"
    )


if __name__ == "__main__":
    main()
