"""Metrics loading at portfolio scale: checks run on distinct values, the valid frame's brand_id is a Categorical."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from brandsteps.sources.metrics_source import MetricsSource, load_metrics, validate

AS_OF, TODAY = date(2026, 1, 3), date(2026, 1, 10)


def _rows(brands: list[object], dates: list[object]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "brand_id": pd.Series(brands, dtype=object),
            "date": pd.Series(dates, dtype=object),
            "gmv": np.arange(1.0, len(brands) + 1),
        }
    )


# (brands, dates, kept (brand, day) pairs, quarantined (row, brand, reason) triples)
CASES = [
    # 1 and 1.0 and True are equal as Python values but not as text: each is checked as written
    pytest.param(
        [1, 1.0, True],
        ["2026-01-01", "2026-01-02", "2026-01-03"],
        [("1", 1)],
        [(2, "1.0", "brand_id '1.0' is not a slug [a-z0-9-]"), (3, "True", "brand_id 'True' is not a slug [a-z0-9-]")],
        id="equal-values-written-apart",
    ),
    # ids are stripped before they are compared: " acme" and "acme" on one day are one brand twice
    pytest.param(
        [" acme", "acme", "zeta"],
        ["2026-01-01", "2026-01-01", "2026-01-01"],
        [("zeta", 1)],
        [(1, "acme", "duplicate row for this brand and day"), (2, "acme", "duplicate row for this brand and day")],
        id="stripped-ids-are-one-brand",
    ),
    # dates are parsed once per distinct text: stripped, impossible, missing, not ISO
    pytest.param(
        ["a", "b", "c", "d"],
        [" 2026-01-02 ", "2026-02-30", None, "03/01/2026"],
        [("a", 2)],
        [
            (2, "b", "date '2026-02-30' is not a date (use YYYY-MM-DD)"),
            (3, "c", "date '<empty>' is not a date (use YYYY-MM-DD)"),
            (4, "d", "date '03/01/2026' is not a date (use YYYY-MM-DD)"),
        ],
        id="dates-parsed-per-distinct-text",
    ),
    # dates 300 years apart: one brand-and-day key per row still finds the pair, far apart as the days are
    pytest.param(
        ["a", "a", "a"],
        ["1726-01-01", "1726-01-01", "2026-01-01"],
        [("a", 1)],
        [(1, "a", "duplicate row for this brand and day"), (2, "a", "duplicate row for this brand and day")],
        id="duplicates-in-a-sparse-key-space",
    ),
]


@pytest.mark.parametrize(("brands", "dates", "kept", "quarantined"), CASES)
def test_checks_on_distinct_values_keep_row_semantics(
    brands: list[object], dates: list[object], kept: list[tuple[str, int]], quarantined: list[tuple[int, str, str]]
) -> None:
    batch = validate(_rows(brands, dates), as_of=AS_OF, today=TODAY)
    assert list(zip(batch.daily["brand_id"].astype(str), batch.daily["date"].dt.day, strict=True)) == kept
    q = batch.quarantine
    assert list(zip(q["row"], q["brand_id"], q["reason"], strict=True)) == quarantined


def test_brand_id_is_categorical_of_the_kept_ids_in_sorted_order() -> None:
    # zeta before acme in the file; BAD is quarantined; beta is dated after as_of (outside the cycle, not an error)
    raw = _rows(
        ["zeta", "acme", "BAD", "beta", "acme"], ["2026-01-01", "2026-01-01", "2026-01-01", "2026-01-05", "2026-01-02"]
    )
    daily = validate(raw, as_of=AS_OF, today=TODAY).daily
    assert isinstance(daily["brand_id"].dtype, pd.CategoricalDtype)
    assert list(daily["brand_id"].cat.categories) == ["acme", "zeta"]  # sorted, so groupby and sort_values stay lexical
    assert list(daily["brand_id"]) == ["zeta", "acme", "acme"]  # rows keep their file order
    assert daily.groupby("brand_id", observed=True)["gmv"].sum().to_dict() == {"acme": 2.0 + 5.0, "zeta": 1.0}


def test_valid_frame_is_writeable_and_independent_of_raw() -> None:
    # the valid frame shares raw's columns when every row is kept (copy-on-write): a write to
    # either side must not show in the other, and must not hit a read-only buffer
    raw = _rows(["a", "b"], ["2026-01-01", "2026-01-01"])
    daily = validate(raw, as_of=AS_OF, today=TODAY).daily
    raw.loc[0, "gmv"] = 99.0
    daily.loc[1, "gmv"] = 7.0
    assert raw["gmv"].tolist() == [99.0, 2.0]
    assert daily["gmv"].tolist() == [1.0, 7.0]


def test_loaded_parquet_frame_is_writeable(tmp_path: Path) -> None:
    # Arrow hands out read-only buffers; the valid frame must own writeable ones once raw is gone
    path = tmp_path / "m.parquet"
    pd.DataFrame(
        {"brand_id": ["a", "b"], "date": pd.to_datetime(["2026-01-01", "2026-01-02"]), "gmv": [1.0, 2.0]}
    ).to_parquet(path)
    daily = load_metrics(MetricsSource(path=path), as_of=AS_OF, today=TODAY).daily
    daily.loc[0, "gmv"] = 5.0
    daily.loc[1, "date"] = pd.Timestamp("2026-01-03")
    daily["uv"] = 1.0
    assert daily["gmv"].tolist() == [5.0, 2.0] and daily["date"].dt.day.tolist() == [1, 3]


def test_parquet_folder_keeps_categorical_ids_sources_and_row_numbers(tmp_path: Path) -> None:
    # two files with different brand dictionaries; the bad row is the 2nd row of the 2nd file
    folder = tmp_path / "metrics"
    folder.mkdir()
    days = pd.to_datetime(["2026-01-01", "2026-01-02"])
    pd.DataFrame({"brand_id": ["a", "b"], "date": days, "gmv": [1.0, 2.0]}).to_parquet(folder / "1.parquet")
    pd.DataFrame({"brand_id": ["c", "a"], "date": days, "gmv": [3.0, -4.0]}).to_parquet(folder / "2.parquet")
    batch = load_metrics(MetricsSource(path=folder), as_of=AS_OF, today=TODAY)
    assert list(batch.daily["brand_id"].cat.categories) == ["a", "b", "c"]
    assert batch.daily["gmv"].tolist() == [1.0, 2.0, 3.0]
    q = batch.quarantine
    assert list(zip(q["source"], q["row"], q["brand_id"], q["reason"], strict=True)) == [
        (str(folder / "2.parquet"), 2, "a", "gmv: negative value -4")
    ]


def _as_csv(frame: pd.DataFrame, path: Path) -> None:
    frame.assign(date=frame["date"].dt.strftime("%Y-%m-%d")).to_csv(path, index=False)


# Writers of one table: whatever types the file holds, the loaded rows are the same.
WRITERS = {
    "csv": _as_csv,
    "parquet timestamps": lambda f, p: f.to_parquet(p),
    "parquet date32": lambda f, p: f.assign(date=f["date"].dt.date).to_parquet(p),
    "parquet text dates": lambda f, p: f.assign(date=f["date"].dt.strftime("%Y-%m-%d")).to_parquet(p),
    "parquet int orders": lambda f, p: f.assign(orders=f["orders"].fillna(0).astype("int64")).to_parquet(p),
}


@pytest.mark.parametrize("writer", [pytest.param(name, id=name.replace(" ", "-")) for name in WRITERS])
def test_every_file_type_loads_the_same_rows(tmp_path: Path, writer: str) -> None:
    frame = pd.DataFrame(
        {
            "brand_id": ["a", "a", "b", "b"],
            "date": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-01", "2026-01-02"]),
            "orders": [1.0, 2.0, 0.0, 4.0],
            "gmv": [10.0, np.nan, 30.0, -1.0],  # b's 2nd day is quarantined; a's missing gmv stays missing
        }
    )
    path = tmp_path / ("m.csv" if writer == "csv" else "m.parquet")
    WRITERS[writer](frame, path)
    batch = load_metrics(MetricsSource(path=path), as_of=AS_OF, today=TODAY)
    daily = batch.daily
    assert list(daily["brand_id"].astype(str)) == ["a", "a", "b"]
    assert daily["date"].dt.strftime("%Y-%m-%d").tolist() == ["2026-01-01", "2026-01-02", "2026-01-01"]
    assert daily["orders"].tolist() == [1.0, 2.0, 0.0]
    assert daily["gmv"].fillna(-99.0).tolist() == [10.0, -99.0, 30.0]
    first_row = 2 if writer == "csv" else 1  # CSV counts the header line
    q = batch.quarantine
    assert list(zip(q["row"], q["brand_id"], q["date"], q["reason"], strict=True)) == [
        (first_row + 3, "b", "2026-01-02", "gmv: negative value -1")
    ]
