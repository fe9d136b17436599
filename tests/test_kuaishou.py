"""Tests of the Kuaishou 生意通 全店成交分析 importer."""

from __future__ import annotations

import math
import re
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from openpyxl import Workbook

from brandsteps.catalogue import BASE_COLUMNS
from brandsteps.sources.kuaishou.cells import KuaishouFormatError, parse_kuaishou_series, parse_kuaishou_value
from brandsteps.sources.kuaishou.reader import PeriodRecord, read_kuaishou_export, to_metrics_rows

# The base columns the 7-day fixture carries, in the order the reader emits them.
DAILY_FIXTURE_COLUMNS = [
    "product_impressions",
    "product_clicks",
    "orders",
    "buyers",
    "gmv",
    "gmv_self",
    "gmv_affiliate",
    "refund_amount",
    "commission",
]

FIXTURES = Path(__file__).parent / "fixtures" / "kuaishou"
SAMPLE_MONTH = FIXTURES / "sample_month_gbk.csv"
DAILY_WEEK = FIXTURES / "daily_week_utf8bom.csv"
DAILY_XLSX = FIXTURES / "daily_title.xlsx"


def write_csv(path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path.write_text("\n".join(lines) + "\n", encoding=encoding)
    return path


# --- one cell ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # the yen sign and thousands separators are dropped, the digits kept as written
        pytest.param("¥472,278.3", 472278.3, id="yen-and-separators"),
        pytest.param("￥472,278.3", 472278.3, id="fullwidth-yen"),  # GBK files carry the fullwidth yen sign
        pytest.param("13,848", 13848.0, id="count-with-separator"),
        pytest.param("1,234,567.89", 1234567.89, id="two-separators"),
        # a percentage is a share: 57.55% is 0.5755
        pytest.param("57.55%", 0.5755, id="percent"),
        pytest.param("3.9%", 0.039, id="small-percent"),
        pytest.param("0%", 0.0, id="zero-percent"),
        # 万 is 10,000 and 亿 100,000,000, with or without 元 after them
        pytest.param("47.22万", 472200.0, id="wan"),
        pytest.param("47.22万元", 472200.0, id="wan-yuan"),
        pytest.param("1.2亿", 1.2e8, id="yi"),
        pytest.param("100元", 100.0, id="yuan"),
        # blanks around a number, and between the yen sign and the digits, are not part of it
        pytest.param("  ¥ 1,234  ", 1234.0, id="spaces"),
        pytest.param("\t40.23\u00a0", 40.23, id="tab-and-no-break-space"),
        pytest.param("１２.５％", 0.125, id="fullwidth-digits-and-percent"),
        pytest.param("￥１，２３４．５", 1234.5, id="fullwidth-comma-and-point"),
        # a minus sign before or after the yen sign
        pytest.param("-12.5", -12.5, id="negative"),
        pytest.param("¥-3", -3.0, id="minus-after-yen"),
        pytest.param("-¥3", -3.0, id="minus-before-yen"),
        pytest.param(".5", 0.5, id="no-leading-zero"),
        pytest.param("0", 0.0, id="zero"),
        pytest.param("2.5e3", 2500.0, id="exponent"),  # how a very large or small number read from Excel is written
        # numbers already read as numbers (XLSX) pass through as floats
        pytest.param(12.5, 12.5, id="float-cell"),
        pytest.param(7, 7.0, id="int-cell"),
    ],
)
def test_parse_value(raw: str | float, expected: float) -> None:
    assert parse_kuaishou_value(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        # the marks 生意通 writes for a figure it did not measure, an empty cell, and a cell pandas read as missing
        pytest.param("-", id="dash"),
        pytest.param("--", id="two-dashes"),
        pytest.param("—", id="em-dash"),
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
        pytest.param(None, id="none"),
        pytest.param(float("nan"), id="nan"),
    ],
)
def test_parse_value_not_measured(raw: str | float | None) -> None:
    assert math.isnan(parse_kuaishou_value(raw))


@pytest.mark.parametrize(
    "raw",
    [
        # each is refused, and the error quotes the cell as written
        pytest.param("12,3a4", id="letter-in-digits"),
        pytest.param("1,23", id="short-group"),  # a thousands group has three digits
        pytest.param("1,2345", id="long-group"),
        pytest.param("abc", id="text"),
        pytest.param("57.55%%", id="two-percent-signs"),
        pytest.param("--5", id="two-minus-signs"),
        pytest.param("1e3万", id="exponent-and-unit"),  # a scale written twice
        pytest.param("¥", id="yen-alone"),
        pytest.param("%", id="percent-alone"),
        pytest.param("1.2.3", id="two-points"),
        pytest.param("+-1", id="two-signs"),
    ],
)
def test_parse_value_rejects(raw: str) -> None:
    with pytest.raises(KuaishouFormatError, match=re.escape(repr(raw))):
        parse_kuaishou_value(raw)


def test_parse_series_values_and_bad_mask() -> None:
    s = pd.Series(["¥1,000", "-", "12,3a4", None, 3.5, "47.22万", "8%"], index=[10, 11, 12, 13, 14, 15, 16], name="x")
    values, invalid = parse_kuaishou_series(s)
    assert values.dtype == np.float64
    assert values.name == "x"
    assert list(values.index) == list(s.index)
    np.testing.assert_array_equal(values.to_numpy(), [1000.0, np.nan, np.nan, np.nan, 3.5, 472200.0, 0.08])
    assert list(invalid.index[invalid]) == [12]


# --- the public sample month: a period file -------------------------------------------


def test_sample_month_is_a_period_file_with_exact_totals() -> None:
    export = read_kuaishou_export(SAMPLE_MONTH)
    assert export.daily is None
    assert export.period == (date(2025, 7, 1), date(2025, 7, 31))  # from "统计时间：… 至 …"
    assert export.period_totals == {
        "gmv": 472278.3,  # 成交金额 ￥472,278.3 (docs/domain.md#sample-month)
        "orders": 13848.0,  # 成交订单数 13,848 (docs/domain.md#sample-month)
        "buyers": 11739.0,  # 成交人数 11,739 (docs/domain.md#sample-month)
        "refund_amount": 271796.2,  # 57.55 % x 472,278.3 = 271,796.16, written ￥271,796.2
        "product_clicks": 355077.0,  # 13,848 orders / 3.9 % = 355,076.9, written 355,077
        "product_impressions": 4438463.0,  # clicks / an assumed 8 % click-through rate
        "gmv_self": 6659.12,  # 自营成交 1.41 % x 472,278.3 = 6,659.124, to the fen
        "gmv_affiliate": 465619.18,  # 达人合作成交 98.59 % x 472,278.3 = 465,619.176, to the fen
    }
    # 结算佣金 is "-": not measured, so commission is absent (never 0).
    assert "commission" not in export.period_totals
    assert not export.commission_estimated
    # Derived figures and the carrier split are kept as extras, percent as a fraction.
    assert export.extras.to_dict("records") == [
        {"客单价": 40.23, "金额退款率(支付日)": 0.5755, "点击成交转化率(订单)": 0.039, "直播间成交": 0.5289}
    ]
    assert export.unknown_columns == []
    assert export.warnings == []  # 40.23, 57.55 % and 3.9 % agree with the sums


def test_period_file_gives_no_daily_rows_and_one_period_record() -> None:
    export = read_kuaishou_export(SAMPLE_MONTH)
    rows, periods = to_metrics_rows([export], "acme-apparel")
    assert rows.empty
    assert list(rows.columns) == ["brand_id", "date"]
    assert periods == [
        PeriodRecord("acme-apparel", date(2025, 7, 1), date(2025, 7, 31), export.period_totals, SAMPLE_MONTH)
    ]


# --- a daily CSV (UTF-8 with BOM, fullwidth brackets, 万, "-") -----------------------


def test_daily_week_conversions() -> None:
    export = read_kuaishou_export(DAILY_WEEK)
    daily = export.daily
    assert daily is not None
    assert export.period is None
    assert list(daily["date"].dt.strftime("%Y-%m-%d")) == [f"2025-07-0{d}" for d in range(1, 8)]
    assert list(daily.columns) == ["date", *DAILY_FIXTURE_COLUMNS]
    assert (daily.drop(columns="date").dtypes == np.float64).all()
    assert list(daily["gmv"]) == [15200.0, 18350.0, 9876.0, 21000.0, 34567.0, 28800.0, 12000.0]  # 1.52万 …
    impressions = daily["product_impressions"].tolist()
    assert math.isnan(impressions[3])  # "-" is not measured, never 0
    assert impressions[:3] + impressions[4:] == [123000.0, 130500.0, 98000.0, 201200.0, 176000.0, 87500.0]
    assert list(daily["product_clicks"]) == [9870.0, 10412.0, 7015.0, 12020.0, 18004.0, 15115.0, 6100.0]
    assert list(daily["refund_amount"]) == [6080.5, 7340.0, 3950.4, 8400.0, 13826.8, 11520.0, 4800.0]
    assert list(daily["gmv_self"]) == [215.6, 0.0, 876.0, 1000.0, 567.0, 880.0, 400.0]
    assert list(daily["gmv_self"] + daily["gmv_affiliate"]) == list(daily["gmv"])
    assert list(daily["commission"]) == [3496.0, 4220.5, 2271.48, 4830.0, 7950.41, 6624.0, 2760.0]


def test_daily_week_estimated_commission_extras_and_unknown_columns() -> None:
    export = read_kuaishou_export(DAILY_WEEK)
    assert export.commission_estimated
    assert any("预估佣金" in w and "estimate" in w for w in export.warnings)
    assert export.unknown_columns == ["支付转化率"]
    assert list(export.extras.columns) == ["date", "退款人数(支付日)", "短视频成交"]
    assert math.isnan(export.extras["短视频成交"][2])  # an empty cell
    assert export.extras["退款人数(支付日)"].sum() == 1324.0


# --- an XLSX daily file with title rows and a 合计 row ---------------------------------


def test_xlsx_with_title_rows_shares_and_totals_row() -> None:
    export = read_kuaishou_export(DAILY_XLSX)
    daily = export.daily
    assert daily is not None
    assert export.warnings == []  # 客单价 and the 合计 row agree with the days
    assert list(daily["date"].dt.date) == [date(2025, 8, 1), date(2025, 8, 2), date(2025, 8, 3)]  # 合计 is no day
    assert list(daily["gmv"]) == [12000.0, 15000.0, 9876.5]  # a number cell, "1.5万", a number cell
    assert list(daily["orders"]) == [300.0, 360.0, 250.0]
    # Shares x 成交金额, to the fen: 10 % x 12,000; 12.5 % x 15,000; 8 % x 9,876.5 = 790.12.
    assert list(daily["gmv_self"]) == [1200.0, 1875.0, 790.12]
    assert list(daily["gmv_affiliate"]) == [10200.0, 13125.0, 8888.85]
    commission = daily["commission"].tolist()  # settled is preferred over 预估佣金
    assert commission[0] == 1800.5
    assert math.isnan(commission[1])  # "-": not settled yet, and 预估佣金 is not mixed in
    assert commission[2] == 1500.0
    assert not export.commission_estimated
    assert list(export.extras["预估佣金"]) == [1900.0, 2100.0, 1600.0]
    assert list(export.extras["超级链接成交"]) == [0.05, 0.0, 0.02]


# --- combining exports ---------------------------------------------------------------


def test_to_metrics_rows_combines_daily_files_and_keeps_periods_apart() -> None:
    exports = [read_kuaishou_export(p) for p in (DAILY_XLSX, SAMPLE_MONTH, DAILY_WEEK)]
    rows, periods = to_metrics_rows(exports, "acme")
    assert len(rows) == 10
    assert list(rows.columns) == ["brand_id", "date", *[c for c in BASE_COLUMNS if c in rows.columns]]
    assert set(rows.columns) - {"brand_id", "date"} == set(DAILY_FIXTURE_COLUMNS)
    assert (rows["brand_id"] == "acme").all()
    assert rows["date"].is_monotonic_increasing
    assert rows.loc[rows["date"] >= "2025-08-01", "refund_amount"].isna().all()  # the XLSX has no refunds
    assert [(p.start, p.end) for p in periods] == [(date(2025, 7, 1), date(2025, 7, 31))]


def test_to_metrics_rows_same_day_twice(tmp_path: Path) -> None:
    again = read_kuaishou_export(DAILY_WEEK)
    rows, _ = to_metrics_rows([read_kuaishou_export(DAILY_WEEK), again], "acme")
    assert len(rows) == 7  # identical re-exports are one day each
    other = write_csv(tmp_path / "other.csv", ["日期,成交金额", "2025-07-03,1"])
    with pytest.raises(
        KuaishouFormatError, match=r"2025-07-03: different numbers in .*daily_week_utf8bom.csv, .*other"
    ):
        to_metrics_rows([again, read_kuaishou_export(other)], "acme")


# --- periods and dates ---------------------------------------------------------------


def test_period_from_file_name_and_one_day_period(tmp_path: Path) -> None:
    month = write_csv(tmp_path / "全店成交分析_20250601-20250630.csv", ["成交金额,成交订单数", "¥1,000,10"])
    assert read_kuaishou_export(month).period == (date(2025, 6, 1), date(2025, 6, 30))
    titled = write_csv(tmp_path / "m.csv", ["全店成交分析 2025年6月", "成交金额", "¥1000"])
    assert read_kuaishou_export(titled).period == (date(2025, 6, 1), date(2025, 6, 30))
    one_day = write_csv(tmp_path / "d.csv", ["统计日期：2025-06-05", "成交金额", "¥1000"])
    export = read_kuaishou_export(one_day)
    assert export.period is None
    assert export.daily is not None
    assert export.daily.to_dict("records") == [{"date": pd.Timestamp("2025-06-05"), "gmv": 1000.0}]


def test_period_file_without_period_is_an_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "x.csv", ["全店成交分析", "成交金额", "¥1000"])
    with pytest.raises(KuaishouFormatError, match=r"x\.csv: no date column, and no statistics period"):
        read_kuaishou_export(path)


def test_several_rows_without_date_column_is_an_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "x.csv", ["统计时间：2025-07-01 至 2025-07-31", "成交金额", "1", "2"])
    with pytest.raises(KuaishouFormatError, match=r"no date column .* but 2 data rows \(rows 3, 4\)"):
        read_kuaishou_export(path)


def test_date_formats_and_bad_dates(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "x.csv", ["时间,成交金额", "2025/07/01,1", "20250702,2", "2025年7月3日,3"])
    daily = read_kuaishou_export(path).daily
    assert daily is not None
    assert list(daily["date"].dt.day) == [1, 2, 3]
    bad = write_csv(tmp_path / "bad.csv", ["日期,成交金额", "2025-07-01,1", "2025-02-30,2", "昨天,3"])
    with pytest.raises(KuaishouFormatError) as info:
        read_kuaishou_export(bad)
    assert str(info.value).splitlines() == [
        f"{bad}: row 3, 日期: cannot read '2025-02-30' as a date",
        f"{bad}: row 4, 日期: cannot read '昨天' as a date",
    ]
    twice = write_csv(tmp_path / "twice.csv", ["日期,成交金额", "2025-07-01,1", "2025-07-01,2"])
    with pytest.raises(KuaishouFormatError, match=r"twice\.csv: 日期 2025-07-01 appears in rows 2, 3"):
        read_kuaishou_export(twice)


# --- headers -------------------------------------------------------------------------


def test_ascii_and_fullwidth_headers_and_unit_notes_read_alike(tmp_path: Path) -> None:
    ascii_ = write_csv(tmp_path / "a.csv", ["日期,退款金额(支付日),成交金额(元)", "2025-07-01,5,10"])
    wide = write_csv(tmp_path / "w.csv", ["日期, 退款金额 （支付日） ,成交金额（元）", "2025-07-01,5,10"])
    a, w = read_kuaishou_export(ascii_).daily, read_kuaishou_export(wide).daily
    assert a is not None
    assert w is not None
    pd.testing.assert_frame_equal(a, w)
    assert list(a.columns) == ["date", "gmv", "refund_amount"]


def test_selling_mode_share_aliases_and_mixed_columns(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "s.csv", ["日期,成交金额,自营成交占比,达人合作成交金额", "2025-07-01,200,0.25,150"])
    daily = read_kuaishou_export(path).daily
    assert daily is not None
    assert daily[["gmv_self", "gmv_affiliate"]].to_dict("records") == [{"gmv_self": 50.0, "gmv_affiliate": 150.0}]
    mixed = write_csv(tmp_path / "m.csv", ["日期,成交金额,自营成交", "2025-07-01,200,10%", "2025-07-02,200,¥20"])
    with pytest.raises(KuaishouFormatError, match=r"m\.csv: row 3, 自营成交: mixes shares"):
        read_kuaishou_export(mixed)


def test_share_above_one_is_an_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "s.csv", ["日期,成交金额,自营成交占比", "2025-07-01,200,0.5", "2025-07-02,200,25"])
    with pytest.raises(KuaishouFormatError, match=r"s\.csv: row 3, 自营成交占比: a share above 100 % \('25'\)"):
        read_kuaishou_export(path)


def test_xlsx_percent_formatted_numbers_are_flagged(tmp_path: Path) -> None:
    wb = Workbook()
    wb.active.append(["日期", "成交金额", "自营成交"])
    wb.active.append([date(2025, 7, 1), 1000, 0.25])  # Excel shows 25 %, the cell holds 0.25
    wb.save(tmp_path / "p.xlsx")
    export = read_kuaishou_export(tmp_path / "p.xlsx")
    assert export.daily is not None
    assert export.daily["gmv_self"].tolist() == [0.25]
    assert len(export.warnings) == 1
    assert "自营成交: every value is at most 1" in export.warnings[0]


def test_days_outside_the_title_period_and_utf16(tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    path.write_text("统计时间：2025-07-01 至 2025-07-31\n日期,成交金额\n2025-08-01,1\n", encoding="utf-16")
    export = read_kuaishou_export(path)
    assert export.warnings == [
        f"{path}: row 3, 日期: 2025-08-01 is outside the period in the title (2025-07-01 to 2025-07-31)"
    ]


def test_same_header_twice_is_an_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "x.csv", ["日期,成交金额,成交金额", "2025-07-01,1,2"])
    with pytest.raises(KuaishouFormatError, match=r"x\.csv: row 1: columns '成交金额' and '成交金额'"):
        read_kuaishou_export(path)


# --- cross-checks --------------------------------------------------------------------


def test_cross_check_warnings(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "x.csv",
        [
            "日期,成交金额,成交人数,客单价,退款金额（支付日）,金额退款率(支付日),成交订单数,商品点击次数,点击成交转化率(订单)",
            "2025-07-01,¥1000,10,¥100,¥500,50.4%,20,400,5%",  # all within tolerance
            "2025-07-02,¥1000,10,¥102,¥500,51%,20,400,6%",  # AOV off by 2 %, rates by 1 pp
            "合计,¥2000,20,¥100,¥1000,50%,40,900,4.4%",  # clicks differ from the sum of days
        ],
    )
    export = read_kuaishou_export(path)
    assert export.daily is not None
    assert len(export.daily) == 2
    assert export.warnings == [
        (
            f"{path}: row 3, 金额退款率(支付日): the file says 51.00% but 退款金额（支付日）/成交金额 gives 50.00% "
            "(differs by more than 0.5 percentage point)"
        ),
        f"{path}: row 3, 客单价: the file says 102.00 but 成交金额/成交人数 gives 100.00 (differs by more than 1 %)",
        (
            f"{path}: row 3, 点击成交转化率(订单): the file says 6.00% but 成交订单数/商品点击次数 gives 5.00% "
            "(differs by more than 0.5 percentage point)"
        ),
        f"{path}: row 4: the total product_clicks=900 differs from the sum of the days (800)",
    ]


# --- broken files --------------------------------------------------------------------


def test_bad_number_names_file_row_and_column() -> None:
    path = FIXTURES / "bad_number.csv"
    with pytest.raises(KuaishouFormatError) as info:
        read_kuaishou_export(path)
    assert str(info.value) == f"{path}: row 5, 成交金额: cannot read '12,3a4' as a number"


def test_many_bad_numbers_are_listed_together(tmp_path: Path) -> None:
    lines = ["日期,成交金额,成交订单数"] + [f"2025-07-{d:02d},x{d},y" for d in range(1, 8)]
    with pytest.raises(KuaishouFormatError) as info:
        read_kuaishou_export(write_csv(tmp_path / "x.csv", lines))
    message = str(info.value).splitlines()
    assert message[0].endswith("row 2, 成交金额: cannot read 'x1' as a number")
    assert message[1].endswith("row 2, 成交订单数: cannot read 'y' as a number")
    assert message[-1] == "... and 4 more"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        # the header is searched for in the first 30 rows only (title lines come first)
        pytest.param("no_headers.csv", "no 全店成交分析 headers in the first 30 rows", id="no-headers"),
        pytest.param("empty.csv", "the file is empty", id="empty"),
        # neither UTF-8 nor GB18030 decodes the bytes
        pytest.param("bad_encoding.csv", "cannot decode the file as UTF-8 or GBK/GB18030 text", id="bad-encoding"),
    ],
)
def test_broken_fixtures(name: str, message: str) -> None:
    path = FIXTURES / name
    with pytest.raises(KuaishouFormatError, match=re.escape(f"{path}: {message}")):
        read_kuaishou_export(path)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        # a byte-order mark and blank lines only: nothing to read
        pytest.param("blank.csv", b"\xef\xbb\xbf \r\n\r\n", "the file is empty", id="blank"),
        pytest.param(
            "header_only.csv", "日期,成交金额\n".encode(), "no data rows under the header (row 1)", id="header-only"
        ),
        # a 合计 row is not a day
        pytest.param(
            "only_total.csv",
            "日期,成交金额\n合计,5\n".encode(),
            "no daily rows under the header (row 1)",
            id="only-total",
        ),
        # the file's first bytes say what it is, whatever its name says
        pytest.param("old.xls", b"\xd0\xcf\x11\xe0", "the old .xls format is not supported", id="old-xls"),
        pytest.param("book.csv", b"PK\x03\x04rest", "this is an .xlsx workbook with a .csv name", id="xlsx-named-csv"),
        pytest.param("broken.xlsx", b"not a zip", "not a readable .xlsx workbook", id="broken-xlsx"),
        pytest.param("data.json", b"{}", "unsupported file type '.json'", id="json"),
    ],
)
def test_other_unreadable_files(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(KuaishouFormatError, match=re.escape(f"{path}: {message}")):
        read_kuaishou_export(path)


def test_gbk_and_utf8_read_alike(tmp_path: Path) -> None:
    lines = ["全店成交分析", "日期,成交金额,退款金额（支付日）", '2025-07-01,"￥1,234.5",-']
    gbk = read_kuaishou_export(write_csv(tmp_path / "g.csv", lines, "gbk")).daily
    utf8 = read_kuaishou_export(write_csv(tmp_path / "u.csv", lines, "utf-8")).daily
    assert gbk is not None
    assert utf8 is not None
    pd.testing.assert_frame_equal(gbk, utf8)
    assert gbk["gmv"].tolist() == [1234.5]


# --- the import-kuaishou command ----------------------------------------------------------


def _cli(*args: str) -> int:
    from brandsteps.cli import main

    return main(list(args))


def test_cli_import_to_new_csv_checks_every_number(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.csv"
    assert _cli("import-kuaishou", str(DAILY_WEEK), str(SAMPLE_MONTH), "--brand", "shanye-tea", "--out", str(out)) == 0
    printed = capsys.readouterr().out
    assert "unknown columns, not imported: 支付转化率" in printed and "period 2025-07-01 to 2025-07-31" in printed
    assert "not measured (left missing, never 0): uv_private" in printed
    rows = pd.read_csv(out)
    assert list(rows.columns) == ["brand_id", "date", *DAILY_FIXTURE_COLUMNS]
    # the same figures test_daily_week_conversions reads from the file, now in the written table
    expected = {
        "gmv": [15200, 18350, 9876, 21000, 34567, 28800, 12000],
        "orders": [402, 455, 260, 530, 861, 720, 300],
        "product_clicks": [9870, 10412, 7015, 12020, 18004, 15115, 6100],
        "refund_amount": [6080.5, 7340.0, 3950.4, 8400.0, 13826.8, 11520.0, 4800.0],
        "gmv_self": [215.6, 0.0, 876.0, 1000.0, 567.0, 880.0, 400.0],
        "commission": [3496.0, 4220.5, 2271.48, 4830.0, 7950.41, 6624.0, 2760.0],
    }
    for column, values in expected.items():
        assert rows[column].tolist() == values, column
    assert rows["product_impressions"].isna().tolist() == [
        False,
        False,
        False,
        True,
        False,
        False,
        False,
    ]  # "-" stays missing
    assert rows["date"].tolist() == [f"2025-07-0{d}" for d in range(1, 8)]
    # the sample month (docs/domain.md#sample-month) is one period record, not 31 invented days
    periods = pd.read_json(tmp_path / "out.periods.jsonl", lines=True, dtype={"start": str, "end": str})
    assert len(periods) == 1
    p = periods.iloc[0]
    assert (p["start"], p["end"], p["days"]) == ("2025-07-01", "2025-07-31", 31)
    assert (p["gmv"], p["orders"], p["buyers"], p["refund_amount"]) == (472278.3, 13848, 11739, 271796.2)
    assert (p["product_impressions"], p["product_clicks"]) == (4438463, 355077)
    assert p["gmv_self"] == pytest.approx(6659.12) and p["gmv_affiliate"] == pytest.approx(
        465619.18
    )  # 1.41% and 98.59% of ¥472,278.3, to the fen


def test_cli_import_xlsx_to_parquet(tmp_path: Path) -> None:
    out = tmp_path / "x.parquet"
    assert _cli("import-kuaishou", str(DAILY_XLSX), "--brand", "shanye-tea", "--out", str(out)) == 0
    rows = pd.read_parquet(out)
    assert rows["date"].dt.strftime("%Y-%m-%d").tolist() == ["2025-08-01", "2025-08-02", "2025-08-03"]
    assert rows["gmv_self"].tolist() == [1200.0, 1875.0, 790.12]


def _configs(tmp_path: Path, metrics: str) -> Path:
    from tests.conftest import write_configs

    return write_configs(
        tmp_path, {"shanye-tea": {}}, onboarding={"metrics": metrics, "ledger": "sqlite:///data/ledger.sqlite"}
    )


@pytest.mark.parametrize(
    "metrics",
    [
        # a folder gets a new Parquet file of the rows; a file gets them appended in its own format
        pytest.param("data/metrics", id="folder"),
        pytest.param("data/metrics.csv", id="csv-file"),
        pytest.param("data/metrics.parquet", id="parquet-file"),
    ],
)
def test_cli_import_appends_to_configured_metrics_and_refuses_duplicates(
    tmp_path: Path, metrics: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from brandsteps.sources.metrics_source import MetricsSource, load_metrics

    configs = _configs(tmp_path, metrics)
    target = tmp_path / metrics
    if target.suffix:  # an existing file with another brand's row
        target.parent.mkdir(parents=True)
        other = pd.DataFrame({"brand_id": ["other"], "date": ["2025-07-01"], "gmv": [1.0]})
        other.to_csv(target, index=False) if target.suffix == ".csv" else other.to_parquet(target)
    assert _cli("import-kuaishou", str(DAILY_WEEK), "--brand", "shanye-tea", "--configs", str(configs)) == 0
    batch = load_metrics(MetricsSource(path=target), as_of=date(2025, 7, 31), today=date(2025, 8, 1))
    mine = batch.daily[batch.daily["brand_id"] == "shanye-tea"]
    assert mine["gmv"].tolist() == [15200.0, 18350.0, 9876.0, 21000.0, 34567.0, 28800.0, 12000.0]
    assert batch.quarantine.empty
    capsys.readouterr()
    # the same week again: refused with the days named, nothing written
    assert _cli("import-kuaishou", str(DAILY_WEEK), "--brand", "shanye-tea", "--configs", str(configs)) == 2
    err = capsys.readouterr().err
    assert "already has rows for shanye-tea on 2025-07-01, 2025-07-02" in err and "nothing written" in err
    again = load_metrics(MetricsSource(path=target), as_of=date(2025, 7, 31), today=date(2025, 8, 1))
    assert len(again.daily) == len(batch.daily)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # brand ids are slugs: lowercase letters, digits and -
        pytest.param(["--brand", "Bad Id"], "is not a brand id", id="brand-not-a-slug"),
        # --out writes a table: CSV or Parquet by its extension
        pytest.param(["--brand", "ok", "--out", "x.txt"], "use a .csv or .parquet file name", id="out-not-a-table"),
    ],
)
def test_cli_import_usage_errors(
    tmp_path: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert _cli("import-kuaishou", str(DAILY_WEEK), *args) == 2
    assert message in capsys.readouterr().err


def test_cli_import_bad_file_names_file_row_and_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        _cli("import-kuaishou", str(FIXTURES / "bad_number.csv"), "--brand", "x", "--out", str(tmp_path / "o.csv")) == 2
    )
    assert "bad_number.csv: row 5, 成交金额: cannot read '12,3a4' as a number" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()
