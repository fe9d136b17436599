"""Flow import-exports: import each new export dropped in the inbox folder exactly once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from prefect import flow

from brandsteps.config.settings import targets
from brandsteps.sources.imports.inbox import pending_files
from tasks.configs import load_configs
from tasks.imports import import_file, publish_imports, read_profiles
from tasks.prefect_types import quoted


@dataclass(frozen=True)
class ImportRunSummary:
    """What one pass over the inbox did."""

    inbox: str | None
    imported: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    brands: int = 0
    days: int = 0


@flow(name="import-exports", log_prints=True)
def import_exports(configs: str = "configs", inbox: str | None = None, metrics: str | None = None) -> ImportRunSummary:
    """Import the exports waiting in the inbox into the metrics, each file once (by its contents).

    Args:
        configs: The configs folder (brands' accounts, import profiles in imports/).
        inbox: The folder to read; empty means `inbox` of onboarding.yaml.
        metrics: Metrics target overriding onboarding.yaml.
    """
    portfolio = load_configs(configs)
    folder_text = inbox or portfolio.onboarding.inbox
    if not folder_text:
        print("No inbox: set `inbox:` in configs/onboarding.yaml (a folder operators drop exports into)")
        return ImportRunSummary(None)
    where = targets(portfolio, metrics, None)
    folder = Path(folder_text).expanduser()
    folder = folder if folder.is_absolute() else where.project_root / folder
    files = pending_files(folder)
    if not files:
        print(f"Nothing new in {folder}")
        return ImportRunSummary(str(folder))
    profiles = read_profiles(configs)
    # one task a file: each is imported and filed on its own, so one bad file never holds back the others
    outcomes = [import_file(path, folder, quoted(portfolio), quoted(profiles), where.metrics) for path in files]
    publish_imports(outcomes)
    summary = ImportRunSummary(
        str(folder),
        imported=[o.file for o in outcomes if o.imported],
        rejected=[o.file for o in outcomes if not o.imported],
        brands=len({b for o in outcomes for b in o.brands}),
        days=len({d for o in outcomes for d in o.days}),
    )
    changed = f"{summary.brands} brands, {summary.days} days changed"
    print(f"{len(summary.imported)} imported, {len(summary.rejected)} rejected from {folder}: {changed}")
    return summary
