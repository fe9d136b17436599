"""The parse cache of brand files: each file's parsed YAML as JSON, found again by the digest of its bytes."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import yaml

_CACHE_FORMAT = 1  # bump whenever the loaders' results or this layout change: old cache files are then rebuilt
_DATE_TAG = "$date"
_JSON_LEAVES = frozenset({str, int, float, bool, date, type(None)})  # exact in JSON (dates tagged)


def cache_enabled() -> bool:
    """The parse cache is on unless BRANDSTEPS_CONFIG_CACHE=off."""
    return os.environ.get("BRANDSTEPS_CONFIG_CACHE", "").strip().lower() not in {"off", "0", "false", "no"}


def cache_file(configs_root: Path, environ: Mapping[str, str] | None = None) -> Path:
    """Where the parse cache of this (resolved) configs folder lives: one folder per configs path."""
    env = os.environ if environ is None else environ
    base = (
        Path(env["BRANDSTEPS_CACHE_DIR"]).expanduser()
        if env.get("BRANDSTEPS_CACHE_DIR")
        else Path.home() / ".cache" / "brandsteps"
    )
    folder = "configs-" + hashlib.sha256(str(configs_root).encode()).hexdigest()[:16]
    return base / folder / "brand-yaml.json"


def file_digest(raw: bytes) -> str:
    """A file's cache key: the digest of its bytes, so an edit is seen whatever its size and time."""
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


def exact_in_json(value: Any) -> bool:
    """True when JSON (dates tagged) gives back exactly this value.

    Not for a tuple, set, bytes, datetime, non-text key, a mapping that would read back as a tagged
    date, or an object reached twice (a YAML alias: JSON would copy it, and a "billion laughs" file
    would blow up; the walk stops at the second visit, so it costs one step per object).
    """
    seen: set[int] = set()

    def exact(item: Any) -> bool:
        kind = type(item)
        if kind in _JSON_LEAVES:
            return True
        if kind is not dict and kind is not list:
            return False
        if id(item) in seen:
            return False
        seen.add(id(item))
        if kind is list:
            return all(exact(v) for v in item)
        if len(item) == 1 and _DATE_TAG in item:
            return False
        return all(type(k) is str and exact(v) for k, v in item.items())

    return exact(value)


def _tag_date(value: Any) -> Any:
    if type(value) is date:
        return {_DATE_TAG: value.isoformat()}
    raise TypeError(f"{type(value).__name__} is not cached")


def _untag_date(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and _DATE_TAG in obj:
        return date.fromisoformat(obj[_DATE_TAG])
    return obj


def read_cache(path: Path) -> dict[str, Any] | None:
    """The cache's entries (file digest -> parsed mapping).

    None when the file is absent, unreadable, corrupt or of another format.
    """
    try:
        doc = json.loads(path.read_bytes(), object_hook=_untag_date)
    except (OSError, ValueError, TypeError, RecursionError):  # a torn or edited file: rebuilt, never trusted
        return None
    if not isinstance(doc, dict) or doc.get("format") != _CACHE_FORMAT or doc.get("pyyaml") != yaml.__version__:
        return None
    entries = doc.get("entries")
    return entries if isinstance(entries, dict) else None


def write_cache(path: Path, entries: dict[str, Any]) -> None:
    """Replace the cache with these entries (file digest -> parsed mapping)."""
    write_cache_file(path, {"format": _CACHE_FORMAT, "pyyaml": yaml.__version__, "entries": entries})


def write_cache_file(path: Path, doc: dict[str, Any]) -> None:
    """Replace a cache file with doc as JSON atomically (temp file + os.replace).

    A cache that cannot be written is skipped.
    """
    try:
        # ASCII: a lone surrogate from a YAML escape survives
        text = json.dumps(doc, default=_tag_date, separators=(",", ":"))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    except (OSError, TypeError, ValueError):
        return  # a read-only or full disk: the next load parses again
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("ascii"))
        os.replace(tmp, path)  # readers see the old file or the new one, never half of one
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
