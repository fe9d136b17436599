"""Kuaishou exports by profile (docs/domain.md#kuaishou-exports): a file recognised, read into brand-day rows."""

from __future__ import annotations

from brandsteps.imports.apply import choose_profile, read_import
from brandsteps.imports.builtin import BUILTIN_PROFILES
from brandsteps.imports.loading import load_profiles
from brandsteps.imports.model import ImportedFile
from brandsteps.imports.profiles import ImportProfile
from brandsteps.imports.reading import ImportFormatError

__all__ = ["BUILTIN_PROFILES", "ImportFormatError", "ImportProfile", "ImportedFile", "choose_profile", "load_profiles", "read_import"]
