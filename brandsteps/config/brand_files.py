"""The brand files of configs/brands/: read, parsed (or found in the parse cache), checked singly and together."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import ValidationError

from brandsteps.config.errors import ConfigError, format_validation_error
from brandsteps.config.models import Brand, Playbook
from brandsteps.config.parse_cache import exact_in_json, file_digest, read_cache, write_cache
from brandsteps.config.portfolio import effective_stage
from brandsteps.config.yaml_files import display_path, parse_yaml, read_bytes, validated


class Parsed(NamedTuple):
    """One brand file as parsed: its data, or the problems that stopped it (none when it parsed)."""

    data: Any
    problems: list[str]
    exact: bool  # JSON gives the data back exactly, so it may go in the parse cache


def list_brand_files(brands_dir: Path) -> list[str]:
    """File names of brands_dir's brand files, sorted (names of one folder: as Path objects sort)."""
    with os.scandir(brands_dir) as entries:
        names = [e.name for e in entries if e.name.endswith((".yaml", ".yml")) and not e.name.startswith(".")]
    names.sort()
    return names


def parse_files(items: list[tuple[str, bytes]], check_exact: bool) -> list[Parsed]:
    """Parse (display, bytes) pairs in order; check_exact: also tell whether JSON keeps each result exactly."""
    out: list[Parsed] = []
    for display, raw in items:
        try:
            data = parse_yaml(raw, display)
        except ConfigError as exc:
            out.append(Parsed(None, exc.problems, False))
            continue
        out.append(Parsed(data, [], check_exact and exact_in_json(data)))
    return out


def _read_and_parse(
    folder: str, files: list[tuple[str, str]], cached: dict[str, Any] | None, use_cache: bool
) -> tuple[list[Parsed], list[str | None]]:
    """Each (name, display) file parsed, or taken from the cache entries; and its digest when the cache is used.

    Every file is read and hashed on every load: an edited file (even of the same size and time)
    has another digest and is parsed again.
    """
    outcome: list[Parsed | None] = [None] * len(files)  # None: a miss, parsed below
    digests: list[str | None] = [None] * len(files)
    raws: list[tuple[str, bytes]] = []
    for i, (name, display) in enumerate(files):
        try:
            raw = read_bytes(f"{folder}/{name}", display)  # a name from the listing: no separator in it
        except ConfigError as exc:
            outcome[i] = Parsed(None, exc.problems, False)
            continue
        if use_cache:
            digest = digests[i] = file_digest(raw)
            hit = cached.get(digest) if cached is not None else None
            if isinstance(hit, dict):
                outcome[i] = Parsed(hit, [], True)
                continue
        raws.append((display, raw))
    parsed = iter(parse_files(raws, use_cache))  # the misses, in file order
    return [p if p is not None else next(parsed) for p in outcome], digests


class _BrandChecks:
    """Brand files validated in file order, with the checks across files; problems are collected, not raised."""

    def __init__(self, playbook: Playbook | None):
        self.playbook = playbook
        self.brands: dict[str, Brand] = {}
        self.override_keys: dict[str, str] = {}  # brand id -> its overrides as parsed (equal keys: equal policies)
        self.problems: list[str] = []
        self._valid_overrides: set[str] = set()
        # gates as parsed (repr) -> as validated. Brands sharing overrides (thousands of them) share one
        # validation of them: equal parsed values validate to equal models, and pydantic takes a model
        # instance as it is. Every brand is still validated; only successes are shared.
        self._gates_seen: dict[str, Any] = {}
        self._account_files: dict[str, str] = {}  # account id -> the brand file that lists it

    def add(self, name: str, display: str, data: Any) -> bool:
        """Validate one parsed brand file; True when its brand was taken into the portfolio."""
        gates = data.get("gates") if type(data) is dict else None
        gates_key = repr(gates) if gates else ""
        brand = self._validated(data, display, gates_key)
        if brand is None or not self._identity_fits(brand, name, display):
            return False
        if brand.has_overrides() and not self._overrides_fit(brand, display, data, gates_key):
            return False
        self.brands[brand.brand_id] = brand
        self._claim_accounts(brand, display)
        return True

    def _validated(self, data: Any, display: str, gates_key: str) -> Brand | None:
        shared = self._gates_seen.get(gates_key) if gates_key else None
        try:
            brand: Brand = validated(Brand, data if shared is None else {**data, "gates": shared}, display)
        except ConfigError as exc:
            self.problems += exc.problems
            return None
        if gates_key and shared is None:
            self._gates_seen[gates_key] = brand.gates
        return brand

    def _identity_fits(self, brand: Brand, name: str, display: str) -> bool:
        stem = name.rpartition(".")[0]
        if brand.brand_id != stem:
            self.problems.append(f"{display}: brand_id: {brand.brand_id!r} must equal the file name {stem!r}")
            return False
        if brand.brand_id in self.brands:
            self.problems.append(f"{display}: brand_id: {brand.brand_id!r} is defined twice")
            return False
        return True

    def _overrides_fit(self, brand: Brand, display: str, data: dict[str, Any], gates_key: str) -> bool:
        """Record the brand's overrides; False (and the problem) when they make a playbook stage invalid."""
        # The overrides as parsed: equal texts validate to equal overrides, so one check (and one
        # policy digest) serves every brand sharing them; cheaper than dumping each model.
        key = self.override_keys[brand.brand_id] = repr((gates_key, data.get("requires_approval")))
        if self.playbook is None or not brand.gates or key in self._valid_overrides:
            return True
        try:
            for stage_id in brand.gates:
                effective_stage(self.playbook.stage(stage_id), brand)
        except ValidationError as exc:
            self.problems += format_validation_error(f"{display}: gates.{stage_id}", exc)
            self.override_keys.pop(brand.brand_id)
            return False
        self._valid_overrides.add(key)  # only success is shared: an error names its own file
        return True

    def _claim_accounts(self, brand: Brand, display: str) -> None:
        # Rows of a multi-account export go to the brand listing their account: one brand only.
        for account in brand.accounts:
            owner = self._account_files.setdefault(account, display)
            if owner != display:
                self.problems.append(
                    f"{display}: accounts: {account!r} is also listed by {owner} (an account belongs to one brand)"
                )


def _update_cache(path: Path, cached: dict[str, Any] | None, keep: dict[str, Any], every_file: bool) -> None:
    if not every_file:  # some of the files: the cache only gains entries
        if cached is None or not keep.keys() <= cached.keys():
            write_cache(path, {**(cached or {}), **keep})
    elif cached is None or keep.keys() != cached.keys():
        write_cache(path, keep)  # new files parsed, or files gone: pruned to the files present


def load_brand_files(
    root: Path,
    names: list[str],
    playbook: Playbook | None,
    cache_path: Path | None,
    *,
    every_file: bool = True,
) -> tuple[dict[str, Brand], dict[str, str], list[str]]:
    """Brands of these files in brands/ (sorted names), each one's overrides as parsed, and every problem in file order.

    cache_path: the parse cache to use (None: every file is parsed). every_file: names lists every
    brand file, so the parse cache is pruned to them; else (some of the files) the cache only gains
    entries.
    """
    brands_dir = root / "brands"
    prefix = display_path(brands_dir, root)
    files = [(name, f"{prefix}/{name}") for name in names]
    with _cycle_collector_paused():
        cached = read_cache(cache_path) if cache_path is not None else None
        outcome, digests = _read_and_parse(str(brands_dir), files, cached, cache_path is not None)
        checks = _BrandChecks(playbook)
        keep: dict[str, Any] = {}  # the cache's next entries: files that loaded without a problem, nothing else
        for (name, display), (data, problems, exact), digest in zip(files, outcome, digests, strict=True):
            if problems:
                checks.problems += problems
            elif checks.add(name, display, data) and digest is not None and exact:
                keep[digest] = data
        if cache_path is not None:
            _update_cache(cache_path, cached, keep, every_file)
    return checks.brands, checks.override_keys, checks.problems


@contextmanager
def _cycle_collector_paused() -> Iterator[None]:
    """Python's cycle collector off while the brand files load, on again after (if it was on).

    Loading builds a few million dicts, lists and models that all survive: every 70,000 or so of them
    the collector scans the whole heap (pandas, Prefect, the portfolio so far) and finds nothing, since
    parsed YAML and validated models hold no reference cycles (reference counting frees them). In a
    cycle's process that scanning was half of the load of 100,000 brand files.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
