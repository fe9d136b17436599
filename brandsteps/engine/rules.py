"""The compiled rules: every stage's criteria, guardrails and parameters for every policy variant, as flat arrays.

Rules are compiled once per portfolio into numpy arrays, one row per criterion of each policy variant (the
playbook's, and one per distinct set of brand overrides). A cohort's criteria rows are then gathered with index
arithmetic, so deciding costs a few array operations whatever the number of brands.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from brandsteps.catalogue import BASE_COLUMNS, EVALUATED_STAGES, GRADUATED, STAGE_IDS, TIERS, base_columns
from brandsteps.config import Criterion, Portfolio, Stage
from brandsteps.engine.evidence import Rules, show_numbers, unit_codes
from brandsteps.engine.window import lagged_name

OPS: tuple[str, ...] = (">=", ">", "<=", "<")


def stage_codes(stages: np.ndarray | Sequence[str]) -> np.ndarray:
    """Each stage's position in EVALUATED_STAGES; -1 for any other (exited)."""
    evaluated = pd.Index(EVALUATED_STAGES, dtype=object)
    return evaluated.get_indexer(pd.Index(np.asarray(stages, dtype=object), dtype=object)).astype(np.int64)


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


@dataclass(frozen=True)
class Compiled:
    """Every stage's rules for every policy variant of a portfolio, as flat arrays.

    Variant 0 is the playbook's; each distinct set of brand overrides (one policy version) is
    another. Rules of stage s and variant v are number s × variants + v; their criteria are rows
    crit_start[r]:crit_start[r + 1] (stage criteria, then each earlier stage's guardrails in stage
    order, as the ledger records them) and their min_sample keys rows sample_start[r]:...
    """

    variants: int
    overridden: pd.Index  # brand ids with their own variant
    overridden_variant: np.ndarray  # their variant codes
    params: dict[str, np.ndarray]  # per rule set
    crit_start: np.ndarray
    role: np.ndarray
    source: np.ndarray
    source_code: np.ndarray  # index of the source stage in STAGE_IDS
    metric: np.ndarray
    lag: np.ndarray  # lag_days of each criterion: its metric is read over the window that many days back
    metric_names: np.ndarray  # the distinct window-metrics columns read (lagged_name), in metric_id's order
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
        """The rule set of each brand in its stage (stage_codes index EVALUATED_STAGES)."""
        codes = np.zeros(len(brand_ids), dtype=np.int64)
        if len(self.overridden):
            pos = self.overridden.get_indexer(pd.Index(brand_ids))
            hit = pos >= 0
            codes[hit] = self.overridden_variant[pos[hit]]
        return np.asarray(stage_codes, dtype=np.int64) * self.variants + codes


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
    for stage_id in EVALUATED_STAGES:
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
    codes = stage_codes(stages)
    return comp.rule_sets(brand_ids, np.where(codes < 0, EVALUATED_STAGES.index(GRADUATED), codes))


def _reading(comp: Compiled, brand_ids: pd.Index | np.ndarray, stages: np.ndarray, criteria: np.ndarray) -> np.ndarray:
    """Whether each brand's rule set in its stage holds any of the criteria (a mask over the compiled criteria)."""
    reads = np.r_[0, np.cumsum(criteria)]
    per_rule_set = reads[comp.crit_start[1:]] > reads[comp.crit_start[:-1]]
    return np.asarray(per_rule_set[_rule_sets_in_stage(comp, brand_ids, stages)], dtype=bool)


def uses_metric(
    portfolio: Portfolio, brand_ids: pd.Index | np.ndarray, stages: np.ndarray, metric: str, lag_days: int = 0
) -> np.ndarray:
    """Whether each brand's rules in its stage read `metric` over the window lag_days back.

    Any rule counts: criteria, shadow or not, and guardrails.
    """
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
    """The (base column, lag_days) pairs the deciding criteria read, and which of them each brand's rules need.

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
