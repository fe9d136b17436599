"""The tasks' retry condition: the core's one rule (brandsteps.ledger.retries.is_transient) on a failed run's error."""

from __future__ import annotations

from typing import Any

from prefect import Task
from prefect.client.schemas.objects import State, TaskRun

from brandsteps.ledger.retries import is_transient as transient_error


def is_transient(_task: Task[..., Any], _run: TaskRun, state: State[Any]) -> bool:
    """Prefect's retry_condition_fn: retry a run whose error may pass by itself (disk, network, database hiccups)."""
    try:
        state.result()
    except Exception as exc:
        return transient_error(exc)
    return False
