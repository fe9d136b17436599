"""Reading exports by profile: each built-in report's fixture to exact rows, units, aggregates, recognition, errors."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import pandas as pd
import pytest

from brandsteps.sources.imports import BUILTIN_PROFILES, ImportFormatError, read_import
from brandsteps.sources.kuaishou.storing import import_kuaishou
from tests.imports_helpers import (
    BRANDS,
    FIXTURES,
    KUAISHOU_FIXTURES,
    brand,
    frame_records,
    profiles,
    records,
    write_csv,
)

NAN = None  # not measured, as records() shows it


@pytest.mark.parametrize(
    ("file", "given", "profile", "expected"),
    [
        pytest.param(
            "cililiujin_accounts_gbk.csv",
            None,
            "cililiujin-accounts",
            [
                # 1001 (账户ID) and 3003 (快手ID ks_tea2) are both shanye-tea's: ￥1,200.50 + ￥99.5, ￥3,001.25 + ￥450
                {"brand_id": "shanye-tea", "date": "2025-07-01", "ad_spend": 1300.0, "ad_gmv": 3451.25},
                # day 2: only 1001, whose 当日累计GMV is '-': not measured, never 0
                {"brand_id": "shanye-tea", "date": "2025-07-02", "ad_spend": 800.0, "ad_gmv": NAN},
                {"brand_id": "yunqi-beauty", "date": "2025-07-01", "ad_spend": 12000.0, "ad_gmv": 30000.0},  # 1.2万
                {"brand_id": "yunqi-beauty", "date": "2025-07-02", "ad_spend": 9000.0, "ad_gmv": 27000.3},
            ],
            id="cililiujin-gbk-by-accounts",
        ),
        pytest.param(
            "kuaifenxiao_effect_utf8bom.csv",
            "shanye-tea",
            "kuaifenxiao-effect",
            [
                # d1 (two products, counted once) and D3 sold; d2 had 0 orders. 预估佣金(分): 5940+1180+0+2970 = 10090 fen
                {"brand_id": "shanye-tea", "date": "2025-07-01", "active_affiliates": 2.0, "commission": 100.9},
                # d1 sold; d4's orders are '-' (not measured: not counted). 1980 fen + '-'
                {"brand_id": "shanye-tea", "date": "2025-07-02", "active_affiliates": 1.0, "commission": 19.8},
            ],
            id="kuaifenxiao-bom-fen",
        ),
        pytest.param(
            "store_accounts_20250705.xlsx",
            "shanye-tea",
            "kuaishou-store-accounts",
            # 合作达人 with 成交金额 > 0: 达人甲 (¥1,200) and 达人丙 (88.8); 乙 sold 0, 丁 '-'; the 经营号 is not an affiliate
            [{"brand_id": "shanye-tea", "date": "2025-07-05", "active_affiliates": 2.0}],
            id="store-accounts-xlsx-day-from-title",
        ),
        pytest.param(
            "items_daily.xlsx",
            "shanye-tea",
            "kuaishou-items-daily",
            [
                # exclusive 5001 (1000.5) and 5002 (0): GMV 1000.5; one exclusive item with sales
                {"brand_id": "shanye-tea", "date": "2025-07-01", "gmv_exclusive": 1000.5, "exclusive_skus": 1.0},
                {
                    "brand_id": "shanye-tea",
                    "date": "2025-07-02",
                    "gmv_exclusive": 999.9,
                    "exclusive_skus": 2.0,
                },  # 800 + 199.9
                # only the regular item 6001 sold: measured, no exclusive sales
                {"brand_id": "shanye-tea", "date": "2025-07-03", "gmv_exclusive": 0.0, "exclusive_skus": 0.0},
            ],
            id="items-xlsx-exclusive",
        ),
        pytest.param(
            "items_daily.xlsx",
            "yunqi-beauty",
            "kuaishou-items-daily",
            # yunqi-beauty lists no exclusive_items: which items are exclusive is unknown, so not measured
            [
                {"brand_id": "yunqi-beauty", "date": f"2025-07-0{d}", "gmv_exclusive": NAN, "exclusive_skus": NAN}
                for d in (1, 2, 3)
            ],
            id="items-brand-without-exclusive-items",
        ),
    ],
)
def test_builtin_report_to_rows(file: str, given: str | None, profile: str, expected: list[dict]) -> None:
    imported = read_import(FIXTURES / file, BRANDS, BUILTIN_PROFILES, brand=given)
    assert imported.profile == profile
    assert records(imported) == expected
    assert imported.columns == tuple(imported.rows.columns[2:])


def test_the_imported_file_contract() -> None:
    path = FIXTURES / "cililiujin_accounts_gbk.csv"
    imported = read_import(path, BRANDS, BUILTIN_PROFILES)
    assert imported.path == path and imported.columns == ("ad_spend", "ad_gmv")
    assert imported.digest == hashlib.sha256(path.read_bytes()).hexdigest()
    dtypes = {c: str(t) for c, t in imported.rows.dtypes.items()}
    assert dtypes == {"brand_id": "str", "date": "datetime64[ns]", "ad_spend": "float64", "ad_gmv": "float64"}
    # 9999 / ks_nobody is no brand's: listed with its rows and days, not imported; the 合计 row is no account
    assert frame_records(imported.skipped_accounts) == [
        {"account": "9999", "rows": 2, "days": "2025-07-01 to 2025-07-02"}
    ]


def test_with_brand_every_row_is_that_brands() -> None:
    imported = read_import(FIXTURES / "cililiujin_accounts_gbk.csv", BRANDS, BUILTIN_PROFILES, brand="shanye-tea")
    # all four accounts: 1,200.50 + 99.5 + 12,000 + 10 on day 1; 800 + 9,000 + 20 on day 2
    assert records(imported) == [
        {"brand_id": "shanye-tea", "date": "2025-07-01", "ad_spend": 13310.0, "ad_gmv": 33451.25},
        {"brand_id": "shanye-tea", "date": "2025-07-02", "ad_spend": 9820.0, "ad_gmv": 27005.3},
    ]
    assert imported.skipped_accounts.empty


def test_user_profile_live_room() -> None:
    live_room = {
        "match": ["日期", "快手ID", "直播时长(分钟)"],
        "date": "日期",
        "account": "快手ID",
        "columns": {
            "live_minutes": {"header": "直播时长(分钟)", "unit": "minute"},
            "watch_minutes": {"header": "观看总时长", "unit": "second"},
            "followers_new": {"header": "新增粉丝"},
        },
    }
    brands = {"shanye-tea": brand("shanye-tea", accounts=["ks_tea1", "ks_tea2"])}
    imported = read_import(FIXTURES / "live_room.csv", brands, profiles(live_room=live_room))
    assert imported.profile == "live-room"
    assert records(imported) == [
        # 120 + 30 live minutes; (360,000 + 36,000) s / 60 = 6,600 watch minutes; 85 + 5 followers
        {
            "brand_id": "shanye-tea",
            "date": "2025-07-01",
            "watch_minutes": 6600.0,
            "live_minutes": 150.0,
            "followers_new": 90.0,
        },
        # 1.2万 s = 12,000 s = 200 min; 新增粉丝 '-' is not measured
        {
            "brand_id": "shanye-tea",
            "date": "2025-07-02",
            "watch_minutes": 200.0,
            "live_minutes": 90.5,
            "followers_new": NAN,
        },
    ]


@pytest.mark.parametrize(
    "file",
    [
        pytest.param("daily_week_utf8bom.csv", id="csv-bom-estimated-commission"),
        pytest.param("daily_title.xlsx", id="xlsx-shares-and-total-row"),
    ],
)
def test_store_daily_profile_reads_what_import_kuaishou_does(file: str) -> None:
    imported = read_import(KUAISHOU_FIXTURES / file, {}, BUILTIN_PROFILES, brand="shanye-tea")
    assert imported.profile == "kuaishou-store-daily"
    expected = import_kuaishou([KUAISHOU_FIXTURES / file], "shanye-tea").rows
    assert list(imported.rows.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(imported.rows, expected.astype({"brand_id": str, "date": "datetime64[ns]"}))


@pytest.mark.parametrize(
    ("unit", "cells", "expected"),
    [
        pytest.param("yuan", ["12.5", "¥1,000"], 1012.5, id="yuan"),
        pytest.param("fen", ["1250", "100000"], 1012.5, id="fen-divided-by-100"),
        pytest.param("li", ["12500", "1,000,000"], 1012.5, id="li-divided-by-1000"),
    ],
)
def test_money_units(tmp_path: Path, unit: str, cells: list[str], expected: float) -> None:
    spend = {"match": ["日期", "花费"], "date": "日期", "columns": {"ad_spend": {"header": "花费", "unit": unit}}}
    path = write_csv(tmp_path / "spend.csv", [["日期", "花费"], *(["2025-07-01", c] for c in cells)])
    imported = read_import(path, {}, profiles(spend=spend), brand="b")
    assert imported.rows["ad_spend"].tolist() == [expected]


@pytest.mark.parametrize(
    ("unit", "cells", "expected"),
    [
        pytest.param("second", ["90", "30"], 2.0, id="seconds-over-60"),
        pytest.param("minute", ["1.5", "0.5"], 2.0, id="minutes"),
        pytest.param("hour", ["1.5", "0.5"], 120.0, id="hours-times-60"),
    ],
)
def test_time_units(tmp_path: Path, unit: str, cells: list[str], expected: float) -> None:
    live = {"match": ["日期", "时长"], "date": "日期", "columns": {"live_minutes": {"header": "时长", "unit": unit}}}
    path = write_csv(tmp_path / "live.csv", [["日期", "时长"], *(["2025-07-01", c] for c in cells)])
    imported = read_import(path, {}, profiles(live=live), brand="b")
    assert imported.rows["live_minutes"].tolist() == [expected]


@pytest.mark.parametrize(
    ("aggregate", "expected"),
    [
        pytest.param("sum", 6.0, id="sum"),  # 1 + 2 + 3; '-' is skipped
        pytest.param("max", 3.0, id="max"),
        pytest.param("last", 3.0, id="last-non-missing-in-file-order"),  # the last row is '-'
        pytest.param("count_distinct", 3.0, id="count-distinct"),  # 1, 2, 3; '-' is no value
    ],
)
def test_aggregates(tmp_path: Path, aggregate: str, expected: float) -> None:
    data = {"match": ["日期", "值"], "date": "日期", "columns": {"orders": {"header": "值", "aggregate": aggregate}}}
    path = write_csv(
        tmp_path / "v.csv",
        [["日期", "值"], ["2025-07-01", "1"], ["2025-07-01", "2"], ["2025-07-01", "3"], ["2025-07-01", "-"]],
    )
    assert read_import(path, {}, profiles(v=data), brand="b").rows["orders"].tolist() == [expected]


def test_a_day_with_every_cell_missing_is_not_measured(tmp_path: Path) -> None:
    data = {"match": ["日期", "值"], "date": "日期", "columns": {"orders": {"header": "值"}}}
    path = write_csv(tmp_path / "v.csv", [["日期", "值"], ["2025-07-01", "-"], ["2025-07-01", ""], ["2025-07-02", "0"]])
    values = read_import(path, {}, profiles(v=data), brand="b").rows["orders"].tolist()
    assert math.isnan(values[0]) and values[1] == 0.0  # '-' and empty: NaN, never 0; a written 0 is 0


def test_the_most_specific_profile_wins(tmp_path: Path) -> None:
    # 商品ID + 成交金额 is the items profile (2 match headers), not the store-daily one (成交金额 alone)
    path = write_csv(tmp_path / "items.csv", [["日期", "商品ID", "成交金额"], ["2025-07-01", "5001", "10"]])
    assert read_import(path, BRANDS, BUILTIN_PROFILES, brand="shanye-tea").profile == "kuaishou-items-daily"
    # named: the store-daily reading of the same file, every row's 成交金额 summed as the day's gmv
    named = read_import(path, BRANDS, BUILTIN_PROFILES, brand="shanye-tea", profile="kuaishou-store-daily")
    assert (named.profile, named.rows["gmv"].tolist()) == ("kuaishou-store-daily", [10.0])


def test_two_profiles_fitting_equally_is_an_error(tmp_path: Path) -> None:
    a = {"match": ["日期", "花费"], "date": "日期", "columns": {"ad_spend": {"header": "花费"}}}
    b = {"match": ["日期", "消耗"], "date": "日期", "columns": {"ad_spend": {"header": "消耗"}}}
    path = write_csv(tmp_path / "ads.csv", [["日期", "花费", "消耗"], ["2025-07-01", "1", "1"]])
    with pytest.raises(ImportFormatError) as info:
        read_import(path, {}, profiles(ads_a=a, ads_b=b), brand="x")
    assert (
        str(info.value)
        == f"{path}: the header row fits the profiles ads-a, ads-b equally well; name one with --profile"
    )


def _raises(path: Path, message: str, **kwargs: object) -> None:
    with pytest.raises(ImportFormatError) as info:
        read_import(path, kwargs.pop("brands", BRANDS), kwargs.pop("profiles", BUILTIN_PROFILES), **kwargs)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_no_profile_matches() -> None:
    path = FIXTURES / "xiaodiantong_unknown.csv"
    _raises(
        path,
        f"{path}: no import profile matches its header row (tried: kuaishou-store-daily, kuaishou-store-accounts, cililiujin-accounts, "
        "kuaifenxiao-effect, kuaishou-items-daily); name one with --profile, or describe the file in configs/imports/<name>.yaml",
    )


def test_unreadable_cell_names_file_row_and_column() -> None:
    path = FIXTURES / "cililiujin_bad_cell.csv"
    _raises(path, f"{path}: row 4, 总花费(元): cannot read '1,2x0' as a number")


def test_where_on_a_header_the_file_lacks(tmp_path: Path) -> None:
    data = {
        "match": ["日期", "达人id"],
        "date": "日期",
        "columns": {
            "active_affiliates": {
                "header": "达人id",
                "aggregate": "count_distinct",
                "where": {"header": "支付订单数", "op": ">", "value": 0},
            }
        },
    }
    path = write_csv(tmp_path / "fx.csv", [["日期", "达人id", "订单"], ["2025-07-01", "d1", "1"]])
    _raises(
        path,
        f"{path}: columns.active_affiliates.where: the file has no column 支付订单数 (profile 'fx')",
        profiles=profiles(fx=data),
        brand="b",
    )


def test_two_brands_claiming_one_row(tmp_path: Path) -> None:
    brands = {"a": brand("a", accounts=["1001"]), "b": brand("b", accounts=["ks_b"])}
    path = write_csv(
        tmp_path / "jn.csv",
        [["账户ID", "时间", "快手ID", "总花费(元)", "当日累计GMV(元)"], ["1001", "2025-07-01", "ks_b", "1", "2"]],
    )
    _raises(
        path,
        f"{path}: row 2: 账户ID 1001 is a's, 快手ID ks_b is b's: an account belongs to one brand (fix accounts in configs/brands)",
        brands=brands,
    )


@pytest.mark.parametrize(
    ("rows", "kwargs", "message"),
    [
        pytest.param(
            [["日期", "成交金额"], ["2025-07-01", "1"]],
            {},
            "{path}: profile 'kuaishou-store-daily' has no account column to tell brands apart: name the brand with --brand",
            id="no-account-no-brand",
        ),
        pytest.param(
            [["日期", "成交金额"], ["2025-07-01", "1"], ["7月2日", "2"]],
            {"brand": "b"},
            "{path}: row 3, 日期: cannot read '7月2日' as a day",
            id="unreadable-day",
        ),
        pytest.param(
            [["统计时间：2025-07-01 至 2025-07-31"], ["成交金额"], ["1"]],
            {"brand": "b"},
            "{path}: no 日期/统计日期/时间/统计时间 column, and the file covers 2025-07-01 to 2025-07-31, not one day",
            id="period-file-is-not-days",
        ),
        pytest.param(
            [["日期", "成交金额"]],
            {"brand": "b"},
            "{path}: no data rows under the header (row 1)",
            id="header-only",
        ),
        pytest.param(
            [["日期", "成交金额"], ["2025-07-01", "1"]],
            {"brand": "b", "profile": "live"},
            "--profile 'live': no such import profile (known: kuaishou-store-daily, kuaishou-store-accounts, cililiujin-accounts, kuaifenxiao-effect, kuaishou-items-daily)",
            id="unknown-profile",
        ),
        pytest.param(
            [["日期", "成交金额"], ["2025-07-01", "1"]],
            {"brand": "b", "profile": "cililiujin-accounts"},
            "{path}: no header row with every match header of profile 'cililiujin-accounts' (missing: 当日累计gmv, 总花费, 时间, 账户id)",
            id="named-profile-does-not-fit",
        ),
    ],
)
def test_bad_input(tmp_path: Path, rows: list[list[str]], kwargs: dict, message: str) -> None:
    path = write_csv(tmp_path / "x.csv", rows)
    _raises(path, message.format(path=path), **kwargs)


def test_gbk_csv_is_read(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "gbk.csv", [["日期", "成交金额"], ["2025-07-01", "￥1,234.5"]], encoding="gbk")
    assert read_import(path, {}, BUILTIN_PROFILES, brand="b").rows["gmv"].tolist() == [1234.5]
