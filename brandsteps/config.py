"""Configuration models (playbook, brands, deployment), safe YAML loading and readable errors."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from brandsteps.catalogue import METRICS, SAMPLE_KEYS, STAGE_IDS, TIERS

StageId = Literal[
    "affiliate_trial", "public_traffic", "self_broadcast", "private_repurchase", "channel_exclusive"
]
Tier = Literal["small", "mid", "large"]
Op = Literal[">=", ">", "<=", "<"]
OnFail = Literal["hold", "recycle", "demote", "exit"]
BRAND_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
_PASSWORD_IN_URL = re.compile(r"^[a-z0-9+]+://[^/@:]*:[^/@]+@")
TABLE_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$"


class ConfigError(Exception):
    """One or more configuration problems, each naming the file, the field path and the reason."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


# ---------------------------------------------------------------- YAML


class _UniqueKeyLoader(yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader):  # type: ignore[misc]
    """A safe loader (C parser when available) that rejects duplicate mapping keys."""


def _construct_unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)


def _construct_timestamp_or_text(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    # PyYAML raises a bare ValueError for 2026-02-30; as text it reaches the field's own check.
    try:
        return yaml.constructor.SafeConstructor.construct_yaml_timestamp(loader, node)
    except ValueError:
        return loader.construct_scalar(node)


_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp_or_text)
_YAML_KINDS = {"list": "a list", "str": "a single value", "int": "a number", "float": "a number", "bool": "true or false"}


def read_yaml(path: Path, display: str) -> Any:
    """Parse one YAML file safely; raise ConfigError naming the file, line and reason."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError([f"{display}: cannot read the file ({exc.strerror})"]) from None
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise ConfigError([f"{display}: UTF-16 text; save the file as UTF-8"])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [f"{display}: not UTF-8 text (byte {exc.start}); save the file as UTF-8"]
        ) from None
    if not text.strip():
        raise ConfigError([f"{display}: the file is empty"])
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        line = text.splitlines()[mark.line] if mark and mark.line < len(text.splitlines()) else ""
        if "\t" in line or "tab" in problem.lower():
            problem += "; indent with spaces, not tabs"
        if problem.startswith("could not determine a constructor for the tag"):
            tag = problem.rpartition(" ")[2].replace("tag:yaml.org,2002:", "!!")
            problem = f"tag {tag} is not allowed (configs are plain YAML: no tags, nothing is executed)"
        raise ConfigError([f"{display}: invalid YAML{where}: {problem}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{display}: invalid YAML: {exc}"]) from None


# ---------------------------------------------------------------- models


def _finite_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("must be a number")
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return float(value)


def _threshold(value: Any) -> float | dict[str, float]:
    if isinstance(value, Mapping):
        keys = set(value)
        if keys != set(TIERS):
            missing = [t for t in TIERS if t not in keys]
            extra = sorted(str(k) for k in keys - set(TIERS))
            parts = []
            if missing:
                parts.append("missing " + ", ".join(missing))
            if extra:
                parts.append("unknown tier " + ", ".join(extra))
            raise ValueError(f"a tier map needs exactly small, mid and large ({'; '.join(parts)})")
        out: dict[str, float] = {}
        for tier in TIERS:
            try:
                out[tier] = _finite_number(value[tier])
            except ValueError as exc:
                raise ValueError(f"{tier} {exc}") from None
        return out
    try:
        return _finite_number(value)
    except ValueError as exc:
        if "finite" in str(exc):
            raise
        raise ValueError("must be a number or a map {small, mid, large} of numbers") from None


Threshold = Annotated[float | dict[str, float], BeforeValidator(_threshold)]
MetricName = Annotated[str, Field(description="A derived metric of DOMAIN.md")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Criterion(_Strict):
    """One check of a metric against a threshold."""

    metric: MetricName
    op: Op
    threshold: Threshold
    kind: Literal["must", "should"] = "must"
    weight: float = Field(default=1.0, gt=0, le=1000)
    shadow: bool = Field(default=False, description="Evaluated and recorded, never deciding")

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in METRICS:
            raise ValueError(f"unknown metric {value!r} (known: {', '.join(METRICS)})")
        return value

    @model_validator(mode="after")
    def _threshold_in_range(self) -> Criterion:
        spec = METRICS[self.metric]
        values = self.threshold.values() if isinstance(self.threshold, dict) else [self.threshold]
        for v in values:
            if v < 0:
                raise ValueError(f"threshold {v:g} is out of range for {self.metric} (must be >= 0)")
            if spec.upper_bound is not None and v > spec.upper_bound:
                raise ValueError(
                    f"threshold {v:g} is out of range for {self.metric} "
                    f"(a {spec.unit} is at most {spec.upper_bound:g})"
                )
        return self

    def threshold_for(self, tier: str) -> float:
        return self.threshold[tier] if isinstance(self.threshold, dict) else self.threshold


SampleKey = Literal[SAMPLE_KEYS]  # type: ignore[valid-type]


class Stage(_Strict):
    """One STEPS stage of the playbook."""

    id: StageId
    title: str = Field(min_length=1, max_length=200)
    window_days: int = Field(ge=1, le=365)
    min_days_in_stage: int = Field(default=0, ge=0, le=3650)
    max_days_in_stage: int | None = Field(default=None, ge=1, le=3650)
    consecutive_passes: int = Field(default=1, ge=1, le=365)
    min_sample: dict[SampleKey, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)
    criteria: list[Criterion] = Field(min_length=1)
    pass_score: float = Field(default=1.0, ge=0, le=1)
    on_fail: OnFail = "hold"
    guardrails: list[Criterion] = Field(default_factory=list)
    requires_approval: bool = False
    actions: str = ""

    @model_validator(mode="after")
    def _coherent(self) -> Stage:
        if self.max_days_in_stage is not None and self.max_days_in_stage < self.min_days_in_stage:
            raise ValueError("max_days_in_stage must not be below min_days_in_stage")
        for name, items in (("criteria", self.criteria), ("guardrails", self.guardrails)):
            metrics = [c.metric for c in items]
            dupes = sorted({m for m in metrics if metrics.count(m) > 1})
            if dupes:
                raise ValueError(f"{name} name a metric twice: {', '.join(dupes)}")
        if self.id == STAGE_IDS[0] and self.on_fail == "demote":
            raise ValueError("on_fail: demote is impossible in the first stage (use recycle, hold or exit)")
        return self


class StageOverride(_Strict):
    """A brand's changes to one playbook stage; criteria and guardrails replace by metric name."""

    window_days: int | None = Field(default=None, ge=1, le=365)
    min_days_in_stage: int | None = Field(default=None, ge=0, le=3650)
    max_days_in_stage: int | None = Field(default=None, ge=1, le=3650)
    consecutive_passes: int | None = Field(default=None, ge=1, le=365)
    min_sample: dict[SampleKey, Annotated[float, Field(ge=0)]] | None = None
    criteria: list[Criterion] = Field(default_factory=list)
    pass_score: float | None = Field(default=None, ge=0, le=1)
    on_fail: OnFail | None = None
    guardrails: list[Criterion] = Field(default_factory=list)
    requires_approval: bool | None = None
    actions: str | None = None


class Playbook(_Strict):
    """configs/steps.yaml: the five stages in execution order."""

    stages: list[Stage]

    @field_validator("stages")
    @classmethod
    def _five_in_order(cls, stages: list[Stage]) -> list[Stage]:
        ids = tuple(s.id for s in stages)
        if ids != STAGE_IDS:
            raise ValueError(f"must list the five stages in order: {', '.join(STAGE_IDS)} (found: {', '.join(ids) or 'none'})")
        return stages

    def stage(self, stage_id: str) -> Stage:
        return self.stages[STAGE_IDS.index(stage_id)]


class Brand(_Strict):
    """configs/brands/<brand_id>.yaml: one brand."""

    brand_id: str = Field(pattern=BRAND_ID_PATTERN, description="slug [a-z0-9-]+, equal to the file stem")
    name: str = Field(min_length=1, max_length=200)
    tier: Tier
    category: str = Field(min_length=1, max_length=100)
    start_date: date
    stage: StageId = "affiliate_trial"
    owner: str | None = Field(default=None, max_length=100)
    paused: bool = False
    gates: dict[StageId, StageOverride] = Field(default_factory=dict)
    requires_approval: list[StageId] = Field(default_factory=list)

    @field_validator("start_date", mode="before")
    @classmethod
    def _real_date(cls, value: Any) -> Any:
        # YAML turns 2026-01-05 into a date already; a quoted string or a number is a typo.
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            raise ValueError("must be a date like 2026-01-31")
        return value

    def has_overrides(self) -> bool:
        return bool(self.gates or self.requires_approval)


MetricsSpec = Annotated[str, Field(min_length=1)]


class SqlMetrics(_Strict):
    url: str = Field(min_length=1)
    table: str = Field(default="daily_metrics", pattern=TABLE_NAME_PATTERN)


class Onboarding(_Strict):
    """configs/onboarding.yaml: where metrics come from, the ledger, timezone and schedule."""

    metrics: MetricsSpec | SqlMetrics = "data/metrics"
    ledger: str = "sqlite:///data/ledger.sqlite"
    timezone: str = "Asia/Shanghai"
    schedule: str = "0 9 * * *"
    review_timeout_hours: float = Field(default=72.0, gt=0, le=24 * 90)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r} (e.g. Asia/Shanghai)") from None
        return value

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        fields = value.split()
        if len(fields) != 5 or not all(re.fullmatch(r"[0-9*/,\-A-Za-z?]+", f) for f in fields):
            raise ValueError(f"must be a 5-field cron expression like '0 9 * * *' (got {value!r})")
        return value



# ---------------------------------------------------------------- errors


_MESSAGES = {
    "extra_forbidden": "unknown key",
    "missing": "is required",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be text",
    "date_from_datetime_parsing": "must be a date like 2026-01-31",
    "date_parsing": "must be a date like 2026-01-31",
    "date_type": "must be a date like 2026-01-31",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
}


def _loc_to_path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in {"function-after[_threshold_in_range()]", "str", "constrained-str", "SqlMetrics", "[key]"}:
            continue  # pydantic's internal branch names, not the user's field path
        else:
            out += ("." if out else "") + str(part)
    return out


def _describe(err: Mapping[str, Any]) -> str:
    kind = err["type"]
    if kind in _MESSAGES:
        msg = _MESSAGES[kind]
    elif kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        msg = f"must be one of {expected}"
    elif kind == "string_pattern_mismatch":
        pattern = str(err.get("ctx", {}).get("pattern", ""))
        if pattern == BRAND_ID_PATTERN:
            msg = "must be a slug of lowercase letters, digits and dashes"
        elif pattern == TABLE_NAME_PATTERN:
            msg = "must be a table name (letters, digits and _, optionally schema.table)"
        else:
            msg = "has an invalid form"
    elif kind in {"greater_than_equal", "greater_than", "less_than_equal", "less_than"}:
        ctx = err.get("ctx", {})
        bound = next(iter(ctx.values()), "")
        word = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}[kind]
        msg = f"must be {word} {bound}"
    elif kind in {"too_short", "string_too_short"}:
        msg = "must not be empty"
    elif kind == "string_too_long":
        msg = f"is too long (at most {err.get('ctx', {}).get('max_length')} characters)"
    elif kind == "value_error":
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
    else:
        msg = str(err.get("msg", "is invalid")).lower()
    value = err.get("input")
    shows_input = {"float_parsing", "float_type", "int_parsing", "int_type", "literal_error", "date_parsing", "date_from_datetime_parsing"}
    if kind in shows_input and isinstance(value, (str, int, float)):
        msg += f" (got {value!r})"
    return msg


def format_validation_error(display: str, exc: ValidationError) -> list[str]:
    """Turn pydantic's errors into 'file: field.path: reason' lines, one per problem."""
    lines = []
    for err in exc.errors(include_url=False):
        if "constrained-str" in err["loc"] and isinstance(err.get("input"), Mapping):
            continue  # a mapping was meant for the other branch of "path or {url, table}"; its errors say why
        path = _loc_to_path(err["loc"])
        lines.append(f"{display}: {path + ': ' if path else ''}{_describe(err)}")
    return list(dict.fromkeys(lines))


# ---------------------------------------------------------------- loading


@dataclass(frozen=True)
class Portfolio:
    """Everything one cycle needs from configs/, validated."""

    root: Path
    playbook: Playbook
    onboarding: Onboarding
    brands: dict[str, Brand]
    playbook_version: str
    brand_versions: dict[str, str] = field(default_factory=dict)
    # Effective stages by (policy version, stage): brands with the same overrides share a version,
    # so thousands of them cost one pydantic validation per stage instead of one each.
    _effective: dict[tuple[str, str], Stage] = field(default_factory=dict, init=False, repr=False, compare=False)

    def effective_stage(self, brand: Brand, stage_id: str) -> Stage:
        version = self.brand_versions.get(brand.brand_id)
        if version is None or self.brands.get(brand.brand_id) is not brand:
            return effective_stage(self.playbook.stage(stage_id), brand)
        key = (version, stage_id)
        stage = self._effective.get(key)
        if stage is None:
            stage = self._effective[key] = effective_stage(self.playbook.stage(stage_id), brand)
        return stage

    def policy_version(self, brand_id: str) -> str:
        return self.brand_versions.get(brand_id, self.playbook_version)


def _merge_by_metric(base: list[Criterion], changes: list[Criterion]) -> list[Criterion]:
    by_metric = {c.metric: c for c in changes}
    merged = [by_metric.pop(c.metric, c) for c in base]
    return merged + list(by_metric.values())


def effective_stage(stage: Stage, brand: Brand) -> Stage:
    """The playbook stage with the brand's overrides applied (criteria replace by metric name)."""
    override = brand.gates.get(stage.id)
    needs_approval = stage.id in brand.requires_approval
    if override is None and not needs_approval:
        return stage
    changes: dict[str, Any] = {}
    if override is not None:
        changes = {
            k: v
            for k, v in override.model_dump(exclude={"criteria", "guardrails"}, exclude_none=True).items()
        }
        changes["criteria"] = _merge_by_metric(stage.criteria, override.criteria)
        changes["guardrails"] = _merge_by_metric(stage.guardrails, override.guardrails)
    if needs_approval:
        changes["requires_approval"] = True
    return stage.model_validate({**stage.model_dump(), **{k: v for k, v in changes.items()}})


def _overrides_key(brand: Brand) -> str:
    """The brand's overrides as canonical text: equal texts mean equal effective rules."""
    return json.dumps(brand.model_dump(mode="json", include={"gates", "requires_approval"}), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _digest(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, default=str, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _brand_files(brands_dir: Path) -> list[Path]:
    files = sorted(p for p in brands_dir.iterdir() if p.suffix in {".yaml", ".yml"} and not p.name.startswith("."))
    return files


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root.parent))
    except ValueError:
        return str(path)


def load_model(model: type[BaseModel], path: Path, display: str) -> Any:
    data = read_yaml(path, display)
    if data is None:
        raise ConfigError([f"{display}: the file has no settings (only comments or blank lines)"])
    if not isinstance(data, dict):
        kind = _YAML_KINDS.get(type(data).__name__, "something else")
        raise ConfigError([f"{display}: must be a mapping of keys to values, not {kind}"])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(display, exc)) from None


def load_portfolio(configs_dir: Path | str, *, apply_env: bool = True) -> Portfolio:
    """Load and validate configs/ as a whole; raise ConfigError listing every problem found."""
    root = Path(configs_dir).resolve()
    problems: list[str] = []
    if not root.is_dir():
        raise ConfigError([f"{configs_dir}: no such configs folder"])

    playbook: Playbook | None = None
    steps_path = root / "steps.yaml"
    if not steps_path.exists():
        problems.append(f"{_display(steps_path, root)}: missing (the STEPS playbook)")
    else:
        try:
            playbook = load_model(Playbook, steps_path, _display(steps_path, root))
        except ConfigError as exc:
            problems += exc.problems

    onboarding = Onboarding()
    onboarding_path = root / "onboarding.yaml"
    if onboarding_path.exists():
        try:
            onboarding = load_model(Onboarding, onboarding_path, _display(onboarding_path, root))
            if _PASSWORD_IN_URL.match(onboarding.ledger):
                problems.append(
                    f"{_display(onboarding_path, root)}: ledger: must not contain a password; "
                    "set BRANDSTEPS_LEDGER_PASSWORD instead"
                )
            metrics_url = onboarding.metrics.url if isinstance(onboarding.metrics, SqlMetrics) else onboarding.metrics
            if _PASSWORD_IN_URL.match(metrics_url):
                field_path = "metrics.url" if isinstance(onboarding.metrics, SqlMetrics) else "metrics"
                problems.append(
                    f"{_display(onboarding_path, root)}: {field_path}: must not contain a password; "
                    "set BRANDSTEPS_METRICS (the whole URL) in the environment instead"
                )
        except ConfigError as exc:
            problems += exc.problems
    if apply_env:
        try:
            onboarding = apply_environment(onboarding)
        except ConfigError as exc:
            problems += exc.problems

    brands: dict[str, Brand] = {}
    valid_overrides: set[str] = set()
    brands_dir = root / "brands"
    if not brands_dir.is_dir():
        problems.append(f"{_display(brands_dir, root)}: missing (one YAML file per brand)")
    else:
        for path in _brand_files(brands_dir):
            display = _display(path, root)
            try:
                brand = load_model(Brand, path, display)
            except ConfigError as exc:
                problems += exc.problems
                continue
            if brand.brand_id != path.stem:
                problems.append(f"{display}: brand_id: {brand.brand_id!r} must equal the file name {path.stem!r}")
                continue
            if brand.brand_id in brands:
                problems.append(f"{display}: brand_id: {brand.brand_id!r} is defined twice")
                continue
            if playbook is not None and brand.gates and _overrides_key(brand) not in valid_overrides:
                try:
                    for stage_id in brand.gates:
                        effective_stage(playbook.stage(stage_id), brand)
                except ValidationError as exc:
                    problems += format_validation_error(f"{display}: gates.{stage_id}", exc)
                    continue
                valid_overrides.add(_overrides_key(brand))  # only success is shared: an error names its own file
            brands[brand.brand_id] = brand
    if problems or playbook is None:
        raise ConfigError(problems)

    playbook_version = _digest(playbook.model_dump(mode="json"))
    digests: dict[str, str] = {}  # brands with identical overrides share one digest
    brand_versions = {}
    for b in brands.values():
        if b.has_overrides():
            key = _overrides_key(b)
            if key not in digests:
                digests[key] = _digest([playbook_version, b.model_dump(mode="json", include={"gates", "requires_approval"})])
            brand_versions[b.brand_id] = digests[key]
    return Portfolio(root, playbook, onboarding, brands, playbook_version, brand_versions)


ENV_KEYS = {
    "metrics": "BRANDSTEPS_METRICS",
    "ledger": "BRANDSTEPS_LEDGER",
    "timezone": "BRANDSTEPS_TIMEZONE",
    "schedule": "BRANDSTEPS_SCHEDULE",
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


def resolve_path(portfolio_root: Path, value: str) -> Path:
    """A relative path in configs resolves against the folder that holds configs/."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else portfolio_root.parent / path


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schemas of the three config kinds, for editor completion and checks."""
    return {
        "steps.schema.json": Playbook.model_json_schema(),
        "brand.schema.json": Brand.model_json_schema(),
        "onboarding.schema.json": Onboarding.model_json_schema(),
    }


def write_json_schemas(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in json_schemas().items():
        path = out_dir / name
        path.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written

