"""A validated configs folder (Portfolio), each brand's effective stages and its policy version."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from brandsteps.config.models import Brand, Criterion, Onboarding, Playbook, Stage


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
        changes = override.model_dump(exclude={"criteria", "guardrails"}, exclude_none=True)
        changes["criteria"] = _merge_by_metric(stage.criteria, override.criteria)
        changes["guardrails"] = _merge_by_metric(stage.guardrails, override.guardrails)
    if needs_approval:
        changes["requires_approval"] = True
    return stage.model_validate({**stage.model_dump(), **changes})


def policy_digest(payload: Any) -> str:
    """A short digest of a policy (JSON-like, keys sorted): the version recorded with each decision."""
    text = json.dumps(payload, sort_keys=True, default=str, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def playbook_policy_version(playbook: Playbook) -> str:
    """The policy version of brands without overrides."""
    return policy_digest(playbook.model_dump(mode="json"))


def brand_policy_version(playbook_version: str, brand: Brand) -> str:
    """The policy version of a brand with overrides: the playbook's and the brand's gates and approvals."""
    return policy_digest([playbook_version, brand.model_dump(mode="json", include={"gates", "requires_approval"})])
