"""The accounts and items the demo's brands list, so that multi-brand and per-item reports find their brand."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

ACCOUNT_NOBODY = "90000001"  # a 磁力金牛 test account of the service provider that no brand lists: skipped
AD_ACCOUNT_BASE = 71_000_000  # 账户ID of brand number i (its place in the plan, from 1): base + i
SHOP_BASE = 52_000_000  # 店铺ID of brand i
ITEM_BASE = 600_000_000  # 商品ID of brand i's item j: base + 100 i + j (j = 0: its regular range)


def number_brands(brand_ids: Sequence[str]) -> dict[str, int]:
    return {b: i for i, b in enumerate(brand_ids, start=1)}


def kuaishou_id(brand_id: pd.Series) -> pd.Series:
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
        accounts = [str(AD_ACCOUNT_BASE + i)] if ads else []
        accounts += [f"ks_{brand_id.replace('-', '_')}", str(SHOP_BASE + i)]
        skus = [str(ITEM_BASE + 100 * i + j) for j in range(1, int(most.get(brand_id, 0)) + 1)] if items else []
        out[brand_id] = {"accounts": accounts, "exclusive_items": skus} if skus else {"accounts": accounts}
    return out
