"""The decision ledger: one decision per brand and as_of, cycles committed atomically, any SQLAlchemy URL.

`schema` holds the tables; `store` the Ledger and its reads; `cycle_writes` a cycle's one transaction;
`approvals` the answers to reviews; `retries` what is worth another try; `errors` the errors callers catch.
"""

from __future__ import annotations

from brandsteps.ledger.approvals import ApprovalProof, Attempt
from brandsteps.ledger.cycle_writes import WriteResult
from brandsteps.ledger.database import mask_url
from brandsteps.ledger.errors import ApprovalInputError, CodeAlreadyUsed, LedgerError, NotAwaitingApproval, redact
from brandsteps.ledger.retries import is_transient, with_retries
from brandsteps.ledger.schema import (
    ADDED_COLUMNS,
    BRAND_RUN,
    CYCLE,
    approval_attempts,
    brand_state,
    cycles,
    decisions,
    metadata,
    stage_changes,
)
from brandsteps.ledger.store import Ledger

__all__ = [
    "ADDED_COLUMNS",
    "BRAND_RUN",
    "CYCLE",
    "ApprovalInputError",
    "ApprovalProof",
    "Attempt",
    "CodeAlreadyUsed",
    "Ledger",
    "LedgerError",
    "NotAwaitingApproval",
    "WriteResult",
    "approval_attempts",
    "brand_state",
    "cycles",
    "decisions",
    "is_transient",
    "mask_url",
    "metadata",
    "redact",
    "stage_changes",
    "with_retries",
]
