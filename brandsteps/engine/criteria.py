"""Criteria rows: every compiled criterion of a cohort's rule sets, with the brand's value, threshold and result."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from brandsteps.engine.evidence import FAIL_, NO_VALUE, PASS_, RESULTS, Evidence
from brandsteps.engine.rules import OPS, Compiled
from brandsteps.engine.window import stage_windows, window_texts


@dataclass(frozen=True)
class Rows:
    """Criteria rows of a cohort as arrays: brand position, compiled criterion, tier threshold, value, result."""

    brand: np.ndarray
    crit: np.ndarray
    threshold: np.ndarray
    value: np.ndarray
    result: np.ndarray  # PASS_ | FAIL_ | NO_VALUE
    window: np.ndarray  # the days each value was computed over, as text (window_texts)

    def evidence(self, comp: Compiled, pick: np.ndarray | slice = slice(None)) -> Evidence:
        """The rows (all, or those picked) as the ledger records them."""
        # the criteria are referred to by number in the portfolio's one Rules: no texts gathered per row
        return Evidence(
            self.brand[pick],
            self.crit[pick],
            self.threshold[pick],
            self.value[pick],
            self.result[pick],
            comp.rules,
            self.window[pick],
        )

    def reasons(self, comp: Compiled, pick: np.ndarray) -> np.ndarray:
        """Reason texts of the picked rows only: a verdict quotes a few of a cohort's criteria."""
        return self.evidence(comp, pick).reasons()


def compare(value: np.ndarray, thr: np.ndarray, op_code: np.ndarray) -> np.ndarray:
    """Whether each value meets its threshold under its op (op_code indexes OPS); False for a missing value."""
    with np.errstate(invalid="ignore"):
        return np.select(
            [op_code == 0, op_code == 1, op_code == 2, op_code == 3],
            [value >= thr, value > thr, value <= thr, value < thr],
            False,
        )


def results(value: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """The result code of each row: NO_VALUE for a missing value, else PASS_ or FAIL_."""
    return np.where(np.isnan(value), NO_VALUE, np.where(ok, PASS_, FAIL_))


def expand(start: np.ndarray, rule_set: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(brand position, item) for every item of each brand's rule set, brand by brand, without a loop."""
    counts = start[1:][rule_set] - start[:-1][rule_set]
    brand = np.repeat(np.arange(len(rule_set)), counts)
    first = np.cumsum(counts) - counts
    return brand, start[:-1][rule_set][brand] + np.arange(len(brand)) - first[brand]


def metric_table(metrics: pd.DataFrame, rows: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """metrics[names] at rows (one per brand), NaN for a row -1 (no metrics) or a column metrics does not have.

    Only the cohort's rows of the named columns are read, column by column: the whole
    100,000-brand frame is never copied for a stage of 20,000 brands.
    """
    # filled name by name as rows of a (names × brands) array, each written in one run, and handed
    # back transposed: writing columns of a (brands × names) array strides through all of it
    table = np.full((len(names), len(rows)), np.nan)
    has = rows >= 0
    if not has.any():  # no brand has metrics (the frame may have no rows to read)
        return table.T
    for j, name in enumerate(names):
        if name in metrics.columns:
            column = metrics[name].to_numpy(dtype=float)
            table[j] = np.where(has, column.take(np.where(has, rows, 0)), np.nan)
    return table.T


def cohort_rows(
    comp: Compiled,
    rule_set: np.ndarray,
    tier_code: np.ndarray,
    table: np.ndarray,
    windows: tuple[date, np.ndarray, np.ndarray],
) -> Rows:
    """Every criterion row of the cohort, each with its window.

    table: the cohort's metrics (brand × comp.metric_names, see metric_table); windows: (as_of, the date each
    brand entered its stage, its window_days), each criterion's window being its stage's shifted back by its
    lag_days (stage_windows).
    """
    brand, crit = expand(comp.crit_start, rule_set)
    threshold = comp.thr[crit, tier_code[brand]]
    value = table[brand, comp.metric_id[crit]] if table.size else np.full(len(brand), np.nan)
    as_of, entered, window_days = windows
    start, end = stage_windows(as_of, entered[brand], window_days[brand], comp.lag[crit])
    result = results(value, compare(value, threshold, comp.op_code[crit]))
    return Rows(brand, crit, threshold, value, result, window_texts(start, end))


def evaluate_criteria(criteria: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """Attach value, result (pass/fail/no_value) and a reason like 'refund_rate 41% > 30%'."""
    out = criteria.copy()
    rows = metrics.index.get_indexer(pd.Index(out["brand_id"]))
    names, column = np.unique(out["metric"].to_numpy(dtype=str), return_inverse=True)
    value = (
        metric_table(metrics, rows, names.tolist())[np.arange(len(out)), column.reshape(-1)]
        if len(out)
        else np.empty(0)
    )
    thr = out["threshold"].to_numpy(dtype=float)
    op = out["op"].to_numpy(dtype=object)
    result = results(value, compare(value, thr, np.array([OPS.index(o) for o in op], dtype=np.int64)))
    text = {k: out[k].to_numpy(dtype=object) for k in ("role", "source_stage", "metric", "op", "kind")}
    evidence = Evidence.of(
        row=np.arange(len(out)),
        threshold=thr,
        weight=out["weight"].to_numpy(dtype=float),
        shadow=out["shadow"].to_numpy(dtype=bool),
        value=value,
        result=result,
        **text,
    )
    out["value"] = value
    out["result"] = RESULTS[result]
    out["reason"] = evidence.reasons()
    return out
