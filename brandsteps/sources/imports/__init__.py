"""Kuaishou exports by profile (docs/domain.md#kuaishou-exports): a file recognised, read into brand-day rows."""

from __future__ import annotations

from brandsteps.sources.imports.apply import choose_profile, read_import
from brandsteps.sources.imports.builtin import BUILTIN_PROFILES
from brandsteps.sources.imports.loading import load_profiles
from brandsteps.sources.imports.model import ImportedFile
from brandsteps.sources.imports.profiles import ImportProfile
from brandsteps.sources.imports.reading import ImportFormatError

__all__ = [
    "BUILTIN_PROFILES",
    "ImportFormatError",
    "ImportProfile",
    "ImportedFile",
    "choose_profile",
    "load_profiles",
    "read_import",
]
