"""Configuration: the playbook, brand and deployment models, read safely from configs/ with readable errors.

models: the config models; yaml_files: safe YAML reading; errors: ConfigError and its wording;
brand_files and parse_cache: the brand files and the cache of their parse; portfolio: the loaded
folder and policy versions; loading: a whole configs folder; schemas: JSON Schemas of the files.
"""

from brandsteps.config.brand_files import load_brand_files
from brandsteps.config.errors import ConfigError, format_validation_error
from brandsteps.config.loading import apply_environment, load_brand_only, load_portfolio, load_settings
from brandsteps.config.models import (
    BRAND_ID_PATTERN,
    Brand,
    Criterion,
    Onboarding,
    Playbook,
    SqlMetrics,
    Stage,
    StrictModel,
)
from brandsteps.config.parse_cache import cache_enabled, cache_file, write_cache_file
from brandsteps.config.portfolio import Portfolio, effective_stage, policy_digest
from brandsteps.config.schemas import write_json_schemas
from brandsteps.config.yaml_files import display_path, load_model, parse_yaml, read_yaml

__all__ = [
    "BRAND_ID_PATTERN",
    "Brand",
    "ConfigError",
    "Criterion",
    "Onboarding",
    "Playbook",
    "Portfolio",
    "SqlMetrics",
    "Stage",
    "StrictModel",
    "apply_environment",
    "cache_enabled",
    "cache_file",
    "display_path",
    "effective_stage",
    "format_validation_error",
    "load_brand_files",
    "load_brand_only",
    "load_model",
    "load_portfolio",
    "load_settings",
    "parse_yaml",
    "policy_digest",
    "read_yaml",
    "write_cache_file",
    "write_json_schemas",
]
