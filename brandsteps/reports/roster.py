"""Every brand's listing (name, tier, owner, stage, start, paused) for `status`, without loading the whole portfolio."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from brandsteps.config import (
    Brand,
    ConfigError,
    Onboarding,
    cache_enabled,
    cache_file,
    display_path,
    load_brand_files,
    load_settings,
    write_cache_file,
)

ROSTER_FORMAT = 1  # bump whenever the listing's fields or this layout change
FIELDS = ("name", "tier", "owner", "stage", "start_date", "paused")
_Stamp = tuple[int, int, int, int]  # size, modification time (ns), change time (ns), inode


class BrandListing(NamedTuple):  # a tuple: 100,000 of them are built per status
    brand_id: str
    name: str
    tier: str
    owner: str | None
    stage: str
    start_date: str  # ISO date
    paused: bool


@dataclass(frozen=True)
class Roster:
    """The configs folder's deployment settings and its brands' listings, sorted by brand_id."""

    root: Path
    onboarding: Onboarding
    brands: list[BrandListing]
    files_read: int  # brand files read and validated by this load (the rest came from the roster file)


def roster_file(configs_root: Path) -> Path:
    return cache_file(configs_root).with_name("roster.json")


def _stamps(brands_dir: Path) -> dict[str, _Stamp]:
    """Each brand file's stamp. The change time moves on any write and cannot be set back (unlike the
    modification time), and the inode changes when an editor saves by replacing the file."""
    stamps = {}
    with os.scandir(brands_dir) as entries:
        for entry in entries:
            if entry.name.endswith((".yaml", ".yml")) and not entry.name.startswith("."):
                st = entry.stat()
                stamps[entry.name] = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    return stamps


def _rules_key(root: Path) -> str:
    """What a brand file's validity depends on besides its own text: the playbook and the Brand model."""
    digest = hashlib.sha256(f"{ROSTER_FORMAT}\n".encode())
    digest.update(json.dumps(Brand.model_json_schema(), sort_keys=True).encode())
    try:
        digest.update((root / "steps.yaml").read_bytes())
    except OSError:
        digest.update(b"\0missing")
    return digest.hexdigest()[:24]


_STAMP_COLUMNS = ("size", "mtime_ns", "ctime_ns", "ino")
_LISTING_COLUMNS = BrandListing._fields


def _read_roster(path: Path, rules: str) -> tuple[dict[str, _Stamp], dict[str, BrandListing]]:
    """The stamps and listings of files valid at the last load (by file name); empty when unusable.

    The file holds one list per column: no key repeated per brand, so 100,000 brands decode in a
    fraction of the time of one object each.
    """
    try:
        doc = json.loads(path.read_bytes())
        if not isinstance(doc, dict) or doc.get("rules") != rules:
            return {}, {}
        files = doc["file"]
        columns = [doc[c] for c in (*_STAMP_COLUMNS, *_LISTING_COLUMNS)]
        if not all(isinstance(c, list) and len(c) == len(files) for c in columns):
            return {}, {}
    except (OSError, ValueError, KeyError, TypeError):  # absent, torn or edited: rebuilt, never trusted
        return {}, {}
    stamps = dict(zip(files, zip(*columns[:4], strict=True), strict=True))
    listings = dict(zip(files, map(BrandListing._make, zip(*columns[4:], strict=True)), strict=True))
    return stamps, listings


def _write_roster(path: Path, rules: str, stamps: dict[str, _Stamp], listings: dict[str, BrandListing]) -> None:
    files = sorted(stamps)
    columns = list(zip(*(stamps[f] + listings[f] for f in files), strict=True)) or [()] * (
        len(_STAMP_COLUMNS) + len(_LISTING_COLUMNS)
    )
    write_cache_file(
        path,
        {
            "rules": rules,
            "file": files,
            **{c: list(v) for c, v in zip((*_STAMP_COLUMNS, *_LISTING_COLUMNS), columns, strict=True)},
        },
    )


def load_roster(configs_dir: Path | str, *, apply_env: bool = True, cache: bool | None = None) -> Roster:
    """Settings and brand listings, validated as a full load validates them; raise ConfigError listing every problem.

    Brand files whose stamp (size, times, inode) matches the roster file of the last load are not
    read again: they were valid then under the same playbook. Every other file (new, edited, or
    invalid last time) is read and validated. Two files of one brand (.yaml and .yml) are both
    read, so the loader reports the brand as defined twice. Off with cache=False or
    BRANDSTEPS_CONFIG_CACHE=off: then every file is read.
    """
    root, playbook, onboarding, problems = load_settings(configs_dir, apply_env)
    brands_dir = root / "brands"
    if not brands_dir.is_dir():
        problems.append(f"{display_path(brands_dir, root)}: missing (one YAML file per brand)")
    if problems or playbook is None:
        raise ConfigError(problems)
    use_roster = cache_enabled() if cache is None else cache
    stamps = _stamps(brands_dir)
    rules = _rules_key(root)
    path = roster_file(root)
    known_stamps, known = _read_roster(path, rules) if use_roster else ({}, {})
    twice = {n for n in stamps if n.endswith(".yml") and f"{n[:-4]}.yaml" in stamps}
    twice |= {f"{n[:-4]}.yaml" for n in twice}
    stale = sorted(n for n, stamp in stamps.items() if known_stamps.get(n) != stamp or n in twice)
    fresh: dict[str, Brand] = {}
    if stale:  # else not even the parse cache is read
        fresh, _, brand_problems = load_brand_files(
            root, stale, playbook, cache_file(root) if use_roster else None, every_file=False
        )
        if brand_problems:
            raise ConfigError(brand_problems)
    for name, b in zip(stale, fresh.values(), strict=True):  # no problem: one brand per file, in file order
        known[name] = BrandListing(b.brand_id, b.name, b.tier, b.owner, b.stage, b.start_date.isoformat(), b.paused)
    names = sorted(stamps)
    if use_roster and (stale or known_stamps.keys() != stamps.keys()):
        _write_roster(path, rules, stamps, known)
    return Roster(root, onboarding, [known[n] for n in names], len(stale))
