"""What an import read, as lines for the terminal, and `--out FILE`: the files' rows as one new table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from brandsteps.catalogue import BASE_COLUMNS, KEY_COLUMNS
from brandsteps.config import Brand
from brandsteps.sources.imports.model import ImportedFile
from brandsteps.sources.imports.profiles import ImportProfile
from brandsteps.sources.imports.reading import ImportFormatError
from brandsteps.sources.kuaishou.storing import write_atomically
from brandsteps.wording import counted

__all__ = ["check_out", "combine", "summary_lines", "write_out"]

_SHOWN = 10  # unknown accounts listed one a line; the rest counted


def summary_lines(imported: ImportedFile, profile: ImportProfile, brands: Mapping[str, Brand]) -> list[str]:
    """Per file: profile, brands × days × columns, columns the profile has but the file lacks, skipped accounts."""
    rows = imported.rows
    n_brands, n_days = rows["brand_id"].nunique(), rows["date"].nunique()
    out = [
        f"{imported.path}: {imported.profile}: "
        f"{counted(n_brands, 'brand')} × {counted(n_days, 'day')} × {counted(len(imported.columns), 'column')} "
        f"({', '.join(imported.columns)}), {counted(len(rows), 'brand-day')}"
    ]
    lacking = [c for c in profile.columns if c not in imported.columns]
    if lacking:
        out.append(f"  not in this file (left as they are): {', '.join(lacking)}")
    if profile.uses_exclusive_items:
        # Their columns are NaN for these brands: which items are exclusive is not configured.
        without = sorted(b for b in rows["brand_id"].unique() if b not in brands or not brands[b].exclusive_items)
        if without:
            out.append(
                f"  no exclusive_items configured for {', '.join(without)}: their exclusive columns are not measured"
            )
    skipped = imported.skipped_accounts
    if len(skipped):
        out.append(
            f"  skipped {counted(int(skipped['rows'].sum()), 'row')} of {counted(len(skipped), 'account')} "
            "no brand lists in `accounts`:"
        )
        out += [f"    {a}: {counted(int(r), 'row')}, {d}" for a, r, d in skipped.head(_SHOWN).itertuples(index=False)]
        if len(skipped) > _SHOWN:
            out.append(f"    ... and {len(skipped) - _SHOWN} more")
    return out


def check_out(out: Path) -> None:
    """--out must name a new .csv or .parquet file: an import never overwrites a table."""
    if out.suffix.lower() not in {".csv", ".parquet", ".pq"}:
        raise ImportFormatError(f"--out {out}: use a .csv or .parquet file name")
    if out.exists():
        raise ImportFormatError(
            f"--out {out}: the file exists; choose a new name (to store into the configured metrics, leave out --out)"
        )


def combine(files: Sequence[ImportedFile]) -> pd.DataFrame:
    """The files' rows as one table: a brand-day in several files takes each column from the last file carrying it."""
    keys = list(KEY_COLUMNS)
    table = pd.DataFrame(columns=keys).set_index(keys)
    for imported in files:  # a few files; each is merged whole
        new = imported.rows.set_index(keys)
        table = table.reindex(table.index.union(new.index))
        for column in new.columns:
            if column not in table.columns:
                table[column] = np.nan
        # A newer export is the truth for the columns it carries (as restate does), even where it says NaN.
        table.loc[new.index, list(new.columns)] = new.to_numpy(dtype="float64")
    rows = table.reset_index()
    rows["brand_id"] = rows["brand_id"].astype(str)
    rows["date"] = pd.to_datetime(rows["date"]).astype("datetime64[ns]")
    filled = [c for c in BASE_COLUMNS if c in rows.columns]
    return rows[[*keys, *filled]].astype(dict.fromkeys(filled, "float64")).sort_values(keys, ignore_index=True)


def write_out(files: Sequence[ImportedFile], out: Path) -> list[str]:
    """--out FILE: the rows of every file in a new CSV or Parquet file (by extension), written atomically."""
    check_out(out)
    rows = combine(files)
    if rows.empty:
        return [f"nothing to write to {out}: no rows"]
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(rows, out)
    return [f"wrote {counted(len(rows), 'row')} to {out}"]
