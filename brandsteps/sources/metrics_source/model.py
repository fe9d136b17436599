"""Where the metrics live, what reading them gives, and the error when they cannot be read at all."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from brandsteps.catalogue import BASE_COLUMNS
from brandsteps.config import SqlMetrics

QUARANTINE_COLUMNS = ["source", "row", "brand_id", "date", "reason"]


class MetricsReadError(Exception):
    """The metrics source as a whole could not be read (missing file, bad table, no key columns)."""


@dataclass
class MetricsBatch:
    """Valid daily rows (one per brand and day) and the rows set aside, each with its reason."""

    daily: pd.DataFrame
    quarantine: pd.DataFrame
    missing_columns: list[str] = field(default_factory=list)
    unknown_columns: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    @classmethod
    def empty(cls) -> MetricsBatch:
        """No rows at all (a sharded cycle's parent reads no metrics itself)."""
        return cls(empty_daily(), empty_quarantine())


@dataclass(frozen=True)
class MetricsSource:
    """Where the metrics live: a file or folder path, or an SQLAlchemy URL and table."""

    path: Path | None = None
    url: str | None = None
    table: str = "daily_metrics"

    @classmethod
    def parse(cls, spec: str | SqlMetrics, root: Path | None = None) -> MetricsSource:
        if isinstance(spec, SqlMetrics):
            return cls(url=spec.url, table=spec.table)
        if "://" in spec:
            url, _, table = spec.partition("#")
            return cls(url=url, table=table or "daily_metrics")
        path = Path(spec).expanduser()
        if not path.is_absolute() and root is not None:
            path = root / path
        return cls(path=path)

    def describe(self) -> str:
        if self.path is not None:
            return str(self.path)
        from sqlalchemy.engine import make_url

        return f"{make_url(self.url or '').render_as_string(hide_password=True)} table {self.table}"


def empty_daily() -> pd.DataFrame:
    empty = pd.DataFrame({"brand_id": pd.Series(dtype=object), "date": pd.Series(dtype="datetime64[ns]")})
    for col in (*BASE_COLUMNS, "uv"):
        empty[col] = pd.Series(dtype="float64")
    return empty


def empty_quarantine() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object if c != "row" else "int64") for c in QUARANTINE_COLUMNS})
