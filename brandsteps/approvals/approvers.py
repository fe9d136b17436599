"""Who may approve: configs/approvers.yaml, and the check of an answer against it (TOTP codes, four eyes)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import pyotp
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from brandsteps.catalogue import StageId
from brandsteps.config import BRAND_ID_PATTERN, Brand, ConfigError, display_path, load_model

APPROVERS_FILE = "approvers.yaml"
ENV_NAME_PATTERN = r"^[A-Z_][A-Z0-9_]{0,127}$"  # upper case, as onboarding.yaml's notify channels name theirs
NAME_MAX = 80  # the form's reviewer field takes 2 to 80 characters
CODE_PATTERN = r"^[0-9]{6}$"
# RFC 6238 §5.2: accept one time step either side for clock drift (a code lives about 90 s), and no more.
VALID_WINDOW = 1
ISSUER = "brandsteps"


def _no_control(value: str) -> str:
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise ValueError("must not contain control characters")
    return value


def _once_each(values: list[str] | None) -> list[str] | None:
    repeated = sorted({v for v in values or [] if (values or []).count(v) > 1})
    if repeated:
        raise ValueError(f"lists {', '.join(repr(v) for v in repeated)} twice")
    return values


def same_person(a: str, b: str) -> bool:
    """Two spellings of one name: case, width and runs of spaces do not make a second person."""
    return _person_key(a) == _person_key(b)


def may_be_owner(name: str, owner: str) -> bool:
    """Whether `name` may be the brand's owner: the same name, or every word of one is in the other.

    王敏 may be 王敏 Wang Min.
    Four eyes errs on the side of refusing: an owner's free-text name is matched however much of it is typed.
    """
    words, owner_words = set(_person_key(name).split()), set(_person_key(owner).split())
    return bool(words and owner_words) and (words <= owner_words or owner_words <= words)


def _person_key(name: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


class Approver(BaseModel):
    """One person who may answer reviews, for some stages and brands, proving it with a TOTP code."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    name: str = Field(min_length=2, max_length=NAME_MAX, description="As typed in the form's reviewer field or `--by`")
    stages: list[StageId] | None = Field(
        default=None, min_length=1, description="Stages whose reviews they may answer (default: every stage)"
    )
    brands: list[str] | None = Field(
        default=None, min_length=1, description="Brand ids they may answer for (default: every brand)"
    )
    totp_secret_env: str = Field(
        description="Environment variable holding their TOTP secret (base32); "
        "or a Prefect Secret block named like it in lowercase with dashes",
    )

    @field_validator("name")
    @classmethod
    def _printable(cls, value: str) -> str:
        return _no_control(value)

    @field_validator("totp_secret_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        # the value is never echoed: a mistake here may well be the secret itself
        if not re.fullmatch(ENV_NAME_PATTERN, value):
            raise ValueError("must be the name of an environment variable, like BRANDSTEPS_TOTP_WANG_MIN")
        if "_" not in value and re.fullmatch(r"[A-Z2-7]{16,}", value):
            raise ValueError(
                "looks like a TOTP secret itself: put the secret in an environment variable and name the variable here"
            )
        return value

    @field_validator("brands")
    @classmethod
    def _brand_ids(cls, values: list[str] | None) -> list[str] | None:
        for value in values or []:
            if not re.fullmatch(BRAND_ID_PATTERN, value):
                raise ValueError(f"{value!r} is not a brand id (lowercase letters, digits and dashes)")
        return _once_each(values)

    @field_validator("stages")
    @classmethod
    def _stages_once(cls, values: list[str] | None) -> list[str] | None:
        return _once_each(values)

    def may_answer(self, brand_id: str, stage: str) -> bool:
        return (self.stages is None or stage in self.stages) and (self.brands is None or brand_id in self.brands)


class ApproversConfig(BaseModel):
    """configs/approvers.yaml: who may approve which stages and brands, and who is told when a review waits too long."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    approvers: list[Approver] = Field(min_length=1)
    escalate_after_hours: float | None = Field(
        default=None,
        gt=0,
        le=24 * 90,
        description="Hours a review may wait before its approvers and the escalation list are told again",
    )
    escalation: list[str] = Field(
        default_factory=list, description="Names or chat mentions told on escalation besides the stage's approvers"
    )

    @field_validator("approvers")
    @classmethod
    def _one_entry_per_person(cls, approvers: list[Approver]) -> list[Approver]:
        first: dict[str, int] = {}
        for i, approver in enumerate(approvers):
            earlier = first.setdefault(_person_key(approver.name), i)
            if earlier != i:
                raise ValueError(
                    f"[{i}] lists {approver.name!r} again (also [{earlier}]): "
                    "one entry per person, with all their stages and brands"
                )
        return approvers

    @field_validator("escalation")
    @classmethod
    def _mentions(cls, values: list[str], info: ValidationInfo) -> list[str]:
        if values and info.data.get("escalate_after_hours", 0) is None:
            raise ValueError("has no effect without escalate_after_hours")
        for value in values:
            if not 1 <= len(value.strip()) <= 100:
                raise ValueError("each entry must be 1 to 100 characters")
            _no_control(value)
        return [v.strip() for v in values]

    def find(self, name: str) -> Approver | None:
        return next((a for a in self.approvers if same_person(a.name, name)), None)

    def answering(self, brand: Brand, stage: str) -> list[Approver]:
        """The approvers who may answer this brand's review in this stage (its owner never does)."""
        return [
            a
            for a in self.approvers
            if a.may_answer(brand.brand_id, stage) and not (brand.owner and may_be_owner(a.name, brand.owner))
        ]


def load_approvers(configs_dir: Path | str, brand_ids: Collection[str] | None = None) -> ApproversConfig | None:
    """configs/approvers.yaml validated, or None when there is none (any name may then approve, as before).

    brand_ids: the brands configs/ defines; an approver's brand that is not one of them is a problem (a typo
    would otherwise leave a brand nobody may approve). Problems name the file and the field path.
    """
    root = Path(configs_dir).resolve()
    path = root / APPROVERS_FILE
    if not path.exists():
        return None
    display = display_path(path, root)
    config: ApproversConfig = load_model(ApproversConfig, path, display)
    if brand_ids is not None:
        known = set(brand_ids)
        problems = [
            f"{display}: approvers[{i}].brands[{j}]: unknown brand {brand!r} (no {root.name}/brands/{brand}.yaml)"
            for i, approver in enumerate(config.approvers)
            for j, brand in enumerate(approver.brands or [])
            if brand not in known
        ]
        if problems:
            raise ConfigError(problems)
    return config


def secret_block_name(env_name: str) -> str:
    """The Prefect Secret block that may hold the secret instead: block names are lowercase with dashes."""
    return env_name.lower().replace("_", "-")


# ---------------------------------------------------------------- checking an answer

RefusalKind = Literal["owner", "unknown", "not_allowed", "no_code", "no_secret", "bad_secret", "wrong_code", "replayed"]
SecretOf = Callable[[str], str | None]


@dataclass(frozen=True)
class Refusal:
    """Why an answer was not accepted: recorded in the ledger and shown to whoever answered (never a secret)."""

    kind: RefusalKind
    reason: str


@dataclass(frozen=True)
class Accepted:
    """An answer that may be recorded: the approver's name as listed, and the time step of the code that proved it."""

    approver: str
    step: int | None  # None without approvers.yaml: nothing was proved


def _no_step_used(_approver: str) -> int | None:
    return None


def check_approval(
    approvers: ApproversConfig | None,
    brand: Brand,
    stage: str,
    by: str,
    code: str | None,
    now: datetime,
    secret_of: SecretOf,
    last_step_of: Callable[[str], int | None] = _no_step_used,
) -> Refusal | Accepted:
    """Whether `by` may answer the review of `brand` in `stage` with this code at `now`.

    Without approvers.yaml anyone may (as before). Otherwise: never the brand's owner, only a listed
    approver for that stage and brand, with the current code of their secret (`secret_of(env name)`),
    one step of drift either way, and never a code as old as one they already used (`last_step_of`).
    """
    if approvers is None:
        return Accepted(by, None)
    if brand.owner and may_be_owner(by, brand.owner):
        return Refusal("owner", "a brand's owner may not approve it (four eyes)")
    approver = approvers.find(by)
    if approver is None:
        return Refusal("unknown", f"{by} is not an approver in {APPROVERS_FILE}")
    if not approver.may_answer(brand.brand_id, stage):
        return Refusal("not_allowed", f"{approver.name} may not approve {brand.brand_id} in {stage}")
    return _check_code(approver, code, now, secret_of, last_step_of)


def _check_code(
    approver: Approver, code: str | None, now: datetime, secret_of: SecretOf, last_step_of: Callable[[str], int | None]
) -> Refusal | Accepted:
    if not code or not code.strip():
        return Refusal(
            "no_code", f"a code is required: the current 6-digit code of {approver.name}'s authenticator app"
        )
    secret = secret_of(approver.totp_secret_env)
    if not secret:
        return Refusal("no_secret", f"no secret in {approver.totp_secret_env} for {approver.name}")
    try:
        step = code_step(secret, code, now)
    except ValueError:  # binascii.Error included: the secret is not base32
        return Refusal(
            "bad_secret", f"the secret in {approver.totp_secret_env} for {approver.name} is not a base32 TOTP secret"
        )
    if step is None:
        return Refusal("wrong_code", "wrong or expired code")
    last = last_step_of(approver.name)
    if last is not None and step <= last:
        return Refusal("replayed", f"this code was already used by {approver.name}: wait for the next one")
    return Accepted(approver.name, step)


def code_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step whose code this is (now's, or one either side), None when it is none of them.

    Spaces and full-width digits are forgiven (`123 456`, `１２３４５６`).
    Raises ValueError for a secret that is not base32.
    """
    digits = "".join(unicodedata.normalize("NFKC", code).split())
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    expected = {
        current + offset: totp.at(now, counter_offset=offset) for offset in range(-VALID_WINDOW, VALID_WINDOW + 1)
    }
    if not re.fullmatch(CODE_PATTERN, digits):
        return None
    matching = [step for step, value in expected.items() if pyotp.utils.strings_equal(value, digits)]
    return max(matching) if matching else None


def new_secret() -> str:
    return pyotp.random_base32()


def enrolment_uri(secret: str, name: str) -> str:
    """The otpauth:// URI an authenticator app reads (from its QR code) to produce the codes of this secret."""
    return pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=ISSUER)


def suggested_env_name(name: str) -> str:
    """BRANDSTEPS_TOTP_<NAME> from the name's ASCII letters and digits (WANG_MIN for Wang Min).

    A name in other scripts gets a placeholder to replace.
    """
    ascii_words = re.findall(r"[A-Za-z0-9]+", unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode())
    return "BRANDSTEPS_TOTP_" + ("_".join(ascii_words).upper() if ascii_words else "NAME")
