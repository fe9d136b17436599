"""The config models: the STEPS playbook (steps.yaml), a brand (brands/*.yaml) and deployment (onboarding.yaml)."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from datetime import date
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from brandsteps.catalogue import METRICS, SAMPLE_KEYS, STAGE_IDS, TIERS, StageId
from brandsteps.notify.config import NotifyChannel

Tier = Literal["small", "mid", "large"]
Op = Literal[">=", ">", "<=", "<"]
OnFail = Literal["hold", "recycle", "demote", "exit"]
BRAND_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
MAX_LAG_DAYS = 90  # refunds by payment date settle within weeks; a quarter back is no longer a stage window
TABLE_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$"


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


class StrictModel(BaseModel):
    """A frozen model that refuses unknown keys: a typo in a config file is an error, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Criterion(StrictModel):
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
        description=(
            "Compute the metric over the stage window shifted this many days back"
            " (late-maturing figures such as refunds)"
        ),
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


class Stage(StrictModel):
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


class StageOverride(StrictModel):
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


class Playbook(StrictModel):
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


class Brand(StrictModel):
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
        description=(
            "Kuaishou account, shop or ad-account ids (快手ID, 账户ID)"
            " whose rows in a multi-account export are this brand's"
        ),
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


class SqlMetrics(StrictModel):
    url: str = Field(min_length=1)
    table: str = Field(default="daily_metrics", pattern=TABLE_NAME_PATTERN)


class Onboarding(StrictModel):
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
        description=(
            "local time (HH:MM) on the day after as_of until which a cycle"
            " leaves brands whose data has not arrived undecided"
        ),
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
