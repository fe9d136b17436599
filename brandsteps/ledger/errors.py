"""The ledger's errors, whose messages never hold a password."""

from __future__ import annotations

import os
import re

_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][\w+.-]*://[^:/@\s]*:)([^@\s]+)(@)")
_SECRET_ENV = ("BRANDSTEPS_LEDGER_PASSWORD", "PGPASSWORD")


def redact(text: str) -> str:
    """The text with every URL password and every secret from the environment replaced by ***."""
    out = _URL_PASSWORD.sub(r"\1***\3", text)
    for var in _SECRET_ENV:
        secret = os.environ.get(var)
        if secret and len(secret) >= 3:
            out = out.replace(secret, "***")
    return out


class LedgerError(Exception):
    """The ledger could not be opened or written; the message never contains a password.

    transient: the database was unreachable for a while, and a later try may get through.
    """

    def __init__(self, message: str, transient: bool = False):
        super().__init__(redact(message))
        self.transient = transient


class ApprovalInputError(LedgerError):
    """An approval's brand, reviewer or reason is empty, too long or holds control characters."""


class NotAwaitingApproval(LedgerError):
    """The brand is not awaiting approval (never was, or someone decided first): the answer changes nothing."""


class CodeAlreadyUsed(LedgerError):
    """The approver already used this TOTP code (or a later one): a replayed code proves nothing."""
