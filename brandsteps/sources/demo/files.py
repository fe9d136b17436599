"""One export file as the demo writes it: its cells as text, its format, and the record of it."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class ExportFile:
    """One export the demo wrote: the report it is (its summary line groups by it), the brand it is for, if one, and
    when it was made, if not as the demo is built."""

    path: Path
    report: str
    brand: str | None = None  # --brand: a report without an account column is one brand's
    at: dt.datetime | None = None  # the time its import is recorded at (restate_many's at); None: when imported


def split_whole(total: np.ndarray, group: np.ndarray, weight: np.ndarray, least: int) -> np.ndarray:
    """Each group's total (a whole number of units: yuan, fen) split over its rows by weight, in whole units.

    group: each row's group (0 … len(total) - 1), non-decreasing, every group with a row. Every row gets at least
    `least` units where the total allows (a SKU on sale sold something); the last row of a group takes the rest.
    Whole numbers add up exactly in binary floating point in any order, so the rows read back add up to the
    total however the reader adds them (pandas adds a sorted group pairwise: fen would not survive that).
    """
    total = np.asarray(total, dtype=np.float64)
    n = len(total)
    last = np.r_[group[1:] != group[:-1], True] if len(group) else np.zeros(0, dtype=bool)
    share = weight / np.bincount(group, weights=weight, minlength=n)[group]
    part: np.ndarray = np.maximum(np.floor(total[group] * share), float(least))
    part[last] = 0.0
    rest = total - np.bincount(group, weights=part, minlength=n)
    short = rest < least  # the floors took too much: the group's biggest row gives it back
    if short.any():
        order = np.lexsort((-np.where(last, -np.inf, part), group))
        biggest = order[np.r_[True, group[order][1:] != group[order][:-1]]]
        biggest = biggest[short[group[biggest]] & ~last[biggest]]
        need = least - rest[group[biggest]]
        part[biggest] -= need
        rest[group[biggest]] += need
    part[last] = rest[group[last]]
    return part


def as_text(values: Any, spec: str, prefix: str = "") -> np.ndarray:
    """Numbers as an export's text cells ('¥1,234.56', '1,234', '12.34%'); '-' where not measured."""
    v = np.asarray(values, dtype=np.float64)
    out = np.full(len(v), "-", dtype=object)
    has = ~np.isnan(v)
    out[has] = pd.Series(v[has]).map((prefix + "{:" + spec + "}").format).to_numpy(dtype=object)
    return out


def as_money(values: Any, symbol: str) -> np.ndarray:
    return as_text(values, ",.2f", symbol)  # a float of fen formats back to its fen: '¥1,234.56' reads as that float


def as_count(values: Any) -> np.ndarray:
    return as_text(values, ",.0f")


def as_wan(values: Any) -> np.ndarray:
    """Counts of 10,000 or more as 生意通 shows them: '12.3456万' (every digit kept, so it reads back exactly)."""
    v = np.asarray(values, dtype=np.float64)
    out = as_count(v)
    big = v >= 10_000
    wan = pd.Series(as_text(v[big] / 10_000, ".4f")).str.replace(r"\.?0+$", "", regex=True) + "万"
    out[big] = wan.to_numpy(dtype=object)
    return out


def as_share(num: Any, den: Any) -> np.ndarray:
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return as_text(np.divide(num, den, out=np.full(len(num), np.nan), where=den != 0), ".2%")


def as_days(dates: pd.Series) -> np.ndarray:
    days: np.ndarray = dates.dt.strftime("%Y-%m-%d").to_numpy(dtype=object)
    return days


@dataclass(frozen=True)
class ExportFormat:
    """How one file is written: its suffix, its text encoding and the money symbol that encoding holds."""

    suffix: str
    encoding: str  # "" for a workbook
    symbol: str


UTF8_BOM = ExportFormat(".csv", "utf-8-sig", "¥")
GBK = ExportFormat(".csv", "gbk", "￥")  # GBK has no ¥: 生意通's GBK files write the fullwidth ￥
PLAIN = ExportFormat(".csv", "utf-8", "")
XLSX = ExportFormat(".xlsx", "", "")


def write_file(path: Path, titles: Sequence[str], table: pd.DataFrame, fmt: ExportFormat) -> Path:
    """The table under its title lines, as a CSV in the format's encoding or as a workbook (numbers as numbers)."""
    path = path.with_name(path.name + fmt.suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt is XLSX:
        with pd.ExcelWriter(path, engine="openpyxl") as writer:
            table.to_excel(writer, index=False, startrow=len(titles))
            sheet = writer.sheets["Sheet1"]
            for row, title in enumerate(titles, start=1):
                sheet.cell(row=row, column=1, value=title)
        return path
    buffer = io.StringIO()
    buffer.write("".join(f"{t}\r\n" for t in titles))
    table.to_csv(buffer, index=False, lineterminator="\r\n")
    path.write_bytes(buffer.getvalue().encode(fmt.encoding))
    return path


def per_brand(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The frame's rows by brand, in order (one file each): a loop over brands, not rows."""
    return [(str(b), part.drop(columns="brand_id")) for b, part in frame.groupby("brand_id", sort=False)]


def span_of(dates: pd.Series) -> str:
    return f"{dates.min():%Y%m%d}-{dates.max():%Y%m%d}"


def brand_names(brands: pd.DataFrame, brand_id: pd.Series) -> np.ndarray:
    """Each row's brand name in Chinese (the first word of its configured name)."""
    names = brands.set_index("brand_id")["name"].str.split(" ", n=1).str[0]
    return brand_id.map(names).to_numpy(dtype=object)
