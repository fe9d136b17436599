"""What one export file becomes once read: the rows it fills, the base columns it carries, and its digest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

__all__ = ["ImportedFile"]


@dataclass(frozen=True)
class ImportedFile:
    """One export, read and mapped to brands: what the parsing side hands to the storing side (restate).

    rows: brand_id (str), date (datetime64[ns], midnight), then only the base columns this file
    fills (float64, NaN = not measured). A column the file does not carry is absent, never NaN:
    restating replaces exactly the carried columns and keeps the others of a brand-day.
    """

    path: Path
    profile: str
    rows: pd.DataFrame
    columns: tuple[str, ...]  # the base columns this file fills
    skipped_accounts: pd.DataFrame  # account, rows, days: rows whose account no brand lists
    digest: str  # sha256 hex of the file's bytes: the same file imported again is recognised by it
