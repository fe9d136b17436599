"""What one import did to a target, and the error of a file that cannot be stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from brandsteps.wording import counted


class RestateError(ValueError):
    """The file cannot be stored; nothing was written. The message names the file or target and why."""


@dataclass(frozen=True)
class RestateResult:
    """What one import did to a target, in counts, and its line for the terminal."""

    file: Path
    target: str
    record: str  # where the revisions are kept
    brands: int
    days: int
    columns: tuple[str, ...]
    new_rows: int = 0  # brand-days added
    replaced_cells: int = 0  # cells of brand-days already there that took another value (changed, removed or filled in)
    unchanged_cells: int = 0  # cells that already held the file's value (both missing included)
    revisions: int = 0  # replaced values kept in the record (changed or removed; filled-in ones replace nothing)
    already_imported: bool = False
    imported_at: datetime | None = None  # this import's time, or the earlier import's when already_imported
    error: str | None = (
        None  # why the file was not stored (a RestateError's message; counts 0): nothing of it was written
    )

    @property
    def filled_cells(self) -> int:
        return self.replaced_cells - self.revisions

    def lines(self) -> list[str]:
        if self.error is not None:  # named by its file (a target's own reason names the target)
            return [self.error if self.error.startswith(f"{self.file}: ") else f"{self.file}: {self.error}"]
        if self.already_imported:
            when = f"{self.imported_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if self.imported_at else "an earlier run"
            return [f"{self.file}: already imported on {when} (same contents): nothing changed"]
        head = (
            f"{self.file}: {counted(self.brands, 'brand')} × {counted(self.days, 'day')} "
            f"× {counted(len(self.columns), 'column')}"
        )
        kept = f" (kept in {self.record})" if self.revisions else ""
        parts = [counted(self.new_rows, "new brand-day"), f"{counted(self.revisions, 'value')} restated{kept}"]
        if self.filled_cells:
            parts.append(f"{counted(self.filled_cells, 'value')} filled in where none was")
        if self.unchanged_cells:
            parts.append(f"{self.unchanged_cells:,} unchanged")
        return [f"{head}; {', '.join(parts)}"]
