"""Read an export's cells for the import profiles: the header row, then numbers, texts and days by column."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from brandsteps.sources.imports.profiles import alternatives, header_key
from brandsteps.sources.kuaishou.cells import (
    DATE_CELL_RE,
    MISSING_MARKS,
    TOTAL_LABELS,
    KuaishouFormatError,
    find_period,
    parse_kuaishou_series,
)
from brandsteps.sources.kuaishou.sheets import load_sheets

__all__ = ["HEADER_SEARCH_ROWS", "ImportFormatError", "Table", "fail", "read_table"]

HEADER_SEARCH_ROWS = 30  # title lines above the header: 生意通 puts two or three there
_MAX_REPORTED = 10  # bad cells named in one error


class ImportFormatError(KuaishouFormatError):
    """An export that cannot be imported; the message names the file (and the row and column of a bad cell)."""


def fail(lines: list[str]) -> ImportFormatError:
    """One error for many problems: the first few, one a line, and how many more."""
    more = len(lines) - _MAX_REPORTED
    return ImportFormatError("\n".join(lines[:_MAX_REPORTED]) + (f"\n... and {more} more" if more > 0 else ""))


@dataclass(frozen=True)
class Table:
    """One sheet of an export from its header row down: data rows only, numbered as in the file."""

    path: Path
    header_row: int
    headers: tuple[str, ...]  # as written
    keys: tuple[str, ...]  # as compared (header_key's name)
    notes: tuple[str, ...]  # each header's unit note: 元, 分, 秒 ... or ""
    body: pd.DataFrame  # columns 0, 1, ... as the headers; blank and 合计/总计/汇总 rows removed
    titles: tuple[str, ...]  # the lines above the header, as text

    def find(self, header: str | list[str]) -> int | None:
        """Position of the first alternative the file has; None if it has none."""
        for name in alternatives(header):
            key = header_key(name)[0]
            found = [i for i, k in enumerate(self.keys) if k == key]
            if len(found) > 1:
                shown = " and ".join(repr(self.headers[i]) for i in found)
                raise ImportFormatError(f"{self.path}: row {self.header_row}: columns {shown} say the same thing")
            if found:
                return found[0]
        return None

    def numbers(self, positions: list[int]) -> tuple[dict[int, pd.Series], list[tuple[int, int, str]]]:
        """These columns as float64 (NaN: not measured), and (row, column, message) of each cell that is not a number.

        The columns are parsed as one long column: the parse's fixed cost is paid once per file, not per column.
        """
        cells = self.body[positions]
        values, invalid = parse_kuaishou_series(pd.Series(cells.to_numpy(dtype=object).ravel(order="F"), dtype=object))
        shape = (len(cells), len(positions))
        parsed = values.to_numpy(dtype="float64").reshape(shape, order="F")
        out = {p: pd.Series(parsed[:, i], index=cells.index) for i, p in enumerate(positions)}
        bad_row, bad_col = np.nonzero(invalid.to_numpy(dtype=bool).reshape(shape, order="F"))  # none in a good file
        lines = []
        for r, c in zip(bad_row.tolist(), bad_col.tolist(), strict=True):
            row, pos = int(cells.index[r]), positions[c]
            lines.append(
                (
                    row,
                    pos,
                    f"{self.path}: row {row}, {self.headers[pos]}: "
                    f"cannot read {str(cells.iat[r, c]).strip()!r} as a number",
                )
            )
        return out, lines

    def texts(self, pos: int) -> pd.Series:
        """The column as text (NFKC, trimmed; <NA> for -, empty); whole numbers from a workbook as digits."""
        text = self.body[pos].astype("string").str.normalize("NFKC").str.strip()
        text = text.str.replace(r"^(\d+)\.0$", r"\1", regex=True)  # an id Excel stored as 12345.0
        return text.mask(text.isin(MISSING_MARKS))

    def days(self, pos: int) -> pd.Series:
        """The column as days (datetime64[ns] at midnight); an unreadable cell fails the file."""
        raw = self.body[pos].astype("string").str.normalize("NFKC").str.strip().fillna("")
        parts = raw.str.extract(DATE_CELL_RE)
        text = parts[0].fillna(parts[3]) + "-" + parts[1].fillna(parts[4]) + "-" + parts[2].fillna(parts[5])
        days = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce").astype("datetime64[ns]")
        bad = days.isna().to_numpy()
        if bad.any():
            raise fail(
                [f"{self.path}: row {r}, {self.headers[pos]}: cannot read {v!r} as a day" for r, v in raw[bad].items()]
            )
        return days

    def period_day(self, wanted: str) -> pd.Timestamp:
        """The one day of a file without a day column, from its title lines or its name."""
        period = find_period([*self.titles, self.path.stem])
        if period is None:
            raise ImportFormatError(
                f"{self.path}: no {wanted} column, "
                "and no day in the title lines or the file name (e.g. 统计时间：2025-07-01)"
            )
        start, end = period
        if start != end:
            # Totals of several days cannot be spread over them; import-kuaishou records them as a period.
            raise ImportFormatError(
                f"{self.path}: no {wanted} column, and the file covers {start} to {end}, not one day"
            )
        return pd.Timestamp(start)


def _head_keys(grid: pd.DataFrame) -> Iterator[tuple[int, set[str]]]:
    """(row number, header keys) of the first rows, lazily.

    Only where a header row can be: a few title lines, not the data.
    """
    head = grid.head(HEADER_SEARCH_ROWS)
    for n, row in zip(head.index.to_numpy(dtype="int64").tolist(), head.itertuples(index=False), strict=True):
        yield n, {header_key(str(v))[0] for v in row if not pd.isna(v) and str(v).strip()}


def _header_row(grid: pd.DataFrame, match: Mapping[str, frozenset[str]]) -> tuple[int, list[str]] | None:
    """The first row holding every match header of some profile, and those profiles."""
    for number, keys in _head_keys(grid):
        matched = [name for name, wanted in match.items() if wanted <= keys]
        if matched:
            return number, matched
    return None


def _nothing_matches(path: Path, grids: list[pd.DataFrame], match: Mapping[str, frozenset[str]]) -> ImportFormatError:
    if len(match) == 1:
        # A named profile: say which of its headers the closest row lacks.
        ((name, wanted),) = match.items()
        rows = [keys for grid in grids for _, keys in _head_keys(grid)]
        best = max(rows, key=lambda keys: len(wanted & keys), default=set())
        missing = ", ".join(sorted(wanted - best))
        return ImportFormatError(
            f"{path}: no header row with every match header of profile {name!r} (missing: {missing})"
        )
    return ImportFormatError(
        f"{path}: no import profile matches its header row (tried: {', '.join(match)}); "
        "name one with --profile, or describe the file in configs/imports/<name>.yaml"
    )


def read_table(path: Path, match: Mapping[str, frozenset[str]]) -> tuple[Table, list[str]]:
    """The sheet and header row of the first row that has all match headers of some profile; those profiles."""
    try:
        grids = load_sheets(path)
    except KuaishouFormatError as exc:
        raise ImportFormatError(str(exc)) from None
    except FileNotFoundError:
        raise ImportFormatError(f"{path}: no such file") from None
    for grid in grids:
        found = _header_row(grid, match)
        if found is None:
            continue
        header_row, matched = found
        header = grid.loc[header_row].astype("string").fillna("").str.strip()
        split = [header_key(h) for h in header.tolist()]
        body = grid.loc[header_row + 1 :]
        # Every cell as trimmed text in one pass: blank rows go, and a 合计/总计/汇总 row sums the
        # others: it is not a day or an account of its own.
        text = pd.Series(body.to_numpy(dtype=object).ravel(), dtype=object).astype("string").str.strip().fillna("")
        blank = np.logical_and.reduce((text == "").to_numpy(dtype=bool).reshape(body.shape), axis=1)
        totals = np.logical_or.reduce(text.isin(TOTAL_LABELS).to_numpy(dtype=bool).reshape(body.shape), axis=1)
        titles = tuple(
            " ".join(str(v) for v in row if not pd.isna(v))
            for row in grid.loc[: header_row - 1].itertuples(index=False)
        )
        body = body.iloc[np.flatnonzero(~(blank | totals))]
        body.columns = pd.RangeIndex(len(body.columns))
        table = Table(
            path,
            header_row,
            tuple(header.tolist()),
            tuple(k for k, _ in split),
            tuple(n for _, n in split),
            body,
            titles,
        )
        return table, matched
    raise _nothing_matches(path, grids, match)
