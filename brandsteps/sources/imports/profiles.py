"""Import profiles as validated models: which export headers fill which base columns, in which unit."""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from brandsteps.catalogue import BASE_COLUMNS
from brandsteps.config import StrictModel

__all__ = [
    "AGGREGATES",
    "MONEY_COLUMNS",
    "OPS",
    "TIME_COLUMNS",
    "UNITS",
    "UNIT_SCALE",
    "ColumnSpec",
    "Condition",
    "ImportProfile",
    "alternatives",
    "column_kind",
    "header_key",
    "unit_from_note",
]

UNITS: tuple[str, ...] = ("yuan", "fen", "li", "second", "minute", "hour", "count")
AGGREGATES: tuple[str, ...] = ("sum", "count_distinct", "max", "last")
OPS: tuple[str, ...] = (">", ">=", "<", "<=", "==", "!=", "in")
EXCLUSIVE_ITEMS = "exclusive_items"  # the only value of `op: in`: the brand's own list of item ids

# The unit each base column is stored in: money in yuan, time in minutes, the rest as counted.
MONEY_COLUMNS: frozenset[str] = frozenset(
    {"gmv", "gmv_self", "gmv_affiliate", "gmv_exclusive", "refund_amount", "commission", "ad_spend", "ad_gmv"}
)
TIME_COLUMNS: frozenset[str] = frozenset({"watch_minutes", "live_minutes"})
_KIND_UNITS: dict[str, tuple[str, ...]] = {
    "money": ("yuan", "fen", "li"),
    "time": ("second", "minute", "hour"),
    "count": ("count",),
}
_DEFAULT_UNIT: dict[str, str] = {"money": "yuan", "time": "minute", "count": "count"}
# Source unit -> (multiply, divide) into the stored unit; two integers keep 12345 fen exactly 123.45.
UNIT_SCALE: dict[str, tuple[int, int]] = {
    "yuan": (1, 1),
    "fen": (1, 100),
    "li": (1, 1000),
    "second": (1, 60),
    "minute": (1, 1),
    "hour": (60, 1),
    "count": (1, 1),
}
# A header's trailing unit note, e.g. 总花费(元), 预估佣金(分), 直播时长(秒): what it says, by column kind.
_NOTE_UNITS: dict[str, dict[str, str]] = {
    "money": {"元": "yuan", "分": "fen", "厘": "li"},
    "time": {"秒": "second", "分": "minute", "分钟": "minute", "小时": "hour"},
    "count": {},
}
_NOTES = ("元", "分", "厘", "秒", "分钟", "小时", "个", "次", "人", "单", "笔", "件")
_NOTE_RE = re.compile(r"^(?P<name>.+?)\((?P<note>" + "|".join(sorted(_NOTES, key=len, reverse=True)) + r")\)$")
_SPACE_RE = re.compile(r"\s+")


def header_key(text: str) -> tuple[str, str]:
    """(name, unit note) of a header as profiles and files compare it.

    NFKC makes fullwidth （）and ASCII () alike, whitespace goes, Latin letters compare caseless
    (达人id = 达人ID), and a trailing unit note is split off so 总花费(元) and 总花费 match.
    """
    key = _SPACE_RE.sub("", unicodedata.normalize("NFKC", text)).casefold()
    m = _NOTE_RE.match(key)
    return (m["name"], m["note"]) if m else (key, "")


def column_kind(column: str) -> str:
    """money, time or count: which units a base column's source may be in."""
    return "money" if column in MONEY_COLUMNS else "time" if column in TIME_COLUMNS else "count"


def unit_from_note(column: str, note: str) -> str | None:
    """The unit a file's header note states for this column, if it states one of the column's kind."""
    return _NOTE_UNITS[column_kind(column)].get(note)


def alternatives(header: str | list[str]) -> tuple[str, ...]:
    """A header field as a tuple: one header, or alternatives in order of preference."""
    return (header,) if isinstance(header, str) else tuple(header)


def _header(value: Any) -> Any:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, list) and value and all(isinstance(v, str) and v.strip() for v in value):
        return [v.strip() for v in value]
    raise ValueError("must be a header or a non-empty list of headers (text)")


def _one_of(allowed: tuple[str, ...]) -> Any:
    # A plain sentence the operator can act on, instead of pydantic's quoted Literal list.
    def check(value: Any) -> Any:
        if value not in allowed:
            raise ValueError(
                f"must be one of {', '.join(allowed)}"
                + (f" (got {value!r})" if isinstance(value, (str, int, float)) else "")
            )
        return value

    return BeforeValidator(check)


def _base_column(value: str) -> str:
    if value not in BASE_COLUMNS:
        raise ValueError(f"unknown base column {value!r} (base columns: {', '.join(BASE_COLUMNS)})")
    return value


def _as_list(value: Any) -> Any:
    # One condition may be written bare; a list of one is the same filter.
    return [value] if isinstance(value, dict) else value


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a number or a text, not true/false")
    return value


Header = Annotated[str | list[str], BeforeValidator(_header)]
Unit = Annotated[Literal["yuan", "fen", "li", "second", "minute", "hour", "count"], _one_of(UNITS)]
Aggregate = Annotated[Literal["sum", "count_distinct", "max", "last"], _one_of(AGGREGATES)]
Op = Annotated[Literal[">", ">=", "<", "<=", "==", "!=", "in"], _one_of(OPS)]
BaseColumn = Annotated[str, AfterValidator(_base_column)]


class Condition(StrictModel):
    """A row filter: the row counts when its cell under `header` compares true with `value`."""

    header: Header
    op: Op
    value: Annotated[float | str, BeforeValidator(_not_bool)] = Field(
        description="a number (compared with the cell as written), a text for == and !=, or exclusive_items for op: in"
    )

    @model_validator(mode="after")
    def _value_fits_op(self) -> Condition:
        if self.op == "in":
            if self.value != EXCLUSIVE_ITEMS:
                raise ValueError(f"op 'in' takes value: {EXCLUSIVE_ITEMS} (the brand's item ids)")
        elif self.op not in ("==", "!=") and isinstance(self.value, str):
            raise ValueError(f"op {self.op!r} compares numbers: value must be a number (got {self.value!r})")
        return self

    @property
    def numeric(self) -> bool:
        """Compare numbers (cells parsed as numbers) rather than texts."""
        return self.op != "in" and not isinstance(self.value, str)


class ColumnSpec(StrictModel):
    """Where one base column's value comes from and how rows of one brand and day combine."""

    header: Header
    unit: Unit | None = Field(
        default=None, description="the source's unit; default yuan for money, minute for time, count otherwise"
    )
    aggregate: Aggregate = "sum"
    where: Annotated[list[Condition], BeforeValidator(_as_list, json_schema_input_type=Condition | list[Condition])] = (
        Field(
            default_factory=list,
            description="one condition or a list of them (all must hold); errors number them where[0], where[1], …",
        )
    )
    share_of: str | None = Field(
        default=None,
        description=(
            "header of the amount that cells written with % (or under a 占比 header) are a share of, on the same row"
        ),
    )

    @property
    def conditions(self) -> tuple[Condition, ...]:
        """Every row filter (all must hold)."""
        return tuple(self.where)


class ImportProfile(StrictModel):
    """configs/imports/<name>.yaml: how to read one kind of export into base columns."""

    description: str = Field(default="", max_length=500)
    match: list[Annotated[str, Field(min_length=1)]] = Field(
        min_length=1, description="the file is this profile's when its header row has all of these"
    )
    date: Header | None = Field(
        default=None,
        description="the day column (alternatives in order); without it the day comes from the title or file name",
    )
    account: Header | None = Field(
        default=None, description="id column(s): a row goes to the brand whose accounts list any of its values"
    )
    columns: dict[BaseColumn, ColumnSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _units_fit_columns(self) -> ImportProfile:
        # One message per profile (pydantic stops at the first); the path is in the text so the
        # loader's "file: field.path: reason" lines read like every other config error.
        for column, spec in self.columns.items():
            kind = column_kind(column)
            if spec.aggregate == "count_distinct":
                if kind != "count":
                    raise ValueError(
                        f"columns.{column}.aggregate: count_distinct counts ids; {column} is {kind}, not a count"
                    )
                if spec.unit not in (None, "count"):
                    raise ValueError(
                        f"columns.{column}.unit: a count_distinct column counts ids; leave unit out or write count"
                    )
            elif spec.unit is not None and spec.unit not in _KIND_UNITS[kind]:
                raise ValueError(
                    f"columns.{column}.unit: {spec.unit} does not fit {column} ({kind}: {', '.join(_KIND_UNITS[kind])})"
                )
            if spec.share_of is not None and kind != "money":
                raise ValueError(f"columns.{column}.share_of: only money columns can be a share of an amount")
        return self

    def unit(self, column: str, note: str = "") -> str:
        """The source unit of a column: the file's header note, else the profile's unit, else the default."""
        return unit_from_note(column, note) or self.columns[column].unit or _DEFAULT_UNIT[column_kind(column)]

    @property
    def match_keys(self) -> frozenset[str]:
        """The match headers as compared with a file's header row."""
        return frozenset(header_key(h)[0] for h in self.match)

    @property
    def uses_exclusive_items(self) -> bool:
        return any(c.op == "in" for spec in self.columns.values() for c in spec.conditions)
