"""Import one export with a profile: recognise it, then rows -> brand, day and base columns, aggregated."""

from __future__ import annotations

import hashlib
import operator
import unicodedata
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brandsteps.catalogue import BASE_COLUMNS, KEY_COLUMNS
from brandsteps.config import Brand
from brandsteps.sources.imports.accounts import owners, skipped_accounts
from brandsteps.sources.imports.model import ImportedFile  # the interface shared with restate
from brandsteps.sources.imports.profiles import UNIT_SCALE, ColumnSpec, Condition, ImportProfile, alternatives
from brandsteps.sources.imports.reading import ImportFormatError, Table, fail, read_table

__all__ = ["ImportedFile", "choose_profile", "read_import"]

_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


def choose_profile(path: Path, matched: list[str], profiles: Mapping[str, ImportProfile]) -> str:
    """Of the profiles whose match headers a file has, the most specific (most match headers)."""
    most = max(len(profiles[n].match_keys) for n in matched)
    best = [n for n in matched if len(profiles[n].match_keys) == most]
    if len(best) > 1:
        raise ImportFormatError(
            f"{path}: the header row fits the profiles {', '.join(best)} equally well; name one with --profile"
        )
    return best[0]


def read_import(
    path: Path,
    brands: Mapping[str, Brand],
    profiles: Mapping[str, ImportProfile],
    brand: str | None = None,
    profile: str | None = None,
) -> ImportedFile:
    """Read one export into rows per brand and day; raise ImportFormatError naming the file (row, column)."""
    path = Path(path)
    if profile is not None and profile not in profiles:
        raise ImportFormatError(f"--profile {profile!r}: no such import profile (known: {', '.join(profiles)})")
    names = [profile] if profile is not None else list(profiles)
    table, matched = read_table(path, {n: profiles[n].match_keys for n in names})
    name = choose_profile(path, matched, profiles)
    rows, skipped = _Import(table, profiles[name], name, brands).rows(brand)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return ImportedFile(path, name, rows, tuple(rows.columns[2:]), skipped, digest)


class _Import:
    """One table read with one profile: cells parsed once each, problems collected, then aggregated."""

    def __init__(self, table: Table, profile: ImportProfile, name: str, brands: Mapping[str, Brand]) -> None:
        self.table, self.profile, self.name, self.brands = table, profile, name, brands
        self._numbers: dict[int, pd.Series] = {}
        self.bad: list[tuple[int, int, str]] = []  # (row, column, message) of unreadable cells

    def number(self, pos: int) -> pd.Series:
        if pos not in self._numbers:
            self._parse([pos])
        return self._numbers[pos]

    def _parse(self, positions: list[int]) -> None:
        parsed, bad = self.table.numbers(positions)
        self._numbers.update(parsed)
        self.bad += bad

    def _numeric_positions(self) -> list[int]:
        """Every column the profile reads as numbers, to parse them in one go."""
        headers = []
        for spec in self.profile.columns.values():
            if spec.aggregate != "count_distinct":
                headers.append(spec.header)
            if spec.share_of is not None:
                headers.append(spec.share_of)
            headers += [c.header for c in spec.conditions if c.numeric]
        found = [self.table.find(h) for h in headers]
        return list(dict.fromkeys(p for p in found if p is not None))

    def rows(self, brand: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
        table = self.table
        if table.body.empty:
            raise ImportFormatError(f"{table.path}: no data rows under the header (row {table.header_row})")
        self._parse(self._numeric_positions())
        days = self._days()
        owner, account = owners(table, self.profile, self.name, self.brands, brand)
        values: dict[str, pd.Series] = {}
        passing: dict[str, pd.Series] = {}
        for column, spec in self.profile.columns.items():  # the profile's few columns; each is a whole-column operation
            pos = table.find(spec.header)
            if pos is None:
                continue  # not in this export: the column is not filled (never 0)
            mask = self._where(column, spec, owner)
            values[column] = self._values(column, spec, pos).where(mask)
            if spec.conditions:
                passing[column] = pd.Series(mask, index=table.body.index)
        if not values:
            wanted = ", ".join(alternatives(s.header)[0] for s in self.profile.columns.values())
            raise ImportFormatError(f"{table.path}: none of profile {self.name!r}'s columns is in the file ({wanted})")
        if self.bad:
            raise fail([line for _, _, line in sorted(self.bad)])
        known = owner.notna().to_numpy()
        skipped = skipped_accounts(account[~known], days[~known])
        frame = pd.DataFrame({"brand_id": owner, "date": days, **values})[known]
        return self._aggregate(frame, {c: p[known] for c, p in passing.items()}), skipped

    def _days(self) -> pd.Series:
        header = self.profile.date
        pos = None if header is None else self.table.find(header)
        if pos is not None:
            return self.table.days(pos)
        wanted = "day" if header is None else "/".join(alternatives(header))
        return pd.Series(self.table.period_day(wanted), index=self.table.body.index, dtype="datetime64[ns]")

    def _values(self, column: str, spec: ColumnSpec, pos: int) -> pd.Series:
        if spec.aggregate == "count_distinct":
            return self.table.texts(pos)  # ids are counted, not read as numbers
        values = self.number(pos)
        if spec.share_of is not None:
            values = self._shares_as_amounts(spec.share_of, pos, values)
        multiply, divide = UNIT_SCALE[self.profile.unit(column, self.table.notes[pos])]
        return values if (multiply, divide) == (1, 1) else values * multiply / divide

    def _shares_as_amounts(self, base: str, pos: int, values: pd.Series) -> pd.Series:
        """A cell written with % (or any cell under a 占比 header) is a share of `base` on its row."""
        table = self.table
        written = table.body[pos].astype("string").str.normalize("NFKC")
        share = written.str.contains("%", regex=False).fillna(False).to_numpy(dtype=bool) | table.keys[pos].endswith(
            "占比"
        )
        if not share.any():
            return values
        base_pos = table.find(base)
        if base_pos is None:
            raise ImportFormatError(
                f"{table.path}: {table.headers[pos]} holds shares (%) but the file has no {base} column to take them of"
            )
        return values.where(~share, (values * self.number(base_pos)).round(2))  # amounts to the fen

    def _where(self, column: str, spec: ColumnSpec, owner: pd.Series) -> np.ndarray:
        """Rows that pass every condition of the column (a missing cell never passes)."""
        mask = np.ones(len(self.table.body), dtype=bool)
        for condition in spec.conditions:
            pos = self.table.find(condition.header)
            if pos is None:
                shown = " or ".join(alternatives(condition.header))
                raise ImportFormatError(
                    f"{self.table.path}: columns.{column}.where: the file has no column {shown} (profile {self.name!r})"
                )
            mask &= self._condition(condition, pos, owner)
        return mask

    def _condition(self, condition: Condition, pos: int, owner: pd.Series) -> np.ndarray:
        if condition.op == "in":
            listed = [
                (b.brand_id, item) for b in self.brands.values() for item in b.exclusive_items
            ]  # from the configs
            pairs = pd.MultiIndex.from_arrays([owner.astype(object), self.table.texts(pos).astype(object)])
            return np.asarray(pairs.isin(listed), dtype=bool)
        if condition.numeric:
            cells: pd.Series = self.number(pos)
            value: object = float(condition.value)
        else:
            cells = self.table.texts(pos)
            value = unicodedata.normalize("NFKC", str(condition.value)).strip()
        result = _COMPARE[condition.op](cells, value)
        passed: np.ndarray = (cells.notna() & result.fillna(False).astype(bool)).to_numpy(dtype=bool)
        return passed

    def _aggregate(self, frame: pd.DataFrame, passing: dict[str, pd.Series]) -> pd.DataFrame:
        """One row per brand and day: the columns combined by their aggregates, one group-by call per kind."""
        keys = list(KEY_COLUMNS)
        filled = [c for c in BASE_COLUMNS if c in frame.columns]
        kinds = {c: self.profile.columns[c].aggregate for c in filled}
        grouped = frame.groupby(keys, sort=True)
        parts = []
        for kind, columns in (
            (k, [c for c in filled if kinds[c] == k]) for k in ("sum", "max", "last", "count_distinct")
        ):
            if not columns:
                continue
            if kind == "sum":
                sums = grouped[columns].sum(min_count=1)  # all cells missing: not measured, never 0
                filtered = [c for c in columns if c in passing]
                if filtered:
                    # Rows there, none passing the filter: the file measured nothing of this kind (0).
                    some = (
                        pd.DataFrame({c: passing[c] for c in filtered})
                        .groupby([frame["brand_id"], frame["date"]], sort=True)
                        .any()
                    )
                    sums[filtered] = sums[filtered].where(some.to_numpy(dtype=bool), 0.0)
                parts.append(sums)
            elif kind == "max":
                parts.append(grouped[columns].max())
            elif kind == "last":
                parts.append(grouped[columns].last())  # the last value the file gives, in file order
            else:
                parts.append(
                    grouped[columns].nunique()
                )  # a brand-day whose rows all fail the filter counts 0: measured, none
        out = pd.concat(parts, axis=1).astype("float64")
        exclusive = [c for c in filled if any(k.op == "in" for k in self.profile.columns[c].conditions)]
        if exclusive:
            # A brand without exclusive_items in its config: which items are exclusive is unknown.
            with_items = [b.brand_id for b in self.brands.values() if b.exclusive_items]
            out.loc[~out.index.get_level_values(0).isin(with_items), exclusive] = np.nan
        rows = out.reset_index()
        rows["brand_id"] = rows["brand_id"].astype(str)
        rows["date"] = rows["date"].astype("datetime64[ns]")
        return rows[[*keys, *filled]]
