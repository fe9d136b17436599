"""Which brand each row of an export belongs to: --brand, or the brands' `accounts` against the row's ids."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from brandsteps.config import Brand
from brandsteps.sources.imports.profiles import ImportProfile, alternatives
from brandsteps.sources.imports.reading import ImportFormatError, Table, fail

__all__ = ["SKIPPED_COLUMNS", "owners", "skipped_accounts"]

SKIPPED_COLUMNS = ("account", "rows", "days")


def owners(
    table: Table, profile: ImportProfile, name: str, brands: Mapping[str, Brand], brand: str | None
) -> tuple[pd.Series, pd.Series]:
    """Each data row's brand id (<NA>: no brand lists its account) and the account it was recognised by."""
    index = table.body.index
    if brand is not None:
        return pd.Series(brand, index=index, dtype="string"), pd.Series(pd.NA, index=index, dtype="string")
    if profile.account is None:
        raise ImportFormatError(
            f"{table.path}: profile {name!r} has no account column to tell brands apart: name the brand with --brand"
        )
    headers = alternatives(profile.account)
    positions = [p for p in (table.find(h) for h in headers) if p is not None]
    if not positions:
        raise ImportFormatError(
            f"{table.path}: no account column ({' or '.join(headers)}) to tell brands apart: "
            "name the brand with --brand"
        )
    ids = pd.concat({p: table.texts(p) for p in positions}, axis=1)
    # Built from the configs (one entry per listed account), then one hash lookup per cell.
    claimed = pd.Series({account: b.brand_id for b in brands.values() for account in b.accounts}, dtype="string")
    found = pd.DataFrame({p: ids[p].map(claimed).astype("string") for p in positions})
    # The first id column that names a brand decides; column by column (a row-wise bfill is ~100x slower).
    owner, account = found[positions[0]], ids[positions[0]]
    for p in positions[1:]:
        owner, account = (
            owner.fillna(found[p]),
            account.fillna(ids[p]),
        )  # the first id the row has names it in the report
    _refuse_split_rows(table, ids, found, owner)
    return owner, account


def _refuse_split_rows(table: Table, ids: pd.DataFrame, found: pd.DataFrame, owner: pd.Series) -> None:
    """A row whose ids the configs give to two brands (账户ID to one, 快手ID to another) fails the file."""
    split = np.zeros(len(found), dtype=bool)
    for p in found.columns[1:]:
        split |= (found[p].notna() & (found[p] != owner)).fillna(False).to_numpy(dtype=bool)
    if not split.any():
        return
    positions = found.columns.to_numpy(dtype="int64").tolist()
    lines = []
    shown = zip(
        found.index[split][:10].tolist(),
        ids[split].head(10).itertuples(index=False),
        found[split].head(10).itertuples(index=False),
        strict=True,
    )
    for row, id_cells, brand_cells in shown:  # the rows named in the message, at most ten
        parts = [
            f"{table.headers[p]} {i} is {b}'s"
            for p, i, b in zip(positions, id_cells, brand_cells, strict=True)
            if not pd.isna(b)
        ]
        lines.append(
            f"{table.path}: row {row}: {', '.join(parts)}: "
            "an account belongs to one brand (fix accounts in configs/brands)"
        )
    raise fail(lines)


def skipped_accounts(account: pd.Series, days: pd.Series) -> pd.DataFrame:
    """account, rows, days (first and last, as text) of rows no brand claims, by account."""
    if account.empty:
        return pd.DataFrame(
            {"account": pd.Series(dtype="string"), "rows": pd.Series(dtype="int64"), "days": pd.Series(dtype="string")}
        )
    frame = pd.DataFrame({"account": account.fillna("(empty)").astype("string"), "date": days})
    per = frame.groupby("account", sort=True)["date"].agg(["size", "min", "max"])
    first, last = per["min"].dt.strftime("%Y-%m-%d"), per["max"].dt.strftime("%Y-%m-%d")
    span = first.where(first == last, first + " to " + last).astype("string")
    out = pd.DataFrame(
        {"account": per.index.astype("string"), "rows": per["size"].astype("int64").to_numpy(), "days": span.to_numpy()}
    )
    return out.reset_index(drop=True)
