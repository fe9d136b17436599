"""Read Kuaishou 生意通 全店成交分析 exports (CSV/XLSX) into rows of the daily metrics table."""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from brandsteps.catalogue import BASE_COLUMNS, KEY_COLUMNS
from brandsteps.sources.metrics_source import MetricsSource

__all__ = [
    "DATE_HEADERS",
    "KuaishouImport",
    "append_to_source",
    "import_kuaishou",
    "load_sheets",
    "periods_frame",
    "write_new_table",
    "EXTRA_HEADERS",
    "MAPPED_HEADERS",
    "KuaishouExport",
    "KuaishouFormatError",
    "PeriodRecord",
    "parse_kuaishou_series",
    "parse_kuaishou_value",
    "read_kuaishou_export",
    "to_metrics_rows",
]


class KuaishouFormatError(ValueError):
    """An export that cannot be read; the message names the file, the row and the column."""


# Headers are compared after NFKC normalisation (fullwidth brackets and % become ASCII), with
# whitespace and a scale-free unit note such as "(元)" removed.
MAPPED_HEADERS: dict[str, str] = {
    "成交金额": "gmv",
    "成交订单数": "orders",
    "成交人数": "buyers",
    "退款金额(支付日)": "refund_amount",
    "结算佣金": "commission",
    "商品曝光次数": "product_impressions",
    "商品点击次数": "product_clicks",
    "自营成交": "gmv_self",
    "达人合作成交": "gmv_affiliate",
}
SETTLED_COMMISSION = "结算佣金"
ESTIMATED_COMMISSION = "预估佣金"  # used for commission only when 结算佣金 is absent
GMV = "成交金额"
# Selling-mode columns: an amount, or a share of 成交金额 when written with "%".
SHARE_OF_GMV: frozenset[str] = frozenset({"自营成交", "达人合作成交"})
# Known but not mapped: parsed and kept in KuaishouExport.extras under these names.
EXTRA_HEADERS: tuple[str, ...] = (
    ESTIMATED_COMMISSION,
    "客单价",
    "金额退款率(支付日)",
    "点击成交转化率(订单)",
    "退款订单数(支付日)",
    "退款人数(支付日)",
    "退款金额(退款日)",
    "退款订单数(退款日)",
    "下单订单数",
    "超级链接成交",
    "直播间成交",
    "短视频成交",
    "商品卡成交",
    "其他成交",
)
_ALIASES: dict[str, str] = {
    "自营成交金额": "自营成交",
    "达人合作成交金额": "达人合作成交",
    "自营成交占比": "自营成交",
    "达人合作成交占比": "达人合作成交",
}
_SHARE_ALIASES: frozenset[str] = frozenset({"自营成交占比", "达人合作成交占比"})
DATE_HEADERS: frozenset[str] = frozenset({"日期", "统计日期", "时间", "统计时间"})
_TOTAL_LABELS: frozenset[str] = frozenset({"合计", "总计", "汇总"})
_KNOWN: frozenset[str] = frozenset({*MAPPED_HEADERS, *EXTRA_HEADERS})
_HEADER_SEARCH_ROWS = 30
_MAX_REPORTED = 10  # bad cells named in one error
_UNIT_NOTE = r"\((?:元|个|次|人|单|笔|件)\)$"

# Derived figures of the file checked against the sums they come from:
# (file header, numerator, denominator, tolerance, relative?)
_CROSS_CHECKS: tuple[tuple[str, str, str, float, bool], ...] = (
    ("金额退款率(支付日)", "退款金额(支付日)", GMV, 0.005, False),  # 0.5 percentage point
    ("客单价", GMV, "成交人数", 0.01, True),  # 1 %
    ("点击成交转化率(订单)", "成交订单数", "商品点击次数", 0.005, False),
)
_TOTALS_TOLERANCE = 0.005  # a 合计 row may differ from the sum of the days by 0.5 %
_NOT_ADDITIVE = ["buyers"]  # a period's 成交人数 counts each buyer once: at most the sum of the days

_MISSING_MARKS = ("", "-", "--", "\u2014", "\u2014\u2014", "\u2013")  # -, --, em/en dashes
_NUMBER_RE = (
    r"^(?P<sign>[-+]?)¥?(?P<sign2>[-+]?)"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d*)?|\d+(?:\.\d*)?|\.\d+)"
    r"(?P<exp>[eE][-+]?\d+)?"
    r"(?P<unit>%|万元|亿元|万|亿|元)?$"
)
_UNIT_EXPONENT: dict[str, str] = {"": "", "元": "", "%": "e-2", "万": "e4", "万元": "e4", "亿": "e8", "亿元": "e8"}
_DAY = r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?|(\d{4})(\d{2})(\d{2})"
_DATE_CELL_RE = rf"^(?:{_DAY})(?:\s*\d{{1,2}}:\d{{2}}(?::\d{{2}})?)?$"
_RANGE_RE = re.compile(rf"(?<!\d)({_DAY})\s*(?:至|到|~|\uff5e|\u2014|\u2013|-|_)\s*({_DAY})(?!\d)")
_MONTH_RE = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月(?!\s*\d)")
_ONE_DAY_RE = re.compile(rf"(?:统计时间|统计日期|统计周期|时间范围)\s*[:\uff1a]?\s*({_DAY})(?!\d)")


@dataclass(frozen=True)
class KuaishouExport:
    """One export file, read: daily rows or one period's totals, never both."""

    source: Path
    daily: pd.DataFrame | None  # `date` plus the base columns the file has (float64)
    period: tuple[date, date] | None = None  # inclusive; set for a period file only
    period_totals: dict[str, float] = field(default_factory=dict)  # base column -> total
    extras: pd.DataFrame = field(default_factory=pd.DataFrame)  # known, unmapped headers
    unknown_columns: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    commission_estimated: bool = False  # commission came from 预估佣金


@dataclass(frozen=True)
class PeriodRecord:
    """Totals a period file reports for a span of days; never spread over those days."""

    brand_id: str
    start: date
    end: date
    totals: dict[str, float]
    source: Path


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
    missing = (text.isna() | text.isin(_MISSING_MARKS)).to_numpy(dtype=bool)
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


def read_kuaishou_export(path: Path) -> KuaishouExport:
    """Read one 全店成交分析 export (.csv in UTF-8/GBK, or .xlsx) into a KuaishouExport."""
    path = Path(path)
    grid, header_row = _load_grid(path)
    return _Reader(path, grid, header_row).read()


def to_metrics_rows(exports: list[KuaishouExport], brand_id: str) -> tuple[pd.DataFrame, list[PeriodRecord]]:
    """Daily rows in the metrics-table shape for one brand, and the period records apart."""
    periods = [
        PeriodRecord(brand_id, e.period[0], e.period[1], dict(e.period_totals), e.source)
        for e in exports
        if e.period is not None
    ]
    frames = [e.daily.assign(_source=str(e.source)) for e in exports if e.daily is not None and len(e.daily)]
    if not frames:
        return pd.DataFrame(columns=list(KEY_COLUMNS)), periods
    rows = pd.concat(frames, ignore_index=True)
    value_columns = [c for c in BASE_COLUMNS if c in rows.columns]
    # The same day exported twice with the same numbers is one day.
    rows = rows.drop_duplicates(subset=["date", *value_columns])
    clash = rows[rows.duplicated("date", keep=False)]
    if not clash.empty:
        lines = [
            f"{day:%Y-%m-%d}: different numbers in {', '.join(group['_source'])}"
            for day, group in clash.groupby("date")
        ]
        raise KuaishouFormatError("the same day appears in several exports:\n" + "\n".join(lines))
    rows.insert(0, "brand_id", brand_id)
    rows = rows.sort_values("date", kind="stable").reset_index(drop=True)
    return rows[[*KEY_COLUMNS, *value_columns]], periods


# --- loading ---------------------------------------------------------------------------


def _load_grid(path: Path) -> tuple[pd.DataFrame, int]:
    """All cells of the file (index = row number as seen in the file) and the header row."""
    for grid in load_sheets(path):
        header_row = _find_header_row(grid)
        if header_row is not None:
            return grid, header_row
    raise KuaishouFormatError(
        f"{path}: no 全店成交分析 headers in the first {_HEADER_SEARCH_ROWS} rows "
        f"(expected some of: {', '.join(MAPPED_HEADERS)})"
    )


def load_sheets(path: Path) -> list[pd.DataFrame]:
    """The non-blank sheets of a .csv (one) or .xlsx file as cells (index = row number as seen in the file).

    Shared with brandsteps.sources.imports: one place knows encodings, workbooks and their errors.
    """
    suffix = path.suffix.lower()
    if suffix in {".xlsx", ".xlsm"}:
        sheets = _read_xlsx(path)
    elif suffix in {".csv", ".txt"}:
        sheets = [_read_csv(path)]
    elif suffix == ".xls":
        raise KuaishouFormatError(f"{path}: the old .xls format is not supported; save it as .xlsx or .csv")
    else:
        raise KuaishouFormatError(f"{path}: unsupported file type {suffix!r}; expected .csv or .xlsx")
    sheets = [g for g in sheets if not _blank(g).all().all()]
    if not sheets:
        raise KuaishouFormatError(f"{path}: the file is empty")
    return sheets


def _read_csv(path: Path) -> pd.DataFrame:
    data = path.read_bytes()
    if data.startswith(b"PK\x03\x04"):
        raise KuaishouFormatError(f"{path}: this is an .xlsx workbook with a .csv name; rename it to .xlsx")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings: tuple[str, ...] = ("utf-16",)
    else:
        encodings = ("utf-8-sig", "gb18030")  # utf-8-sig reads UTF-8 with or without a BOM
    for encoding in encodings:
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise KuaishouFormatError(f"{path}: cannot decode the file as UTF-8 or GBK/GB18030 text")
    if not text.strip():
        raise KuaishouFormatError(f"{path}: the file is empty")
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise KuaishouFormatError(f"{path}: not a readable CSV file ({exc})") from None
    width = max(len(r) for r in rows)
    grid = pd.DataFrame([r + [""] * (width - len(r)) for r in rows], dtype=object)
    grid.index = pd.RangeIndex(1, len(grid) + 1)
    return grid


def _read_xlsx(path: Path) -> list[pd.DataFrame]:
    try:
        sheets = pd.read_excel(path, sheet_name=None, header=None, dtype=object, engine="openpyxl")
    except (zipfile.BadZipFile, OSError, ValueError, KeyError):
        raise KuaishouFormatError(f"{path}: not a readable .xlsx workbook") from None
    grids = []
    for grid in sheets.values():
        grid.index = pd.RangeIndex(1, len(grid) + 1)  # openpyxl rows start at 1
        grids.append(grid)
    return grids


def _blank(frame: pd.DataFrame) -> pd.DataFrame:
    # All cells as one column: one string pass per file rather than one per column (imports read thousands of files).
    text = pd.Series(frame.to_numpy(dtype=object).ravel(), dtype=object).astype("string").str.strip().fillna("")
    return pd.DataFrame(
        (text == "").to_numpy(dtype=bool).reshape(frame.shape), index=frame.index, columns=frame.columns
    )


def _normalise_headers(cells: pd.Series) -> pd.Series:
    return (
        cells.astype("string")
        .str.normalize("NFKC")
        .str.replace(r"\s+", "", regex=True)
        .str.replace(_UNIT_NOTE, "", regex=True)
        .fillna("")
    )


def _find_header_row(grid: pd.DataFrame) -> int | None:
    head = grid.head(_HEADER_SEARCH_ROWS)
    known = head.apply(lambda c: _normalise_headers(c).replace(_ALIASES)).isin(_KNOWN).any(axis=1)
    return int(head.index.to_numpy()[known.to_numpy().argmax()]) if known.any() else None


def _find_period(texts: list[str]) -> tuple[date, date] | None:
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


def _error_list(lines: list[str]) -> KuaishouFormatError:
    """One error for many bad cells: the first few, one a line, and how many more."""
    more = len(lines) - _MAX_REPORTED
    return KuaishouFormatError("\n".join(lines[:_MAX_REPORTED]) + (f"\n... and {more} more" if more > 0 else ""))


def _to_date(text: str) -> date:
    numbers = [int(n) for n in re.findall(r"\d+", text)]
    if len(numbers) == 1:  # 20250701
        n = numbers[0]
        numbers = [n // 10000, n // 100 % 100, n % 100]
    return date(*numbers)


# --- reading one file ------------------------------------------------------------------


class _Reader:
    """Turns the cells of one export into a KuaishouExport."""

    def __init__(self, path: Path, grid: pd.DataFrame, header_row: int) -> None:
        self.path = path
        self.warnings: list[str] = []
        titles = grid.loc[: header_row - 1]
        self.title_text = [" ".join(str(v) for v in row if not pd.isna(v)) for row in titles.itertuples(index=False)]
        header = grid.iloc[header_row - 1]  # rows are numbered from 1
        body = grid.loc[header_row + 1 :]
        self.body = body[~_blank(body).all(axis=1)]
        self.header_row = header_row
        self.original = header.astype("string").fillna("").str.strip()
        written = _normalise_headers(header)
        canon = written.replace(_ALIASES)
        self.unknown: list[str] = []
        self.columns: dict[str, int] = {}  # canonical header -> grid column
        for col, name in enumerate(canon.tolist()):  # grid columns are numbered 0, 1, ...
            if name in _KNOWN or name in DATE_HEADERS:
                key = "日期" if name in DATE_HEADERS else name
                if key in self.columns:
                    first = self.original.iloc[self.columns[key]]
                    raise KuaishouFormatError(
                        f"{path}: row {header_row}: columns {first!r} and {self.original.iloc[col]!r} "
                        "say the same thing"
                    )
                self.columns[key] = col
            elif name:
                self.unknown.append(str(self.original.iloc[col]))
            elif not _blank(self.body[[col]]).all().all():
                self.unknown.append(f"(column {col + 1}, no header)")
        self.share_forced = {_ALIASES[str(n)] for n in written if n in _SHARE_ALIASES}

    def label(self, name: str) -> str:
        return str(self.original.iloc[self.columns[name]])

    def read(self) -> KuaishouExport:
        if self.body.empty:
            raise KuaishouFormatError(f"{self.path}: no data rows under the header (row {self.header_row})")
        values = self._parse_numbers()
        self._cross_check(values)
        mapped, extras, estimated = self._map(values)
        if "日期" in self.columns:
            return self._daily(mapped, extras, estimated)
        return self._period(mapped, extras, estimated)

    def _parse_numbers(self) -> pd.DataFrame:
        names = [n for n in self.columns if n != "日期"]
        parsed: dict[str, pd.Series] = {}
        bad: list[tuple[int, int, str]] = []
        for name in names:
            raw = self.body[self.columns[name]]
            values, invalid = parse_kuaishou_series(raw)
            parsed[name] = values
            bad += [(int(r), self.columns[name], str(raw[r]).strip()) for r in invalid.index[invalid.to_numpy()]]
        if bad:
            lines = [
                f"{self.path}: row {r}, {self.original.iloc[c]}: cannot read {v!r} as a number"
                for r, c, v in sorted(bad)
            ]
            raise _error_list(lines)
        return pd.DataFrame(parsed, index=self.body.index, dtype="float64")

    def _cross_check(self, values: pd.DataFrame) -> None:
        for stated, num, den, tolerance, relative in _CROSS_CHECKS:
            if not {stated, num, den} <= set(values.columns):
                continue
            computed = values[num] / values[den].where(values[den] > 0)
            gap = (values[stated] - computed).abs()
            if relative:
                gap = gap / computed.abs()
            for row in gap.index[(gap > tolerance).to_numpy()].tolist():
                said, got = float(values[stated][row]), float(computed[row])
                shown = (
                    (f"{said:.2f}", f"{got:.2f}", "1 %")
                    if relative
                    else (f"{said:.2%}", f"{got:.2%}", "0.5 percentage point")
                )
                self.warnings.append(
                    f"{self.path}: row {row}, {self.label(stated)}: the file says {shown[0]} but "
                    f"{self.label(num)}/{self.label(den)} gives {shown[1]} (differs by more than {shown[2]})"
                )

    def _map(self, values: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, bool]:
        mapped = pd.DataFrame(index=values.index)
        extras = values[[n for n in EXTRA_HEADERS if n in values.columns]].copy()
        for name, column in MAPPED_HEADERS.items():
            if name not in values.columns:
                continue
            amount = self._selling_mode_amount(name, values) if name in SHARE_OF_GMV else values[name]
            if amount is None:
                extras[name] = values[name]
            else:
                mapped[column] = amount
        estimated = SETTLED_COMMISSION not in values.columns and ESTIMATED_COMMISSION in values.columns
        if estimated:
            mapped["commission"] = extras.pop(ESTIMATED_COMMISSION)
            self.warnings.append(
                f"{self.path}: no {SETTLED_COMMISSION} column; commission is taken from "
                f"{self.label(ESTIMATED_COMMISSION)}, an estimate, not the settled amount"
            )
        order = [c for c in BASE_COLUMNS if c in mapped.columns]
        return mapped[order], extras, estimated

    def _selling_mode_amount(self, name: str, values: pd.DataFrame) -> pd.Series | None:
        """自营成交 / 达人合作成交 as an amount; a share (%) is converted with 成交金额."""
        series = values[name]
        raw = self.body[self.columns[name]].astype("string").str.normalize("NFKC")
        percent = raw.str.contains("%", regex=False).fillna(False).to_numpy(dtype=bool)
        given = series.notna().to_numpy()
        if percent.any() and (given & ~percent).any():
            row = series.index[given & ~percent][0]
            raise KuaishouFormatError(
                f"{self.path}: row {row}, {self.label(name)}: mixes shares (%) and amounts in one column"
            )
        if not (percent.any() or name in self.share_forced):
            looks_like_shares = series[given].between(0, 1).all() and (series[given] > 0).any()
            if looks_like_shares and GMV in values.columns and (values[GMV] > 1).any():
                self.warnings.append(
                    f"{self.path}: {self.label(name)}: every value is at most 1; if these are shares "
                    "formatted as percent in Excel, write them with a % sign (they were read as amounts)"
                )
            return series
        above = series.index[(series > 1).to_numpy()]
        if len(above):
            raise KuaishouFormatError(
                f"{self.path}: row {above[0]}, {self.label(name)}: a share above 100 % "
                f"({self.body[self.columns[name]][above[0]]!r})"
            )
        if GMV not in values.columns:
            self.warnings.append(
                f"{self.path}: {self.label(name)} is a share but the file has no {GMV}; "
                "it cannot become an amount and is kept as an extra"
            )
            return None
        return (series * values[GMV]).round(2)  # amounts to the fen

    def _daily(self, mapped: pd.DataFrame, extras: pd.DataFrame, estimated: bool) -> KuaishouExport:
        label = self.label("日期")
        raw = self.body[self.columns["日期"]].astype("string").str.normalize("NFKC").str.strip().fillna("")
        total = raw.isin(_TOTAL_LABELS).to_numpy(dtype=bool)
        parts = raw.str.extract(_DATE_CELL_RE)
        year = parts[0].fillna(parts[3])
        month = parts[1].fillna(parts[4])
        day = parts[2].fillna(parts[5])
        dates = pd.to_datetime(year + "-" + month + "-" + day, format="%Y-%m-%d", errors="coerce")
        bad = dates.isna().to_numpy() & ~total
        if bad.any():
            lines = [f"{self.path}: row {r}, {label}: cannot read {raw[r]!r} as a date" for r in raw.index[bad]]
            raise _error_list(lines)
        days = dates[~total]
        repeated = days[days.duplicated(keep=False)]
        if not repeated.empty:
            first = repeated.iloc[0]
            rows = ", ".join(str(r) for r in repeated.index[repeated == first])
            raise KuaishouFormatError(f"{self.path}: {label} {first:%Y-%m-%d} appears in rows {rows}")
        if not len(days):
            raise KuaishouFormatError(f"{self.path}: no daily rows under the header (row {self.header_row})")
        self._check_totals(mapped, total)
        period = _find_period(self.title_text)
        if period is not None:
            outside = days[(days.dt.date < period[0]) | (days.dt.date > period[1])]
            if not outside.empty:
                self.warnings.append(
                    f"{self.path}: row {outside.index[0]}, {label}: {outside.iloc[0]:%Y-%m-%d} is outside the "
                    f"period in the title ({period[0]} to {period[1]})"
                )
        return self._daily_export(days, mapped[~total], extras[~total], estimated)

    def _check_totals(self, mapped: pd.DataFrame, total: np.ndarray) -> None:
        """A 合计 row is not a day; its flows must agree with the sum of the days."""
        flows = mapped.drop(columns=_NOT_ADDITIVE, errors="ignore")
        sums = flows[~total].sum(min_count=1)
        for row in flows.index[total].tolist():
            gap = (flows.loc[row] - sums).abs() / flows.loc[row].abs().clip(lower=1)
            for column in gap.index[(gap > _TOTALS_TOLERANCE).to_numpy()].tolist():
                self.warnings.append(
                    f"{self.path}: row {row}: the total {column}={float(flows[column][row]):g} differs from "
                    f"the sum of the days ({sums[column]:g})"
                )

    def _period(self, mapped: pd.DataFrame, extras: pd.DataFrame, estimated: bool) -> KuaishouExport:
        if len(self.body) > 1:
            rows = ", ".join(str(r) for r in self.body.index[:5])
            raise KuaishouFormatError(
                f"{self.path}: no date column ({'/'.join(sorted(DATE_HEADERS))}) but {len(self.body)} data rows "
                f"(rows {rows}): cannot tell which days they are"
            )
        period = _find_period([*self.title_text, self.path.stem])
        if period is None:
            raise KuaishouFormatError(
                f"{self.path}: no date column, and no statistics period in the title lines or the file "
                "name (e.g. 统计时间\uff1a2025-07-01 至 2025-07-31)"
            )
        start, end = period
        if start > end:
            raise KuaishouFormatError(f"{self.path}: the period {start} to {end} ends before it starts")
        if start == end:  # a one-day period is simply that day
            day = pd.to_datetime(pd.Series(start.isoformat(), index=mapped.index), format="%Y-%m-%d")
            return self._daily_export(day, mapped, extras, estimated)
        totals = {str(c): float(v) for c, v in mapped.iloc[0].items() if not pd.isna(v)}
        return self._export(None, period, totals, extras.reset_index(drop=True), estimated)

    def _daily_export(
        self, days: pd.Series, mapped: pd.DataFrame, extras: pd.DataFrame, estimated: bool
    ) -> KuaishouExport:
        daily = pd.concat([days.rename("date"), mapped], axis=1).reset_index(drop=True)
        extras = pd.concat([days.rename("date"), extras], axis=1).reset_index(drop=True)
        return self._export(daily, None, {}, extras, estimated)

    def _export(
        self,
        daily: pd.DataFrame | None,
        period: tuple[date, date] | None,
        totals: dict[str, float],
        extras: pd.DataFrame,
        estimated: bool,
    ) -> KuaishouExport:
        return KuaishouExport(
            source=self.path,
            daily=daily,
            period=period,
            period_totals=totals,
            extras=extras,
            unknown_columns=self.unknown,
            warnings=self.warnings,
            commission_estimated=estimated,
        )


# --- importing into the metrics table ----------------------------------------------------


@dataclass
class KuaishouImport:
    """What `brandsteps import-kuaishou` read: daily rows, period records, and what each file had or lacked."""

    brand_id: str
    rows: pd.DataFrame  # brand_id, date, then the base columns the files have
    periods: list[PeriodRecord]
    exports: list[KuaishouExport]

    @property
    def not_measured(self) -> list[str]:
        """Base columns no file carries: left missing (not measured), never filled with 0."""
        have = set(self.rows.columns) | {c for p in self.periods for c in p.totals}
        return [c for c in BASE_COLUMNS if c not in have]

    def summary_lines(self) -> list[str]:
        out = []
        for e in self.exports:
            what = (
                f"period {e.period[0]} to {e.period[1]} (kept as one period record)"
                if e.period
                else f"{0 if e.daily is None else len(e.daily)} days"
            )
            out.append(f"{e.source}: {what}")
            if e.unknown_columns:
                out.append(f"  unknown columns, not imported: {', '.join(e.unknown_columns)}")
            out += [f"  warning: {w}" for w in e.warnings]
        if len(self.rows):
            first, last = self.rows["date"].min(), self.rows["date"].max()
            out.append(f"{len(self.rows)} daily rows for {self.brand_id} from {first:%Y-%m-%d} to {last:%Y-%m-%d}")
        out.append(f"not measured (left missing, never 0): {', '.join(self.not_measured) or 'none'}")
        return out


def import_kuaishou(paths: list[Path], brand_id: str) -> KuaishouImport:
    """Read every export; errors of all files are reported together, each naming its file."""
    exports: list[KuaishouExport] = []
    problems: list[str] = []
    for p in paths:
        try:
            exports.append(read_kuaishou_export(Path(p)))
        except KuaishouFormatError as exc:
            problems.append(str(exc))
        except FileNotFoundError:
            problems.append(f"{p}: no such file")
    if problems:
        raise KuaishouFormatError("\n".join(problems))
    rows, periods = to_metrics_rows(exports, brand_id)
    rows["date"] = pd.to_datetime(rows["date"])
    return KuaishouImport(brand_id, rows, periods, exports)


def periods_frame(periods: list[PeriodRecord]) -> pd.DataFrame:
    """Period records as a table: brand, first and last day, number of days, source, then the totals."""
    totals = pd.DataFrame.from_records(
        [p.totals for p in periods], columns=[c for c in BASE_COLUMNS if any(c in p.totals for p in periods)]
    )
    head = pd.DataFrame(
        {
            "brand_id": [p.brand_id for p in periods],
            "start": [p.start.isoformat() for p in periods],
            "end": [p.end.isoformat() for p in periods],
            "days": [(p.end - p.start).days + 1 for p in periods],
            "source": [str(p.source) for p in periods],
        }
    )
    return pd.concat([head, totals], axis=1)


def periods_path(target: Path) -> Path:
    """Where period records go beside a metrics file or folder: never a .csv/.parquet a metrics folder would read."""
    return target.with_name(target.name.split(".")[0] + ".periods.jsonl")


def _for_csv(rows: pd.DataFrame) -> pd.DataFrame:
    out = rows.copy()
    out["date"] = pd.to_datetime(out["date"]).dt.strftime("%Y-%m-%d")
    for c in out.columns[2:]:  # counts stay counts: 402, not 402.0
        col = out[c]
        if pd.api.types.is_float_dtype(col) and bool(((col.dropna() % 1) == 0).all()):
            out[c] = col.astype("Int64")
    return out


def _write_atomically(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    if path.suffix.lower() == ".csv":
        _for_csv(frame).to_csv(tmp, index=False, encoding="utf-8")
    else:
        frame.to_parquet(tmp, index=False)
    tmp.replace(path)


def write_periods(periods: list[PeriodRecord], path: Path) -> int:
    """Append period records (JSON lines) to path, refusing a brand/period already recorded there."""
    if not periods:
        return 0
    new = periods_frame(periods)
    if path.exists():
        old = pd.read_json(path, lines=True, dtype={"start": str, "end": str})
        if len(old):
            clash = new.merge(old[["brand_id", "start", "end"]].astype(str), on=["brand_id", "start", "end"])
            if len(clash):
                shown = ", ".join(clash["start"] + " to " + clash["end"])
                raise KuaishouFormatError(
                    f"{path}: already has period records for {new['brand_id'].iloc[0]} for {shown}: nothing written"
                )
    path.parent.mkdir(parents=True, exist_ok=True)
    records = new.astype(object).where(new.notna(), None).to_dict("records")
    with path.open("a", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)  # a few periods per import
    return len(new)


def write_new_table(result: KuaishouImport, out: Path) -> list[str]:
    """--out FILE: a new CSV or Parquet file (by extension) of the daily rows; periods beside it."""
    suffix = out.suffix.lower()
    if suffix not in {".csv", ".parquet", ".pq"}:
        raise KuaishouFormatError(f"--out {out}: use a .csv or .parquet file name")
    if out.exists():
        raise KuaishouFormatError(
            f"--out {out}: the file exists; choose a new name (to add rows to the configured metrics, leave out --out)"
        )
    lines = []
    if len(result.rows):
        out.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(result.rows, out)
        lines.append(f"wrote {len(result.rows)} rows to {out}")
    if result.periods:
        lines.append(_record_periods(result, out))
    return lines


def _record_periods(result: KuaishouImport, beside: Path) -> str:
    """Period totals go to their own file next to the daily rows, never spread over days."""
    target = periods_path(beside)
    write_periods(result.periods, target)
    return f"recorded {len(result.periods)} period(s) in {target} (not spread over days)"


def _clash_message(where: str, brand_id: str, days: pd.Series) -> str:
    shown = ", ".join(pd.to_datetime(days).dt.strftime("%Y-%m-%d").head(10))
    more = f" and {len(days) - 10} more" if len(days) > 10 else ""
    return f"{where} already has rows for {brand_id} on {shown}{more}: nothing written (remove those days from the exports or from the metrics first)"


def append_to_source(result: KuaishouImport, source: MetricsSource) -> list[str]:
    """Add the rows to the configured metrics (file, folder or SQL table), refusing brand/days it already has."""
    rows = result.rows
    lines: list[str] = []
    if len(rows):
        existing = _existing_days(source, result.brand_id)
        clash = rows["date"][rows["date"].isin(existing)]
        if len(clash):
            raise KuaishouFormatError(_clash_message(source.describe(), result.brand_id, clash))
    if source.url is not None:
        if len(rows):
            _insert_sql(rows, source)
            lines.append(f"added {len(rows)} rows to {source.describe()}")
        if result.periods:
            raise KuaishouFormatError(
                f"{source.describe()}: period files cannot go into an SQL metrics source yet; use --out FILE"
            )
        return lines
    assert source.path is not None
    path = source.path
    if len(rows):
        if path.is_dir() or not path.suffix:
            path.mkdir(parents=True, exist_ok=True)
            first, last = rows["date"].min(), rows["date"].max()
            target = path / f"kuaishou-{result.brand_id}-{first:%Y%m%d}-{last:%Y%m%d}.parquet"
            n = 2
            while target.exists():
                target = path / f"kuaishou-{result.brand_id}-{first:%Y%m%d}-{last:%Y%m%d}-{n}.parquet"
                n += 1
            _write_atomically(rows, target)
            lines.append(f"added {len(rows)} rows to {path} as {target.name}")
        else:
            _append_file(rows, path)
            lines.append(f"added {len(rows)} rows to {path}")
    if result.periods:
        lines.append(_record_periods(result, path))
    return lines


def _existing_days(source: MetricsSource, brand_id: str) -> pd.Series:
    from brandsteps.sources.metrics_source import read_raw

    if source.path is not None and not source.path.exists():
        return pd.Series([], dtype="datetime64[ns]")
    try:
        raw, _, _ = read_raw(source)
    except Exception as exc:  # MetricsReadError for a missing table and the like
        if source.url is not None and "not found" in str(exc):
            return pd.Series([], dtype="datetime64[ns]")
        raise
    mine = raw[raw["brand_id"].astype("string").str.strip() == brand_id]
    return pd.to_datetime(mine["date"], errors="coerce").dt.normalize().dropna()


def _append_file(rows: pd.DataFrame, path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        old = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        new = _for_csv(rows).astype("string").fillna("")
        _write_atomically_text(pd.concat([old, new], ignore_index=True).fillna(""), path)
    elif suffix in {".parquet", ".pq"}:
        old = pd.read_parquet(path)
        new = rows.copy()
        if "date" in old and not pd.api.types.is_datetime64_any_dtype(old["date"]):
            new["date"] = (
                new["date"].dt.strftime("%Y-%m-%d")
                if pd.api.types.is_string_dtype(old["date"])
                else new["date"].dt.date
            )
        _write_atomically(pd.concat([old, new], ignore_index=True), path)
    else:
        raise KuaishouFormatError(f"{path}: the configured metrics file must be .csv or .parquet to add rows to it")


def _write_atomically_text(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_csv(tmp, index=False, encoding="utf-8")
    tmp.replace(path)


def _insert_sql(rows: pd.DataFrame, source: MetricsSource) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(source.url or "")
    try:
        schema, _, name = source.table.rpartition(".")
        try:
            table = sa.Table(name, sa.MetaData(), autoload_with=engine, schema=schema or None)
        except sa.exc.NoSuchTableError:
            raise KuaishouFormatError(f"table {source.table!r} not found in the metrics database") from None
        lacking = [c for c in rows.columns if c not in table.c]
        if lacking:
            raise KuaishouFormatError(f"{source.describe()}: the table has no column {', '.join(lacking)}")
        out = rows.copy()
        out["date"] = out["date"].dt.date
        records = [
            {str(k): v for k, v in r.items()} for r in out.astype(object).where(out.notna(), None).to_dict("records")
        ]
        with engine.begin() as conn:
            conn.execute(table.insert(), records)  # bound parameters only
    finally:
        engine.dispose()
