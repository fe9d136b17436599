"""The cells of a Kuaishou 生意通 export: numbers with their units, not-measured marks, dates and periods."""

from __future__ import annotations

import re
from datetime import date

import pandas as pd

__all__ = [
    "DATE_CELL_RE",
    "MISSING_MARKS",
    "TOTAL_LABELS",
    "KuaishouFormatError",
    "find_period",
    "parse_kuaishou_series",
    "parse_kuaishou_value",
]


class KuaishouFormatError(ValueError):
    """An export that cannot be read; the message names the file, the row and the column."""


TOTAL_LABELS: frozenset[str] = frozenset({"合计", "总计", "汇总"})
MISSING_MARKS = ("", "-", "--", "\u2014", "\u2014\u2014", "\u2013")  # -, --, em/en dashes
_NUMBER_RE = (
    r"^(?P<sign>[-+]?)¥?(?P<sign2>[-+]?)"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d*)?|\d+(?:\.\d*)?|\.\d+)"
    r"(?P<exp>[eE][-+]?\d+)?"
    r"(?P<unit>%|万元|亿元|万|亿|元)?$"
)
_UNIT_EXPONENT: dict[str, str] = {"": "", "元": "", "%": "e-2", "万": "e4", "万元": "e4", "亿": "e8", "亿元": "e8"}
_DAY = r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?|(\d{4})(\d{2})(\d{2})"
DATE_CELL_RE = rf"^(?:{_DAY})(?:\s*\d{{1,2}}:\d{{2}}(?::\d{{2}})?)?$"
_RANGE_RE = re.compile(rf"(?<!\d)({_DAY})\s*(?:至|到|~|\uff5e|\u2014|\u2013|-|_)\s*({_DAY})(?!\d)")
_MONTH_RE = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月(?!\s*\d)")
_ONE_DAY_RE = re.compile(rf"(?:统计时间|统计日期|统计周期|时间范围)\s*[:\uff1a]?\s*({_DAY})(?!\d)")


def parse_kuaishou_series(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse a column of 生意通 cells: (float64 values, mask of cells that are not numbers).

    Not-measured cells (`-`, empty, NaN) give NaN and are not flagged; numbers already
    read as numbers (XLSX) pass through.
    """
    text = (
        s.astype("string")
        .str.normalize("NFKC")  # fullwidth digits, comma, point, percent; ￥ -> ¥
        .str.replace(r"\s+", "", regex=True)
    )
    missing = (text.isna() | text.isin(MISSING_MARKS)).to_numpy(dtype=bool)
    parts = text.str.extract(_NUMBER_RE)
    sign = parts["sign"].fillna("") + parts["sign2"].fillna("")
    unit = parts["unit"].fillna("")
    exp = parts["exp"].fillna("")
    ok = (parts["num"].notna() & (sign.str.len() <= 1) & ((exp == "") | (unit == ""))).fillna(False)
    ok_np = ok.to_numpy(dtype=bool) & ~missing
    # Scale by editing the exponent ("47.22万" -> "47.22e4") so the result is correctly rounded.
    literal = sign + parts["num"].str.replace(",", "", regex=False) + exp + unit.map(_UNIT_EXPONENT)
    values = pd.to_numeric(literal.where(ok_np), errors="coerce").astype("float64")
    values.name = s.name
    invalid = pd.Series(~missing & ~ok_np, index=s.index, name=s.name)
    return values, invalid


def parse_kuaishou_value(raw: str | float | None) -> float:
    """Parse one 生意通 cell: `¥472,278.3`, `57.55%` -> 0.5755, `47.22万`; NaN for `-`/empty."""
    if raw is None:
        return float("nan")
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return float(raw)
    values, invalid = parse_kuaishou_series(pd.Series([raw], dtype=object))
    if invalid.iloc[0]:
        raise KuaishouFormatError(f"cannot read {raw!r} as a number")
    return float(values.iloc[0])


def find_period(texts: list[str]) -> tuple[date, date] | None:
    """The statistics period in title lines or a file name: a range, a 年月 month or one day."""
    for text in (t.replace("\n", " ") for t in texts):
        if m := _RANGE_RE.search(text):
            return _to_date(m.group(1)), _to_date(m.group(8))
        if m := _MONTH_RE.search(text):
            first = pd.Timestamp(int(m.group(1)), int(m.group(2)), 1)
            return first.date(), (first + pd.offsets.MonthEnd(0)).date()
        if m := _ONE_DAY_RE.search(text):
            day = _to_date(m.group(1))
            return day, day
    return None


def _to_date(text: str) -> date:
    numbers = [int(n) for n in re.findall(r"\d+", text)]
    if len(numbers) == 1:  # 20250701
        n = numbers[0]
        numbers = [n // 10000, n // 100 % 100, n % 100]
    return date(*numbers)
