"""Approvers' TOTP secrets: from their environment variable, else from a Prefect Secret block named like it."""

from __future__ import annotations

import os
from typing import Any, cast

from brandsteps.approvals.approvers import secret_block_name


def totp_secret(env_name: str, use_blocks: bool = True) -> str | None:
    """The secret in env_name, else in the Secret block `secret_block_name(env_name)` (which needs a Prefect API).

    None if neither has one. The value never leaves the caller's check: it is not logged, returned from a
    task, or put in a message.
    """
    value = os.environ.get(env_name, "").strip()
    if value or not use_blocks:
        return value or None
    from prefect.blocks.system import Secret

    try:
        block = cast(Any, Secret.load(secret_block_name(env_name)))  # the sync call returns the block itself
    except ValueError:  # no block of that name: Prefect says so with a ValueError
        return None
    stored = block.get()
    return stored.strip() if isinstance(stored, str) and stored.strip() else None
