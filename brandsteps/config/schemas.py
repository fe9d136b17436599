"""JSON Schemas of the config files, for editor completion and checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from brandsteps.config.models import Brand, Onboarding, Playbook


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schemas of the config kinds (and configs/imports/*.yaml), for editor completion and checks."""
    from brandsteps.approvals.approvers import ApproversConfig  # built on this package, like the imports package
    from brandsteps.sources.imports.profiles import ImportProfile  # the imports package builds on this package

    return {
        "approvers.schema.json": ApproversConfig.model_json_schema(),
        "steps.schema.json": Playbook.model_json_schema(),
        "brand.schema.json": Brand.model_json_schema(),
        "onboarding.schema.json": Onboarding.model_json_schema(),
        "import-profile.schema.json": ImportProfile.model_json_schema(),
    }


def write_json_schemas(out_dir: Path) -> list[Path]:
    """Write each schema as out_dir/<kind>.schema.json; the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in json_schemas().items():
        path = out_dir / name
        path.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written
