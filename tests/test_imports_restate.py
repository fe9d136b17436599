"""Restatements: a brand and day imported again replaces the columns that file carries, the old values kept on record."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from brandsteps.cli import main
from brandsteps.config import load_portfolio
from brandsteps.engine.cycle import run_day
from brandsteps.ledger import Ledger, decisions
from brandsteps.sources.imports.model import ImportedFile
from brandsteps.sources.imports.records import decision_window, file_records, revised_after
from brandsteps.sources.imports.restate import IMPORTED_FOLDER, RestateError, restate, restate_many
from brandsteps.sources.metrics_source import MetricsSource, load_metrics, read_raw, validate
from tests.conftest import simple_playbook, write_configs
from tests.ledger_checks import pg_database  # noqa: F401 - a fixture

SHOWN = ("gmv", "refund_amount", "ad_spend", "ad_gmv")
NaN = float("nan")
AT_A = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
AT_B = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
AT_C = datetime(2026, 12, 3, 10, 15, tzinfo=UTC)


def exported(name: str, columns: tuple[str, ...], rows: list[tuple]) -> ImportedFile:
    """An export as the parsing side hands it over; the digest stands for the file's bytes (one per name here)."""
    frame = pd.DataFrame(rows, columns=["brand_id", "date", *columns])
    frame["date"] = pd.to_datetime(frame["date"]).astype("datetime64[ns]")
    frame = frame.astype({c: "float64" for c in columns})
    skipped = pd.DataFrame(
        {"account": pd.Series(dtype=str), "rows": pd.Series(dtype="int64"), "days": pd.Series(dtype=str)}
    )
    return ImportedFile(Path(name), "test", frame, columns, skipped, hashlib.sha256(name.encode()).hexdigest())


# 全店 export of 11-27 and 11-28; the next day's re-export restates refunds (payment date) and adds 11-29;
# then a 磁力金牛 file fills ad columns into a brand-day the 全店 files made, and adds one of its own.
A = exported(
    "exports/全店-a.csv",
    ("gmv", "refund_amount"),
    [("acme", "2026-11-27", 1000, 100), ("acme", "2026-11-28", 2000, 1204), ("beta", "2026-11-28", 500, NaN)],
)
B = exported(
    "exports/全店-b.csv",
    ("gmv", "refund_amount"),
    [
        ("acme", "2026-11-27", 1000, NaN),
        ("acme", "2026-11-28", 2000, 1388.5),
        ("acme", "2026-11-29", 3000, 10),
        ("beta", "2026-11-28", 500, 20),
    ],
)
C = exported(
    "exports/磁力金牛.csv", ("ad_spend", "ad_gmv"), [("acme", "2026-11-28", 300, 900), ("beta", "2026-11-30", 50, 0)]
)


def stored(source: MetricsSource) -> list[tuple]:
    """The target as the cycle reads it (read_raw, then validation: nothing may be quarantined), sorted."""
    raw, _, all_columns = read_raw(source)
    batch = validate(raw, as_of=date(2026, 12, 31), today=date(2026, 12, 31), all_columns=all_columns)
    assert batch.quarantine.empty, batch.quarantine.to_dict("records")
    daily = batch.daily.sort_values(["brand_id", "date"])
    out = daily.assign(brand_id=daily["brand_id"].astype(str), date=daily["date"].dt.strftime("%Y-%m-%d"))[
        ["brand_id", "date", *SHOWN]
    ]
    return [
        tuple(None if isinstance(v, float) and np.isnan(v) else v for v in row) for row in out.itertuples(index=False)
    ]


def revisions_of(source: MetricsSource, brand: str) -> list[dict]:
    found = revised_after(source, brand, date(2026, 11, 1), date(2026, 11, 30), datetime(2026, 1, 1, tzinfo=UTC))
    out = found.assign(
        date=found["date"].dt.strftime("%Y-%m-%d"), recorded_at=found["recorded_at"].map(lambda t: t.isoformat())
    )
    return list(out.astype(object).where(out.notna(), None).to_dict("records"))


def snapshot(source: MetricsSource, root: Path) -> dict[str, object]:
    """Everything an import may write: the files under root, or the metrics, revision and import tables."""
    if source.url is None:
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    engine = sa.create_engine(source.url)
    try:
        meta = sa.MetaData()
        meta.reflect(engine)
        with engine.connect() as conn:
            return {name: sorted(map(str, conn.execute(sa.select(t)).all())) for name, t in sorted(meta.tables.items())}
    finally:
        engine.dispose()


def _pandas_table(url: str) -> None:
    """A metrics table someone made with pandas: dates as timestamps, only gmv and orders (the import adds its other columns)."""
    empty = pd.DataFrame(
        {
            "brand_id": pd.Series(dtype=str),
            "date": pd.Series(dtype="datetime64[ns]"),
            "gmv": pd.Series(dtype=float),
            "orders": pd.Series(dtype=float),
        }
    )
    engine = sa.create_engine(url)
    empty.to_sql("daily_metrics", engine, index=False)
    engine.dispose()


TARGETS = [
    pytest.param("folder", id="folder"),
    pytest.param("csv", id="csv-file"),
    pytest.param("parquet", id="parquet-file"),
    pytest.param("sqlite", id="sqlite-table-created"),
    pytest.param("sqlite-pandas", id="sqlite-table-made-by-pandas"),
    pytest.param("postgresql", id="postgresql-table"),
]


@pytest.fixture
def target(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[MetricsSource, Path]:
    kind = request.param
    root = tmp_path / "data"
    root.mkdir()
    if kind == "folder":
        return MetricsSource(path=root / "metrics"), root
    if kind in ("csv", "parquet"):
        return MetricsSource(path=root / f"metrics.{kind}"), root
    url = request.getfixturevalue("pg_database") if kind == "postgresql" else f"sqlite:///{root / 'metrics.sqlite'}"
    if kind == "sqlite-pandas":
        _pandas_table(url)
    return MetricsSource(url=url), root


@pytest.mark.parametrize("target", TARGETS, indirect=True)
def test_restating_round_trip(target: tuple[MetricsSource, Path]) -> None:
    source, root = target
    first = restate(source, A, AT_A)
    assert (first.new_rows, first.replaced_cells, first.revisions) == (3, 0, 0)
    second = restate(source, B, AT_B)
    record = (
        "table metric_revisions"
        if source.url
        else str(source.path / "revisions.jsonl" if source.path.suffix == "" else f"{source.path}.revisions.jsonl")
    )
    # acme 11-27: gmv same, refund removed (a revision); acme 11-28: gmv same, refund restated (a revision);
    # beta 11-28: gmv same, refund filled in where none was (not a revision); acme 11-29 is new
    assert second.lines() == [
        f"exports/全店-b.csv: 2 brands × 3 days × 2 columns; 1 new brand-day, 2 values restated (kept in {record}), 1 value filled in where none was, 3 unchanged"
    ]
    assert (second.new_rows, second.replaced_cells, second.unchanged_cells, second.revisions) == (1, 3, 3, 2)
    third = restate(source, C, AT_C)
    assert third.lines() == [
        "exports/磁力金牛.csv: 2 brands × 2 days × 2 columns; 1 new brand-day, 0 values restated, 2 values filled in where none was"
    ]
    assert stored(source) == [
        ("acme", "2026-11-27", 1000.0, None, None, None),  # the re-export has no refund for the day: removed, on record
        (
            "acme",
            "2026-11-28",
            2000.0,
            1388.5,
            300.0,
            900.0,
        ),  # 磁力金牛 replaced its two columns and left gmv/refund alone
        ("acme", "2026-11-29", 3000.0, 10.0, None, None),
        ("beta", "2026-11-28", 500.0, 20.0, None, None),
        ("beta", "2026-11-30", None, None, 50.0, 0.0),  # a day only 磁力金牛 has: its other columns not measured
    ]
    digest_b = hashlib.sha256(b"exports/\xe5\x85\xa8\xe5\xba\x97-b.csv").hexdigest()
    assert revisions_of(source, "acme") == [
        {"file": "exports/全店-b.csv", "digest": digest_b, "recorded_at": "2026-12-02T09:00:00+00:00", "brand_id": "acme",
         "date": "2026-11-27", "column_name": "refund_amount", "old_value": 100.0, "new_value": None},
        {"file": "exports/全店-b.csv", "digest": digest_b, "recorded_at": "2026-12-02T09:00:00+00:00", "brand_id": "acme",
         "date": "2026-11-28", "column_name": "refund_amount", "old_value": 1204.0, "new_value": 1388.5},
    ]  # fmt: skip
    assert revisions_of(source, "beta") == []  # a value appearing where none was replaces nothing

    before = snapshot(source, root)
    again = restate(source, B, datetime(2026, 12, 9, tzinfo=UTC))
    assert again.already_imported
    assert again.lines() == [
        "exports/全店-b.csv: already imported on 2026-12-02 09:00 UTC (same contents): nothing changed"
    ]
    assert snapshot(source, root) == before  # byte for byte: no file rewritten, no revision or log line added


def test_folder_updates_a_brand_day_where_it_is_and_adds_new_ones_per_brand(tmp_path: Path) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    # a user's older files: a CSV with a column of their own, and a Parquet file
    (folder / "2026-11.csv").write_text(
        "brand_id,date,gmv,orders,note\nacme,2026-11-28,2000,20,双11 after\nacme,2026-11-27,1000.50,10,\n",
        encoding="utf-8",
    )
    pd.DataFrame({"brand_id": ["beta"], "date": pd.to_datetime(["2026-11-28"]), "gmv": [500.0]}).to_parquet(
        folder / "old.parquet", index=False
    )
    restated = exported(
        "exports/全店-c.csv",
        ("gmv", "refund_amount"),
        [("acme", "2026-11-28", 2100, 7), ("acme", "2026-11-29", 3000, NaN), ("beta", "2026-11-28", 550, NaN)],
    )

    result = restate(MetricsSource(path=folder), restated, AT_B)

    assert (result.new_rows, result.revisions) == (1, 2)
    # the CSV keeps every cell it had as written (1000.50 stays 1000.50); the changed cell and the new column are added
    assert (folder / "2026-11.csv").read_text(encoding="utf-8") == (
        "brand_id,date,gmv,orders,note,refund_amount\nacme,2026-11-28,2100,20,双11 after,7\nacme,2026-11-27,1000.50,10,,\n"
    )
    assert pd.read_parquet(folder / "old.parquet").to_dict("list") == {
        "brand_id": ["beta"],
        "date": [pd.Timestamp("2026-11-28")],
        "gmv": [550.0],
    }
    new_file = pd.read_parquet(folder / "imported" / "acme.parquet")
    assert new_file.astype(object).where(new_file.notna(), None).to_dict("list") == {
        "brand_id": ["acme"], "date": [pd.Timestamp("2026-11-29")], "gmv": [3000.0], "refund_amount": [None]
    }  # fmt: skip
    assert sorted(p.name for p in folder.rglob("*") if p.is_file()) == [
        ".restate.lock",
        "2026-11.csv",
        "acme.parquet",
        "imports.jsonl",
        "old.parquet",
        "revisions.jsonl",
    ]
    log = [json.loads(line) for line in (folder / "imports.jsonl").read_text(encoding="utf-8").splitlines()]
    assert log == [
        {"file": "exports/全店-c.csv", "digest": restated.digest, "profile": "test", "imported_at": "2026-12-02T09:00:00+00:00", "brands": "acme,beta",
         "days": 2, "first_day": "2026-11-28", "last_day": "2026-11-29", "columns": "gmv,refund_amount", "new_rows": 1, "revisions": 2}
    ]  # fmt: skip
    raw, _, _ = read_raw(MetricsSource(path=folder))
    assert not raw.duplicated(["brand_id", "date"]).any()  # no brand-day in two files: the reader would quarantine both


def _fail_replacing(name: str) -> Callable[[str | os.PathLike[str], str | os.PathLike[str]], None]:
    real = os.replace

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if str(src).endswith(".tmp") and Path(dst).name == name:
            raise OSError(28, "No space left on device")
        real(src, dst)

    return replace


def _fail_second_parquet_write() -> Callable[..., None]:
    real = pd.DataFrame.to_parquet
    calls = []

    def to_parquet(self: pd.DataFrame, path: object, *args: object, **kwargs: object) -> None:
        calls.append(path)
        if len(calls) == 2:
            Path(str(path)).write_bytes(b"PAR1 half")  # a half-written temporary file
            raise OSError(28, "No space left on device")
        real(self, path, *args, **kwargs)  # type: ignore[arg-type]

    return to_parquet


@pytest.mark.parametrize(
    ("patch", "error"),
    [
        # imported/acme.parquet is replaced first, then imported/beta.parquet fails: acme's is put back
        pytest.param(
            lambda mp: mp.setattr(os, "replace", _fail_replacing("beta.parquet")), OSError, id="second-replace-fails"
        ),
        pytest.param(
            lambda mp: mp.setattr(pd.DataFrame, "to_parquet", _fail_second_parquet_write()),
            OSError,
            id="second-write-fails",
        ),
        # the import log line is the last step: the files and the revisions already written are undone
        pytest.param(
            lambda mp: mp.setattr("brandsteps.sources.imports.restate.file_target._jsonl", _jsonl_failing_on_log()),
            OSError,
            id="import-log-fails",
        ),
    ],
)
def test_a_folder_import_that_fails_leaves_the_folder_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, patch: Callable, error: type
) -> None:
    source = MetricsSource(path=tmp_path / "metrics")
    restate(source, A, AT_A)
    before = snapshot(source, tmp_path)
    patch(monkeypatch)
    with pytest.raises(error, match="No space left on device"):
        restate(source, B, AT_B)
    monkeypatch.undo()
    assert snapshot(source, tmp_path) == before  # no temporary or backup file left either
    assert restate(source, B, AT_B).revisions == 2  # and the file imports cleanly afterwards


def _jsonl_failing_on_log() -> Callable[[list[dict]], bytes]:
    from brandsteps.sources.imports.restate.file_target import _jsonl

    def jsonl(records: list[dict]) -> bytes:
        if records and "profile" in records[0]:
            raise OSError(28, "No space left on device")
        return _jsonl(records)

    return jsonl


@pytest.mark.parametrize("target", TARGETS, indirect=True)
def test_rows_holding_a_brand_day_twice_write_nothing(target: tuple[MetricsSource, Path]) -> None:
    source, root = target
    restate(source, A, AT_A)
    before = snapshot(source, root)
    twice = exported(
        "exports/twice.csv", ("gmv",), [("acme", "2026-11-28", 1), ("acme", "2026-11-28", 2), ("beta", "2026-11-29", 3)]
    )
    with pytest.raises(
        RestateError, match=r"^exports/twice\.csv: more than one row for acme on 2026-11-28: nothing written$"
    ):
        restate(source, twice, AT_B)
    assert snapshot(source, root) == before


def test_a_target_holding_a_brand_day_twice_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    for name in ("a.csv", "b.csv"):
        (folder / name).write_text("brand_id,date,gmv\nacme,2026-11-28,2000\n", encoding="utf-8")
    with pytest.raises(RestateError) as caught:
        restate(MetricsSource(path=folder), B, AT_B)
    assert str(caught.value) == (
        f"{folder} already holds acme on 2026-11-28 ({folder}/a.csv row 2, {folder}/b.csv row 2) more than once: nothing written "
        "(the metrics reader quarantines every copy; keep one and import again)"
    )
    assert sorted(p.name for p in folder.iterdir()) == [".restate.lock", "a.csv", "b.csv"]


@pytest.mark.parametrize("kind", [pytest.param("sqlite", id="sqlite"), pytest.param("postgresql", id="postgresql")])
def test_an_sql_import_that_fails_rolls_back(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    url = f"sqlite:///{tmp_path / 'm.sqlite'}" if kind == "sqlite" else request.getfixturevalue("pg_database")
    source = MetricsSource(url=url)
    restate(source, A, AT_A)
    before = snapshot(source, tmp_path)

    def fail(*_: object) -> None:  # after the UPDATEs of restated rows were sent, before the new rows
        raise RuntimeError("connection lost")

    monkeypatch.setattr("brandsteps.sources.imports.restate.sql_target._insert_rows", fail)
    with pytest.raises(RuntimeError, match="^connection lost$"):
        restate(source, B, AT_B)
    assert snapshot(source, tmp_path) == before


# ---------------------------------------------------------------- many files in one call (restate_many)

# A restatement of values file B brings (acme 11-28 refund 1388.5 → 1500, 11-29 refund 10 → none), and a
# gmv for beta 11-30, a brand-day only file C brings: within one call they restate what the call itself stored.
RE_B = exported("exports/全店-d.csv", ("refund_amount",), [("acme", "2026-11-28", 1500), ("acme", "2026-11-29", NaN)])
D = exported("exports/全店-e.csv", ("gmv",), [("beta", "2026-11-30", 75)])

SEQUENCES = [
    # the round trip's three files at once: the same table as test_restating_round_trip stores one by one
    pytest.param(
        [A, B, C],
        [
            ("acme", "2026-11-27", 1000.0, None, None, None),
            ("acme", "2026-11-28", 2000.0, 1388.5, 300.0, 900.0),
            ("acme", "2026-11-29", 3000.0, 10.0, None, None),
            ("beta", "2026-11-28", 500.0, 20.0, None, None),
            ("beta", "2026-11-30", None, None, 50.0, 0.0),
        ],
        id="three-files-restating-and-filling",
    ),
    # the order decides: A after B puts A's refunds back (acme 11-28 1388.5 → 1204 is a revision against B's value;
    # acme 11-27 gets its refund again, filled in; beta 11-28 loses B's refund, a revision); A has no 11-29
    pytest.param(
        [B, A],
        [
            ("acme", "2026-11-27", 1000.0, 100.0, None, None),
            ("acme", "2026-11-28", 2000.0, 1204.0, None, None),
            ("acme", "2026-11-29", 3000.0, 10.0, None, None),
            ("beta", "2026-11-28", 500.0, None, None, None),
        ],
        id="the-later-file-wins",
    ),
    # acme 11-28's refund restated twice in one call (1204 → 1388.5 → 1500: two revisions, the second against B's
    # value), and 11-29's refund, which B added in this call, removed by RE_B
    pytest.param(
        [A, B, RE_B],
        [
            ("acme", "2026-11-27", 1000.0, None, None, None),
            ("acme", "2026-11-28", 2000.0, 1500.0, None, None),
            ("acme", "2026-11-29", 3000.0, None, None, None),
            ("beta", "2026-11-28", 500.0, 20.0, None, None),
        ],
        id="a-value-restated-twice-in-one-call",
    ),
    # beta 11-30 is new for C; D fills its gmv in: not a second new brand-day, nothing restated
    pytest.param(
        [C, D],
        [("acme", "2026-11-28", None, None, 300.0, 900.0), ("beta", "2026-11-30", 75.0, None, 50.0, 0.0)],
        id="filled-into-a-day-the-call-added",
    ),
]


def import_log(source: MetricsSource) -> list[dict]:
    """The target's import log, line by line (an SQL row as text, without its id)."""
    if source.url is None:
        log = file_records(source.path).imports  # type: ignore[arg-type]
        return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()] if log.exists() else []
    engine = sa.create_engine(source.url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT * FROM metric_imports ORDER BY id")).mappings().all()
        return [{k: str(v) for k, v in row.items() if k != "id"} for row in rows]
    finally:
        engine.dispose()


def outcome(source: MetricsSource) -> dict[str, list]:
    """What a run leaves: the table as the cycle reads it, every revision, the import log."""
    return {
        "rows": stored(source),
        "revisions": revisions_of(source, "acme") + revisions_of(source, "beta"),
        "log": import_log(source),
    }


def emptied(request: pytest.FixtureRequest, source: MetricsSource, root: Path) -> None:
    """The target as the fixture made it: no files, or only the table the test started with."""
    if source.url is None:
        shutil.rmtree(root)
        root.mkdir()
        return
    engine = sa.create_engine(source.url)
    meta = sa.MetaData()
    meta.reflect(engine)
    meta.drop_all(engine)
    engine.dispose()
    if request.node.callspec.params["target"] == "sqlite-pandas":
        _pandas_table(source.url)


@pytest.mark.parametrize("target", TARGETS, indirect=True)
@pytest.mark.parametrize(("files", "rows"), SEQUENCES)
def test_many_files_in_one_call_store_what_one_by_one_stores(
    request: pytest.FixtureRequest, target: tuple[MetricsSource, Path], files: list[ImportedFile], rows: list[tuple]
) -> None:
    source, root = target
    one_by_one = [restate(source, f, AT_B) for f in files]
    expected = outcome(source)
    assert expected["rows"] == rows
    emptied(request, source, root)

    many = restate_many(source, files, AT_B)

    assert many == one_by_one  # every count of every file: each against what the files before it left
    assert (
        outcome(source) == expected
    )  # the same table, the same revisions (old values from earlier files of the call), the same log


def test_revisions_within_one_call_are_against_the_file_before(tmp_path: Path) -> None:
    source = MetricsSource(path=tmp_path / "metrics")
    results = restate_many(source, [A, B, RE_B], AT_B)
    assert [(r.new_rows, r.replaced_cells, r.unchanged_cells, r.revisions) for r in results] == [
        (3, 0, 0, 0),  # all new
        (1, 3, 3, 2),  # as in the round trip
        (0, 2, 0, 2),  # both of its cells are values B brought in this call
    ]
    digest_b, digest_d = B.digest, RE_B.digest
    assert [
        (r["file"], r["digest"], r["date"], r["old_value"], r["new_value"]) for r in revisions_of(source, "acme")
    ] == [
        ("exports/全店-b.csv", digest_b, "2026-11-27", 100.0, None),
        ("exports/全店-b.csv", digest_b, "2026-11-28", 1204.0, 1388.5),
        ("exports/全店-d.csv", digest_d, "2026-11-28", 1388.5, 1500.0),  # against B's value, not the target's 1204
        ("exports/全店-d.csv", digest_d, "2026-11-29", 10.0, None),  # a value B added in this call, removed
    ]


TWICE = exported(
    "exports/twice.csv", ("gmv",), [("acme", "2026-11-28", 1), ("acme", "2026-11-28", 2), ("beta", "2026-11-29", 3)]
)
NOT_A_SLUG = exported("exports/not-a-slug.csv", ("gmv",), [("acme", "2026-11-28", 1), ("Beta Shop", "2026-11-29", 3)])
NOT_BASE = exported("exports/not-base.csv", ("gmv_total",), [("acme", "2026-11-28", 1)])


@pytest.mark.parametrize("target", TARGETS, indirect=True)
@pytest.mark.parametrize(
    ("bad", "error"),
    [
        pytest.param(
            TWICE,
            "exports/twice.csv: more than one row for acme on 2026-11-28: nothing written",
            id="a-brand-day-twice-in-the-file",
        ),
        pytest.param(
            NOT_A_SLUG,
            "exports/not-a-slug.csv: 1 row(s) without a brand id (slug) or a date: nothing written",
            id="a-brand-id-that-is-not-a-slug",
        ),
        pytest.param(
            NOT_BASE,
            "exports/not-base.csv: columns gmv_total: each must be a base column of the metrics, once",
            id="not-a-base-column",
        ),
    ],
)
def test_a_bad_file_among_good_ones_changes_nothing_and_the_others_are_stored(
    request: pytest.FixtureRequest, target: tuple[MetricsSource, Path], bad: ImportedFile, error: str
) -> None:
    source, root = target
    good = [restate(source, f, AT_B) for f in (A, B)]
    expected = outcome(source)
    emptied(request, source, root)

    # the bad file's rows touch brand-days A and B store (acme 11-28) and one they lack (beta 11-29)
    results = restate_many(source, [A, bad, B], AT_B)

    assert results[1].error == error
    assert results[1].lines() == [error]
    assert (results[1].new_rows, results[1].replaced_cells, results[1].revisions, results[1].already_imported) == (
        0,
        0,
        0,
        False,
    )
    assert [results[0], results[2]] == good
    assert outcome(source) == expected  # not a cell, revision or log line of the bad file
    with pytest.raises(RestateError, match=f"^{re.escape(error)}$"):  # restate raises what restate_many reports
        restate(source, bad, AT_C)


def test_a_file_touching_a_brand_day_the_folder_holds_twice_is_refused_alone(tmp_path: Path) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    for name in ("a.csv", "b.csv"):
        (folder / name).write_text("brand_id,date,gmv\nacme,2026-11-28,2000\n", encoding="utf-8")

    results = restate_many(MetricsSource(path=folder), [B, D], AT_B)

    # B touches acme 11-28, which two files hold; D only beta 11-30: stored
    assert results[0].error == (
        f"{folder} already holds acme on 2026-11-28 ({folder}/a.csv row 2, {folder}/b.csv row 2) more than once: nothing written "
        "(the metrics reader quarantines every copy; keep one and import again)"
    )
    assert results[0].lines() == [
        f"exports/全店-b.csv: {results[0].error}"
    ]  # the reason names the target; the line names the file too
    assert (results[1].error, results[1].new_rows) == (None, 1)
    assert pd.read_parquet(folder / "imported" / "beta.parquet").to_dict("list") == {
        "brand_id": ["beta"],
        "date": [pd.Timestamp("2026-11-30")],
        "gmv": [75.0],
    }
    assert not (folder / "imported" / "acme.parquet").exists()  # B's new acme 11-29 is not stored either
    assert [line["file"] for line in import_log(MetricsSource(path=folder))] == ["exports/全店-e.csv"]


@pytest.mark.parametrize("target", TARGETS, indirect=True)
@pytest.mark.parametrize(
    "again",
    [
        pytest.param(B, id="the-same-file-again"),
        # the digest is of the bytes: a copy under another name is the same contents
        pytest.param(
            ImportedFile(Path("exports/copy-of-b.csv"), B.profile, B.rows, B.columns, B.skipped_accounts, B.digest),
            id="a-copy-under-another-name",
        ),
    ],
)
def test_the_same_file_twice_in_one_call_is_imported_once(
    target: tuple[MetricsSource, Path], again: ImportedFile
) -> None:
    source, _ = target
    # B, then A, then B again: the second B changes nothing, so A's refunds stay (one by one gives the same)
    results = restate_many(source, [B, A, again], AT_B)

    assert results[2].already_imported
    assert results[2].lines() == [
        f"{again.path}: already imported on 2026-12-02 09:00 UTC (same contents): nothing changed"
    ]
    assert (results[2].new_rows, results[2].replaced_cells, results[2].revisions) == (0, 0, 0)
    assert stored(source) == [
        ("acme", "2026-11-27", 1000.0, 100.0, None, None),
        ("acme", "2026-11-28", 2000.0, 1204.0, None, None),
        ("acme", "2026-11-29", 3000.0, 10.0, None, None),
        ("beta", "2026-11-28", 500.0, None, None, None),
    ]
    assert [line["file"] for line in import_log(source)] == [
        "exports/全店-b.csv",
        "exports/全店-a.csv",
    ]  # one line for B


def test_a_folder_rewrites_only_the_files_whose_rows_change(tmp_path: Path) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "acme.csv").write_text(
        "brand_id,date,gmv\nacme,2026-11-27,1000\nacme,2026-11-28,2000\n", encoding="utf-8"
    )
    (folder / "beta.csv").write_text("brand_id,date,gmv\nbeta,2026-11-28,500\n", encoding="utf-8")
    pd.DataFrame({"brand_id": ["gamma"], "date": pd.to_datetime(["2026-11-28"]), "gmv": [7.0]}).to_parquet(
        folder / "gamma.parquet", index=False
    )
    source = MetricsSource(path=folder)

    def rewritten(files: list[ImportedFile]) -> set[str]:
        """The metrics files a call replaced (a replaced file has a new inode)."""
        before = {p.name: p.stat().st_ino for p in folder.glob("*.*")}
        restate_many(source, files, AT_B)
        return {
            p.name
            for p in folder.glob("*.*")
            if p.suffix in (".csv", ".parquet") and p.stat().st_ino != before.get(p.name)
        }

    # A adds refunds to acme's two days; for beta 11-28 it brings the gmv beta.csv holds and no refund: beta.csv
    # does not change and is not rewritten. gamma.parquet is read for its keys only.
    assert rewritten([A]) == {"acme.csv"}
    assert rewritten([exported("exports/beta-restated.csv", ("gmv",), [("beta", "2026-11-28", 550)])]) == {"beta.csv"}
    assert not (folder / IMPORTED_FOLDER).exists()  # every brand-day was held: no imported/ file


@pytest.mark.parametrize(
    ("as_of", "days_in_stage", "window_days", "window"),
    [
        pytest.param(
            date(2026, 1, 10), 30, 7, (date(2026, 1, 4), date(2026, 1, 10)), id="the-stage-window-ending-on-as-of"
        ),
        pytest.param(
            date(2026, 1, 10), 3, 7, (date(2026, 1, 8), date(2026, 1, 10)), id="never-before-the-stage-was-entered"
        ),
        pytest.param(date(2026, 1, 10), 1, 7, (date(2026, 1, 10), date(2026, 1, 10)), id="first-day-in-stage"),
    ],
)
def test_decision_window(as_of: date, days_in_stage: int, window_days: int, window: tuple[date, date]) -> None:
    assert decision_window(as_of, days_in_stage, window_days) == window


@pytest.fixture
def decided(tmp_path: Path) -> Path:
    """Brand a decided on 2026-01-01 … 01-03 (windows of 3 days) at 2026-01-04 06:00 UTC from data/metrics.csv; then refunds restated."""
    configs = write_configs(tmp_path, {"a": {}}, playbook=simple_playbook())
    source = MetricsSource(path=tmp_path / "data" / "metrics.csv")
    days = [f"2026-01-0{d}" for d in range(1, 5)]
    restate(
        source,
        exported("exports/全店-1月-a.csv", ("gmv", "refund_amount"), [("a", d, 500, 1204) for d in days]),
        datetime(2026, 1, 4, 1, 0, tzinfo=UTC),
    )
    ledger = Ledger("sqlite:///data/ledger.sqlite", tmp_path)
    ledger.create()
    batch = load_metrics(source, as_of=date(2026, 1, 3), today=date(2026, 2, 1))
    for day in range(1, 4):
        run_day(load_portfolio(configs, apply_env=False), batch, ledger, date(2026, 1, day), None)
    with (
        ledger.engine.begin() as conn
    ):  # a fixed decision time, so the revisions are before or after it by the test's clock
        conn.execute(decisions.update().values(decided_at=datetime(2026, 1, 4, 6, 0, tzinfo=UTC)))
    ledger.dispose()
    # before the decisions: not a revision "after this decision"
    restate(
        source,
        exported("exports/全店-1月-早.csv", ("refund_amount",), [("a", "2026-01-03", 1300)]),
        datetime(2026, 1, 4, 5, 0, tzinfo=UTC),
    )
    # after: 01-02 restated (in the window of the 01-02 and 01-03 decisions) and 01-04 (in no decided window)
    late = exported(
        "exports/全店-1月-b.csv",
        ("refund_amount",),
        [("a", "2026-01-02", 1388.5), ("a", "2026-01-03", 1300), ("a", "2026-01-04", 99)],
    )
    restate(source, late, datetime(2026, 1, 5, 10, 15, tzinfo=UTC))
    return configs


def test_explain_marks_a_decision_whose_inputs_were_revised_after_it(
    decided: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = decided.parent / "data" / "metrics.csv.revisions.jsonl"
    assert main(["explain", "a", "--configs", str(decided), "--as-of", "2026-01-03"]) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if "note:" in line]
    assert notes == [
        "  note: inputs revised after this decision: refund_amount on 2026-01-02 (¥1,204.00 → ¥1,388.50, file exports/全店-1月-b.csv, 2026-01-05 10:15 UTC); "
        f"a rerun of this day would not change it (decisions are kept), see the revision record in {record}"
    ]
    assert main(["explain", "a", "--configs", str(decided), "--as-of", "2026-01-03", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["revised_inputs"] == [
        {"file": "exports/全店-1月-b.csv", "digest": hashlib.sha256("exports/全店-1月-b.csv".encode()).hexdigest(),
         "recorded_at": "2026-01-05T10:15:00+00:00", "brand_id": "a", "date": "2026-01-02", "column_name": "refund_amount",
         "old_value": 1204.0, "new_value": 1388.5}
    ]  # fmt: skip


def test_explain_without_revised_inputs_has_no_note(decided: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 01-01's window is that day alone: nothing of it was restated
    assert main(["explain", "a", "--configs", str(decided), "--as-of", "2026-01-01"]) == 0
    assert "note:" not in capsys.readouterr().out
    assert main(["explain", "a", "--configs", str(decided), "--as-of", "2026-01-01", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["revised_inputs"] == []


def _revision(column: str, day: str, old: float, new: float) -> dict:
    return {"file": "exports/x.csv", "digest": "d", "recorded_at": pd.Timestamp("2026-12-03 10:15", tz="UTC"), "brand_id": "a",
            "date": pd.Timestamp(day), "column_name": column, "old_value": old, "new_value": new}  # fmt: skip


@pytest.mark.parametrize(
    ("revisions", "items"),
    [
        # money in ¥ with separators; counts plain; a value the newer export no longer has is "not measured"
        pytest.param(
            [_revision("orders", "2026-11-28", 12, 14)],
            "orders on 2026-11-28 (12 → 14, file exports/x.csv, 2026-12-03 10:15 UTC)",
            id="a-count",
        ),
        pytest.param(
            [_revision("commission", "2026-11-28", 1204, NaN)],
            "commission on 2026-11-28 (¥1,204.00 → not measured, file exports/x.csv, 2026-12-03 10:15 UTC)",
            id="a-value-removed",
        ),
        # five named, the rest counted: a restated month must not make one line of thirty
        pytest.param(
            [_revision("gmv", f"2026-11-2{d}", 1, 2) for d in range(6)],
            "; ".join(
                f"gmv on 2026-11-2{d} (¥1.00 → ¥2.00, file exports/x.csv, 2026-12-03 10:15 UTC)" for d in range(5)
            )
            + "; and 1 more",
            id="six-revisions",
        ),
    ],
)
def test_revised_note(revisions: list[dict], items: str) -> None:
    from brandsteps.reports.explain import revised_note

    assert revised_note(pd.DataFrame(revisions), "table metric_revisions") == (
        f"note: inputs revised after this decision: {items}; a rerun of this day would not change it (decisions are kept), "
        "see the revision record in table metric_revisions"
    )
