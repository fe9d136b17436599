"""Configuration models (playbook, brands, deployment), safe YAML loading and readable errors."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import threading
import unicodedata
from collections.abc import Callable, Iterable, Mapping
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
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from brandsteps.catalogue import METRICS, SAMPLE_KEYS, STAGE_IDS, TIERS
from brandsteps.notify.config import NotifyChannel

StageId = Literal["affiliate_trial", "public_traffic", "self_broadcast", "private_repurchase", "channel_exclusive"]
Tier = Literal["small", "mid", "large"]
Op = Literal[">=", ">", "<=", "<"]
OnFail = Literal["hold", "recycle", "demote", "exit"]
BRAND_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
MAX_LAG_DAYS = 90  # refunds by payment date settle within weeks; a quarter back is no longer a stage window
_PASSWORD_IN_URL = re.compile(r"^[a-z0-9+]+://[^/@:]*:[^/@]+@")
TABLE_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$"


class ConfigError(Exception):
    """One or more configuration problems, each naming the file, the field path and the reason."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


# ---------------------------------------------------------------- YAML


class _UniqueKeyLoader(yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader):  # type: ignore[misc]
    """A safe loader (C parser when available) that rejects duplicate mapping keys.

    The composed document is built in a fast pass (each key constructed once, plain scalars without
    the generic bookkeeping) that gives up on anything unusual (a duplicate or merge key, any error);
    the reference pass (every key of a mapping, then its values) then builds it again, and its first
    error is the one users see. Both give the same data; the fast pass is ~1.5x faster and almost
    always enough.
    """

    _reference = False

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        try:
            return self.construct_document(node)
        except Exception:  # whatever stopped the fast pass, the reference pass decides and words it
            # The node tree is as composed (the fast pass never rewrites merge keys): only the
            # construction state is reset.
            self.constructed_objects: dict[yaml.Node, Any] = {}
            self.recursive_objects: dict[yaml.Node, None] = {}
            self.state_generators: list[Any] = []
            self.deep_construct = False
            self._reference = True
            return self.construct_document(node)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        # Scalars are most of a config file and never recursive: the generic path's recursion guard
        # and generator handling only matter for collections. Aliases still share one object.
        if node.__class__ is yaml.ScalarNode and not self._reference:
            tag = node.tag
            if tag == _STR_TAG:
                return node.value  # what construct_yaml_str returns for a scalar node
            if tag in _PLAIN_SCALAR_TAGS:
                done = self.constructed_objects
                if node in done:
                    return done[node]
                data = done[node] = self.yaml_constructors[tag](self, node)
                return data
        return super().construct_object(node, deep=deep)

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: Any) -> Any:
        # The parser asks for every scalar's tag, and keys and enum values repeat in every file. A pure
        # function of (value, implicit) here: the safe loader has no path resolvers.
        if kind is yaml.ScalarNode:
            key = (value, implicit)
            tag = _RESOLVED.get(key)
            if tag is None:
                tag = super().resolve(kind, value, implicit)
                if len(_RESOLVED) < _RESOLVED_MAX:
                    _RESOLVED[key] = tag
            return tag
        return super().resolve(kind, value, implicit)


_STR_TAG = "tag:yaml.org,2002:str"
_PLAIN_SCALAR_TAGS = frozenset(f"tag:yaml.org,2002:{t}" for t in ("int", "float", "bool", "null", "timestamp"))
# Keys SafeConstructor.flatten_mapping would rewrite (<< and =); the reference pass refuses them as tags.
_MERGE_KEY_TAGS = frozenset({"tag:yaml.org,2002:merge", "tag:yaml.org,2002:value"})
_RESOLVED: dict[tuple[Any, Any], Any] = {}  # a scalar's (value, implicit) -> its tag
_RESOLVED_MAX = 20_000  # unique values (names) would only grow it; the repeating ones come first


class _NotPlain(Exception):
    """The fast pass stops: the reference pass builds the document (a duplicate or merge key)."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    if not loader._reference:
        mapping: dict[Any, Any] = {}
        construct = loader.construct_object
        for key_node, value_node in node.value:
            if key_node.tag in _MERGE_KEY_TAGS:
                raise _NotPlain
            key = construct(key_node, deep=deep)
            if key in mapping:  # (an unhashable key raises TypeError: also the reference pass's case)
                raise _NotPlain
            mapping[key] = construct(value_node, deep=deep)
        return mapping
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            known = key in seen
        except TypeError:  # a list or mapping as a key: PyYAML's own wording, not a traceback
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark, "found unhashable key", key_node.start_mark
            ) from None
        if known:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)  # type: ignore[no-any-return]


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def _construct_timestamp_or_text(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    # PyYAML raises a bare ValueError for 2026-02-30; as text it reaches the field's own check.
    try:
        return yaml.constructor.SafeConstructor.construct_yaml_timestamp(loader, node)
    except ValueError:
        return loader.construct_scalar(node)


_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp_or_text)
_YAML_KINDS = {
    "list": "a list",
    "str": "a single value",
    "int": "a number",
    "float": "a number",
    "bool": "true or false",
}
_READ_SIZE = 1 << 16


def _read_bytes(path: Path | str, display: str) -> bytes:
    # os.open/os.read: half the time of open().read() per small file (no buffered file object)
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            chunks = [os.read(fd, _READ_SIZE)]
            while chunks[-1]:  # until end of file: a short read is not one everywhere (FUSE, pipes)
                chunks.append(os.read(fd, _READ_SIZE))
            return chunks[0] if len(chunks) == 2 else b"".join(chunks)
        finally:
            os.close(fd)
    except OSError as exc:
        raise ConfigError([f"{display}: cannot read the file ({exc.strerror})"]) from None


def parse_yaml(raw: bytes, display: str) -> Any:
    """Parse one YAML document given as bytes; raise ConfigError naming the file, line and reason."""
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise ConfigError([f"{display}: UTF-16 text; save the file as UTF-8"])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{display}: not UTF-8 text (byte {exc.start}); save the file as UTF-8"]) from None
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


def read_yaml(path: Path, display: str) -> Any:
    """Parse one YAML file safely; raise ConfigError naming the file, line and reason."""
    return parse_yaml(_read_bytes(path, display), display)


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
MetricName = Annotated[str, Field(description="A derived metric (docs/domain.md#metrics)")]


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
    lag_days: int = Field(
        default=0,
        ge=0,
        le=MAX_LAG_DAYS,
        description="Compute the metric over the stage window shifted this many days back (late-maturing figures such as refunds)",
    )

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
                    f"threshold {v:g} is out of range for {self.metric} (a {spec.unit} is at most {spec.upper_bound:g})"
                )
        return self

    @model_serializer(mode="wrap")
    def _without_zero_lag(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # lag 0 is the default and left out: a playbook written before lag_days keeps its policy version
        data: dict[str, Any] = handler(self)
        if data.get("lag_days") == 0:
            del data["lag_days"]
        return data

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
            raise ValueError(
                f"must list the five stages in order: {', '.join(STAGE_IDS)} (found: {', '.join(ids) or 'none'})"
            )
        return stages

    def stage(self, stage_id: str) -> Stage:
        return self.stages[STAGE_IDS.index(stage_id)]


def _id_text(value: Any) -> Any:
    # Ids are mostly digits: YAML reads `12345` as a number, so a bare number is taken as its digits.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        return unicodedata.normalize("NFKC", value).strip()  # as the importer reads a file's cells
    return value


ExternalId = Annotated[str, BeforeValidator(_id_text), Field(min_length=1, max_length=100)]


def _no_repeats(values: list[str]) -> list[str]:
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"lists {', '.join(repr(v) for v in repeated)} twice")
    return values


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
    accounts: list[ExternalId] = Field(
        default_factory=list,
        description="Kuaishou account, shop or ad-account ids (快手ID, 账户ID) whose rows in a multi-account export are this brand's",
    )
    exclusive_items: list[ExternalId] = Field(
        default_factory=list,
        description="item ids (商品ID) of the brand's channel-exclusive SKUs, for per-item exports",
    )

    @field_validator("accounts", "exclusive_items")
    @classmethod
    def _unique_ids(cls, values: list[str]) -> list[str]:
        return _no_repeats(values)

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
    notify: list[NotifyChannel] = Field(
        default_factory=list, description="chat robots (企业微信, 钉钉, 飞书) that receive the cycle's alerts"
    )
    inbox: str | None = Field(
        default=None,
        min_length=1,
        description="folder where operators drop exports; the import-exports deployment imports each new file once",
    )
    data_deadline: str | None = Field(
        default=None,
        description="local time (HH:MM) on the day after as_of until which a cycle leaves brands whose data has not arrived undecided",
    )

    @field_validator("data_deadline")
    @classmethod
    def _clock_time(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", value):
            raise ValueError(f"must be a local time like '12:00' (got {value!r})")
        return value

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
    shows_input = {
        "float_parsing",
        "float_type",
        "int_parsing",
        "int_type",
        "literal_error",
        "date_parsing",
        "date_from_datetime_parsing",
    }
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
        changes = {k: v for k, v in override.model_dump(exclude={"criteria", "guardrails"}, exclude_none=True).items()}
        changes["criteria"] = _merge_by_metric(stage.criteria, override.criteria)
        changes["guardrails"] = _merge_by_metric(stage.guardrails, override.guardrails)
    if needs_approval:
        changes["requires_approval"] = True
    return stage.model_validate({**stage.model_dump(), **{k: v for k, v in changes.items()}})


def _digest(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, default=str, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _brand_files(brands_dir: Path) -> list[str]:
    """File names of brands_dir's brand files, sorted (names of one folder: as Path objects sort)."""
    with os.scandir(brands_dir) as entries:
        names = [e.name for e in entries if e.name.endswith((".yaml", ".yml")) and not e.name.startswith(".")]
    names.sort()
    return names


def display_path(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root.parent))
    except ValueError:
        return str(path)


def _validated(model: type[BaseModel], data: Any, display: str) -> Any:
    if data is None:
        raise ConfigError([f"{display}: the file has no settings (only comments or blank lines)"])
    if not isinstance(data, dict):
        kind = _YAML_KINDS.get(type(data).__name__, "something else")
        raise ConfigError([f"{display}: must be a mapping of keys to values, not {kind}"])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(display, exc)) from None


def load_model(model: type[BaseModel], path: Path, display: str) -> Any:
    return _validated(model, read_yaml(path, display), display)


# ------------------------------------------------ brand files: parallel parsing and the parse cache

PARALLEL_MIN_FILES = 20_000  # measured on 2 cores: a worker (start ~0.3 s, JSON both ways) pays off from ~15,000 files
_Parsed = tuple[
    bool, Any, bool
]  # (parsed, data or the file's problems, data is exact in JSON: cacheable, transferable)
# A worker is this interpreter running this code, not multiprocessing: spawn would re-run the caller's
# main module (an unguarded script, or Prefect's engine) and fork is unsafe with Prefect's threads
# running. Files go in and results come out as JSON (never pickle), like the cache.
_WORKER_CODE = "import json, sys; sys.path[:] = json.loads(sys.stdin.buffer.readline()); from brandsteps.config import _serve_parse; _serve_parse()"


def _parse_chunk(items: list[tuple[str, bytes]], check_exact: bool) -> list[_Parsed]:
    """Parse (display, bytes) pairs in order; check_exact: also tell whether JSON keeps each result exactly."""
    out: list[_Parsed] = []
    for display, raw in items:
        try:
            data = parse_yaml(raw, display)
        except ConfigError as exc:
            out.append((False, exc.problems, False))
            continue
        out.append((True, data, check_exact and _exact_in_json(data)))
    return out


def _serve_parse() -> None:
    """A parse worker's body: [[display, bytes as latin-1 text], ...] on stdin, [[parsed, data or problems, exact], ...] on stdout.

    A result JSON cannot carry exactly (see _exact_in_json) goes back as null: the caller parses that file itself.
    """
    items = [(display, text.encode("latin-1")) for display, text in json.loads(sys.stdin.buffer.read())]
    results = [[ok, data if (exact or not ok) else None, exact] for ok, data, exact in _parse_chunk(items, True)]
    sys.stdout.buffer.write(json.dumps(results, default=_tag_date).encode("ascii"))
    sys.stdout.buffer.flush()


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass
class _Worker:
    """A parse worker process fed by a thread, so this process parses its own share meanwhile."""

    items: list[tuple[str, bytes]]
    process: subprocess.Popen[bytes] | None = None
    feeder: threading.Thread | None = None

    def start(self) -> None:
        if not sys.executable:
            return  # an embedded interpreter: the share is parsed here
        try:
            self.process = subprocess.Popen(  # noqa: S603 - this interpreter, fixed code
                [sys.executable, "-c", _WORKER_CODE],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        except OSError:
            return
        # latin-1 maps bytes to text one to one: the worker parses exactly the bytes this process hashed
        files = json.dumps([[display, raw.decode("latin-1")] for display, raw in self.items])
        payload = json.dumps(sys.path).encode() + b"\n" + files.encode("ascii")
        self.feeder = threading.Thread(target=self._feed, args=(self.process, payload), daemon=True)
        self.feeder.start()

    @staticmethod
    def _feed(process: subprocess.Popen[bytes], payload: bytes) -> None:
        assert process.stdin is not None
        with contextlib.suppress(OSError):  # the worker died: its share is parsed here instead
            process.stdin.write(payload)
            process.stdin.close()

    def results(self, check_exact: bool) -> list[_Parsed]:
        """The worker's results, or the share parsed here if the worker failed in any way (same results, same errors)."""
        process = self.process
        if process is not None and process.stdout is not None:
            out = process.stdout.read()
            process.stdout.close()
            if self.feeder is not None:
                self.feeder.join()
            if process.wait() == 0:
                with contextlib.suppress(ValueError, TypeError):
                    parsed = json.loads(out, object_hook=_untag_date)
                    if isinstance(parsed, list) and len(parsed) == len(self.items):
                        return [
                            (ok, data, exact and check_exact) if (exact or not ok) else _parse_chunk([item], False)[0]
                            for (ok, data, exact), item in zip(parsed, self.items, strict=True)
                        ]
        return _parse_chunk(self.items, check_exact)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _parse_files(items: list[tuple[str, bytes]], check_exact: bool, parallel_min: int) -> list[_Parsed]:
    """Every file parsed, results in the order given: shared with worker processes when there are many."""
    workers = min(_cpu_count(), len(items))
    if len(items) < max(parallel_min, 2) or workers < 2:
        return _parse_chunk(items, check_exact)
    # Shares in file order; this process takes the first, a quarter larger, as a worker also pays its
    # start and the JSON both ways (measured: 2 cores, 100,000 files).
    weights = [1.25] + [1.0] * (workers - 1)
    bounds = [round(len(items) * sum(weights[:j]) / sum(weights)) for j in range(workers + 1)]
    helpers = [_Worker(items[a:b]) for a, b in itertools.pairwise(bounds[1:]) if b > a]
    try:
        for helper in helpers:
            helper.start()
        parsed = _parse_chunk(items[: bounds[1]], check_exact)
        for helper in helpers:
            parsed += helper.results(check_exact)  # in file order: the same problems list as a serial parse
        return parsed
    finally:
        for helper in helpers:
            helper.stop()  # a worker whose results were not read (an error here) does not linger


_CACHE_FORMAT = 1  # bump whenever the loaders' results or this layout change: old cache files are then rebuilt
_DATE_TAG = "$date"


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


def _file_digest(raw: bytes) -> str:
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


_JSON_LEAVES = frozenset({str, int, float, bool, date, type(None)})  # exact in JSON (dates tagged)


def _exact_in_json(value: Any) -> bool:
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


def _read_cache(path: Path) -> dict[str, Any] | None:
    """The cache's entries (file digest -> parsed mapping), or None when absent, unreadable, corrupt or of another format."""
    try:
        doc = json.loads(path.read_bytes(), object_hook=_untag_date)
    except (OSError, ValueError, TypeError, RecursionError):  # a torn or edited file: rebuilt, never trusted
        return None
    if not isinstance(doc, dict) or doc.get("format") != _CACHE_FORMAT or doc.get("pyyaml") != yaml.__version__:
        return None
    entries = doc.get("entries")
    return entries if isinstance(entries, dict) else None


def _write_cache(path: Path, entries: dict[str, Any]) -> None:
    write_cache_file(path, {"format": _CACHE_FORMAT, "pyyaml": yaml.__version__, "entries": entries})


def write_cache_file(path: Path, doc: dict[str, Any]) -> None:
    """Replace a cache file with doc as JSON atomically (temp file + os.replace); a cache that cannot be written is skipped."""
    try:
        text = json.dumps(
            doc, default=_tag_date, separators=(",", ":")
        )  # ASCII: a lone surrogate from a YAML escape survives
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


def load_brand_files(
    root: Path,
    names: list[str],
    playbook: Playbook | None,
    cache_path: Path | None,
    parallel_min: int,
    every_file: bool = True,
) -> tuple[dict[str, Brand], dict[str, str], list[str]]:
    """Brands of these files in brands/ (sorted names), the raw text of each one's overrides, and every problem in file order.

    every_file: names lists every brand file, so the parse cache is pruned to them; else (some of
    the files) the cache only gains entries.
    """
    brands_dir = root / "brands"
    prefix = display_path(brands_dir, root)
    folder = str(brands_dir)
    outcome: list[_Parsed | None] = [None] * len(names)
    digests: list[str | None] = [None] * len(names)
    cached = _read_cache(cache_path) if cache_path is not None else None
    todo: list[int] = []
    raws: list[tuple[str, bytes]] = []
    for i, name in enumerate(names):
        display = f"{prefix}/{name}"
        try:
            raw = _read_bytes(f"{folder}/{name}", display)  # a name from the listing: no separator in it
        except ConfigError as exc:
            outcome[i] = (False, exc.problems, False)
            continue
        if cache_path is not None:
            # Every file is read and hashed on every load: an edited file (even of the same size and
            # time) has another digest and is parsed again.
            digest = digests[i] = _file_digest(raw)
            hit = cached.get(digest) if cached is not None else None
            if isinstance(hit, dict):
                outcome[i] = (True, hit, True)
                continue
        todo.append(i)
        raws.append((display, raw))
    for i, result in zip(todo, _parse_files(raws, cache_path is not None, parallel_min), strict=True):
        outcome[i] = result

    problems: list[str] = []
    brands: dict[str, Brand] = {}
    override_keys: dict[str, str] = {}
    valid_overrides: set[str] = set()
    # gates as parsed (repr) -> as validated. Brands sharing overrides (thousands of them) share one
    # validation of them: equal parsed values validate to equal models, and pydantic takes a model
    # instance as it is. Every brand is still validated; only successes are shared.
    gates_seen: dict[str, Any] = {}
    account_files: dict[str, str] = {}  # account id -> the brand file that lists it
    keep: dict[str, Any] = {}  # the cache's next entries: files that loaded without a problem, nothing else
    data: Any
    for i, name in enumerate(names):
        display = f"{prefix}/{name}"
        ok, data, exact = outcome[i] or (False, [], False)  # every index was filled above
        if not ok:
            problems += data
            continue
        gates = data.get("gates") if type(data) is dict else None
        gates_key = repr(gates) if gates else ""
        shared = gates_seen.get(gates_key) if gates_key else None
        try:
            brand: Brand = _validated(Brand, data if shared is None else {**data, "gates": shared}, display)
        except ConfigError as exc:
            problems += exc.problems
            continue
        if gates_key and shared is None:
            gates_seen[gates_key] = brand.gates
        stem = name.rpartition(".")[0]
        if brand.brand_id != stem:
            problems.append(f"{display}: brand_id: {brand.brand_id!r} must equal the file name {stem!r}")
            continue
        if brand.brand_id in brands:
            problems.append(f"{display}: brand_id: {brand.brand_id!r} is defined twice")
            continue
        if brand.has_overrides():
            # The overrides as parsed: equal texts validate to equal overrides, so one check (and one
            # policy digest) serves every brand sharing them; cheaper than dumping each model.
            key = override_keys[brand.brand_id] = repr((gates_key, data.get("requires_approval")))
            if playbook is not None and brand.gates and key not in valid_overrides:
                try:
                    for stage_id in brand.gates:
                        effective_stage(playbook.stage(stage_id), brand)
                except ValidationError as exc:
                    problems += format_validation_error(f"{display}: gates.{stage_id}", exc)
                    override_keys.pop(brand.brand_id)
                    continue
                valid_overrides.add(key)  # only success is shared: an error names its own file
        brands[brand.brand_id] = brand
        for account in brand.accounts:
            # Rows of a multi-account export go to the brand listing their account: one brand only.
            owner = account_files.setdefault(account, display)
            if owner != display:
                problems.append(
                    f"{display}: accounts: {account!r} is also listed by {owner} (an account belongs to one brand)"
                )
        file_digest = digests[i]
        if file_digest is not None and exact:
            keep[file_digest] = data
    if cache_path is not None and not every_file:
        if cached is None or not keep.keys() <= cached.keys():
            _write_cache(cache_path, {**(cached or {}), **keep})
    elif cache_path is not None and (cached is None or keep.keys() != cached.keys()):
        _write_cache(cache_path, keep)  # new files parsed, or files gone: pruned to the files present
    return brands, override_keys, problems


def load_settings(configs_dir: Path | str, apply_env: bool) -> tuple[Path, Playbook | None, Onboarding, list[str]]:
    """The resolved configs folder, its playbook and deployment settings, and their problems."""
    root = Path(configs_dir).resolve()
    problems: list[str] = []
    if not root.is_dir():
        raise ConfigError([f"{configs_dir}: no such configs folder"])

    playbook: Playbook | None = None
    steps_path = root / "steps.yaml"
    if not steps_path.exists():
        problems.append(f"{display_path(steps_path, root)}: missing (the STEPS playbook)")
    else:
        try:
            playbook = load_model(Playbook, steps_path, display_path(steps_path, root))
        except ConfigError as exc:
            problems += exc.problems

    onboarding = Onboarding()
    onboarding_path = root / "onboarding.yaml"
    if onboarding_path.exists():
        try:
            onboarding = load_model(Onboarding, onboarding_path, display_path(onboarding_path, root))
            if _PASSWORD_IN_URL.match(onboarding.ledger):
                problems.append(
                    f"{display_path(onboarding_path, root)}: ledger: must not contain a password; "
                    "set BRANDSTEPS_LEDGER_PASSWORD instead"
                )
            metrics_url = onboarding.metrics.url if isinstance(onboarding.metrics, SqlMetrics) else onboarding.metrics
            if _PASSWORD_IN_URL.match(metrics_url):
                field_path = "metrics.url" if isinstance(onboarding.metrics, SqlMetrics) else "metrics"
                problems.append(
                    f"{display_path(onboarding_path, root)}: {field_path}: must not contain a password; "
                    "set BRANDSTEPS_METRICS (the whole URL) in the environment instead"
                )
        except ConfigError as exc:
            problems += exc.problems
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
    playbook_version = _digest(playbook.model_dump(mode="json"))
    digests: dict[str, str] = {}  # brands with identical overrides share one digest
    brand_versions = {}
    for brand_id, key in override_keys.items():
        if key not in digests:
            b = brands[brand_id]
            digests[key] = _digest(
                [playbook_version, b.model_dump(mode="json", include={"gates", "requires_approval"})]
            )
        brand_versions[brand_id] = digests[key]
    return Portfolio(root, playbook, onboarding, brands, playbook_version, brand_versions)


def _load(
    configs_dir: Path | str,
    apply_env: bool,
    files: Callable[[Path], list[str]],
    cache: bool,
    parallel_min: int = PARALLEL_MIN_FILES,
) -> Portfolio:
    """Settings, then the brand files `files(brands_dir)` names (through the parse cache if cache)."""
    root, playbook, onboarding, problems = load_settings(configs_dir, apply_env)
    brands: dict[str, Brand] = {}
    override_keys: dict[str, str] = {}
    brands_dir = root / "brands"
    if not brands_dir.is_dir():
        problems.append(f"{display_path(brands_dir, root)}: missing (one YAML file per brand)")
    else:
        cache_path = cache_file(root) if cache else None
        brands, override_keys, brand_problems = load_brand_files(
            root, files(brands_dir), playbook, cache_path, parallel_min
        )
        problems += brand_problems
    return _assemble(root, playbook, onboarding, brands, override_keys, problems)


def load_portfolio(
    configs_dir: Path | str,
    *,
    apply_env: bool = True,
    cache: bool | None = None,
    parallel_min: int = PARALLEL_MIN_FILES,
) -> Portfolio:
    """Load and validate configs/ as a whole; raise ConfigError listing every problem found.

    cache: use the parse cache of brand files (default: unless BRANDSTEPS_CONFIG_CACHE=off).
    parallel_min: parse brand files in worker processes when at least this many need parsing.
    """
    return _load(configs_dir, apply_env, _brand_files, cache_enabled() if cache is None else cache, parallel_min)


def load_brand_only(configs_dir: Path | str, brand_id: str, *, apply_env: bool = True) -> Portfolio:
    """The portfolio narrowed to one brand: steps.yaml, onboarding.yaml and that brand's file only.

    Validation and policy version are those of a full load (other brands' files are not read, so
    their problems are not reported); brands is empty when the brand has no file.
    """

    def only_this_brand(brands_dir: Path) -> list[str]:
        # Only a slug can name a brand (and a file of brands/): anything else has no file to read.
        names = (
            [f"{brand_id}{suffix}" for suffix in (".yaml", ".yml")] if re.fullmatch(BRAND_ID_PATTERN, brand_id) else []
        )
        return [n for n in names if os.path.lexists(brands_dir / n)]  # both: "defined twice", as in a full load

    return _load(configs_dir, apply_env, only_this_brand, cache=False)


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


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schemas of the config kinds (and configs/imports/*.yaml), for editor completion and checks."""
    from brandsteps.approvals.approvers import ApproversConfig  # built on this module, like the imports package
    from brandsteps.sources.imports.profiles import ImportProfile  # the imports package builds on this module

    return {
        "approvers.schema.json": ApproversConfig.model_json_schema(),
        "steps.schema.json": Playbook.model_json_schema(),
        "brand.schema.json": Brand.model_json_schema(),
        "onboarding.schema.json": Onboarding.model_json_schema(),
        "import-profile.schema.json": ImportProfile.model_json_schema(),
    }


def write_json_schemas(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in json_schemas().items():
        path = out_dir / name
        path.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written
