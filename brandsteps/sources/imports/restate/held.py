"""What a target holds: its brand-days, where each is, and how to read a cell and name a place."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Held:
    """The brand-days a target holds, and how to read a cell and name a place.

    keys: brand_id (string), date, and loc: where it is.
    """

    keys: pd.DataFrame
    cells: Callable[
        [np.ndarray, str], tuple[np.ndarray, np.ndarray]
    ]  # (locs, column) → (numbers, whether each cell held anything)
    places: Callable[[np.ndarray], np.ndarray]  # locs → "FILE row N" as the metrics reader names rows
    where: str


def _days(column: pd.Series) -> pd.Series:
    """Days as the metrics reader reads them (validate): a timestamp's day, or ISO text; NaT where unreadable."""
    if pd.api.types.is_datetime64_any_dtype(column):
        days: pd.Series = column.dt.tz_localize(None) if getattr(column.dt, "tz", None) is not None else column
    else:
        days = pd.to_datetime(column.astype("string").str.strip(), errors="coerce", format="ISO8601")
    normalised: pd.Series = days.dt.normalize().astype("datetime64[ns]")
    return normalised


def held_keys(brands: list[pd.Series], days: list[pd.Series]) -> pd.DataFrame:
    """A target's brand-days, file after file, as the imported rows are matched against them; loc: their position."""
    brand = pd.Series(
        np.concatenate([np.zeros(0, dtype=object), *[b.to_numpy(dtype=object) for b in brands]]), dtype=object
    )
    day = np.concatenate(
        [np.zeros(0, dtype="datetime64[ns]"), *[_days(d).to_numpy(dtype="datetime64[ns]") for d in days]]
    )
    keys = pd.DataFrame(
        {"brand_id": brand.astype("string").str.strip(), "date": day, "loc": np.arange(len(brand))}
    )  # text handled once, not per file
    return keys.astype({"brand_id": "string"})
