"""What a gate decided on, as arrays, and its rendering as the ledger's criteria and gmv_factors JSON."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from functools import partial
from typing import Any, get_args

import numpy as np
import pandas as pd

from brandsteps.catalogue import EXITED, GMV_FACTORS, METRICS, Unit

RESULTS = np.array(["pass", "fail", "no_value"], dtype=object)
PASS_, FAIL_, NO_VALUE = 0, 1, 2
NEGATED = {">=": "<", ">": "<=", "<=": ">", "<": ">="}
FACTOR_COLUMNS: tuple[str, ...] = ("gmv", *GMV_FACTORS)
CRITERIA_KEYS: tuple[str, ...] = (
    "role",
    "source_stage",
    "metric",
    "op",
    "threshold",
    "kind",
    "weight",
    "shadow",
    "lag_days",
    "window",
    "value",
    "result",
    "reason",
)


def _plain(values: list[float]) -> list[str]:
    # one inline expression per number: a function call each would cost a third more on a million criteria
    return ["n/a" if v != v else f"{v:.4g}" if -1e4 < v < 1e4 else f"{v:,.0f}" for v in values]


def fmt(values: np.ndarray | pd.Series | Sequence[float]) -> np.ndarray:
    """Numbers for people (4 significant digits, thousands separators; n/a for missing) as an object array."""
    arr = np.asarray(values, dtype=float)
    out = np.empty(arr.shape, dtype=object)
    out[...] = np.asarray(_plain(arr.ravel().tolist()), dtype=object).reshape(arr.shape)
    return out


def _money(values: list[float]) -> list[str]:
    return ["n/a" if v != v else f"¥{v:,.2f}" for v in values]


def _share(values: list[float]) -> list[str]:
    # two decimals at most, and none a round threshold does not need: 17.39%, 25%
    return ["n/a" if v != v else f"{v * 100:.2f}".rstrip("0").rstrip(".") + "%" for v in values]


def _whole(values: list[float]) -> list[str]:
    # counts are whole numbers, but a mean of them (selling_affiliates) is not: 2.5 must not read 2
    return ["n/a" if v != v else f"{v:,.0f}" if v.is_integer() or not -1e4 < v < 1e4 else f"{v:.4g}" for v in values]


UNITS: tuple[str, ...] = get_args(Unit)
_SHOW: tuple[Callable[[list[float]], list[str]], ...] = tuple(
    {"money": _money, "share": _share, "count": _whole, "days": _whole}.get(u, _plain) for u in UNITS
)
_PLAIN_UNIT = UNITS.index("ratio")


def unit_codes(metrics: np.ndarray | Sequence[str]) -> np.ndarray:
    """Each metric's unit (catalogue) as its position in UNITS; a name the catalogue lacks is shown plain."""
    return np.array(
        [
            UNITS.index(METRICS[m].unit) if m in METRICS else _PLAIN_UNIT
            for m in np.asarray(metrics, dtype=object).tolist()
        ],
        dtype=np.int64,
    )


def show_numbers(values: np.ndarray | Sequence[float], units: np.ndarray | np.integer[Any] | int) -> np.ndarray:
    """Values as people read them in their units (unit_codes): ¥3,163.28, 17.39%, 1,500, 2.5; n/a for missing.

    The one formatting of metric values: reasons in the ledger, explain, reports and artifacts.
    """
    arr = np.asarray(values, dtype=float).ravel()
    codes = np.broadcast_to(np.asarray(units, dtype=np.int64), arr.shape)
    out = np.empty(len(arr), dtype=object)
    present = np.flatnonzero(np.bincount(codes, minlength=len(UNITS))) if len(arr) else np.empty(0, dtype=np.int64)
    for code in present:  # a handful of units, each formatted in one pass over its values
        pick = slice(None) if len(present) == 1 else codes == code
        out[pick] = _SHOW[code](arr[pick].tolist())
    return out


def show_number(value: float | None, unit: str) -> str:
    """One value in its unit (show_numbers for a single number)."""
    return (
        "n/a" if value is None else str(_SHOW[UNITS.index(unit) if unit in UNITS else _PLAIN_UNIT]([float(value)])[0])
    )


def show_repeated(values: np.ndarray, units: np.ndarray) -> np.ndarray:
    """show_numbers for values with few distinct numbers per unit (thresholds): each text built once."""
    arr = np.asarray(values, dtype=float)
    codes = np.asarray(units, dtype=np.int64)
    out = np.empty(len(arr), dtype=object)
    for code in np.flatnonzero(np.bincount(codes, minlength=len(UNITS))) if len(arr) else []:
        pick = codes == code
        out[pick] = each_distinct(arr[pick], partial(show_numbers, units=np.int64(code)))
    return out


def each_distinct(values: np.ndarray, to_text: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """to_text(values) as an object array, computed once per distinct value (scores, thresholds, streaks repeat)."""
    return per_distinct(to_text, np.asarray(values))


def per_distinct(build: Callable[..., np.ndarray], *columns: np.ndarray) -> np.ndarray:
    """build(*columns) as an object array, computed once per distinct combination of the columns' values.

    Verdict and action texts quote a brand's streak, score or stage: a handful of distinct
    combinations among 20,000 brands, each text built once and shared.
    """
    if len(columns) == 1:
        distinct, inverse = np.unique(columns[0], return_inverse=True)
        return np.asarray(np.asarray(build(distinct), dtype=object)[inverse.reshape(-1)], dtype=object)
    key = np.zeros(len(columns[0]), dtype=np.int64)
    for column in columns:
        distinct, inverse = np.unique(column, return_inverse=True)
        key = np.unique(key * len(distinct) + inverse.reshape(-1), return_inverse=True)[1].reshape(-1)
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    texts = np.asarray(build(*(np.asarray(c)[first] for c in columns)), dtype=object)
    return np.asarray(texts[inverse.reshape(-1)], dtype=object)


def fmt_repeated(values: np.ndarray) -> np.ndarray:
    """fmt for values with few distinct numbers (thresholds, scores)."""
    return each_distinct(np.asarray(values, dtype=float), fmt)


def ints_text(values: np.ndarray) -> np.ndarray:
    """Integers as text (streaks, days), each distinct value's text built once, as an object array."""
    return each_distinct(values, lambda distinct: np.array([str(v) for v in distinct.tolist()], dtype=object))


def text_frame(columns: dict[str, Any], index: pd.Index | None = None, fresh: bool = False) -> pd.DataFrame:
    """A frame whose text columns stay object columns.

    pandas would copy them into Arrow strings, and JSON or the ledger back out.

    fresh: every array is new and the caller's alone, so the frame keeps them as they are instead
    of copying same-typed columns into one block (a tenth of a 20,000-brand gate's time).
    """
    kept = {
        k: pd.Series(v, dtype=object, copy=not fresh) if isinstance(v, np.ndarray) and v.dtype.kind in "OU" else v
        for k, v in columns.items()
    }
    return pd.DataFrame(kept, index=index, copy=not fresh)


def json_members(frame: pd.DataFrame) -> list[str]:
    """Each row of frame as the members of a JSON object, without its braces ('"a":1,"b":"x"').

    pandas' C encoder writes the records and str.split cuts the array apart at "},{" (as lines only when a text
    holds it): kept for its figure, writing every frame as lines costs 1.3 s more at 100,000 brands.
    """
    if frame.empty:
        return []
    pieces = frame.to_json(orient="records", force_ascii=False)[2:-2].split("},{")
    if len(pieces) != len(frame):
        # records end at "\n" (escaped inside texts); splitlines would also cut at U+2028, U+0085 in a text
        lines = frame.to_json(orient="records", lines=True, force_ascii=False).rstrip("\n").split("\n")
        pieces = [line[1:-1] for line in lines]
    return pieces


def json_records(frame: pd.DataFrame) -> np.ndarray:
    """One JSON object text per row of frame."""
    return np.asarray(["{" + m + "}" for m in json_members(frame)], dtype=object)


def join_groups(groups: np.ndarray, text: np.ndarray, n: int, sep: str) -> np.ndarray:
    """text joined with sep per group position 0..n-1, rows kept in their order; '' for no rows."""
    out = np.full(n, "", dtype=object)
    if len(groups) == 0:
        return out
    if len(groups) > 1 and (groups[1:] < groups[:-1]).any():
        order = np.argsort(groups, kind="stable")
        groups, text = groups[order], text[order]
    new = np.r_[True, groups[1:] != groups[:-1]]
    last = np.r_[new[1:], True]
    starts = np.flatnonzero(new)
    # ufunc add on object arrays concatenates strings in C; groups hold a handful of rows
    out[groups[starts]] = np.add.reduceat(np.where(last, text, text + sep), starts)
    return out


@dataclass(frozen=True)
class Rules:
    """The criteria a set of Evidence refers to, one element per criterion as configured: its role
    (criterion|guardrail), the stage it comes from, metric, op, kind, weight, shadow flag and lag_days."""

    role: np.ndarray
    source_stage: np.ndarray
    metric: np.ndarray
    op: np.ndarray
    kind: np.ndarray
    weight: np.ndarray
    shadow: np.ndarray
    lag_days: np.ndarray

    def __len__(self) -> int:
        return len(self.role)

    @classmethod
    def empty(cls) -> Rules:
        text = np.empty(0, dtype=object)
        return cls(
            text, text, text, text, text, np.empty(0, dtype=float), np.empty(0, dtype=bool), np.empty(0, dtype=np.int64)
        )


_RULE_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Rules))


class _FromRules:
    """An Evidence attribute read from its rules: rules.<its name>[crit], gathered when read."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, evidence: Evidence, owner: type | None = None) -> np.ndarray:
        return np.asarray(getattr(evidence.rules, self.name)[evidence.crit])


@dataclass(frozen=True)
class Evidence:
    """Every evaluated criterion of a set of decisions, one array element per criterion.

    row is the position of the criterion's decision; crit its criterion in rules, whose texts
    (role, source_stage, metric, op, kind) and weight and shadow it reads as attributes of the same
    names; threshold is the one for the brand's tier, then its value and result code; window the days its
    value was computed over ('2026-11-16..2026-11-29', '' for none; None: not known). The texts
    are gathered only when read: a cycle's million criteria rows share a few hundred criteria, and
    gathering five text arrays per row (then concatenating them) was most of a 100,000-brand gate.
    """

    row: np.ndarray
    crit: np.ndarray
    threshold: np.ndarray
    value: np.ndarray
    result: np.ndarray  # PASS_ | FAIL_ | NO_VALUE
    rules: Rules
    window: np.ndarray | None = None

    @classmethod
    def of(
        cls,
        row: np.ndarray,
        role: np.ndarray,
        source_stage: np.ndarray,
        metric: np.ndarray,
        op: np.ndarray,
        threshold: np.ndarray,
        kind: np.ndarray,
        weight: np.ndarray,
        shadow: np.ndarray,
        value: np.ndarray,
        result: np.ndarray,
        lag_days: np.ndarray | None = None,
        window: np.ndarray | None = None,
    ) -> Evidence:
        """Evidence from one array per column (a criterion of its own per row)."""
        lags = np.zeros(len(row), dtype=np.int64) if lag_days is None else np.asarray(lag_days, dtype=np.int64)
        rules = Rules(role, source_stage, metric, op, kind, weight, shadow, lags)
        return cls(row, np.arange(len(row), dtype=np.int64), threshold, value, result, rules, window)

    @classmethod
    def empty(cls) -> Evidence:
        number = np.empty(0, dtype=float)
        index = np.empty(0, dtype=np.int64)
        return cls(index, index, number, number, index, Rules.empty(), np.empty(0, dtype=object))

    def __len__(self) -> int:
        return len(self.row)

    # rules.<name>[crit]: each row's criterion's attribute, gathered when read
    role = _FromRules()
    source_stage = _FromRules()
    metric = _FromRules()
    op = _FromRules()
    kind = _FromRules()
    weight = _FromRules()
    shadow = _FromRules()
    lag_days = _FromRules()

    def take(self, pick: np.ndarray | slice) -> Evidence:
        """The criteria selected by a mask or positions (rows keep their decision positions)."""
        window = None if self.window is None else self.window[pick]
        return Evidence(
            self.row[pick],
            self.crit[pick],
            self.threshold[pick],
            self.value[pick],
            self.result[pick],
            self.rules,
            window,
        )

    def windows(self) -> np.ndarray:
        """Each criterion's window text ('' where not known)."""
        return np.full(len(self), "", dtype=object) if self.window is None else np.asarray(self.window, dtype=object)

    def reasons(self) -> np.ndarray:
        """'refund_rate 41% > 30%', 'guardrail public_traffic: paid_roi 1.2 < 1.5', 'shadow aov has no value'."""
        if len(self) == 0:
            return np.empty(0, dtype=object)
        rules = self.rules
        # the prefix is the criterion's: built once per criterion, then gathered per row
        prefix = np.where(rules.role == "guardrail", "guardrail " + rules.source_stage + ": ", "")
        prefix = np.asarray(np.where(rules.shadow, "shadow " + prefix, prefix), dtype=object)[self.crit]
        # values in their metric's unit, as the tables show them: refund_rate 17.39% < 25%, gpm ¥3,163.28
        units = unit_codes(rules.metric)[self.crit]
        columns = zip(
            prefix.tolist(),
            self.metric.tolist(),
            show_numbers(self.value, units).tolist(),
            self.op.tolist(),
            show_repeated(self.threshold, units).tolist(),
            self.result.tolist(),
            strict=True,
        )
        # one text built per criterion (a million at 100,000 brands): one f-string, not five array additions
        texts = [
            f"{pre}{m} has no value" if r == NO_VALUE else f"{pre}{m} {v} {o if r == PASS_ else NEGATED[o]} {t}"
            for pre, m, v, o, t, r in columns
        ]
        out = np.asarray(texts, dtype=object)
        lag = np.asarray(rules.lag_days, dtype=np.int64)[self.crit]
        lagged = np.flatnonzero(lag > 0)
        if len(lagged):  # a lagged value is read over an older window: the reason says how much older
            out[lagged] = out[lagged] + np.array([f" (lagged {k} days)" for k in lag[lagged].tolist()], dtype=object)
        return out


def concat_evidence(parts: Sequence[Evidence], offsets: Sequence[int]) -> Evidence:
    """Parts of several decision frames as one, their rows shifted by each frame's offset.

    Parts that refer to the same Rules (every stage of one portfolio's cycle) keep referring to
    them; otherwise their rules are concatenated too and each part's criteria shifted to match.
    """
    kept = [(p, off) for p, off in zip(parts, offsets, strict=True) if len(p)]
    if not kept:
        return Evidence.empty()
    row = np.concatenate([p.row + off for p, off in kept])
    threshold, value, result = (
        np.concatenate([getattr(p, n) for p, _ in kept]) for n in ("threshold", "value", "result")
    )
    window = None if all(p.window is None for p, _ in kept) else np.concatenate([p.windows() for p, _ in kept])
    rules = kept[0][0].rules
    if all(p.rules is rules for p, _ in kept):
        crit = np.concatenate([p.crit for p, _ in kept])
    else:
        starts = np.r_[0, np.cumsum([len(p.rules) for p, _ in kept])[:-1]].tolist()
        crit = np.concatenate([p.crit + s for (p, _), s in zip(kept, starts, strict=True)])
        rules = Rules(**{n: np.concatenate([getattr(p.rules, n) for p, _ in kept]) for n in _RULE_FIELDS})
    return Evidence(row, crit, threshold, value, result, rules, window)


@dataclass(frozen=True)
class Decided:
    """Decisions before they are recorded: one row per brand, the criteria behind them, GMV factors.

    decisions: the ledger's columns except criteria and gmv_factors (positional index).
    factors: gmv and the five GMV factors per decision (NaN = not measured).
    factor_notes: per decision, JSON members added to gmv_factors (the diagnosis), or None.
    """

    decisions: pd.DataFrame
    evidence: Evidence
    factors: pd.DataFrame
    factor_notes: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.decisions)

    @classmethod
    def empty(cls) -> Decided:
        return cls(pd.DataFrame(), Evidence.empty(), pd.DataFrame(columns=list(FACTOR_COLUMNS), dtype=float))

    def with_notes(self, notes: np.ndarray) -> Decided:
        return replace(self, factor_notes=notes)


def combine(parts: Sequence[Decided]) -> Decided:
    """Several cohorts' decisions as one, in order (criteria rows follow their decisions)."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return Decided.empty()
    if len(parts) == 1:
        return parts[0]
    sizes = [len(p) for p in parts]
    offsets = np.r_[0, np.cumsum(sizes)[:-1]].tolist()
    notes = None
    if any(p.factor_notes is not None for p in parts):
        notes = np.concatenate(
            [p.factor_notes if p.factor_notes is not None else np.full(len(p), None, dtype=object) for p in parts]
        )
    return Decided(
        pd.concat([p.decisions for p in parts], ignore_index=True),
        concat_evidence([p.evidence for p in parts], offsets),
        pd.concat([p.factors for p in parts], ignore_index=True),
        notes,
    )


RENDER_CHUNK = 200_000  # criteria per encoder call: bounds the transient texts of a 100,000-brand cycle


def criteria_json(evidence: Evidence, n: int) -> np.ndarray:
    """Each decision's criteria as one JSON array (keys CRITERIA_KEYS), without a loop over decisions.

    Encoded a chunk of whole decisions at a time: the texts in flight stay a few tens of MB.
    """
    out = np.full(n, "[]", dtype=object)
    if len(evidence) == 0:
        return out
    if len(evidence) > 1 and (evidence.row[1:] < evidence.row[:-1]).any():
        evidence = evidence.take(np.argsort(evidence.row, kind="stable"))
    cuts = np.searchsorted(evidence.row, evidence.row[::RENDER_CHUNK][1:], side="left")
    for part in np.split(np.arange(len(evidence)), cuts):  # a handful of chunks, not decisions
        chunk = evidence.take(part)
        has = np.unique(chunk.row)
        out[has] = _criteria_arrays(chunk, n)[has]
    return out


_FIXED_KEYS = ("role", "source_stage", "metric", "op", "threshold", "kind", "weight", "shadow", "lag_days")


def _criteria_arrays(evidence: Evidence, n: int) -> np.ndarray:
    """criteria_json of one chunk. The members fixed by the rule (role to shadow) repeat across brands:
    each distinct set is encoded once, and only value, result and reason are encoded per criterion."""
    # a criterion fixes all of them but the threshold (one per tier): (criterion, threshold) pairs are
    # encoded once each; two pairs with equal members encode to the same text, so the output is as
    # if keyed on the members themselves
    thresholds = pd.factorize(evidence.threshold, use_na_sentinel=False)[0].astype(
        np.int64
    )  # NaN a code of its own, not -1
    key = evidence.crit.astype(np.int64) * (int(thresholds.max()) + 1) + thresholds
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    heads_of = evidence.take(first)
    fixed = {k: getattr(heads_of, k) for k in _FIXED_KEYS}
    heads = json_members(
        pd.DataFrame({k: pd.Series(v, dtype=object if v.dtype == object else v.dtype) for k, v in fixed.items()})
    )
    varying = pd.DataFrame(
        {
            "window": pd.Series(evidence.windows(), dtype=object),
            "value": evidence.value,
            "result": pd.Series(RESULTS[evidence.result], dtype=object),
            "reason": pd.Series(evidence.reasons(), dtype=object),
        },
        copy=False,
    )
    texts = [
        f"{{{h},{v}}}"
        for h, v in zip(
            np.asarray(heads, dtype=object)[inverse.reshape(-1)].tolist(), json_members(varying), strict=True
        )
    ]
    return np.asarray("[" + join_groups(evidence.row, np.asarray(texts, dtype=object), n, ",") + "]", dtype=object)


def factors_json(decided: Decided) -> np.ndarray:
    """Each decision's gmv_factors JSON: gmv and the five factors, plus its notes; '{}' for exited brands."""
    frame = decided.factors.reindex(columns=list(FACTOR_COLUMNS)).reset_index(drop=True)
    lines = json_records(frame)
    if decided.factor_notes is not None:
        noted = pd.notna(decided.factor_notes)
        joined = [
            f"{line[:-1]},{note}}}"
            for line, note in zip(lines[noted].tolist(), decided.factor_notes[noted].tolist(), strict=True)
        ]
        lines[noted] = np.asarray(joined, dtype=object)
    exited = decided.decisions["stage"].to_numpy(dtype=object) == EXITED
    lines[exited] = "{}"
    return lines


def render(decided: Decided) -> pd.DataFrame:
    """The decisions as the ledger records them: with criteria and gmv_factors as JSON text."""
    if len(decided) == 0:
        return pd.DataFrame()
    out = decided.decisions.copy()
    # object columns: as pandas' default string type, 300 MB of JSON at 100,000 brands would be copied in and out again
    out["criteria"] = pd.Series(criteria_json(decided.evidence, len(decided)), index=out.index, dtype=object)
    out["gmv_factors"] = pd.Series(factors_json(decided), index=out.index, dtype=object)
    return out
