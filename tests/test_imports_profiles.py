"""Import profiles: the built-ins, configs/imports/*.yaml with every error naming file and field, units, schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from brandsteps.config import ConfigError, write_json_schemas
from brandsteps.sources.imports import BUILTIN_PROFILES, ImportProfile, load_profiles
from brandsteps.sources.imports.profiles import header_key
from tests.conftest import REPO
from tests.imports_helpers import write_profile

LIVE = {
    "match": ["日期", "快手ID"],
    "date": "日期",
    "account": "快手ID",
    "columns": {"live_minutes": {"header": "直播时长(分钟)", "unit": "minute"}},
}


def test_builtin_profiles() -> None:
    assert list(BUILTIN_PROFILES) == [
        "kuaishou-store-daily",
        "kuaishou-store-accounts",
        "cililiujin-accounts",
        "kuaifenxiao-effect",
        "kuaishou-items-daily",
    ]
    # 磁力金牛 rows go to brands by either id column (docs/domain.md#accounts-and-items)
    assert BUILTIN_PROFILES["cililiujin-accounts"].account == ["账户ID", "快手ID"]
    assert BUILTIN_PROFILES["kuaishou-items-daily"].uses_exclusive_items


def test_repository_profiles_load() -> None:
    loaded = load_profiles(REPO / "configs")
    assert list(loaded) == [*BUILTIN_PROFILES, "live-room"]
    assert sorted(loaded["live-room"].columns) == ["followers_new", "live_minutes", "watch_minutes"]


def test_no_imports_folder_gives_the_builtins(tmp_path: Path) -> None:
    assert load_profiles(tmp_path) == BUILTIN_PROFILES


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(
            {"columns": {"live_minutes": {"header": "直播时长", "unit": "minutes"}}},
            "configs/imports/live.yaml: columns.live_minutes.unit: must be one of yuan, fen, li, second, minute, hour, count (got 'minutes')",
            id="unknown-unit",
        ),
        pytest.param(
            {"columns": {"live_time": {"header": "直播时长"}}},
            "configs/imports/live.yaml: columns.live_time: unknown base column 'live_time' (base columns: uv_private, uv_public_organic, uv_public_paid, "
            "watch_minutes, live_minutes, product_impressions, product_clicks, orders, buyers, returning_buyers, gmv, gmv_self, gmv_affiliate, gmv_exclusive, "
            "refund_amount, active_affiliates, commission, ad_spend, ad_gmv, orders_shipped_48h, store_rating, followers_new, exclusive_skus)",
            id="unknown-base-column",
        ),
        pytest.param(
            {"columns": {"followers_new": {"header": "新增粉丝", "aggregate": "avg"}}},
            "configs/imports/live.yaml: columns.followers_new.aggregate: must be one of sum, count_distinct, max, last (got 'avg')",
            id="unknown-aggregate",
        ),
        pytest.param(
            {"columns": {"gmv": {"header": "成交金额", "unit": "second"}}},
            "configs/imports/live.yaml: columns.gmv.unit: second does not fit gmv (money: yuan, fen, li)",
            id="time-unit-for-money",
        ),
        pytest.param(
            {"columns": {"gmv": {"header": "商品ID", "aggregate": "count_distinct"}}},
            "configs/imports/live.yaml: columns.gmv.aggregate: count_distinct counts ids; gmv is money, not a count",
            id="count-distinct-into-money",
        ),
        pytest.param(
            {"columns": {"orders": {"header": "订单", "where": {"header": "状态", "op": ">", "value": "已付款"}}}},
            "configs/imports/live.yaml: columns.orders.where[0]: op '>' compares numbers: value must be a number (got '已付款')",
            id="text-compared-by-size",
        ),
        pytest.param(
            {
                "columns": {
                    "gmv_exclusive": {
                        "header": "成交金额",
                        "where": {"header": "商品ID", "op": "in", "value": "my_items"},
                    }
                }
            },
            "configs/imports/live.yaml: columns.gmv_exclusive.where[0]: op 'in' takes value: exclusive_items (the brand's item ids)",
            id="in-something-else",
        ),
        pytest.param(
            {"columns": {"orders": {"header": "订单", "where": {"header": "数", "op": "=>", "value": 1}}}},
            "configs/imports/live.yaml: columns.orders.where[0].op: must be one of >, >=, <, <=, ==, !=, in (got '=>')",
            id="unknown-op",
        ),
        pytest.param({"match": []}, "configs/imports/live.yaml: match: must not be empty", id="empty-match"),
        pytest.param({"colour": "red"}, "configs/imports/live.yaml: colour: unknown key", id="unknown-key"),
        pytest.param(
            {"account": 12},
            "configs/imports/live.yaml: account: must be a header or a non-empty list of headers (text)",
            id="account-not-a-header",
        ),
    ],
)
def test_bad_profile_is_reported_with_file_and_field(tmp_path: Path, change: dict, expected: str) -> None:
    write_profile(tmp_path / "configs", "live", {**LIVE, **change})
    with pytest.raises(ConfigError) as info:
        load_profiles(tmp_path / "configs")
    assert info.value.problems == [expected]


def test_every_bad_file_is_reported_and_a_builtin_name_is_refused(tmp_path: Path) -> None:
    configs = tmp_path / "configs"
    write_profile(configs, "cililiujin-accounts", LIVE)
    write_profile(configs, "broken", "match: [日期\n")
    with pytest.raises(ConfigError) as info:
        load_profiles(configs)
    assert info.value.problems == [
        "configs/imports/broken.yaml: invalid YAML (line 2, column 1): did not find expected ',' or ']'",
        "configs/imports/cililiujin-accounts.yaml: 'cililiujin-accounts' is the name of a built-in profile; rename the file",
    ]


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        pytest.param("总花费(元)", ("总花费", "元"), id="unit-note-split-off"),
        pytest.param("退款金额（支付日）", ("退款金额(支付日)", ""), id="fullwidth-brackets-not-a-unit"),
        pytest.param("达人ID", ("达人id", ""), id="latin-caseless"),
        pytest.param(" 直播时长 （分钟） ", ("直播时长", "分钟"), id="spaces-and-fullwidth-note"),
        pytest.param("当日累计GMV(元)", ("当日累计gmv", "元"), id="gmv-caseless"),
    ],
)
def test_header_key(written: str, expected: tuple[str, str]) -> None:
    assert header_key(written) == expected


@pytest.mark.parametrize(
    ("column", "note", "unit", "expected"),
    [
        pytest.param("commission", "分", None, "fen", id="money-note-fen"),
        pytest.param("commission", "", None, "yuan", id="money-default-yuan"),
        pytest.param("ad_spend", "厘", "yuan", "li", id="file-note-beats-profile"),
        pytest.param("live_minutes", "分", None, "minute", id="time-note-fen-is-minute"),
        pytest.param("live_minutes", "秒", None, "second", id="time-note-second"),
        pytest.param("live_minutes", "元", "hour", "hour", id="note-of-another-kind-ignored"),
        pytest.param("orders", "单", None, "count", id="count"),
    ],
)
def test_unit_of_a_column(column: str, note: str, unit: str | None, expected: str) -> None:
    profile = ImportProfile.model_validate({"match": ["x"], "columns": {column: {"header": "x", "unit": unit}}})
    assert profile.unit(column, note) == expected


def test_import_profile_schema_is_written(tmp_path: Path) -> None:
    write_json_schemas(tmp_path)
    schema = json.loads((tmp_path / "import-profile.schema.json").read_text(encoding="utf-8"))
    assert schema["additionalProperties"] is False and schema["required"] == ["match", "columns"]
    assert schema["$defs"]["ColumnSpec"]["properties"]["unit"]["anyOf"][0]["enum"] == [
        "yuan",
        "fen",
        "li",
        "second",
        "minute",
        "hour",
        "count",
    ]
    # the repository's copy is the one the models give (`brandsteps schema` wrote it)
    assert json.loads((REPO / "schemas" / "import-profile.schema.json").read_text(encoding="utf-8")) == schema
