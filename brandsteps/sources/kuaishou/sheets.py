"""Load an export's cells: a CSV in whichever encoding it was saved in, or the sheets of an XLSX workbook."""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from pathlib import Path

import pandas as pd

from brandsteps.sources.kuaishou.cells import KuaishouFormatError

__all__ = ["blank", "load_sheets"]


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
    sheets = [g for g in sheets if not blank(g).all().all()]
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


def blank(frame: pd.DataFrame) -> pd.DataFrame:
    # All cells as one column: one string pass per file rather than one per column (imports read thousands of files).
    text = pd.Series(frame.to_numpy(dtype=object).ravel(), dtype=object).astype("string").str.strip().fillna("")
    return pd.DataFrame(
        (text == "").to_numpy(dtype=bool).reshape(frame.shape), index=frame.index, columns=frame.columns
    )
