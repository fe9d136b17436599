"""Write a runnable demo folder: configs, the reports' exports, and the metrics imported from them."""

from __future__ import annotations

import csv
import datetime as dt
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from brandsteps.sources.demo.accounts import export_ids
from brandsteps.sources.demo.archetypes import ARCHETYPES, DEMO_DAYS
from brandsteps.sources.demo.exports import ReportImport, import_exports, remove_old_exports, write_exports
from brandsteps.sources.demo.files import ExportFile
from brandsteps.sources.demo.metrics import corrupt_rows, generate_daily_metrics
from brandsteps.sources.demo.portfolio import plan_demo_portfolio
from brandsteps.sources.demo.profiles import USER_PROFILES
from brandsteps.sources.demo.store_exports import DEMO_TIMEZONE

_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class DemoSummary:
    """What write_demo_folder wrote."""

    folder: Path
    configs_dir: Path
    playbook_path: Path
    onboarding_path: Path
    metrics_path: Path  # the metrics file the exports were imported into (configs/onboarding.yaml's metrics)
    archetypes_path: Path
    brand_files: tuple[Path, ...]
    start: dt.date
    end: dt.date
    n_brands: int
    n_rows: int
    n_corrupt_rows: int
    archetypes: dict[str, str]  # brand_id → archetype
    exports_dir: Path
    exports: tuple[ExportFile, ...]  # in the order they were imported
    imports: tuple[ReportImport, ...]  # one per report


def playbook_source() -> Path:
    """The playbook to copy: the repository's configs/steps.yaml, else a packaged brandsteps/data/steps.yaml."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[3] / "configs" / "steps.yaml", here.parents[2] / "data" / "steps.yaml"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("no playbook found: neither configs/steps.yaml nor brandsteps/data/steps.yaml exists")


# One Parquet file: the demo imports a hundred-odd export files, and restating into a folder reads every file of
# the folder for each import.
DEMO_METRICS = "data/metrics.parquet"
ONBOARDING_YAML = f"""\
# The demo deployment. Relative paths resolve against the folder that holds configs/.
metrics: {DEMO_METRICS}
ledger: sqlite:///data/ledger.sqlite
timezone: {DEMO_TIMEZONE}
schedule: "0 9 * * *"
data_deadline: "12:00"
"""
_DEMO_ID = re.compile(r"^d\d{3,}-[a-z0-9-]+$")


def earliest_day_in(stage_id: str, playbook: dict[str, Any]) -> int:
    """The first day after its start_date on which a brand can be decided in stage_id: every stage before it takes
    min_days_in_stage days before its first pass and consecutive_passes - 1 days more (85 days for
    channel_exclusive in configs/steps.yaml)."""
    days = 0
    for stage in playbook["stages"]:
        if stage["id"] == stage_id:
            return days
        days += int(stage["min_days_in_stage"]) + int(stage["consecutive_passes"]) - 1
    raise KeyError(f"no stage {stage_id!r} in the playbook")


def _reset_metrics(folder: Path) -> None:
    """An earlier demo's metrics go: they are rebuilt from the exports, and its import log would take the same
    files for already imported."""
    from brandsteps.sources.imports.records import file_records

    metrics = folder / DEMO_METRICS
    records = file_records(metrics)
    for old in (
        metrics,
        records.revisions,
        records.imports,
        folder / "data" / "metrics" / "daily_metrics.parquet",
    ):  # the last: demos before the exports
        old.unlink(missing_ok=True)


def write_demo_folder(
    folder: Path, n_brands: int = 50, days: int = DEMO_DAYS, end: dt.date | None = None, seed: int = 7
) -> DemoSummary:
    """Write a runnable demo: configs (playbook, deployment, one YAML per brand, import profiles), the exports of the
    Kuaishou reports the generated metrics make (exports/), and the metrics they import into (data/metrics.parquet).

    The metrics reach data/metrics.parquet the way an operator's do: as export files imported with read_import and
    restate, the code of `brandsteps import` (demo.exports). The period is the `days` days ending on `end`
    (default today). Brand files (d###-*.yaml) and per-brand exports of an earlier demo are replaced, and its
    metrics rebuilt; other files are left alone.
    """
    folder = Path(folder)
    end = end if end is not None else dt.date.today()
    start = end - (days - 1) * _DAY
    brands = plan_demo_portfolio(n_brands, start, seed, days)
    metrics = corrupt_rows(generate_daily_metrics(brands, start, days, seed), brands, seed)

    configs_dir = folder / "configs"
    brands_dir = configs_dir / "brands"
    data_dir = folder / "data"
    exports_dir = folder / "exports"
    brands_dir.mkdir(parents=True, exist_ok=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    for old in brands_dir.glob("*.yaml"):
        if _DEMO_ID.match(old.stem):
            old.unlink()
    _reset_metrics(folder)
    remove_old_exports(exports_dir)

    playbook_path = configs_dir / "steps.yaml"
    shutil.copyfile(playbook_source(), playbook_path)
    onboarding_path = configs_dir / "onboarding.yaml"
    onboarding_path.write_text(ONBOARDING_YAML, encoding="utf-8")
    (configs_dir / "imports").mkdir(exist_ok=True)
    for name, text in USER_PROFILES.items():
        (configs_dir / "imports" / f"{name}.yaml").write_text(text, encoding="utf-8")

    # What the reports need to know of each brand: unmeasured_ads brands have no ad account, and per-item exports
    # (with the exclusive SKUs listed in the brand's YAML) are for brands old enough to reach channel_exclusive.
    reach = earliest_day_in("channel_exclusive", yaml.safe_load(playbook_path.read_text(encoding="utf-8")))
    table = pd.DataFrame(
        {
            **{key: [b.config[key] for b in brands] for key in ("brand_id", "name", "category", "start_date")},
            "ads": ["ad_spend" not in ARCHETYPES[b.archetype].unmeasured for b in brands],
            "items": [(end - b.start_date).days >= reach for b in brands],
            # refunds that arrive over weeks: the stores the operator re-exports every week
            "slow_refunds": [b.config["category"] == "apparel" or ARCHETYPES[b.archetype].late_refunds for b in brands],
        }
    )
    ids = export_ids(table, metrics)
    brand_files = []
    for brand in brands:
        path = brands_dir / f"{brand.brand_id}.yaml"
        text = yaml.safe_dump(
            {**brand.config, **ids[brand.brand_id]}, allow_unicode=True, sort_keys=False, default_flow_style=False
        )
        path.write_text(
            f"# Demo brand, archetype {brand.archetype}: {ARCHETYPES[brand.archetype].description}\n" + text,
            encoding="utf-8",
        )
        brand_files.append(path)

    archetypes_path = data_dir / "archetypes.csv"
    with archetypes_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["brand_id", "archetype"])
        writer.writerows((b.brand_id, b.archetype) for b in brands)

    exports = write_exports(exports_dir, table, metrics, end, seed)
    # into the demo's own metrics, whatever BRANDSTEPS_METRICS says (as `brandsteps import --metrics` would)
    imports = import_exports(configs_dir, exports, folder / DEMO_METRICS)

    n_corrupt = int((metrics["orders"] < 0).sum() + (metrics["store_rating"] > 5).sum())
    return DemoSummary(
        folder=folder,
        configs_dir=configs_dir,
        playbook_path=playbook_path,
        onboarding_path=onboarding_path,
        metrics_path=folder / DEMO_METRICS,
        archetypes_path=archetypes_path,
        brand_files=tuple(brand_files),
        start=start,
        end=end,
        n_brands=len(brands),
        n_rows=len(metrics),
        n_corrupt_rows=n_corrupt,
        archetypes={b.brand_id: b.archetype for b in brands},
        exports_dir=exports_dir,
        exports=tuple(exports),
        imports=tuple(imports),
    )
