"""Typed flow parameters whose JSON schema lets the server refuse a bad value before a run starts."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import Field

# The server checks a run's parameters against the schema, but not JSON Schema's `format: date`;
# a pattern it does check, so "the 3rd of January" is refused at run creation, naming the parameter.
_ISO_DAY = {"pattern": r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$"}

Day = Annotated[date, Field(json_schema_extra=_ISO_DAY)]
DayOrYesterday = Annotated[date | None, Field(json_schema_extra=_ISO_DAY)]
