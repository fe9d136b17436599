"""Store imported exports in the metrics: a brand and day imported again replaces the columns the file carries.

Operators re-export the trailing 30–45 days every day (refunds by payment date, affiliate orders
and ad GMV are restated for weeks), so a day the metrics already have is the normal case:

- a brand-day the target has: the file's columns take the file's values, its other columns stay
  (a 磁力金牛 file replaces ad_spend and ad_gmv and leaves gmv alone);
- a brand-day the target lacks: added, its other columns missing (not measured, never 0);
- a value replaced by a different one, or removed (the newer export has none), is kept in the
  revision record with the file, its digest and the time (records.py says where). A value
  appearing where none was is not a revision (nothing is lost), nor is the same value again;
- a file whose digest the target's import log already holds changes nothing ("already imported on …");
- a failing import writes nothing: a file target's files are replaced together (the ones already
  replaced are put back if a later one fails), an SQL target is one transaction.

Many files at once (`restate_many`, what `brandsteps import a.csv b.csv …` does) read the target
once, apply the files in order in memory and write the target once. The outcome is exactly that
of restating each file after the one before it: a later file wins for a brand-day and column, each
file's revisions and counts are against what the files before it left, and a file whose contents
an earlier file of the call already brought is "already imported". A file whose rows cannot be
stored is reported in its own result (`RestateResult.error`) and changes nothing; the others are stored.

Where rows go: a CSV or Parquet file target is rewritten with its rows updated and the new
brand-days appended. In a folder, a brand-day some file already holds is updated in that file and
a new one goes to `imported/<brand_id>.parquet`, so no brand-day is ever in two files (the reader
would quarantine both); only the files whose rows change are rewritten. An SQL table gets UPDATEs
and INSERTs, and is created if missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from brandsteps.sources.imports.model import ImportedFile
from brandsteps.sources.imports.records import revised_after
from brandsteps.sources.imports.restate.file_target import IMPORTED_FOLDER, restate_files
from brandsteps.sources.imports.restate.result import RestateError, RestateResult
from brandsteps.sources.imports.restate.screening import screen
from brandsteps.sources.imports.restate.sql_target import restate_sql
from brandsteps.sources.metrics_source import MetricsSource

__all__ = ["IMPORTED_FOLDER", "RestateError", "RestateResult", "restate", "restate_many", "revised_after"]


def restate(target: MetricsSource, imported: ImportedFile, at: datetime | None = None) -> RestateResult:
    """Store the file's rows in the target, replacing the columns it carries for brand-days already there.

    at: the time recorded for this import and its revisions (default now; a naive time is UTC).
    Raises RestateError, with nothing written, when the rows or the target do not allow it.
    """
    result = restate_many(target, [imported], at)[0]
    if result.error is not None:
        raise RestateError(result.error)
    return result


def restate_many(
    target: MetricsSource, files: Sequence[ImportedFile], at: datetime | None = None
) -> list[RestateResult]:
    """Store the files in the target in the order given, reading the target once and writing it once.

    The outcome is that of restating each file after the one before it: a later file's value wins
    for a brand-day and column; each file's counts and revisions are against what the target held
    after the files before it; a file whose digest the target's import log holds, or an earlier
    file of this call that was stored, is `already_imported` and changes nothing.

    Returns one result per file, in the order given. A file whose rows cannot be stored (a column
    that is not a base column, a row without a brand id or date, a brand-day twice in the file, a
    brand-day the target holds more than once) gets a result with `error` set to the reason and
    counts 0, and changes nothing; the other files are stored. (`restate` raises that reason as a
    RestateError.) at: the time recorded for these imports and their revisions (default now; a
    naive time is UTC).

    Raises, with nothing written: RestateError when the target itself cannot take any of them (a
    metrics file that cannot be read, a file target that is not .csv or .parquet, a database
    error); OSError when writing a file target fails (what was already replaced is put back).
    """
    when = datetime.now(UTC) if at is None else at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    screened = screen(files)
    if target.url is not None:
        return restate_sql(target, files, screened, when)
    assert target.path is not None
    return restate_files(target, files, screened, when)
