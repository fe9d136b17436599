"""Brands and cache readers shared by the config-cache and roster tests."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from brandsteps.config import cache_file

APPAREL = {
    "gates": {
        "affiliate_trial": {"criteria": [{"metric": "refund_rate", "op": "<=", "threshold": 0.6}], "on_fail": "exit"}
    }
}
# Brands that exercise what JSON must carry exactly: dates, date-like text, Chinese text, overrides, approvals.
BRANDS: dict[str, dict[str, Any]] = {
    "plain": {},
    "dated": {"start_date": date(2026, 2, 28)},  # an unquoted YAML date (a text one would be quoted)
    "texty": {"name": "2026-01-05", "owner": "王敏"},  # quoted in the file: text that only looks like a date
    "apparel-a": APPAREL,
    "apparel-b": APPAREL,  # the same overrides: one shared validation and policy version
    "approving": {"requires_approval": ["public_traffic"], "paused": True},
}


def cache_entries(configs: Path) -> dict[str, Any]:
    """The parse cache's entries (file digest -> parsed YAML) for this configs folder."""
    return json.loads(cache_file(configs.resolve()).read_text(encoding="ascii"))["entries"]
