"""ConfigError, and pydantic's validation errors worded as 'file: field.path: reason' lines."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from brandsteps.config.models import BRAND_ID_PATTERN, TABLE_NAME_PATTERN


class ConfigError(Exception):
    """One or more configuration problems, each naming the file, the field path and the reason."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


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
_BOUND_WORDS = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}
_PATTERN_MESSAGES = {
    BRAND_ID_PATTERN: "must be a slug of lowercase letters, digits and dashes",
    TABLE_NAME_PATTERN: "must be a table name (letters, digits and _, optionally schema.table)",
}
# Errors about a value the user typed: the message quotes it, so a typo is easy to find.
_SHOWS_INPUT = frozenset(
    {
        "float_parsing",
        "float_type",
        "int_parsing",
        "int_type",
        "literal_error",
        "date_parsing",
        "date_from_datetime_parsing",
    }
)
# pydantic's internal branch names in an error's location: not part of the user's field path
_INTERNAL_LOC_PARTS = frozenset(
    {"function-after[_threshold_in_range()]", "str", "constrained-str", "SqlMetrics", "[key]"}
)


def _loc_to_path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _INTERNAL_LOC_PARTS:
            continue
        else:
            out += ("." if out else "") + str(part)
    return out


def _reason(err: Mapping[str, Any]) -> str:
    """The error's reason in the project's words (pydantic's own, lower-cased, for kinds not worded here)."""
    kind = err["type"]
    ctx = err.get("ctx", {})
    if kind in _MESSAGES:
        return _MESSAGES[kind]
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')}"
    if kind == "string_pattern_mismatch":
        return _PATTERN_MESSAGES.get(str(ctx.get("pattern", "")), "has an invalid form")
    if kind in _BOUND_WORDS:
        return f"must be {_BOUND_WORDS[kind]} {next(iter(ctx.values()), '')}"
    if kind in {"too_short", "string_too_short"}:
        return "must not be empty"
    if kind == "string_too_long":
        return f"is too long (at most {ctx.get('max_length')} characters)"
    if kind == "value_error":
        return str(err.get("msg", "")).removeprefix("Value error, ")
    return str(err.get("msg", "is invalid")).lower()


def _describe(err: Mapping[str, Any]) -> str:
    msg = _reason(err)
    value = err.get("input")
    if err["type"] in _SHOWS_INPUT and isinstance(value, (str, int, float)):
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
