"""Read one 全店成交分析 export (CSV/XLSX) into daily rows or one period's totals, and rows for the metrics table."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from brandsteps.catalogue import BASE_COLUMNS, KEY_COLUMNS
from brandsteps.sources.kuaishou.cells import (
    DATE_CELL_RE,
    TOTAL_LABELS,
    KuaishouFormatError,
    find_period,
    parse_kuaishou_series,
)
from brandsteps.sources.kuaishou.sheets import blank, load_sheets

__all__ = [
    "DATE_HEADERS",
    "EXTRA_HEADERS",
    "MAPPED_HEADERS",
    "KuaishouExport",
    "PeriodRecord",
    "read_kuaishou_export",
    "to_metrics_rows",
]

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


def _error_list(lines: list[str]) -> KuaishouFormatError:
    """One error for many bad cells: the first few, one a line, and how many more."""
    more = len(lines) - _MAX_REPORTED
    return KuaishouFormatError("\n".join(lines[:_MAX_REPORTED]) + (f"\n... and {more} more" if more > 0 else ""))


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
        self.body = body[~blank(body).all(axis=1)]
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
            elif not blank(self.body[[col]]).all().all():
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
        total = raw.isin(TOTAL_LABELS).to_numpy(dtype=bool)
        parts = raw.str.extract(DATE_CELL_RE)
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
        period = find_period(self.title_text)
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
        period = find_period([*self.title_text, self.path.stem])
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
