"""Metrics loading: every source kind, quarantine with a reason per row, date ranges pushed down."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from brandsteps.sources.metrics_source import MetricsReadError, MetricsSource, load_metrics

AS_OF, TODAY = date(2026, 1, 10), date(2026, 1, 11)
GOOD = "brand_id,date,orders,gmv,store_rating\nacme,2026-01-01,10,100,4.5\nacme,2026-01-02,12,120,4.6\n"


def load(path: Path, **kw: object):
    return load_metrics(MetricsSource(path=path), as_of=AS_OF, today=TODAY, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        # one problem per row, so the row's reason is exactly that problem's text
        pytest.param("acme,2026-01-03,-3,100,4", "orders: negative value -3", id="negative"),
        pytest.param("acme,2026-01-03,3,100,7.5", "store_rating 7.5 is above 5", id="rating-above-5"),
        pytest.param("acme,2026-01-03,abc,100,4", "orders: 'abc' is not a number", id="not-a-number"),
        pytest.param("acme,2026-01-03,inf,100,4", "orders: infinite value", id="infinite"),
        # above 1e12 a value is a unit or export error; it is quoted as {:g} shows it
        pytest.param("acme,2026-01-03,1e15,100,4", "orders: implausibly large value 1e+15", id="implausible"),
        pytest.param("../x,2026-01-03,1,100,4", "brand_id '../x' is not a slug [a-z0-9-]", id="brand-not-a-slug"),
        # 30 February does not exist: the text is quoted as written
        pytest.param(
            "acme,2026-02-30,1,100,4", "date '2026-02-30' is not a date (use YYYY-MM-DD)", id="impossible-date"
        ),
        pytest.param("acme,2026-01-12,1,100,4", "date 2026-01-12 is in the future", id="after-today"),  # today: 11 Jan
        # 2 January is already in GOOD: both copies go, the later one last
        pytest.param("acme,2026-01-02,1,100,4", "duplicate row for this brand and day", id="duplicate"),
    ],
)
def test_bad_rows_are_quarantined_with_their_reason(tmp_path: Path, row: str, reason: str) -> None:
    path = tmp_path / "m.csv"
    path.write_text(GOOD + row + "\nother,2026-01-01,5,50,4.9\n", encoding="utf-8")
    batch = load(path)
    assert batch.quarantine["reason"].iloc[-1] == reason
    assert batch.quarantine["row"].iloc[-1] == 4  # header is line 1, so the 3rd data row is line 4
    assert "other" in set(batch.daily["brand_id"])  # every other brand is still read


def test_missing_values_and_columns_stay_missing(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("brand_id,date,orders,gmv\nacme,2026-01-01,,100\nacme,2026-01-02,-,120\n", encoding="utf-8")
    batch = load(path)
    assert batch.daily["orders"].isna().all()  # empty and '-' mean not measured, never 0
    assert batch.daily["ad_spend"].isna().all() and "ad_spend" in batch.missing_columns
    assert batch.quarantine.empty


def test_parquet_folder_and_date_filter(tmp_path: Path) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    days = pd.date_range("2025-12-01", "2026-01-20")
    frame = pd.DataFrame({"brand_id": "acme", "date": days, "gmv": np.arange(len(days), dtype=float)})
    frame.iloc[:30].to_parquet(folder / "a.parquet")
    frame.iloc[30:].to_parquet(folder / "b.parquet")
    batch = load(folder, start=date(2026, 1, 1))
    # only 1..10 January are read: from start up to as_of
    assert list(batch.daily["date"].dt.day) == list(range(1, 11))


def test_sql_table_with_parameterised_dates(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    frame = pd.DataFrame(
        {"brand_id": ["acme"] * 3, "date": ["2026-01-01", "2026-01-05", "2026-01-11"], "gmv": [1.0, 2.0, 3.0]}
    )
    frame.to_sql("daily_metrics", sa.create_engine(url), index=False)
    batch = load_metrics(MetricsSource.parse(url), as_of=AS_OF, today=TODAY)
    assert list(batch.daily["gmv"]) == [1.0, 2.0]  # 11 January is after as_of


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        pytest.param("empty.parquet", b"", "empty file (0 bytes), not a Parquet file", id="empty-parquet"),
        # pyarrow's own reason follows in parentheses
        pytest.param("bad.parquet", b"PAR1garbage", "not a readable Parquet file (", id="corrupt-parquet"),
        pytest.param("empty.csv", b"", "empty file", id="empty-csv"),
        pytest.param(
            "nokeys.csv", b"orders,gmv\n1,2\n", "the metrics table has no brand_id or date column", id="no-key-columns"
        ),
    ],
)
def test_unreadable_sources_fail_clearly(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(MetricsReadError, match=f"^{re.escape(f'{path}: {message}')}"):  # each names the file
        load(path)


def test_sql_table_injection_is_only_a_name(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    pd.DataFrame({"brand_id": ["acme"], "date": ["2026-01-01"]}).to_sql(
        "daily_metrics", sa.create_engine(url), index=False
    )
    with pytest.raises(MetricsReadError, match="not found"):
        load_metrics(MetricsSource(url=url, table="daily_metrics; DROP TABLE daily_metrics"), as_of=AS_OF, today=TODAY)
    assert sa.inspect(sa.create_engine(url)).has_table("daily_metrics")
