"""A cycle in words: its summary lines, the stage funnel, and a long run's progress on the terminal."""

from __future__ import annotations

import sys
from typing import Any

from brandsteps.catalogue import EXITED, GRADUATED, STAGE_ORDER
from brandsteps.engine.cycle import CycleSummary
from brandsteps.wording import counted

STAGE_TITLES = {
    "affiliate_trial": "1 Affiliate trial",
    "public_traffic": "2 Public traffic",
    "self_broadcast": "3 Self-broadcast",
    "private_repurchase": "4 Private repurchase",
    "channel_exclusive": "5 Channel exclusive",
    GRADUATED: "Graduated",
    EXITED: "Exited",
}


def funnel_rows(funnel: dict[str, int]) -> list[dict[str, Any]]:
    total = sum(funnel.values()) or 1
    return [
        {"stage": STAGE_TITLES[s], "brands": funnel.get(s, 0), "share": f"{funnel.get(s, 0) / total:.0%}"}
        for s in STAGE_ORDER
    ]


def funnel_text(funnel: dict[str, int]) -> str:
    width = max(funnel.values() or [1]) or 1
    lines = []
    for s in STAGE_ORDER:
        n = funnel.get(s, 0)
        lines.append(f"  {STAGE_TITLES[s]:<22} {n:>6}  {'█' * max(0, round(30 * n / width))}")
    return "\n".join(lines)


NAMED_LIMIT = 20  # brands named in one line of the summary; the rest are counted


def _named(ids: list[str]) -> str:
    more = len(ids) - NAMED_LIMIT
    return ", ".join(ids[:NAMED_LIMIT]) + (f" and {more} more" if more > 0 else "")


def summary_lines(summary: CycleSummary) -> list[str]:
    """What a cycle did, one fact a line: the cycle-summary artifact's lines and `brandsteps run`'s (one rendering)."""
    rebuilt = summary.recorded is not None  # a rerun: the day as the ledger holds it
    decided = summary.recorded if summary.recorded is not None else summary.decided
    verdicts = ", ".join(f"{k} {v}" for k, v in summary.verdicts.items() if v)
    lines = [f"Decided {counted(decided, 'brand')}" + (f": {verdicts}." if verdicts else ".")]
    if decided:
        moves = ", ".join(f"{k} {v}" for k, v in summary.actions.items() if v and k != "hold")
        hold = summary.actions.get("hold", 0)
        lines.append(f"Moves: {moves or 'none'}" + (f" ({counted(hold, 'brand')} hold)." if hold else "."))
    if summary.already_decided:
        lines.append(
            f"{summary.already_decided} of them were decided by an earlier run of this day: "
            "this run changed nothing for them."
            if rebuilt
            else f"{counted(summary.already_decided, 'brand')} already decided for this day: nothing changed for them."
        )
    if summary.later_decided:
        lines.append(f"{counted(summary.later_decided, 'brand')} skipped: a later day is already decided.")
    if summary.conflicts:
        lines.append(f"{counted(summary.conflicts, 'brand')} skipped: another cycle changed them while this one ran.")
    if summary.quarantined_rows:
        first = "; ".join(summary.quarantine_first)
        more = "; …" if summary.quarantined_rows > len(summary.quarantine_first) else ""
        listed = f": {first}{more}" if first else ""
        lines.append(
            f"Quarantined {counted(summary.quarantined_rows, 'metric row')}{listed} "
            "(all of them: the quarantined-rows artifact)."
        )
    if summary.errors:
        lines.append(f"ERROR (data failed validation): {_named(summary.errors)}.")
    if summary.unknown_brands_rows:
        known = f": {_named(summary.unknown_brands)}" if summary.unknown_brands else ""
        lines.append(
            f"{counted(summary.unknown_brands_rows, 'metric row')} of brands no config knows, left out{known}."
        )
    if summary.overdue:
        lines.append(f"Overdue (past max_days_in_stage): {_named(summary.overdue)}.")
    return lines


def summary_markdown(summary: CycleSummary) -> str:
    rows = "\n".join(f"| {r['stage']} | {r['brands']} | {r['share']} |" for r in funnel_rows(summary.funnel))
    notes = "\n".join(f"- {line}" for line in summary_lines(summary))
    return f"# Onboarding cycle {summary.as_of}\n\n{notes}\n\n| stage | brands | share |\n|---|---:|---:|\n{rows}\n"


def stage_sort_key(stage: str) -> int:
    """A stage's place in the funnel; an unknown stage after every known one."""
    return STAGE_ORDER.index(stage) if stage in STAGE_ORDER else len(STAGE_ORDER)


def print_progress(done: int, total: int, line: str) -> None:
    """Progress of a long run on stderr: one line rewritten in place on a terminal, every tenth step in a log."""
    if sys.stderr.isatty():
        sys.stderr.write(f"\r  [{done:>4}/{total}] {line[:110]:<110}" + ("\n" if done == total else ""))
    elif done == total or done % max(1, total // 10) == 0:
        sys.stderr.write(f"  [{done:>4}/{total}] {line}\n")
    sys.stderr.flush()
