"""Loading a configs folder: the playbook, deployment settings and environment, then the brand files, as a Portfolio."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path

from pydantic import ValidationError

from brandsteps.config.brand_files import list_brand_files, load_brand_files
from brandsteps.config.errors import ConfigError, format_validation_error
from brandsteps.config.models import BRAND_ID_PATTERN, Brand, Onboarding, Playbook, SqlMetrics
from brandsteps.config.parse_cache import cache_enabled, cache_file
from brandsteps.config.portfolio import Portfolio, brand_policy_version, playbook_policy_version
from brandsteps.config.yaml_files import display_path, load_model

_PASSWORD_IN_URL = re.compile(r"^[a-z0-9+]+://[^/@:]*:[^/@]+@")
ENV_KEYS = {
    "metrics": "BRANDSTEPS_METRICS",
    "inbox": "BRANDSTEPS_INBOX",
    "ledger": "BRANDSTEPS_LEDGER",
    "timezone": "BRANDSTEPS_TIMEZONE",
    "schedule": "BRANDSTEPS_SCHEDULE",
    "data_deadline": "BRANDSTEPS_DATA_DEADLINE",
}


def apply_environment(onboarding: Onboarding, environ: Mapping[str, str] | None = None) -> Onboarding:
    """Environment variables override onboarding.yaml (and may carry secrets YAML must not)."""
    env = os.environ if environ is None else environ
    data = onboarding.model_dump()
    for key, var in ENV_KEYS.items():
        if env.get(var):
            data[key] = env[var]
    table = env.get("BRANDSTEPS_METRICS_TABLE")
    if table:
        url = data["metrics"]["url"] if isinstance(data["metrics"], dict) else data["metrics"]
        data["metrics"] = {"url": url, "table": table}
    try:
        return Onboarding.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error("environment", exc)) from None


def _passwords_in(onboarding: Onboarding, display: str) -> list[str]:
    """onboarding.yaml is committed: a URL in it must not carry a password (the environment may)."""
    problems = []
    if _PASSWORD_IN_URL.match(onboarding.ledger):
        problems.append(f"{display}: ledger: must not contain a password; set BRANDSTEPS_LEDGER_PASSWORD instead")
    metrics = onboarding.metrics
    url, field_path = (metrics.url, "metrics.url") if isinstance(metrics, SqlMetrics) else (metrics, "metrics")
    if _PASSWORD_IN_URL.match(url):
        problems.append(
            f"{display}: {field_path}: must not contain a password; "
            "set BRANDSTEPS_METRICS (the whole URL) in the environment instead"
        )
    return problems


def _load_playbook(root: Path) -> tuple[Playbook | None, list[str]]:
    steps_path = root / "steps.yaml"
    if not steps_path.exists():
        return None, [f"{display_path(steps_path, root)}: missing (the STEPS playbook)"]
    try:
        return load_model(Playbook, steps_path, display_path(steps_path, root)), []
    except ConfigError as exc:
        return None, exc.problems


def _load_onboarding(root: Path) -> tuple[Onboarding, list[str]]:
    onboarding_path = root / "onboarding.yaml"
    if not onboarding_path.exists():
        return Onboarding(), []
    display = display_path(onboarding_path, root)
    try:
        onboarding: Onboarding = load_model(Onboarding, onboarding_path, display)
    except ConfigError as exc:
        return Onboarding(), exc.problems
    return onboarding, _passwords_in(onboarding, display)


def load_settings(configs_dir: Path | str, apply_env: bool) -> tuple[Path, Playbook | None, Onboarding, list[str]]:
    """The resolved configs folder, its playbook and deployment settings, and their problems."""
    root = Path(configs_dir).resolve()
    if not root.is_dir():
        raise ConfigError([f"{configs_dir}: no such configs folder"])
    playbook, problems = _load_playbook(root)
    onboarding, onboarding_problems = _load_onboarding(root)
    problems += onboarding_problems
    if apply_env:
        try:
            onboarding = apply_environment(onboarding)
        except ConfigError as exc:
            problems += exc.problems
    return root, playbook, onboarding, problems


def _assemble(
    root: Path,
    playbook: Playbook | None,
    onboarding: Onboarding,
    brands: dict[str, Brand],
    override_keys: dict[str, str],
    problems: list[str],
) -> Portfolio:
    if problems or playbook is None:
        raise ConfigError(problems)
    version = playbook_policy_version(playbook)
    versions: dict[str, str] = {}  # brands with identical overrides share one version
    brand_versions = {}
    for brand_id, key in override_keys.items():
        if key not in versions:
            versions[key] = brand_policy_version(version, brands[brand_id])
        brand_versions[brand_id] = versions[key]
    return Portfolio(root, playbook, onboarding, brands, version, brand_versions)


def _load(configs_dir: Path | str, apply_env: bool, files: Callable[[Path], list[str]], cache: bool) -> Portfolio:
    """Settings, then the brand files `files(brands_dir)` names (through the parse cache if cache)."""
    root, playbook, onboarding, problems = load_settings(configs_dir, apply_env)
    brands: dict[str, Brand] = {}
    override_keys: dict[str, str] = {}
    brands_dir = root / "brands"
    if not brands_dir.is_dir():
        problems.append(f"{display_path(brands_dir, root)}: missing (one YAML file per brand)")
    else:
        cache_path = cache_file(root) if cache else None
        brands, override_keys, brand_problems = load_brand_files(root, files(brands_dir), playbook, cache_path)
        problems += brand_problems
    return _assemble(root, playbook, onboarding, brands, override_keys, problems)


def load_portfolio(configs_dir: Path | str, *, apply_env: bool = True, cache: bool | None = None) -> Portfolio:
    """Load and validate configs/ as a whole; raise ConfigError listing every problem found.

    cache: use the parse cache of brand files (default: unless BRANDSTEPS_CONFIG_CACHE=off).
    """
    return _load(configs_dir, apply_env, list_brand_files, cache_enabled() if cache is None else cache)


def load_brand_only(configs_dir: Path | str, brand_id: str, *, apply_env: bool = True) -> Portfolio:
    """The portfolio narrowed to one brand: steps.yaml, onboarding.yaml and that brand's file only.

    Validation and policy version are those of a full load (other brands' files are not read, so
    their problems are not reported); brands is empty when the brand has no file.
    """

    def only_this_brand(brands_dir: Path) -> list[str]:
        # Only a slug can name a brand (and a file of brands/): anything else has no file to read.
        if not re.fullmatch(BRAND_ID_PATTERN, brand_id):
            return []
        names = [f"{brand_id}{suffix}" for suffix in (".yaml", ".yml")]
        return [n for n in names if os.path.lexists(brands_dir / n)]  # both: "defined twice", as in a full load

    return _load(configs_dir, apply_env, only_this_brand, cache=False)
