"""GMV driver diagnosis: each brand's five GMV factors against its tier cohort and stage targets; shadow verdicts."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from brandsteps.catalogue import GMV_FACTORS, Verdict
from brandsteps.config import Portfolio
from brandsteps.engine.evidence import (
    CRITERIA_KEYS,
    FACTOR_COLUMNS,
    FAIL_,
    NO_VALUE,
    PASS_,
    RESULTS,
    Decided,
    Evidence,
    join_groups,
    json_members,
    json_records,
    text_frame,
)
from brandsteps.engine.rules import stage_param_for
from brandsteps.ledger.ids import among

# The playbook stage whose actions work on each lever of GMV = UV × watch × conversion × repurchase × AOV.
FACTOR_STAGE: dict[str, str] = {
    "uv": "public_traffic",
    "watch_minutes_per_uv": "self_broadcast",
    "conversion_per_watch_minute": "self_broadcast",
    "repurchase_frequency": "private_repurchase",
    "aov": "channel_exclusive",
}
FACTOR_LEVER: dict[str, str] = {
    "uv": "more visitors: paid and organic public traffic, and private-domain reach",
    "watch_minutes_per_uv": "longer watching: live content and persona that hold viewers",
    "conversion_per_watch_minute": "more buyers per watch minute: live-room offers and product fit",
    "repurchase_frequency": "more orders per buyer: fan groups, member offers, repeat purchase",
    "aov": "higher order value: bundles and channel-exclusive SKUs",
}
FIELDS = ("value", "basis", "median", "target", "op", "vs_median", "vs_target", "shortfall")
_NONE = np.array(None, dtype=object)  # a missing text in np.where


def parse_json_column(column: pd.Series, empty: str) -> list[Any]:
    """A column of JSON texts parsed with one json.loads call (not one call per brand)."""
    texts = column.fillna(empty).astype(str).replace("", empty)
    return list(json.loads("[" + ",".join(texts) + "]"))


def criteria_frame(decisions: pd.DataFrame) -> pd.DataFrame:
    """Every decision's evaluated criteria as one long frame with the decision's row position in `row`."""
    lists = (
        pd.Series(parse_json_column(decisions["criteria"], "[]"), index=np.arange(len(decisions)), dtype=object)
        .explode()
        .dropna()
    )
    if lists.empty:
        return pd.DataFrame(columns=["row", *list(CRITERIA_KEYS)])
    frame = pd.DataFrame.from_records(lists.tolist(), columns=list(CRITERIA_KEYS))
    frame.insert(0, "row", lists.index.to_numpy(dtype=int))
    frame["shadow"] = frame["shadow"].fillna(False).astype(bool)
    frame["lag_days"] = (
        pd.to_numeric(frame["lag_days"], errors="coerce").fillna(0).astype(np.int64)
    )  # recorded before lag_days: 0
    frame["window"] = frame["window"].where(frame["window"].notna(), "").astype(object)
    for c in ("threshold", "value", "weight"):
        frame[c] = pd.to_numeric(frame[c], errors="coerce")
    return frame


def from_records(decisions: pd.DataFrame) -> Decided:
    """Recorded decisions (criteria and gmv_factors as JSON text) back as arrays, to diagnose them again."""
    crit = criteria_frame(decisions)
    text = {k: crit[k].to_numpy(dtype=object) for k in ("role", "source_stage", "metric", "op", "kind")}
    evidence = Evidence.of(
        row=crit["row"].to_numpy(dtype=np.int64),
        threshold=crit["threshold"].to_numpy(dtype=float),
        weight=crit["weight"].to_numpy(dtype=float),
        shadow=crit["shadow"].to_numpy(dtype=bool),
        value=crit["value"].to_numpy(dtype=float),
        result=pd.Index(RESULTS).get_indexer(crit["result"]).astype(np.int64),
        **text,
        lag_days=crit["lag_days"].to_numpy(dtype=np.int64),
        window=crit["window"].to_numpy(dtype=object),
    )
    records = parse_json_column(decisions["gmv_factors"], "{}")
    factors = pd.DataFrame.from_records(records, columns=list(FACTOR_COLUMNS), index=np.arange(len(decisions))).apply(
        pd.to_numeric, errors="coerce"
    )
    return Decided(decisions.drop(columns=["criteria", "gmv_factors"]).reset_index(drop=True), evidence, factors)


def _shortfall_vs(value: np.ndarray, ref: np.ndarray, higher_is_better: np.ndarray) -> np.ndarray:
    """Relative shortfall against a reference: 0 when met, 0.25 when a quarter short; NaN without a usable reference."""
    with np.errstate(divide="ignore", invalid="ignore"):
        below = np.where(higher_is_better, 1.0 - value / ref, value / ref - 1.0)
    usable = ~np.isnan(value) & ~np.isnan(ref) & (ref > 0)
    return np.where(usable, np.maximum(below, 0.0), np.nan)


def _action_texts(portfolio: Portfolio, brand_ids: np.ndarray, stages: np.ndarray) -> np.ndarray:
    """The playbook actions of each row's action stage (a brand's own override text where it has one)."""
    default = {s.id: s.actions.strip() for s in portfolio.playbook.stages}
    texts = pd.Series(stages, dtype=object).map(default).fillna("").to_numpy(dtype=object)
    # a hashed lookup: np.isin on text compares every pair, quadratic in the number of brands
    overridden = np.flatnonzero(among(brand_ids, portfolio.brand_versions.keys()) & pd.notna(stages))
    for i in overridden:  # brands with their own gates overrides: configuration, a handful at most
        texts[i] = portfolio.effective_stage(portfolio.brands[brand_ids[i]], stages[i]).actions.strip()
    return texts


def _first_targets(evidence: Evidence, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per decision and factor (n × 5): the threshold, op, value and whether it is lagged, of the first live stage
    criterion on that factor. A criterion without a lag read the factor's own value over the stage window.
    """
    thr_grid = np.full((n, len(GMV_FACTORS)), np.nan)
    value_grid = np.full((n, len(GMV_FACTORS)), np.nan)
    lagged_grid = np.zeros((n, len(GMV_FACTORS)), dtype=bool)
    op_grid = np.full((n, len(GMV_FACTORS)), None, dtype=object)
    col = (
        pd.Index(GMV_FACTORS).get_indexer(pd.Index(evidence.metric, dtype=object))
        if len(evidence)
        else np.empty(0, dtype=np.int64)
    )
    pick = np.flatnonzero((evidence.role == "criterion") & ~evidence.shadow & (col >= 0))[
        ::-1
    ]  # reversed: the first written last wins
    thr_grid[evidence.row[pick], col[pick]] = evidence.threshold[pick]
    value_grid[evidence.row[pick], col[pick]] = evidence.value[pick]
    lagged_grid[evidence.row[pick], col[pick]] = evidence.lag_days[pick] > 0
    op_grid[evidence.row[pick], col[pick]] = evidence.op[pick]
    return thr_grid, op_grid, value_grid, lagged_grid


def factor_diagnosis(decided: Decided, cohorts: pd.DataFrame, portfolio: Portfolio) -> pd.DataFrame:
    """One row per decision: each factor's value, cohort median, target and shortfalls, the limiting factor and action.

    The cohort is the brands of the same stage and tier decided in the same cycle. UV is a
    window sum and windows start at stage entry, so UV is compared per window day; the four
    ratios are compared as they are. Shortfall = max(shortfall vs median, vs target), where
    a target is the stage criterion on that factor (already tiered and with brand overrides,
    as recorded). The limiting factor has the largest shortfall; ties go to the earlier factor.
    """
    decisions = decided.decisions
    n = len(decisions)
    ids = decisions["brand_id"].to_numpy(dtype=object)
    values = decided.factors.reindex(columns=["gmv", *GMV_FACTORS]).reset_index(drop=True).astype(float)
    pos = cohorts.index.get_indexer(pd.Index(ids, dtype=object))
    tier = np.where(pos >= 0, cohorts["tier"].to_numpy(dtype=object)[pos], _NONE)
    window_len = (
        np.where(pos >= 0, cohorts["window_len"].to_numpy(dtype=float)[pos], np.nan)
        if "window_len" in cohorts
        else np.full(n, np.nan)
    )
    basis = values[list(GMV_FACTORS)].copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        basis["uv"] = np.where(window_len > 0, values["uv"].to_numpy(dtype=float) / window_len, np.nan)
    keys = [decisions["stage"].to_numpy(dtype=object), tier]
    grouped = basis.groupby(keys, dropna=False)
    medians = grouped.transform("median")
    peers = values["gmv"].notna().groupby(keys, dropna=False).transform("sum").to_numpy(dtype=int)
    thr_grid, op_grid, target_value, target_lagged = _first_targets(decided.evidence, n)

    # columns gathered in a dict and made a frame once: inserting 45 columns one by one costs more than the arithmetic
    cols: dict[str, Any] = {}
    short = np.full((n, len(GMV_FACTORS)), np.nan)
    for j, f in enumerate(GMV_FACTORS):  # five factors, each vectorised over all brands
        v, b, m = values[f].to_numpy(dtype=float), basis[f].to_numpy(dtype=float), medians[f].to_numpy(dtype=float)
        t, op = thr_grid[:, j], op_grid[:, j]
        vs_m = _shortfall_vs(b, m, np.ones(n, dtype=bool))
        # against a target, the value its criterion read (the same as v unless the criterion is lagged)
        vs_t = _shortfall_vs(np.where(target_lagged[:, j], target_value[:, j], v), t, (op != "<=") & (op != "<"))
        short[:, j] = np.fmax(vs_m, vs_t)
        cols.update({f"{f}.value": v, f"{f}.basis": b, f"{f}.median": m, f"{f}.target": t, f"{f}.op": op})
        cols.update({f"{f}.vs_median": vs_m, f"{f}.vs_target": vs_t, f"{f}.shortfall": short[:, j]})
    has = (np.nan_to_num(short, nan=0.0) > 0).any(axis=1)
    pick = np.argmax(np.nan_to_num(short, nan=-1.0), axis=1)
    limiting = np.where(has, np.asarray(GMV_FACTORS, dtype=object)[pick], None)
    action_stage = pd.Series(limiting, dtype=object).map(FACTOR_STAGE).to_numpy(dtype=object)
    cols.update(
        {
            "gmv": values["gmv"].to_numpy(dtype=float),
            "cohort_brands": peers,
            "tier": tier,
            "limiting_factor": limiting,
            "limiting_shortfall": np.where(has, short[np.arange(n), pick], np.nan),
            "lever": pd.Series(limiting, dtype=object).map(FACTOR_LEVER).to_numpy(dtype=object),
            "action_stage": action_stage,
            "action": np.where(has, _action_texts(portfolio, ids, action_stage), _NONE),
            "measured": values["gmv"].notna().to_numpy() | values[list(GMV_FACTORS)].notna().any(axis=1).to_numpy(),
        }
    )
    return text_frame(cols, index=pd.RangeIndex(n))


def shadow_verdicts(decisions: pd.DataFrame, evidence: Evidence, pass_score: np.ndarray) -> pd.DataFrame:
    """The verdict each decision would have had with its shadow criteria deciding too.

    pass_score: per decision row position. Verdicts decided before the criteria (ERROR, and
    INCONCLUSIVE for days in stage or min_sample) stay as they were. Otherwise the live and
    shadow criteria together follow the gate's rules: a missing value → INCONCLUSIVE, a must
    failing → FAIL, the weighted share of passing should criteria below pass_score → FAIL,
    else PASS. Rows without shadow criteria get no shadow verdict (None).
    """
    n = len(decisions)
    out = pd.DataFrame({"shadow_verdict": None, "shadow_reason": None, "shadow_criteria": 0}, index=np.arange(n))
    crit = evidence.take(evidence.role == "criterion")
    if n == 0 or not crit.shadow.any():
        return out
    row, result = crit.row, crit.result

    def per_row(mask: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        return np.bincount(row[mask], weights=None if weights is None else weights[mask], minlength=n)

    count = per_row(crit.shadow)
    no_value = per_row(result == NO_VALUE) > 0
    must_fail = per_row((crit.kind == "must") & (result == FAIL_)) > 0
    should = crit.kind == "should"
    total = per_row(should, crit.weight)
    passed = per_row(should & (result == PASS_), crit.weight)
    has_should = per_row(should) > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.where(has_should & (total > 0), passed / np.where(total > 0, total, 1.0), 1.0)
    live = decisions["verdict"].to_numpy(dtype=object)
    live_reason = decisions["reason"].fillna("").astype(str).to_numpy(dtype=object)
    before_criteria = (live == Verdict.ERROR) | (
        (live == Verdict.INCONCLUSIVE)
        & ~pd.Series(live_reason, dtype=object).str.startswith("no value").to_numpy(dtype=bool)
    )
    least = np.asarray(pass_score, dtype=float)
    verdict = np.select(
        [before_criteria, no_value, must_fail, score < least - 1e-12],
        [live, Verdict.INCONCLUSIVE.value, Verdict.FAIL.value, Verdict.FAIL.value],
        default=Verdict.PASS.value,
    )
    failing_rows = crit.shadow & (result != PASS_)
    failing = join_groups(row[failing_rows], crit.take(failing_rows).reasons(), n, "; ")
    has = count > 0
    scored = np.array(
        ["every shadow criterion passes; score with shadow " + f"{v:.4g}" for v in score[has].tolist()], dtype=object
    )
    reason = np.full(n, None, dtype=object)
    explained = np.where(failing[has] != "", "shadow: " + failing[has], scored)
    reason[has] = np.where(before_criteria[has], "decided before the criteria: " + live_reason[has], explained)
    out["shadow_verdict"] = np.where(has, verdict, _NONE)
    out["shadow_reason"] = reason
    out["shadow_criteria"] = count.astype(int)
    return out


def _pass_scores(decisions: pd.DataFrame, portfolio: Portfolio) -> np.ndarray:
    ids = decisions["brand_id"].to_numpy(dtype=object)
    stages = decisions["stage"].to_numpy(dtype=object)
    return np.asarray(stage_param_for(portfolio, ids, stages, "pass_score"), dtype=float)


def diagnose(decided: Decided, cohorts: pd.DataFrame, portfolio: Portfolio) -> Decided:
    """The decisions with their diagnosis and shadow verdict, to be recorded inside gmv_factors.

    gmv_factors keeps its keys (gmv and the five factors) and gains "diagnosis":
    {cohort, tier, cohort_brands, factors: {factor: {value, basis, median, target, op,
    vs_median, vs_target, shortfall}}, limiting_factor, limiting_shortfall, lever,
    action_stage, action} and, when the stage has shadow criteria, "shadow": {verdict, reason, criteria}.
    Exited brands (no factors, no criteria) get neither.
    """
    decisions = decided.decisions
    if decisions.empty:
        return decided
    diag = factor_diagnosis(decided, cohorts, portfolio)
    shadow = shadow_verdicts(decisions, decided.evidence, _pass_scores(decisions, portfolio))
    with_shadow = shadow["shadow_verdict"].notna().to_numpy()
    noted = diag["measured"].to_numpy(dtype=bool) | with_shadow
    diag = diag[noted]
    head = diag[
        ["cohort_brands", "tier", "limiting_factor", "limiting_shortfall", "lever", "action_stage", "action"]
    ].copy()
    head.insert(0, "cohort", decisions["stage"].to_numpy(dtype=object)[noted])
    columns: list[list[str]] = [json_members(head)]
    for f in GMV_FACTORS:  # five factors, each one encoder call over all brands
        columns.append(json_members(diag[[f"{f}.{k}" for k in FIELDS]].set_axis(list(FIELDS), axis=1)))
    # one f-string per brand: adding the pieces column by column would copy each brand's growing text again and again
    uv, watch, conversion, repurchase, aov = GMV_FACTORS
    texts = [
        f'"diagnosis":{{{h},"factors":{{"{uv}":{{{a}}},"{watch}":{{{b}}},"{conversion}":{{{c}}},"{repurchase}":{{{d}}},"{aov}":{{{e}}}}}}}'
        for h, a, b, c, d, e in zip(*columns, strict=True)
    ]
    notes = np.full(len(decisions), None, dtype=object)
    notes[noted] = np.asarray(texts, dtype=object)
    if with_shadow.any():
        shadow_part = json_records(
            shadow[with_shadow].rename(
                columns={"shadow_verdict": "verdict", "shadow_reason": "reason", "shadow_criteria": "criteria"}
            )
        )
        notes[with_shadow] = notes[with_shadow] + ',"shadow":' + shadow_part
    return decided.with_notes(notes)
