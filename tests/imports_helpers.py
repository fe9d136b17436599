"""Shared helpers of the tests/test_imports_*.py modules: brands, profiles and small exports built in code."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

import pandas as pd
import yaml

from brandsteps.config import Brand
from brandsteps.sources.imports import BUILTIN_PROFILES, ImportedFile, ImportProfile

FIXTURES = Path(__file__).parent / "fixtures" / "imports"
KUAISHOU_FIXTURES = Path(__file__).parent / "fixtures" / "kuaishou"


def brand(brand_id: str, **fields: object) -> Brand:
    return Brand.model_validate(
        {
            "brand_id": brand_id,
            "name": brand_id,
            "tier": "small",
            "category": "food",
            "start_date": date(2025, 1, 1),
            **fields,
        }
    )


# The brands the fixtures are written for (tests/fixtures/imports/make_fixtures.py).
BRANDS: dict[str, Brand] = {
    "shanye-tea": brand("shanye-tea", accounts=["1001", "ks_tea2"], exclusive_items=["5001", "5002"]),
    "yunqi-beauty": brand("yunqi-beauty", accounts=["2002", "ks_yunqi"]),
}


def profiles(**extra: dict) -> dict[str, ImportProfile]:
    """The built-ins plus profiles given as data (what a configs/imports/<name>.yaml would hold)."""
    return {
        **BUILTIN_PROFILES,
        **{name.replace("_", "-"): ImportProfile.model_validate(data) for name, data in extra.items()},
    }


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8") -> Path:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def write_profile(configs: Path, name: str, data: dict | str) -> Path:
    """configs/imports/<name>.yaml from data (or YAML text as written)."""
    folder = configs / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(
        data if isinstance(data, str) else yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    return path


def records(imported: ImportedFile) -> list[dict]:
    """The rows as plain dicts (dates as text, NaN as None) for exact comparison."""
    rows = imported.rows.copy()
    rows["date"] = rows["date"].dt.strftime("%Y-%m-%d")
    return rows.astype(object).where(rows.notna(), None).to_dict("records")


def frame_records(frame: pd.DataFrame) -> list[dict]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")
