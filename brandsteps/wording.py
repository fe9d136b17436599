"""Small pieces of the wording every report, artifact and terminal line shares."""

from __future__ import annotations

__all__ = ["counted"]


def counted(count: int, word: str) -> str:
    """'1 brand', '3 brands', '1,204 brand-days': the count with separators, the word in the plural it needs."""
    return f"{count:,} {word}{'' if count == 1 else 's'}"
