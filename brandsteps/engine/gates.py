"""The gate engine: verdicts and actions for all brands of one stage at once, each with its reason.

Rules are compiled once per portfolio and stage into flat numpy arrays (one row per criterion of
each policy variant: the playbook's, and one per distinct set of brand overrides). A cohort's
criteria rows are then gathered with index arithmetic, so the cost of a call is a few array
operations whatever the number of brands, and small cohorts (a replay's day) stay cheap too.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from brandsteps.catalogue import BASE_COLUMNS, EXITED, GRADUATED, STAGE_IDS, TIERS, base_columns
from brandsteps.config import Criterion, Portfolio, Stage
from brandsteps.engine.evidence import (
    FACTOR_COLUMNS,
    FAIL_,
    NO_VALUE,
    PASS_,
    RESULTS,
    Decided,
    Evidence,
    Rules,
    each_distinct,
    fmt,
    fmt_repeated,
    join_groups,
    per_distinct,
    render,
    show_numbers,
    text_frame,
    unit_codes,
)
from brandsteps.engine.window import lagged_name, stage_windows, window_texts

# Severity order, most severe first; a cycle's worst verdict is the first of these it contains.
VERDICTS: tuple[str, ...] = ("ERROR", "INCONCLUSIVE", "FAIL", "PASS")
ACTIONS: tuple[str, ...] = ("advance", "hold", "recycle", "demote", "exit", "await_approval", "graduate")
MOVING_ACTIONS = frozenset({"advance", "recycle", "demote", "exit", "graduate"})
GUARD_COLUMNS: tuple[str, ...] = tuple(f"g_{s}" for s in STAGE_IDS)
OPS: tuple[str, ...] = (">=", ">", "<=", "<")


def _str(values: np.ndarray) -> np.ndarray:
    """Integers as text, as an object array (for reasons)."""
    return each_distinct(values, lambda distinct: np.array([str(v) for v in distinct.tolist()], dtype=object))


def _datetimes(values: pd.Series) -> np.ndarray:
    series = values if pd.api.types.is_datetime64_any_dtype(values) else pd.to_datetime(values)
    return np.asarray(series.to_numpy(dtype="datetime64[ns]"))


# ---------------------------------------------------------------- compiled rules


def _stage_params(stage: Stage) -> dict[str, object]:
    return {
        "window_days": stage.window_days,
        "min_days": stage.min_days_in_stage,
        "max_days": float(stage.max_days_in_stage) if stage.max_days_in_stage is not None else np.nan,
        "consecutive": stage.consecutive_passes,
        "pass_score": stage.pass_score,
        "on_fail": stage.on_fail,
        "requires_approval": stage.requires_approval,
    }


GRADUATED_PARAMS: dict[str, object] = {
    "window_days": 28,
    "min_days": 0,
    "max_days": np.nan,
    "consecutive": 1,
    "pass_score": 1.0,
    "on_fail": "hold",
    "requires_approval": False,
}
_PARAM_DTYPES: dict[str, Any] = {
    "window_days": int,
    "min_days": int,
    "max_days": float,
    "consecutive": int,
    "pass_score": float,
    "on_fail": object,
    "requires_approval": bool,
}


EVALUATED: tuple[str, ...] = (*STAGE_IDS, GRADUATED)


@dataclass(frozen=True)
class Compiled:
    """Every stage's rules for every policy variant of a portfolio, as flat arrays.

    Variant 0 is the playbook's; each distinct set of brand overrides (one policy version) is
    another. Rules of stage s and variant v are number s × variants + v; their criteria are rows
    crit_start[r]:crit_start[r + 1] (stage criteria, then each earlier stage's guardrails in stage
    order, as the ledger records them) and their min_sample keys rows sample_start[r]:...
    """

    variants: int
    versions: pd.Index  # the policy version of each variant (0: the playbook's)
    overridden: pd.Index  # brand ids with their own variant
    overridden_variant: np.ndarray  # their variant codes
    params: dict[str, np.ndarray]  # per rule set
    crit_start: np.ndarray
    role: np.ndarray
    source: np.ndarray
    source_code: np.ndarray  # index of the source stage in STAGE_IDS
    metric: np.ndarray
    lag: np.ndarray  # lag_days of each criterion: its metric is read over the window that many days back
    metric_names: (
        np.ndarray
    )  # the distinct window-metrics columns read (lagged_name), in the order metric_id counts them
    metric_id: np.ndarray
    op: np.ndarray
    op_code: np.ndarray
    thr: np.ndarray  # criteria × tiers
    kind: np.ndarray
    must: np.ndarray
    weight: np.ndarray
    shadow: np.ndarray
    deciding: np.ndarray  # non-shadow and (a stage criterion, or any guardrail for graduated brands)
    guard: np.ndarray  # a non-shadow guardrail
    sample_start: np.ndarray
    sample_key: np.ndarray
    sample_names: np.ndarray  # window-sum columns (sum_<key> or days_with_data)
    sample_id: np.ndarray
    sample_min: np.ndarray
    sample_min_text: np.ndarray
    sample_unit: np.ndarray  # unit_codes of each min_sample key (gmv is money, orders a count)
    rules: Rules  # the criteria as Evidence refers to them (by their number here)

    def rule_sets(self, brand_ids: pd.Index | np.ndarray, stage_codes: np.ndarray) -> np.ndarray:
        """The rule set of each brand in its stage (stage_codes index EVALUATED)."""
        codes = np.zeros(len(brand_ids), dtype=np.int64)
        if len(self.overridden):
            pos = self.overridden.get_indexer(pd.Index(brand_ids))
            hit = pos >= 0
            codes[hit] = self.overridden_variant[pos[hit]]
        return np.asarray(stage_codes, dtype=np.int64) * self.variants + codes

    def rule_sets_by_version(
        self, brand_ids: pd.Index, versions: tuple[np.ndarray, Any], stage_codes: np.ndarray
    ) -> np.ndarray:
        """rule_sets, the variant read from each brand's policy version (a cohort's policy_version column, factorized).

        A version names one set of overrides (a digest of the playbook's version and them), so a
        cohort's few distinct versions are looked up instead of each of its brand ids. Should any
        version not be one of this portfolio's, the brands are looked up by id.
        """
        codes, distinct = versions
        variant = self.versions.get_indexer(pd.Index(np.asarray(distinct, dtype=object), dtype=object))
        if (codes < 0).any() or (variant < 0).any():
            return self.rule_sets(brand_ids, stage_codes)
        return np.asarray(np.asarray(stage_codes, dtype=np.int64) * self.variants + variant[codes], dtype=np.int64)


def _compile(portfolio: Portfolio) -> Compiled:
    playbook = portfolio.playbook
    # Brands with the same overrides share a policy version (a digest of them), hence one variant.
    version_codes: dict[str, int] = {}
    representative: list[str | None] = [None]
    ids, codes = [], []
    for brand_id, version in portfolio.brand_versions.items():  # brands with overrides, not all brands
        if version not in version_codes:
            version_codes[version] = len(representative)
            representative.append(brand_id)
        ids.append(brand_id)
        codes.append(version_codes[version])

    params: dict[str, list[object]] = {k: [] for k in GRADUATED_PARAMS}
    crit_start, sample_start = [0], [0]
    items: list[tuple[Criterion, str, str, bool]] = []
    samples: list[tuple[str, float]] = []
    for stage_id in EVALUATED:
        graduated = stage_id == GRADUATED
        stage = None if graduated else playbook.stage(stage_id)
        guard_stages = playbook.stages if graduated else playbook.stages[: STAGE_IDS.index(stage_id)]
        for rep in representative:
            brand = None if rep is None else portfolio.brands[rep]
            eff = None if stage is None else stage if brand is None else portfolio.effective_stage(brand, stage_id)
            for k, v in (GRADUATED_PARAMS if eff is None else _stage_params(eff)).items():
                params[k].append(v)
            if eff is not None:
                items += [(c, "criterion", stage_id, graduated) for c in eff.criteria]
                samples += list(eff.min_sample.items())
            for g in guard_stages:
                rails = g.guardrails if brand is None else portfolio.effective_stage(brand, g.id).guardrails
                items += [(c, "guardrail", g.id, graduated) for c in rails]
            crit_start.append(len(items))
            sample_start.append(len(samples))

    def arr(values: list[Any], dtype: Any = object) -> np.ndarray:
        return np.array(values, dtype=dtype) if values else np.empty(0, dtype=dtype)

    role = arr([r for _, r, _, _ in items])
    source = arr([s for _, _, s, _ in items])
    shadow = arr([c.shadow for c, _, _, _ in items], bool)
    metric = arr([c.metric for c, _, _, _ in items])
    lag = arr([c.lag_days for c, _, _, _ in items], np.int64)
    op = arr([c.op for c, _, _, _ in items])
    thr = np.array([[c.threshold_for(t) for t in TIERS] for c, _, _, _ in items], dtype=float).reshape(
        len(items), len(TIERS)
    )
    kind = arr([c.kind for c, _, _, _ in items])
    sample_min = arr([m for _, m in samples], float)
    sample_key = arr([k for k, _ in samples])
    metric_names, metric_id = np.unique(
        np.array([lagged_name(m, int(k)) for m, k in zip(metric, lag, strict=True)], dtype=str), return_inverse=True
    )
    sample_names, sample_id = np.unique(
        np.array([k if k == "days_with_data" else f"sum_{k}" for k in sample_key], dtype=str), return_inverse=True
    )
    for_graduated = arr([g for _, _, _, g in items], bool)
    return Compiled(
        variants=len(representative),
        versions=_versions(portfolio.playbook_version, list(version_codes)),
        overridden=pd.Index(ids, dtype=object),
        overridden_variant=np.array(codes, dtype=np.int64),
        params={k: np.array(v, dtype=_PARAM_DTYPES[k]) for k, v in params.items()},
        crit_start=np.array(crit_start),
        role=role,
        source=source,
        source_code=arr([STAGE_IDS.index(s) for s in source], np.int64),
        metric=metric,
        lag=lag,
        metric_names=metric_names,
        metric_id=metric_id.astype(np.int64),
        op=op,
        op_code=arr([OPS.index(o) for o in op], np.int64),
        thr=thr,
        kind=kind,
        must=kind == "must",
        weight=arr([c.weight for c, _, _, _ in items], float),
        shadow=shadow,
        deciding=~shadow & ((role == "criterion") | for_graduated),
        guard=~shadow & (role == "guardrail"),
        sample_start=np.array(sample_start),
        sample_key=sample_key,
        sample_names=sample_names,
        sample_id=sample_id.astype(np.int64),
        sample_min=sample_min,
        sample_min_text=show_numbers(sample_min, unit_codes(sample_key)),
        sample_unit=unit_codes(sample_key),
        rules=Rules(
            role=role,
            source_stage=source,
            metric=metric,
            op=op,
            kind=kind,
            weight=arr([c.weight for c, _, _, _ in items], float),
            shadow=shadow,
            lag_days=lag,
        ),
    )


def _versions(playbook_version: str, overridden: list[str]) -> pd.Index:
    """Each variant's policy version; none (brands then looked up by id) if the playbook's is also an override's."""
    versions = pd.Index([playbook_version, *overridden], dtype=object)
    return versions if versions.is_unique else pd.Index([], dtype=object)


_COMPILED: dict[int, tuple[weakref.ref[Portfolio], Compiled]] = {}


def compiled(portfolio: Portfolio) -> Compiled:
    """The portfolio's compiled rules, built once per portfolio object (a replay reuses them every day)."""
    key = id(portfolio)
    entry = _COMPILED.get(key)
    if entry is None or entry[0]() is not portfolio:
        entry = (weakref.ref(portfolio), _compile(portfolio))
        _COMPILED[key] = entry
        weakref.finalize(portfolio, _COMPILED.pop, key, None)
    return entry[1]


def stage_param_for(
    portfolio: Portfolio, brand_ids: pd.Index | np.ndarray, stages: np.ndarray, name: str
) -> np.ndarray:
    """Each brand's value of one stage parameter (window_days, max_days, pass_score, ...) in its stage.

    Brand overrides included, no loop over brands; exited brands get graduated's value.
    """
    comp = compiled(portfolio)
    return np.asarray(comp.params[name][_rule_sets_in_stage(comp, brand_ids, stages)])


def _rule_sets_in_stage(comp: Compiled, brand_ids: pd.Index | np.ndarray, stages: np.ndarray) -> np.ndarray:
    """Each brand's rule set in its current stage; exited brands (not evaluated) get graduated's."""
    codes = (
        pd.Index(EVALUATED).get_indexer(pd.Index(np.asarray(stages, dtype=object), dtype=object)).astype(np.int64)
    )  # -1: exited
    return comp.rule_sets(brand_ids, np.where(codes < 0, EVALUATED.index(GRADUATED), codes))


def _reading(comp: Compiled, brand_ids: pd.Index | np.ndarray, stages: np.ndarray, criteria: np.ndarray) -> np.ndarray:
    """Whether each brand's rule set in its stage holds any of the criteria (a mask over the compiled criteria)."""
    reads = np.r_[0, np.cumsum(criteria)]
    per_rule_set = reads[comp.crit_start[1:]] > reads[comp.crit_start[:-1]]
    return np.asarray(per_rule_set[_rule_sets_in_stage(comp, brand_ids, stages)], dtype=bool)


def uses_metric(
    portfolio: Portfolio, brand_ids: pd.Index | np.ndarray, stages: np.ndarray, metric: str, lag_days: int = 0
) -> np.ndarray:
    """Whether each brand's rules in its stage read `metric` over the window lag_days back (criteria, shadow or not, and guardrails)."""
    comp = compiled(portfolio)
    return _reading(comp, brand_ids, stages, (comp.metric == metric) & (comp.lag == lag_days))


def brands_reading_lag(
    portfolio: Portfolio, brand_ids: pd.Index | np.ndarray, stages: np.ndarray, lag_days: int
) -> np.ndarray:
    """Whether each brand's rules in its stage read any metric over the window lag_days back."""
    comp = compiled(portfolio)
    return _reading(comp, brand_ids, stages, comp.lag == lag_days)


def deciding_inputs(
    portfolio: Portfolio, brand_ids: pd.Index | np.ndarray, stages: np.ndarray
) -> tuple[list[tuple[str, int]], np.ndarray]:
    """The (base column, lag_days) pairs the deciding criteria read, and which of them each brand's rules in its stage need.

    Deciding criteria are those that can set the verdict: a stage's non-shadow criteria, and for
    graduated brands their guardrails. Returns the pairs (by lag, then base column order) and a
    brands × pairs mask.
    """
    comp = compiled(portfolio)
    deciding = np.flatnonzero(comp.deciding)
    pairs = {(column, int(comp.lag[i])) for i in deciding for column in base_columns(str(comp.metric[i]))}
    keys = sorted(pairs, key=lambda k: (k[1], BASE_COLUMNS.index(k[0])))
    position = {key: j for j, key in enumerate(keys)}
    per_criterion = np.zeros((len(comp.metric), len(keys)), dtype=bool)
    for i in deciding:  # the compiled criteria: configuration, not brands
        for column in base_columns(str(comp.metric[i])):
            per_criterion[i, position[(column, int(comp.lag[i]))]] = True
    # a rule set needs what any of its criteria needs: cumulative counts differenced at the rule sets' bounds
    counts = np.vstack([np.zeros((1, len(keys)), dtype=np.int64), np.cumsum(per_criterion, axis=0)])
    per_rule_set = counts[comp.crit_start[1:]] > counts[comp.crit_start[:-1]]
    return keys, np.asarray(per_rule_set[_rule_sets_in_stage(comp, brand_ids, stages)], dtype=bool)


def lagged_metrics(portfolio: Portfolio) -> dict[int, list[str]]:
    """lag_days → the metrics some rule reads over a window that many days back (lag 0 left out), in name order."""
    comp = compiled(portfolio)
    out: dict[int, list[str]] = {}
    for lag, metric in sorted({(int(k), str(m)) for k, m in zip(comp.lag, comp.metric, strict=True) if k > 0}):
        out.setdefault(lag, []).append(metric)
    return out


def window_days_for(portfolio: Portfolio, brand_ids: pd.Index | np.ndarray, stages: np.ndarray) -> np.ndarray:
    """Each brand's window length in its stage (overrides included; exited brands get graduated's)."""
    return stage_param_for(portfolio, brand_ids, stages, "window_days").astype(np.int64)


# ---------------------------------------------------------------- criteria


@dataclass(frozen=True)
class Rows:
    """Criteria rows of a cohort as arrays: brand position, compiled criterion, tier threshold, value, result."""

    brand: np.ndarray
    crit: np.ndarray
    threshold: np.ndarray
    value: np.ndarray
    result: np.ndarray  # PASS_ | FAIL_ | NO_VALUE
    window: np.ndarray | None = None  # the days each value was computed over, as text (window_texts)

    def evidence(self, comp: Compiled, pick: np.ndarray | slice = slice(None)) -> Evidence:
        """The rows (all, or those picked) as the ledger records them."""
        # the criteria are referred to by number in the portfolio's one Rules: no texts gathered per row
        window = None if self.window is None else self.window[pick]
        return Evidence(
            self.brand[pick],
            self.crit[pick],
            self.threshold[pick],
            self.value[pick],
            self.result[pick],
            comp.rules,
            window,
        )

    def reasons(self, comp: Compiled, pick: np.ndarray) -> np.ndarray:
        """Reason texts of the picked rows only: a verdict quotes a few of a cohort's criteria."""
        return self.evidence(comp, pick).reasons()


def _compare(value: np.ndarray, thr: np.ndarray, op_code: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.select(
            [op_code == 0, op_code == 1, op_code == 2, op_code == 3],
            [value >= thr, value > thr, value <= thr, value < thr],
            False,
        )


def _results(value: np.ndarray, ok: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(value), NO_VALUE, np.where(ok, PASS_, FAIL_))


def _expand(start: np.ndarray, rule_set: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(brand position, item) for every item of each brand's rule set, brand by brand, without a loop."""
    counts = start[1:][rule_set] - start[:-1][rule_set]
    brand = np.repeat(np.arange(len(rule_set)), counts)
    first = np.cumsum(counts) - counts
    return brand, start[:-1][rule_set][brand] + np.arange(len(brand)) - first[brand]


def _cohort_rows(comp: Compiled, rule_set: np.ndarray, tier_code: np.ndarray, table: np.ndarray) -> Rows:
    """Every criterion row of the cohort; table: the cohort's metrics (brand × comp.metric_names, see _metric_table)."""
    brand, crit = _expand(comp.crit_start, rule_set)
    tier = tier_code[brand]
    threshold = comp.thr[crit, tier]
    value = table[brand, comp.metric_id[crit]] if table.size else np.full(len(brand), np.nan)
    result = _results(value, _compare(value, threshold, comp.op_code[crit]))
    return Rows(brand, crit, threshold, value, result)


def _with_windows(rows: Rows, comp: Compiled, entered: np.ndarray, window_days: np.ndarray, as_of: date) -> Rows:
    """The rows with each criterion's window: its stage's window shifted back by its lag_days (stage_windows)."""
    start, end = stage_windows(as_of, entered[rows.brand], window_days[rows.brand], comp.lag[rows.crit])
    return replace(rows, window=window_texts(start, end))


def _metric_table(metrics: pd.DataFrame, rows: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """metrics[names] at rows (one per brand), NaN for a row -1 (no metrics) or a column metrics does not have.

    Only the cohort's rows of the named columns are read, column by column: the whole
    100,000-brand frame is never copied for a stage of 20,000 brands.
    """
    # filled name by name as rows of a (names × brands) array, each written in one run, and handed
    # back transposed: writing columns of a (brands × names) array strides through all of it
    table = np.full((len(names), len(rows)), np.nan)
    has = rows >= 0
    if not has.any():
        return table.T
    every = bool(has.all())
    for j, name in enumerate(names):
        if name in metrics.columns:
            column = metrics[name].to_numpy(dtype=float)
            table[j] = column.take(rows) if every else np.where(has, column.take(np.where(has, rows, 0)), np.nan)
    return table.T


def evaluate_criteria(criteria: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """Attach value, result (pass/fail/no_value) and a reason like 'refund_rate 41% > 30%'."""
    out = criteria.copy()
    rows = metrics.index.get_indexer(pd.Index(out["brand_id"]))
    names, column = np.unique(out["metric"].to_numpy(dtype=str), return_inverse=True)
    value = (
        _metric_table(metrics, rows, names.tolist())[np.arange(len(out)), column.reshape(-1)]
        if len(out)
        else np.empty(0)
    )
    thr = out["threshold"].to_numpy(dtype=float)
    op = out["op"].to_numpy(dtype=object)
    result = _results(value, _compare(value, thr, np.array([OPS.index(o) for o in op], dtype=np.int64)))
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


# ---------------------------------------------------------------- decisions


def _next_stage(stage_id: str) -> str:
    i = STAGE_IDS.index(stage_id)
    return STAGE_IDS[i + 1] if i + 1 < len(STAGE_IDS) else GRADUATED


def _verdicts(
    cohort: pd.DataFrame,
    comp: Compiled,
    rows: Rows,
    params: dict[str, np.ndarray],
    sample: tuple[np.ndarray, np.ndarray, np.ndarray],
    err: np.ndarray,
    late: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The verdict (its index in VERDICTS), its reason and the score of every brand of the cohort.

    Aggregation rule, in this order (the first rule that matches decides):
    1. ERROR        if the brand's rows in the window failed validation;
    2. INCONCLUSIVE if its data was not in by the data deadline (not_ready);
    3. INCONCLUSIVE if days in stage < min_days_in_stage;
    4. INCONCLUSIVE if any min_sample window sum is below its minimum or not measured;
    5. INCONCLUSIVE if any deciding criterion's metric has no value;
    6. FAIL         if any must criterion fails;
    7. FAIL         if the weighted share of passing should criteria < pass_score;
    8. PASS         otherwise.
    Shadow criteria are evaluated and recorded but never decide.
    err: each brand's data_error text ('' for none); late: its not_ready text ('' for none).
    """
    n = len(cohort)
    m_error = err != ""
    m_late = (late != "") & ~m_error
    days = cohort["days_in_stage"].to_numpy()
    least_days = params["min_days"]
    m_early = days < least_days

    s_brand, s_sample, s_value = sample
    short = ~(s_value >= comp.sample_min[s_sample])
    m_short = np.bincount(s_brand[short], minlength=n) > 0

    deciding = comp.deciding[rows.crit]
    d_brand = rows.brand[deciding]
    d_crit = rows.crit[deciding]
    d_result = rows.result[deciding]
    no_value = d_result == NO_VALUE
    m_no_value = np.bincount(d_brand[no_value], minlength=n) > 0
    must_fail = (d_result == FAIL_) & comp.must[d_crit]
    m_must = np.bincount(d_brand[must_fail], minlength=n) > 0

    should = ~comp.must[d_crit]
    weight = comp.weight[d_crit]
    total = np.bincount(d_brand[should], weights=weight[should], minlength=n)
    has_should = np.bincount(d_brand[should], minlength=n) > 0
    passed = np.bincount(
        d_brand[should & (d_result == PASS_)], weights=weight[should & (d_result == PASS_)], minlength=n
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.where(has_should & (total > 0), passed / np.where(total > 0, total, 1.0), 1.0)
    least = params["pass_score"].astype(float)
    m_score = score < least - 1e-12

    masks = [m_error, m_late, m_early, m_short, m_no_value, m_must, m_score]
    verdict = np.select(
        masks, [_ERROR, _INCONCLUSIVE, _INCONCLUSIVE, _INCONCLUSIVE, _INCONCLUSIVE, _FAIL, _FAIL], _PASS
    )
    # Reasons are built only for the brands whose verdict they explain.
    reason = np.full(n, "", dtype=object)
    first_error = m_error
    reason[first_error] = "data failed validation: " + err[first_error]
    reason[m_late] = late[m_late]
    early = m_early & ~m_error & ~m_late
    if early.any():
        reason[early] = per_distinct(
            lambda d, m: _str(d) + " days in stage < min_days_in_stage " + _str(m),
            days[early],
            least_days[early].astype(int),
        )
    short_now = m_short & ~m_error & ~m_late & ~m_early
    if short_now.any():
        pick = short & short_now[s_brand]
        values = show_numbers(s_value[pick], comp.sample_unit[s_sample[pick]])
        text = (
            "min_sample "
            + comp.sample_key[s_sample[pick]]
            + " "
            + values
            + " < "
            + comp.sample_min_text[s_sample[pick]]
        )
        text = np.where(
            values == "n/a",
            "min_sample "
            + comp.sample_key[s_sample[pick]]
            + " not measured, need "
            + comp.sample_min_text[s_sample[pick]],
            text,
        )
        reason[short_now] = join_groups(s_brand[pick], text, n, "; ")[short_now]
    nv_now = m_no_value & ~m_error & ~m_late & ~m_early & ~m_short
    if nv_now.any():
        pick = no_value & nv_now[d_brand]
        reason[nv_now] = "no value: " + join_groups(d_brand[pick], comp.metric[d_crit[pick]], n, ", ")[nv_now]
    must_now = m_must & ~m_error & ~m_late & ~m_early & ~m_short & ~m_no_value
    if must_now.any():
        pick = must_fail & must_now[d_brand]
        reason[must_now] = join_groups(d_brand[pick], rows.reasons(comp, np.flatnonzero(deciding)[pick]), n, "; ")[
            must_now
        ]
    score_now = (verdict == _FAIL) & ~m_must
    if score_now.any():
        pick = should & (d_result == FAIL_) & score_now[d_brand]
        failed = join_groups(d_brand[pick], rows.reasons(comp, np.flatnonzero(deciding)[pick]), n, "; ")
        reason[score_now] = (
            "score "
            + fmt_repeated(score[score_now])
            + " < pass_score "
            + fmt_repeated(least[score_now])
            + " ("
            + failed[score_now]
            + ")"
        )
    pass_now = verdict == _PASS
    if pass_now.any():
        reason[pass_now] = per_distinct(
            lambda s, p: "all must criteria pass; score " + fmt(s) + " >= pass_score " + fmt(p),
            score[pass_now],
            least[pass_now],
        )
    return verdict, reason, score


def _guardrail_trips(
    comp: Compiled, rows: Rows, cohort: pd.DataFrame, consecutive_by_stage: dict[str, np.ndarray], valid: np.ndarray
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """New guardrail streaks per earlier stage, the earliest stage tripped, and its reasons.

    A guardrail stage FAILS an evaluation when any of its guardrails fails with a value; it
    passes when all have values and pass; with a value missing its streak stands still.
    valid: the brands without a data error.
    """
    n = len(cohort)
    streaks = {c: cohort[c].to_numpy().copy() for c in GUARD_COLUMNS}
    tripped = np.full(n, "", dtype=object)
    reasons = np.full(n, "", dtype=object)
    g = comp.guard[rows.crit]
    if not g.any():
        return streaks, tripped, reasons
    brand, crit, result = rows.brand[g], rows.crit[g], rows.result[g]
    code = brand * len(STAGE_IDS) + comp.source_code[crit]
    size = n * len(STAGE_IDS)
    seen = np.bincount(code, minlength=size).reshape(n, len(STAGE_IDS)) > 0
    failed = np.bincount(code[result == FAIL_], minlength=size).reshape(n, len(STAGE_IDS)) > 0
    missing = np.bincount(code[result == NO_VALUE], minlength=size).reshape(n, len(STAGE_IDS)) > 0
    untripped = np.ones(n, dtype=bool)
    for j, stage_id in enumerate(STAGE_IDS):  # five fixed stages, not brands
        col = f"g_{stage_id}"
        f = failed[:, j] & valid
        ok = seen[:, j] & ~missing[:, j] & ~f & valid
        streaks[col] = np.where(f, streaks[col] + 1, np.where(ok, 0, streaks[col]))
        hit = f & (streaks[col] >= consecutive_by_stage[stage_id]) & untripped
        if hit.any():
            pick = (comp.source_code[crit] == j) & (result == FAIL_) & hit[brand]
            why = join_groups(brand[pick], rows.reasons(comp, np.flatnonzero(g)[pick]), n, "; ")
            detail = np.array([w.replace(f"guardrail {stage_id}: ", "") for w in why[hit]], dtype=object)
            tripped[hit] = stage_id
            untripped &= ~hit
            reasons[hit] = (
                "guardrail "
                + stage_id
                + " failed "
                + _str(streaks[col][hit])
                + " evaluations in a row ("
                + detail
                + ")"
            )
    return streaks, tripped, reasons


# What the gates read of a brand besides its data_error (and window_row, where known).
COHORT_COLUMNS: tuple[str, ...] = (
    "tier",
    "paused",
    "awaiting",
    "awaiting_since",
    "days_in_stage",
    "pass_streak",
    "stage_entered_on",
    *GUARD_COLUMNS,
    "policy_version",
    "not_ready",  # present when onboarding.yaml has a data_deadline (readiness.apply_deadline)
)


def gate_stage(
    portfolio: Portfolio, stage_id: str, cohort: pd.DataFrame, metrics: pd.DataFrame, as_of: date
) -> Decided:
    """One decision per brand of the cohort (all brands currently in `stage_id`), vectorised.

    cohort: index brand_id; the COHORT_COLUMNS, data_error, and optionally window_row (each
    brand's row in metrics, as cohort_for gives it: checked, then used instead of a lookup by id).
    """
    if cohort.empty:
        return Decided.empty()
    if stage_id not in EVALUATED:
        raise ValueError(f"not an evaluated stage: {[stage_id]}")
    n = len(cohort)
    # one stage: its code is known, no brand's stage name needs looking up
    return _gate(
        portfolio,
        cohort,
        np.full(n, stage_id, dtype=object),
        np.full(n, EVALUATED.index(stage_id), dtype=np.int64),
        metrics,
        as_of,
    )


def decide_stage(
    portfolio: Portfolio, stage_id: str, cohort: pd.DataFrame, metrics: pd.DataFrame, as_of: date
) -> pd.DataFrame:
    """gate_stage's decisions as the ledger records them (criteria and GMV factors as JSON, no diagnosis)."""
    return render(gate_stage(portfolio, stage_id, cohort, metrics, as_of))


# Per evaluated stage (index as in EVALUATED): the words of its action reasons.
_NEXT = np.array([_next_stage(s) if s != GRADUATED else s for s in EVALUATED], dtype=object)
_BACK = np.array([STAGE_IDS[max(STAGE_IDS.index(s) - 1, 0)] if s != GRADUATED else s for s in EVALUATED], dtype=object)
_LAST = np.array([s == STAGE_IDS[-1] for s in EVALUATED])
_GRAD = np.array([s == GRADUATED for s in EVALUATED])
_WAITING = np.array(
    [
        ""
        if s == GRADUATED
        else "awaiting approval to "
        + ("graduate" if s == STAGE_IDS[-1] else f"advance to {_next_stage(s)}")
        + " since "
        for s in EVALUATED
    ],
    dtype=object,
)
_RECYCLE = np.array([f"on_fail recycle: restart the {s} clock" for s in EVALUATED], dtype=object)
_DEMOTE = np.array([f"on_fail demote: back to {b}" for b in _BACK], dtype=object)
_APPROVAL = np.array(
    [
        ""
        if s == GRADUATED
        else ("; graduating" if s == STAGE_IDS[-1] else f"; advancing to {_next_stage(s)}") + " needs approval"
        for s in EVALUATED
    ],
    dtype=object,
)
_DEFAULT_WORD = np.array(
    [f": advance to {_next_stage(s)}" if s != GRADUATED else ": guardrails hold" for s in EVALUATED], dtype=object
)
_ACTION = np.array(ACTIONS, dtype=object)
_VERDICT = np.array(VERDICTS, dtype=object)
_NO_MOVE = np.array([f"no move on {v}" for v in VERDICTS], dtype=object)
_ERROR, _INCONCLUSIVE, _FAIL, _PASS = range(len(VERDICTS))
_ADVANCE, _HOLD, _RECYCLE_, _DEMOTE_, _EXIT, _AWAIT, _GRADUATE = range(len(ACTIONS))


def gate_cohort(
    portfolio: Portfolio, cohort: pd.DataFrame, stages: np.ndarray, metrics: pd.DataFrame, as_of: date
) -> Decided:
    """One decision per brand of a cohort whose brands may sit in different stages (stages: one per brand).

    Each brand follows exactly the rules gate_stage applies to its stage; deciding a whole day in
    one call saves the fixed cost of one call per stage (a replay decides hundreds of days).
    Reasons are texts from the start; the criteria stay arrays until the ledger records them.
    """
    if len(cohort) == 0:
        return Decided.empty()
    stage = np.asarray(stages, dtype=object)
    code = pd.Categorical(stage, categories=list(EVALUATED)).codes.astype(np.int64)
    if (code < 0).any():
        raise ValueError(f"not an evaluated stage: {sorted(set(stage[code < 0]))}")
    return _gate(portfolio, cohort, stage, code, metrics, as_of)


def _gate(
    portfolio: Portfolio, cohort: pd.DataFrame, stage: np.ndarray, code: np.ndarray, metrics: pd.DataFrame, as_of: date
) -> Decided:
    """gate_cohort with each brand's stage (names, and codes indexing EVALUATED) known."""
    n = len(cohort)
    comp = compiled(portfolio)
    versions = cohort["policy_version"].factorize()  # for the rule sets and the recorded texts
    rule_set = comp.rule_sets_by_version(cohort.index, versions, code)
    tier_code = _codes(cohort["tier"], TIERS)
    metric_rows = _metric_rows(metrics, cohort)
    rows = _cohort_rows(comp, rule_set, tier_code, _metric_table(metrics, metric_rows, comp.metric_names.tolist()))
    params = {k: v[rule_set] for k, v in comp.params.items()}
    entered = _datetimes(cohort["stage_entered_on"])
    rows = _with_windows(rows, comp, entered, params["window_days"], as_of)

    s_brand, s_sample = _expand(comp.sample_start, rule_set)
    s_value = _metric_table(metrics, metric_rows, comp.sample_names.tolist())[s_brand, comp.sample_id[s_sample]]
    err = _texts(cohort["data_error"])
    late = _texts(cohort["not_ready"]) if "not_ready" in cohort.columns else np.full(n, "", dtype=object)
    verdict, reason, brand_score = _verdicts(cohort, comp, rows, params, (s_brand, s_sample, s_value), err, late)

    # each guardrail stage trips after its consecutive_passes as the brand has it (its overrides included), like its guardrails
    variant = rule_set % comp.variants
    consecutive_by_stage = {s: comp.params["consecutive"][j * comp.variants + variant] for j, s in enumerate(STAGE_IDS)}
    # guardrails watch measured data: a brand whose data failed validation or is not in is not judged by them
    guard_streaks, tripped, guard_reason = _guardrail_trips(
        comp, rows, cohort, consecutive_by_stage, (err == "") & (late == "")
    )

    graduated = _GRAD[code]
    live = ~graduated  # graduated brands are only watched by guardrails: no stage rules move them
    last_stage = _LAST[code]
    is_pass = verdict == _PASS
    is_fail = verdict == _FAIL
    paused = cohort["paused"].to_numpy(dtype=bool)
    awaiting = cohort["awaiting"].to_numpy(dtype=bool)
    streak = cohort["pass_streak"].to_numpy(dtype=int)
    new_streak = np.where(paused, streak, np.where(is_pass, streak + 1, np.where(is_fail, 0, streak)))
    need = params["consecutive"].astype(int)
    earned = is_pass & (new_streak >= need)
    on_fail = params["on_fail"]
    approval = params["requires_approval"].astype(bool)
    trip = (tripped != "") & ~paused
    # Only a FAIL moves a brand down (docs/design.md#verdict-rules: INCONCLUSIVE never moves one), so a tripped
    # guardrail is the verdict, whatever the stage's own criteria said.
    reason = np.where(trip & (verdict != _FAIL), guard_reason, reason)
    verdict = np.where(trip, _FAIL, verdict)
    waiting = np.full(n, "", dtype=object)
    if (awaiting & live).any():
        waiting = (
            pd.Series(_WAITING[code], index=cohort.index)
            .add(cohort["awaiting_since"].astype(str))
            .to_numpy(dtype=object)
        )

    # The first rule that holds decides the action and its reason; a reason is a text per brand
    # only where the rule quotes the brand (its streak, stage, guardrail), built for those brands alone.
    # An action taken because of the verdict (on_fail, no move) quotes the verdict's reason too: the
    # action's reason is what the ledger, the stage history and the artifacts' "why" show.
    def because(words: np.ndarray | str, pick: np.ndarray) -> np.ndarray:
        return np.asarray(words + (" (" + reason[pick] + ")"), dtype=object)

    rules: list[tuple[np.ndarray, int, Any]] = [
        (paused, _HOLD, "brand is paused"),
        (trip, _DEMOTE_, guard_reason),
        (live & awaiting, _AWAIT, waiting),
        (live & ~is_pass & ~is_fail, _HOLD, lambda pick: because(_NO_MOVE[verdict[pick]], pick)),
        (live & is_fail & (on_fail == "recycle"), _RECYCLE_, lambda pick: because(_RECYCLE[code[pick]], pick)),
        (live & is_fail & (on_fail == "demote"), _DEMOTE_, lambda pick: because(_DEMOTE[code[pick]], pick)),
        (live & is_fail & (on_fail == "exit"), _EXIT, lambda pick: because("on_fail exit: leave the programme", pick)),
        (live & is_fail, _HOLD, lambda pick: because("on_fail hold", pick)),
        (live & ~earned, _HOLD, lambda pick: _pass_words(new_streak[pick], need[pick], code[pick], " needed")),
        (
            live & approval,
            _AWAIT,
            lambda pick: (
                _pass_words(new_streak[pick], need[pick], code[pick], _APPROVAL)
                + f", awaiting it since {as_of.isoformat()}"
            ),
        ),
        (
            live & last_stage,
            _GRADUATE,
            lambda pick: _pass_words(new_streak[pick], need[pick], code[pick], ": graduate"),
        ),
    ]
    rule = np.select([m for m, _, _ in rules], np.arange(len(rules)), default=len(rules))
    action_code = np.append(np.array([a for _, a, _ in rules]), _ADVANCE)[rule]
    action_code[(rule == len(rules)) & graduated] = _HOLD
    action_reason = np.empty(n, dtype=object)
    for r, (_, _, text) in enumerate(
        [*rules, (None, 0, lambda pick: _pass_words(new_streak[pick], need[pick], code[pick], _DEFAULT_WORD))]
    ):
        pick = np.flatnonzero(rule == r)
        if len(pick) == 0:
            continue
        action_reason[pick] = text(pick) if callable(text) else text[pick] if isinstance(text, np.ndarray) else text
    action = _ACTION[action_code]

    demote_to = np.where(trip, tripped, _BACK[code])
    to_stage = stage.copy()
    for a, target in ((_ADVANCE, _NEXT[code]), (_GRADUATE, GRADUATED), (_DEMOTE_, demote_to), (_EXIT, EXITED)):
        moving = action_code == a
        if moving.any():
            to_stage[moving] = target[moving] if isinstance(target, np.ndarray) else target
    moved = (to_stage != stage) | (action_code == _RECYCLE_)
    awaits: np.ndarray = np.asarray(action_code == _AWAIT, dtype=bool)
    next_day = pd.Timestamp(as_of + timedelta(days=1))
    max_days = params["max_days"].astype(float)
    days = cohort["days_in_stage"].to_numpy(dtype=int, copy=True)
    # every array below is new (the cohort's are copied): the frame keeps them without copying
    frame = text_frame(
        {
            "brand_id": cohort.index.to_numpy(copy=True),
            "as_of": pd.Timestamp(as_of),
            "stage": stage.copy(),
            "verdict": _VERDICT[verdict],
            "action": action,
            "to_stage": to_stage,
            "score": np.where(is_pass | is_fail, brand_score, np.nan),
            "reason": reason,
            "action_reason": action_reason,
            "overdue": ~np.isnan(max_days) & (days > np.nan_to_num(max_days, nan=0)) & ~moved,
            "days_in_stage": days,
            "pass_streak": np.where(moved, 0, new_streak),
            "stage_entered_on": np.where(moved, np.datetime64(next_day, "ns"), entered),
            "awaiting": np.where(moved, False, awaits),
            "awaiting_since": np.where(
                awaits,
                np.where(awaiting, cohort["awaiting_since"].astype(object).to_numpy(), as_of.isoformat()),
                np.full(n, None, dtype=object),
            ),
            "policy_version": _shared_texts(cohort["policy_version"], versions),
            **{
                col: np.where(moved, 0, np.where(paused, cohort[col].to_numpy(), guard_streaks[col])).astype(int)
                for col in GUARD_COLUMNS
            },
        },
        fresh=True,
    )
    return Decided(frame, rows.evidence(comp), _factors(metrics, metric_rows, cohort.index))


def _metric_rows(metrics: pd.DataFrame, cohort: pd.DataFrame) -> np.ndarray:
    """Each cohort brand's row in metrics, -1 for none: metrics.index.get_indexer(cohort.index).

    A cohort from cohort_for knows where window_metrics_for put its brands (window_row); those rows
    are used when the ids there equal the cohort's (one elementwise comparison, where a lookup
    hashes 20,000 ids a stage). Any other metrics frame, or any id that differs, is looked up by id.
    """
    if "window_row" in cohort.columns and len(cohort):
        rows = cohort["window_row"].to_numpy(dtype=np.int64)
        ids = metrics.index.to_numpy()
        if rows.min() >= 0 and rows.max() < len(ids) and bool((ids[rows] == cohort.index.to_numpy()).all()):
            return rows
    return np.asarray(metrics.index.get_indexer(cohort.index), dtype=np.int64)


def _pass_words(streak: np.ndarray, need: np.ndarray, code: np.ndarray, tail: str | np.ndarray) -> np.ndarray:
    """'PASS 2 of 2 in a row' and the tail (a text, or one per stage code), built once per distinct streak, need and stage."""

    def build(s: np.ndarray, k: np.ndarray, c: np.ndarray) -> np.ndarray:
        return np.asarray(
            "PASS " + _str(s) + " of " + _str(k) + " in a row" + (tail[c] if isinstance(tail, np.ndarray) else tail),
            dtype=object,
        )

    return per_distinct(build, streak, need, code)


def _factors(metrics: pd.DataFrame, rows: np.ndarray, brand_ids: pd.Index) -> pd.DataFrame:
    """gmv and the GMV factors of each brand (NaN without metrics), positionally indexed."""
    if all(c in metrics.columns and metrics[c].dtype == np.float64 for c in FACTOR_COLUMNS):
        # the brands' rows are already known: gathered, not looked up by id again
        return pd.DataFrame(_metric_table(metrics, rows, FACTOR_COLUMNS), columns=list(FACTOR_COLUMNS))
    return metrics.reindex(index=brand_ids, columns=list(FACTOR_COLUMNS)).reset_index(drop=True)


def _codes(values: pd.Series, categories: Sequence[str]) -> np.ndarray:
    """Each value's position in categories, -1 for any other value: pd.Categorical(values, categories).codes,
    with only the few distinct values looked up (tiers of 20,000 brands)."""
    codes, distinct = values.factorize()
    position = pd.Index(list(categories), dtype=object).get_indexer(
        pd.Index(np.asarray(distinct, dtype=object), dtype=object)
    )
    return np.asarray(np.append(position, -1)[codes], dtype=np.int64)  # code -1 (missing): -1


def _shared_texts(values: pd.Series, factorized: tuple[np.ndarray, Any]) -> np.ndarray:
    """values.to_numpy() with one text object per distinct value: Arrow text would give a new object per brand.

    factorized: values.factorize(), which the caller has already.
    """
    codes, distinct = factorized
    if (codes < 0).any():
        return np.asarray(values.to_numpy(copy=True))
    return np.asarray(np.asarray(distinct, dtype=object)[codes], dtype=object)


def _texts(values: pd.Series) -> np.ndarray:
    """values.fillna('').astype(str) as an object array; text columns (object, all str) are read as they are."""
    array = values.to_numpy(dtype=object)
    if values.dtype == object and pd.api.types.infer_dtype(array, skipna=False) in ("string", "empty"):
        return np.asarray(array, dtype=object)
    return np.asarray(values.fillna("").astype(str).to_numpy(dtype=object), dtype=object)


def gate_exited(cohort: pd.DataFrame, as_of: date) -> Decided:
    """Brands that left the programme keep one record per day saying so, and are not evaluated."""
    if cohort.empty:
        return Decided.empty()
    frame = text_frame(
        {
            "brand_id": cohort.index.to_numpy(),
            "as_of": pd.Timestamp(as_of),
            "stage": EXITED,
            "verdict": "INCONCLUSIVE",
            "action": "hold",
            "to_stage": EXITED,
            "score": np.nan,
            "reason": "brand has exited the programme: not evaluated",
            "action_reason": "exited brands stay exited",
            "overdue": False,
            "days_in_stage": cohort["days_in_stage"].to_numpy(dtype=int),
            "pass_streak": 0,
            "stage_entered_on": _datetimes(cohort["stage_entered_on"]),
            "awaiting": False,
            "awaiting_since": None,
            "policy_version": cohort["policy_version"].to_numpy(),
            **dict.fromkeys(GUARD_COLUMNS, 0),
        }
    )
    return Decided(
        frame, Evidence.empty(), pd.DataFrame(np.nan, index=np.arange(len(frame)), columns=list(FACTOR_COLUMNS))
    )
