"""Prefect's quote() and its sync-or-async calls, typed as the synchronous flows and tasks here receive them."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar, cast, overload

from prefect.utilities.annotations import quote

T = TypeVar("T")


def quoted(value: T) -> T:
    """The value as a task input that Prefect passes on without walking it for futures.

    A portfolio holds every brand's model and a metrics batch every row: walking them costs each
    task call time that grows with the brands. Prefect unwraps the quote before the task runs, so
    the task receives the value itself, the type this returns.
    """
    return cast(T, quote(value))


@overload
def synchronous(value: Coroutine[Any, Any, T]) -> T: ...  # typed as a coroutine alone, as Automation.read is


@overload
def synchronous(value: T | Coroutine[Any, Any, T]) -> T: ...


def synchronous(value: T | Coroutine[Any, Any, T]) -> T:
    """The result of a Prefect call that returns a coroutine only when called from async code, never from ours."""
    return cast(T, value)
