"""Load the import profiles: the built-ins plus configs/imports/*.yaml, every problem with file and field."""

from __future__ import annotations

from pathlib import Path

from brandsteps.config import ConfigError, display_path, load_model
from brandsteps.sources.imports.builtin import BUILTIN_PROFILES
from brandsteps.sources.imports.profiles import ImportProfile

__all__ = ["load_profiles", "user_profile_files"]


def user_profile_files(configs_dir: Path | str) -> list[Path]:
    """configs/imports/*.yaml (and .yml), sorted; none without the folder."""
    folder = Path(configs_dir) / "imports"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in {".yaml", ".yml"} and not p.name.startswith("."))


def load_profiles(configs_dir: Path | str) -> dict[str, ImportProfile]:
    """Built-in profiles and the user's, by name (a YAML file's stem); raise ConfigError listing every problem."""
    root = Path(configs_dir).resolve()
    profiles = dict(BUILTIN_PROFILES)
    problems: list[str] = []
    for path in user_profile_files(root):
        display = display_path(path, root)
        name = path.stem
        if name in BUILTIN_PROFILES:
            # A silent override would change how every such export is read without anyone noticing.
            problems.append(f"{display}: {name!r} is the name of a built-in profile; rename the file")
            continue
        if name in profiles:
            problems.append(f"{display}: profile {name!r} is defined twice (.yaml and .yml)")
            continue
        try:
            profiles[name] = load_model(ImportProfile, path, display)
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError(problems)
    return profiles
