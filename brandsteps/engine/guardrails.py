"""Guardrail streaks: per brand and earlier stage, its guardrails' failed evaluations in a row, and the trips."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brandsteps.catalogue import STAGE_IDS
from brandsteps.engine.criteria import Rows
from brandsteps.engine.evidence import FAIL_, NO_VALUE, ints_text, join_groups
from brandsteps.engine.rules import Compiled


@dataclass(frozen=True)
class Trips:
    """Each brand's new streak per guardrail stage, the earliest stage tripped ('' for none), and the trip's reason."""

    streaks: dict[str, np.ndarray]  # by stage id
    tripped: np.ndarray
    reason: np.ndarray


def guardrail_trips(
    comp: Compiled, rows: Rows, streaks: dict[str, np.ndarray], need: dict[str, np.ndarray], valid: np.ndarray
) -> Trips:
    """New guardrail streaks per earlier stage, the earliest stage tripped, and its reasons (docs/design.md#guardrails).

    A guardrail stage FAILS an evaluation when any of its guardrails fails with a value; it passes when all have
    values and pass; with a value missing its streak stands still. It trips when its streak reaches need, its
    consecutive_passes as the brand has it. streaks: the streaks before today by stage id; valid: the brands
    whose data the guardrails judge (no data error, data in by the deadline).
    """
    n = len(valid)
    streaks = {s: v.copy() for s, v in streaks.items()}
    tripped = np.full(n, "", dtype=object)
    reasons = np.full(n, "", dtype=object)
    g = comp.guard[rows.crit]
    if not g.any():
        return Trips(streaks, tripped, reasons)
    brand, crit, result = rows.brand[g], rows.crit[g], rows.result[g]
    code = brand * len(STAGE_IDS) + comp.source_code[crit]
    size = n * len(STAGE_IDS)
    seen = np.bincount(code, minlength=size).reshape(n, len(STAGE_IDS)) > 0
    failed = np.bincount(code[result == FAIL_], minlength=size).reshape(n, len(STAGE_IDS)) > 0
    missing = np.bincount(code[result == NO_VALUE], minlength=size).reshape(n, len(STAGE_IDS)) > 0
    untripped = np.ones(n, dtype=bool)
    for j, stage_id in enumerate(STAGE_IDS):  # five fixed stages, not brands
        f = failed[:, j] & valid
        ok = seen[:, j] & ~missing[:, j] & ~f & valid
        streaks[stage_id] = np.where(f, streaks[stage_id] + 1, np.where(ok, 0, streaks[stage_id]))
        hit = f & (streaks[stage_id] >= need[stage_id]) & untripped
        if hit.any():
            pick = (comp.source_code[crit] == j) & (result == FAIL_) & hit[brand]
            why = join_groups(brand[pick], rows.reasons(comp, np.flatnonzero(g)[pick]), n, "; ")
            detail = np.array([w.replace(f"guardrail {stage_id}: ", "") for w in why[hit]], dtype=object)
            tripped[hit] = stage_id
            untripped &= ~hit
            failures = ints_text(streaks[stage_id][hit])
            reasons[hit] = "guardrail " + stage_id + " failed " + failures + " evaluations in a row (" + detail + ")"
    return Trips(streaks, tripped, reasons)
