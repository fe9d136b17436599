"""The files' own checks, and their rows stacked in call order: all before the target is read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from brandsteps.catalogue import BASE_COLUMNS, KEY_COLUMNS
from brandsteps.config import BRAND_ID_PATTERN
from brandsteps.sources.imports.model import ImportedFile

SHOWN = 10  # brand-days named in one error


def _column_problem(imported: ImportedFile) -> str | None:
    """Why the file's columns cannot be stored, if they cannot."""
    where, columns, rows = imported.path, tuple(imported.columns), imported.rows
    unknown = [c for c in columns if c not in BASE_COLUMNS]
    if unknown or len(set(columns)) != len(columns):
        return f"{where}: columns {', '.join(columns)}: each must be a base column of the metrics, once"
    if sorted(map(str, rows.columns)) != sorted([*KEY_COLUMNS, *columns]):
        return (
            f"{where}: the rows hold {', '.join(map(str, rows.columns))}; expected brand_id, date, {', '.join(columns)}"
        )
    return None


@dataclass(frozen=True)
class Stack:
    """The rows of several files, one under the other in call order; values and carried are (rows, columns)."""

    seq: np.ndarray  # the file (its position in the call) of each row
    pos: np.ndarray  # the row's position in its file's rows
    brand: np.ndarray  # object (str)
    day: np.ndarray  # datetime64[ns] midnight
    values: np.ndarray  # float64, NaN where none or not carried
    carried: np.ndarray  # bool: the row's file carries the column
    columns: list[str]  # every column some file carries, in the order they first come

    def only(self, keep: np.ndarray) -> Stack:
        return Stack(
            self.seq[keep],
            self.pos[keep],
            self.brand[keep],
            self.day[keep],
            self.values[keep],
            self.carried[keep],
            self.columns,
        )

    def rows_of(self, i: int) -> pd.DataFrame:
        """File i's rows (brand_id, date), by position in the file."""
        mine = self.seq == i
        return pd.DataFrame({"brand_id": self.brand[mine], "date": self.day[mine]}, index=self.pos[mine])


def _stack(files: Sequence[ImportedFile], picked: list[int]) -> Stack:
    """The picked files' rows as restate stores them: ids as text, days at midnight, carried columns as float64."""
    columns = list(dict.fromkeys(c for i in picked for c in files[i].columns))
    sizes = np.asarray([len(files[i].rows) for i in picked], dtype=np.int64)
    total = int(sizes.sum())
    # one frame of every row (NaN in a column its file lacks), read a column at a time, never a file or row at a time
    both = (
        pd.concat([files[i].rows for i in picked], ignore_index=True)
        if total
        else pd.DataFrame({c: [] for c in [*KEY_COLUMNS, *columns]})
    )
    day = both["date"] if pd.api.types.is_datetime64_dtype(both["date"]) else pd.to_datetime(both["date"])
    carried = np.asarray([[c in files[i].columns for c in columns] for i in picked], dtype=bool).reshape(
        len(picked), len(columns)
    )
    return Stack(
        seq=np.repeat(np.asarray(picked, dtype=np.int64), sizes),
        pos=np.arange(total) - np.repeat(np.cumsum(sizes) - sizes, sizes),
        brand=both["brand_id"].astype("string").to_numpy(dtype=object),  # <NA> only in rows the screening refuses
        day=day.to_numpy(dtype="datetime64[ns]")
        .astype("datetime64[D]")
        .astype("datetime64[ns]"),  # the day of a timestamp (NaT stays NaT)
        values=np.column_stack([both[c].to_numpy(dtype="float64", na_value=np.nan) for c in columns])
        if columns
        else np.zeros((total, 0)),
        carried=np.repeat(carried, sizes, axis=0),
        columns=columns,
    )


@dataclass(frozen=True)
class Summary:
    """A file's rows in brief: the counts of its result and the fields of its import log line."""

    brands: int = 0
    days: int = 0
    brand_ids: str = ""  # sorted, comma-separated
    first_day: str | None = None
    last_day: str | None = None


@dataclass(frozen=True)
class Screened:
    """The rows of the files that can be stored (stacked in call order), and why each other file cannot be stored."""

    stack: Stack
    errors: dict[int, str]
    summaries: dict[int, Summary]  # by position in the call, every file that can be stored

    @property
    def ok(self) -> list[int]:
        return list(self.summaries)


def screen(files: Sequence[ImportedFile]) -> Screened:
    """Every file's own checks, all files at once (they need nothing of the target)."""
    errors = {i: problem for i, f in enumerate(files) if (problem := _column_problem(f)) is not None}
    stack = _stack(files, [i for i in range(len(files)) if i not in errors])
    brand = pd.Series(stack.brand, dtype="string")
    # brand ids name files of a metrics folder: only slugs
    bad = ~brand.fillna("").str.fullmatch(BRAND_ID_PATTERN[1:-1]).to_numpy(dtype=bool) | np.isnat(stack.day)
    for i, count in zip(*np.unique(stack.seq[bad], return_counts=True), strict=True):
        errors[int(i)] = (
            f"{files[int(i)].path}: {int(count)} row(s) without a brand id (slug) or a date: nothing written"
        )
    keys = pd.DataFrame({"seq": stack.seq, "brand_id": brand, "date": stack.day})
    twice = keys.duplicated(keep=False).to_numpy() & ~np.isin(stack.seq, list(errors))
    for i in np.unique(stack.seq[twice]).tolist():
        named = keys[twice & (stack.seq == i)].drop_duplicates().head(SHOWN)
        shown = ", ".join(named["brand_id"] + " on " + named["date"].dt.strftime("%Y-%m-%d"))
        errors[i] = f"{files[i].path}: more than one row for {shown}: nothing written"
    stack = stack.only(~np.isin(stack.seq, list(errors)))
    return Screened(
        stack, dict(sorted(errors.items())), _summaries(stack, [i for i in range(len(files)) if i not in errors])
    )


def _summaries(stack: Stack, ok: list[int]) -> dict[int, Summary]:
    rows = pd.DataFrame({"seq": stack.seq, "brand_id": stack.brand, "date": stack.day})
    distinct = rows.drop_duplicates(["seq", "brand_id"]).sort_values(["seq", "brand_id"], kind="stable")
    named, counts = distinct.groupby("seq")["brand_id"].agg(",".join), distinct.groupby("seq").size()
    days = rows.groupby("seq")["date"].agg(["nunique", "min", "max"])  # the same files, in the same order
    out = {i: Summary() for i in ok}  # a file without rows keeps these
    for i, brand_ids, brands, n, first, last in zip(
        days.index.tolist(),
        named.tolist(),
        counts.tolist(),
        days["nunique"].tolist(),
        days["min"].tolist(),
        days["max"].tolist(),
        strict=True,
    ):
        out[i] = Summary(brands, n, brand_ids, f"{first:%Y-%m-%d}", f"{last:%Y-%m-%d}")
    return out
