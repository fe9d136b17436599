"""The built-in import profiles of the known Kuaishou reports (docs/domain.md#kuaishou-exports), as data."""

from __future__ import annotations

from typing import Any

from brandsteps.sources.imports.profiles import ImportProfile

__all__ = ["BUILTIN_PROFILES", "BUILTIN_DATA"]

# The day column of 生意通 reports goes by several names; the first one a file has is used.
_DAY = ["日期", "统计日期", "时间", "统计时间"]

BUILTIN_DATA: dict[str, dict[str, Any]] = {
    # 全店成交分析, one row per day: what `import-kuaishou` maps (docs/kuaishou-import.md). 结算佣金
    # is preferred to 预估佣金 (an estimate), and 自营/达人合作 shares (%) become amounts of 成交金额.
    "kuaishou-store-daily": {
        "description": "生意通 全店成交分析, one row per day (as import-kuaishou)",
        "match": ["成交金额"],
        "date": _DAY,
        "columns": {
            "gmv": {"header": "成交金额"},
            "orders": {"header": "成交订单数"},
            "buyers": {"header": "成交人数"},
            "refund_amount": {"header": "退款金额(支付日)"},
            "commission": {"header": ["结算佣金", "预估佣金"]},
            "product_impressions": {"header": "商品曝光次数"},
            "product_clicks": {"header": "商品点击次数"},
            "gmv_self": {"header": ["自营成交", "自营成交金额", "自营成交占比"], "share_of": "成交金额"},
            "gmv_affiliate": {
                "header": ["达人合作成交", "达人合作成交金额", "达人合作成交占比"],
                "share_of": "成交金额",
            },
        },
    },
    # 全店成交分析 > 账号构成 > 下载明细: one row per account for a one-day range (the day is in the
    # title or file name). Selling affiliates: 合作达人 accounts that sold something that day.
    "kuaishou-store-accounts": {
        "description": "生意通 全店成交分析 账号构成 下载明细, one row per account for one day",
        "match": ["账号信息", "账号类型", "成交金额"],
        "date": _DAY,
        "columns": {
            "active_affiliates": {
                "header": "账号信息",
                "aggregate": "count_distinct",
                "where": [
                    {"header": "账号类型", "op": "==", "value": "合作达人"},
                    {"header": "成交金额", "op": ">", "value": 0},
                ],
            },
        },
    },
    # 磁力金牛 account report: one row per ad account and day, many accounts (brands) per file.
    # 当日累计GMV is same-day attribution; it keeps growing for 30 days, so re-exports restate it.
    "cililiujin-accounts": {
        "description": "磁力金牛 account report, one row per ad account and day",
        "match": ["账户ID", "时间", "总花费", "当日累计GMV"],
        "date": "时间",
        "account": ["账户ID", "快手ID"],
        "columns": {
            "ad_spend": {"header": "总花费(元)"},
            "ad_gmv": {"header": "当日累计GMV(元)"},
        },
    },
    # 快分销 效果明细: one row per product × 达人 and day. Money is in yuan unless a header says (分).
    "kuaifenxiao-effect": {
        "description": "快分销 效果明细, one row per product, 达人 and day",
        "match": ["达人id", "商品ID", "预估佣金"],
        "date": _DAY,
        "columns": {
            "active_affiliates": {
                "header": "达人id",
                "aggregate": "count_distinct",
                "where": {"header": ["支付订单数", "支付笔数"], "op": ">", "value": 0},
            },
            "commission": {"header": "预估佣金"},
        },
    },
    # A per-item daily export (商品ID): with the brand's exclusive_items, its channel-exclusive sales.
    "kuaishou-items-daily": {
        "description": "per-item daily sales (商品ID): channel-exclusive GMV and SKUs with sales",
        "match": ["商品ID", "成交金额"],
        "date": _DAY,
        "columns": {
            "gmv_exclusive": {
                "header": "成交金额",
                "where": {"header": "商品ID", "op": "in", "value": "exclusive_items"},
            },
            "exclusive_skus": {
                "header": "商品ID",
                "aggregate": "count_distinct",
                "where": [
                    {"header": "商品ID", "op": "in", "value": "exclusive_items"},
                    {"header": "成交金额", "op": ">", "value": 0},
                ],
            },
        },
    },
}

# Validated like a user's profile, so a built-in can never hold what a YAML file may not.
BUILTIN_PROFILES: dict[str, ImportProfile] = {
    name: ImportProfile.model_validate(data) for name, data in BUILTIN_DATA.items()
}
