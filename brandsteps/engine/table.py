"""Ordered rule tables: rows of (condition, outcome, reason) evaluated for every brand at once, first match wins."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

import numpy as np

F = TypeVar("F")


@dataclass(frozen=True)
class Rule(Generic[F]):
    """One row of a table: when it holds (per brand of the facts F), its outcome, and the reasons it gives.

    reason receives the positions of the brands this row decided (the first row holding for them) and
    returns one text per position: a reason is built only for the brands whose outcome it explains.
    """

    when: str  # the row in words, as docs/design.md#decision-rule lists it
    holds: Callable[[F], np.ndarray]
    outcome: StrEnum
    reason: Callable[[F, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Outcomes:
    """Per brand: the row of the table that decided (len(table) where none held), its outcome and reason ('')."""

    row: np.ndarray
    outcome: np.ndarray  # the outcome's text
    reason: np.ndarray

    @property
    def decided(self) -> np.ndarray:
        """Whether a row of the table held."""
        return np.asarray(self.outcome != "", dtype=bool)


def constant(text: str) -> Callable[[object, np.ndarray], np.ndarray]:
    """A reason that is the same text for every brand."""
    return lambda _facts, pick: np.full(len(pick), text, dtype=object)


def first_match(table: Sequence[Rule[F]], facts: F, n: int) -> Outcomes:
    """Each of n brands' first row of the table that holds, its outcome and that row's reason."""
    holds = [np.broadcast_to(np.asarray(rule.holds(facts), dtype=bool), (n,)) for rule in table]
    row = np.select(holds, np.arange(len(table)), default=len(table)) if n else np.empty(0, dtype=np.int64)
    outcome = np.array([rule.outcome.value for rule in table] + [""], dtype=object)[row]
    reason = np.full(n, "", dtype=object)
    for r, rule in enumerate(table):
        pick = np.flatnonzero(row == r)
        if len(pick):
            reason[pick] = rule.reason(facts, pick)
    return Outcomes(row, outcome, reason)
