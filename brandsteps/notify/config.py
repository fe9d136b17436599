"""The `notify:` channels of onboarding.yaml: chat robots named by where their URL and secret live, never by value."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

ChannelKind = Literal["wecom", "dingtalk", "feishu"]
EventKind = Literal["awaiting_approval", "overdue", "demoted", "exited", "digest", "escalation"]
EVENT_KINDS: tuple[EventKind, ...] = get_args(EventKind)
SIGNING_KINDS = frozenset({"dingtalk", "feishu"})  # 企业微信 group robots do not sign: the key in the URL is the secret

# Upper case only: a DingTalk secret (SEC + hex) or a Feishu one (mixed case) pasted here is refused, and never echoed.
ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,127}")
BLOCK_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,127}")  # Prefect block document names: lowercase letters, digits, dashes
_LOOKS_LIKE_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://|^www\.|[/?=]")


@dataclass(frozen=True)
class SecretRef:
    """Where a channel's URL or signing secret lives: an environment variable or a Prefect Secret block."""

    source: Literal["env", "block"]
    name: str

    def describe(self) -> str:
        return f"environment variable {self.name}" if self.source == "env" else f"Secret block {self.name!r}"


def _reference(value: Any, field_name: str) -> Any:
    """The name of an environment variable (*_env) or Secret block (*_block); a URL or value is refused, unrepeated."""
    if not isinstance(value, str):
        return value  # pydantic's own type error words it
    is_env = field_name.endswith("_env")
    place = "an environment variable" if is_env else "a Prefect Secret block"
    if _LOOKS_LIKE_URL.search(value):
        raise ValueError(
            "is a URL: webhook URLs hold their key and never sit in YAML; "
            f"put it in {place} and write that name in {field_name}"
        )
    if not (ENV_NAME if is_env else BLOCK_NAME).fullmatch(value):
        rule = "A-Z, 0-9 and _" if is_env else "lowercase letters, digits and dashes"
        raise ValueError(f"must be the name of {place} ({rule}), not the value itself")
    return value


class NotifyChannel(BaseModel):
    """One chat robot that receives the cycle's alerts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ChannelKind = Field(
        description="wecom: 企业微信 group robot; dingtalk: 钉钉 custom robot; feishu: 飞书 custom bot"
    )
    name: str | None = Field(
        default=None, min_length=1, max_length=80, description="a label for logs and the notifications artifact"
    )
    url_env: str | None = Field(
        default=None, description="environment variable holding the webhook URL (with its key or token)"
    )
    url_block: str | None = Field(
        default=None, description="Prefect Secret block holding the webhook URL, instead of url_env"
    )
    secret_env: str | None = Field(
        default=None, description="environment variable holding the signing secret (dingtalk, feishu)"
    )
    secret_block: str | None = Field(
        default=None, description="Prefect Secret block holding the signing secret, instead of secret_env"
    )
    events: list[EventKind] = Field(
        default_factory=lambda: list(EVENT_KINDS), min_length=1, description="what this channel receives (default: all)"
    )
    # Declared only to refuse them with a useful message: values never sit in YAML (not in the schema, never dumped).
    url: SkipJsonSchema[Any] = Field(default=None, exclude=True)
    secret: SkipJsonSchema[Any] = Field(default=None, exclude=True)

    @field_validator("url", "secret", mode="before")
    @classmethod
    def _no_values(cls, value: Any, info: ValidationInfo) -> None:
        if value is not None:
            raise ValueError(
                f"must not sit in YAML: put it in an environment variable and name that in {info.field_name}_env "
                f"(or in a Prefect Secret block named in {info.field_name}_block)"
            )
        return None

    @field_validator("url_env", "secret_env", "url_block", "secret_block", mode="before")
    @classmethod
    def _a_name(cls, value: Any, info: ValidationInfo) -> Any:
        return _reference(value, str(info.field_name))

    @field_validator("events")
    @classmethod
    def _each_once(cls, values: list[str]) -> list[str]:
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise ValueError(f"lists {', '.join(repeated)} twice")
        return values

    @model_validator(mode="after")
    def _one_place_each(self) -> NotifyChannel:
        if (self.url_env is None) == (self.url_block is None):
            raise ValueError(
                "needs exactly one of url_env (an environment variable) or url_block (a Prefect Secret block) "
                "for the webhook URL"
            )
        if self.secret_env is not None and self.secret_block is not None:
            raise ValueError("give the signing secret once: secret_env or secret_block, not both")
        if self.kind not in SIGNING_KINDS and self.signing_secret is not None:
            raise ValueError(
                "wecom robots do not sign (the key in the URL is their secret): remove secret_env/secret_block"
            )
        return self

    @property
    def webhook(self) -> SecretRef:
        return SecretRef("env", self.url_env) if self.url_env is not None else SecretRef("block", str(self.url_block))

    @property
    def signing_secret(self) -> SecretRef | None:
        if self.secret_env is not None:
            return SecretRef("env", self.secret_env)
        return SecretRef("block", self.secret_block) if self.secret_block is not None else None

    @property
    def label(self) -> str:
        """How logs and the artifact name the channel: its name, else its kind and where its URL lives (not the URL)."""
        return self.name or f"{self.kind}:{self.url_env or self.url_block}"
