"""The inbox: which dropped files are taken, each imported once, filed under done/ or rejected/ with its reason."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest

from brandsteps.sources.imports.inbox import REASON_SUFFIX, import_inbox_file, pending_files
from brandsteps.sources.metrics_source import MetricsSource, read_raw
from tests.imports_helpers import BRANDS, FIXTURES, KUAISHOU_FIXTURES, profiles

STORE_DAILY = KUAISHOU_FIXTURES / "daily_week_utf8bom.csv"  # 全店成交分析, one row a day, no account column


def _drop(inbox: Path, name: str, age_s: float = 60.0, source: Path | None = None) -> Path:
    """A file in the inbox, last modified age_s seconds ago."""
    inbox.mkdir(parents=True, exist_ok=True)
    path = inbox / name
    if source is None:
        path.write_text("x", encoding="utf-8")
    else:
        shutil.copy(source, path)
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_pending_files_are_resting_exports_oldest_first(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    _drop(inbox, "b.csv", age_s=60)
    _drop(inbox, "a.xlsx", age_s=120)  # older: first
    _drop(inbox, "c.csv", age_s=1)  # still being copied in (younger than the 5 s rest)
    _drop(inbox, ".hidden.csv")  # an editor's or a sync tool's
    _drop(inbox, "d.csv.crdownload")  # a browser's partial download
    (inbox / "done").mkdir()
    _drop(inbox / "done", "old.csv")  # handled before
    assert [p.name for p in pending_files(inbox)] == ["a.xlsx", "b.csv"]
    assert pending_files(tmp_path / "no-such-inbox") == []


def test_each_file_is_imported_once_and_filed(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    target = MetricsSource(path=tmp_path / "metrics")
    target.path.mkdir()  # type: ignore[union-attr]
    first = _drop(inbox, "磁力金牛-7月.csv", source=FIXTURES / "cililiujin_accounts_gbk.csv")
    outcome = import_inbox_file(first, inbox, BRANDS, profiles(), target)
    # two brands claim accounts of the file (9999 / ks_nobody is no brand's: skipped), over its two days
    assert (outcome.imported, outcome.moved_to, outcome.brands, outcome.days) == (
        True,
        "done/磁力金牛-7月.csv",
        ("shanye-tea", "yunqi-beauty"),
        ("2025-07-01", "2025-07-02"),
    )
    assert (outcome.columns, outcome.skipped_accounts) == (("ad_spend", "ad_gmv"), 1)
    assert not first.exists() and (inbox / "done" / "磁力金牛-7月.csv").exists()
    stored = read_raw(target)[0]
    assert len(stored) == 4  # shanye-tea and yunqi-beauty × 2 days

    # the same contents dropped again under another name: filed as done, nothing changed, nothing announced
    again = _drop(inbox, "磁力金牛-7月 (1).csv", source=FIXTURES / "cililiujin_accounts_gbk.csv")
    repeat = import_inbox_file(again, inbox, BRANDS, profiles(), target)
    assert (repeat.imported, repeat.moved_to, repeat.brands, repeat.days) == (True, "done/磁力金牛-7月 (1).csv", (), ())
    assert "already imported on" in repeat.lines[-1]
    assert read_raw(target)[0].equals(stored)


def test_a_bad_file_is_rejected_with_its_reason(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    target = MetricsSource(path=tmp_path / "metrics.csv")
    bad = _drop(inbox, "bad.csv", source=FIXTURES / "cililiujin_bad_cell.csv")
    outcome = import_inbox_file(bad, inbox, BRANDS, profiles(), target)
    assert (outcome.imported, outcome.moved_to, outcome.brands) == (False, "rejected/bad.csv", ())
    reason = (inbox / "rejected" / f"bad.csv{REASON_SUFFIX}").read_text(encoding="utf-8")
    assert (
        reason == outcome.lines[0] + "\n" and "row 4" in reason and "总花费" in reason
    )  # the file, row and column of the bad cell
    assert not target.path.exists()  # type: ignore[union-attr]  # nothing written


@pytest.mark.parametrize("existing", [pytest.param(1, id="one-earlier"), pytest.param(2, id="two-earlier")])
def test_a_name_already_filed_is_never_overwritten(tmp_path: Path, existing: int) -> None:
    inbox = tmp_path / "inbox"
    target = MetricsSource(path=tmp_path / "metrics.csv")
    for _ in range(existing):
        _drop(inbox, "bad.csv", source=FIXTURES / "cililiujin_bad_cell.csv")
        import_inbox_file(inbox / "bad.csv", inbox, BRANDS, profiles(), target)
    files = sorted(p.name for p in (inbox / "rejected").iterdir() if not p.name.endswith(REASON_SUFFIX))
    # every rejected copy is kept: the first under its own name, a later one with a time stamp before the suffix
    assert "bad.csv" in files and len(files) == existing
    assert all(re.fullmatch(r"bad\.\d{8}T\d{12}Z\.csv", f) for f in files if f != "bad.csv")


@pytest.mark.parametrize(
    ("folder", "imported", "moved_to"),
    [
        # 全店成交分析 has no account column: its brand is the subfolder's name
        pytest.param("shanye-tea", True, "shanye-tea/done/全店-7月.csv", id="brand-folder"),
        pytest.param("no-such-brand", False, "no-such-brand/rejected/全店-7月.csv", id="unknown-brand-folder"),
    ],
)
def test_a_brand_folder_names_the_brand_of_its_files(
    tmp_path: Path, folder: str, imported: bool, moved_to: str
) -> None:
    inbox = tmp_path / "inbox"
    target = MetricsSource(path=tmp_path / "metrics.csv")
    path = _drop(inbox / folder, "全店-7月.csv", source=STORE_DAILY)
    assert pending_files(inbox) == [path]
    outcome = import_inbox_file(path, inbox, BRANDS, profiles(), target)
    assert (outcome.file, outcome.imported, outcome.moved_to) == (f"{folder}/全店-7月.csv", imported, moved_to)
    if imported:
        assert outcome.brands == ("shanye-tea",) and set(read_raw(target)[0]["brand_id"]) == {"shanye-tea"}
    else:
        assert outcome.lines == (
            f"{path}: the folder no-such-brand/ names no brand (no configs/brands/no-such-brand.yaml)",
        )
