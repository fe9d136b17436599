"""The inbox folder operators drop exports into: which files are new, and where each goes once handled."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from brandsteps.config import Brand
from brandsteps.sources.imports.apply import read_import
from brandsteps.sources.imports.profiles import ImportProfile
from brandsteps.sources.imports.reading import ImportFormatError
from brandsteps.sources.imports.restate import RestateError, restate
from brandsteps.sources.imports.summary import summary_lines
from brandsteps.sources.metrics_source import MetricsSource

__all__ = ["DONE", "REJECTED", "InboxOutcome", "import_inbox_file", "pending_files", "settle"]

DONE, REJECTED = "done", "rejected"
IMPORTABLE = (".csv", ".xlsx", ".xls")
# A file still being copied in (a browser download, an scp) changes size and time: wait until it has rested.
SETTLE_SECONDS = 5.0
REASON_SUFFIX = ".reason.txt"


@dataclass(frozen=True)
class InboxOutcome:
    """One inbox file after its import: where it went and why (`lines` is what the import printed, or the error).

    brands and days: what the import changed in the metrics (empty when it was rejected or already imported).
    """

    file: str
    moved_to: str
    imported: bool
    lines: tuple[str, ...]
    profile: str = ""
    brands: tuple[str, ...] = ()
    days: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    skipped_accounts: int = 0


def _resting_exports(folder: Path, now: float, settle_seconds: float) -> list[tuple[float, Path]]:
    found = []
    for entry in os.scandir(folder):
        if (
            entry.name.startswith(".")
            or not entry.is_file(follow_symlinks=False)
            or not entry.name.lower().endswith(IMPORTABLE)
        ):
            continue
        mtime = entry.stat(follow_symlinks=False).st_mtime
        if now - mtime >= settle_seconds:
            found.append((mtime, folder / entry.name))
    return found


def pending_files(inbox: Path, now: float | None = None, settle_seconds: float = SETTLE_SECONDS) -> list[Path]:
    """Exports waiting in the inbox, oldest first: plain files with an importable suffix, at rest for a few seconds.

    Files in the inbox itself belong to brands by their accounts; files in a subfolder named for a
    brand id (inbox/shanye-tea/) are that brand's, for reports without an account column (全店成交分析).
    Hidden files, partial downloads (any other suffix) and done/ and rejected/ folders are left alone.
    """
    if not inbox.is_dir():
        return []
    now = time.time() if now is None else now
    found = _resting_exports(inbox, now, settle_seconds)
    for entry in os.scandir(inbox):
        if (
            entry.is_dir(follow_symlinks=False)
            and entry.name not in (DONE, REJECTED)
            and not entry.name.startswith(".")
        ):
            found += _resting_exports(inbox / entry.name, now, settle_seconds)
    return [path for _, path in sorted(found)]


def _free_name(folder: Path, name: str) -> Path:
    """name in folder, or name with a time stamp when a file of that name is already there (never overwrite one)."""
    target = folder / name
    if not target.exists():
        return target
    stem, dot, suffix = name.rpartition(".")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return folder / (f"{stem}.{stamp}{dot}{suffix}" if dot else f"{name}.{stamp}")


def settle(path: Path, imported: bool, lines: Iterable[str]) -> Path:
    """Move a handled file to done/ or rejected/ beside it; a rejected file gets its reason in <name>.reason.txt."""
    folder = path.parent / (DONE if imported else REJECTED)
    folder.mkdir(exist_ok=True)
    target = _free_name(folder, path.name)
    if not imported:
        target.with_name(target.name + REASON_SUFFIX).write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(path, target)
    return target


def import_inbox_file(
    path: Path, inbox: Path, brands: Mapping[str, Brand], profiles: Mapping[str, ImportProfile], target: MetricsSource
) -> InboxOutcome:
    """Import one dropped export into the metrics (restating what it carries) and file it under done/ or rejected/.

    A file in a brand's subfolder is that brand's (`--brand`). A file that cannot be read, or whose
    rows cannot be stored, is rejected with its reason (in done/ and rejected/ beside it). A metrics
    target that cannot be written raises (OSError): the file stays in the inbox for the next run.
    The same contents imported before go to done/ and change nothing (the target's import log knows the digest).
    """
    brand = None if path.parent == inbox else path.parent.name
    try:
        if brand is not None and brand not in brands:
            raise ImportFormatError(f"{path}: the folder {brand}/ names no brand (no configs/brands/{brand}.yaml)")
        imported = read_import(path, brands, profiles, brand=brand)
        result = restate(target, imported)
    except (ImportFormatError, RestateError) as exc:
        lines: tuple[str, ...] = (str(exc),)
        moved = settle(path, False, lines)
        return InboxOutcome(str(path.relative_to(inbox)), str(moved.relative_to(inbox)), False, lines)
    lines = (*summary_lines(imported, profiles[imported.profile], brands), *result.lines())
    moved = settle(path, True, lines)
    changed = not result.already_imported
    rows = imported.rows
    return InboxOutcome(
        str(path.relative_to(inbox)),
        str(moved.relative_to(inbox)),
        True,
        lines,
        profile=imported.profile,
        brands=tuple(sorted(rows["brand_id"].astype(str).unique())) if changed else (),
        days=tuple(pd.to_datetime(rows["date"]).dt.strftime("%Y-%m-%d").drop_duplicates().sort_values())
        if changed
        else (),
        columns=imported.columns,
        skipped_accounts=len(imported.skipped_accounts),
    )
