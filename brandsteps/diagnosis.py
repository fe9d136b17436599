"""GMV driver diagnosis: each brand's five GMV factors against its tier cohort and the stage targets, and shadow verdicts."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from brandsteps.catalogue import GMV_FACTORS
from brandsteps.config import Portfolio
from brandsteps.gates import stage_param_for

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
CRITERIA_FIELDS = ["role", "source_stage", "metric", "op", "threshold", "kind", "weight", "shadow", "value", "result", "reason"]


def parse_json_column(column: pd.Series, empty: str) -> list[Any]:
    """A column of JSON texts parsed with one json.loads call (not one call per brand)."""
    texts = column.fillna(empty).astype(str).replace("", empty)
    return list(json.loads("[" + ",".join(texts) + "]"))


def criteria_frame(decisions: pd.DataFrame) -> pd.DataFrame:
    """Every decision's evaluated criteria as one long frame with the decision's row position in `row`."""
    lists = pd.Series(parse_json_column(decisions["criteria"], "[]"), index=np.arange(len(decisions)), dtype=object).explode().dropna()
    if lists.empty:
        return pd.DataFrame(columns=["row", *CRITERIA_FIELDS])
    frame = pd.DataFrame.from_records(lists.tolist(), columns=CRITERIA_FIELDS)
    frame.insert(0, "row", lists.index.to_numpy(dtype=int))
    frame["shadow"] = frame["shadow"].fillna(False).astype(bool)
    for c in ("threshold", "value", "weight"):
        frame[c] = pd.to_numeric(frame[c], errors="coerce")
    return frame


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
    overridden = np.flatnonzero(pd.Index(brand_ids).isin(list(portfolio.brand_versions)) & pd.notna(stages))
    for i in overridden:  # brands with their own gates overrides: configuration, a handful at most
        texts[i] = portfolio.effective_stage(portfolio.brands[brand_ids[i]], stages[i]).actions.strip()
    return texts


def factor_diagnosis(decisions: pd.DataFrame, cohorts: pd.DataFrame, portfolio: Portfolio, crit: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per decision: each factor's value, cohort median, target and shortfalls, the limiting factor and action.

    The cohort is the brands of the same stage and tier decided in the same cycle. UV is a
    window sum and windows start at stage entry, so UV is compared per window day; the four
    ratios are compared as they are. Shortfall = max(shortfall vs median, vs target), where
    a target is the stage criterion on that factor (already tiered and with brand overrides,
    as recorded). The limiting factor has the largest shortfall; ties go to the earlier factor.
    """
    n = len(decisions)
    ids = decisions["brand_id"].to_numpy(dtype=object)
    records = parse_json_column(decisions["gmv_factors"], "{}")
    values = pd.DataFrame.from_records(records, columns=["gmv", *GMV_FACTORS], index=np.arange(n)).apply(pd.to_numeric, errors="coerce")
    tier = cohorts["tier"].reindex(ids).to_numpy(dtype=object)
    window_len = cohorts["window_len"].reindex(ids).to_numpy(dtype=float) if "window_len" in cohorts else np.full(n, np.nan)
    basis = values[list(GMV_FACTORS)].copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        basis["uv"] = np.where(window_len > 0, values["uv"].to_numpy(dtype=float) / window_len, np.nan)
    keys = [decisions["stage"].to_numpy(dtype=object), tier]
    grouped = basis.groupby(keys, dropna=False)
    medians = grouped.transform("median")
    peers = values["gmv"].notna().groupby(keys, dropna=False).transform("sum").to_numpy(dtype=int)

    crit = criteria_frame(decisions) if crit is None else crit
    targets = crit[(crit["role"] == "criterion") & ~crit["shadow"] & crit["metric"].isin(list(GMV_FACTORS))]
    # the first target per decision and factor, as two n × 5 grids (reversed so the first written last wins)
    thr_grid = np.full((n, len(GMV_FACTORS)), np.nan)
    op_grid = np.full((n, len(GMV_FACTORS)), None, dtype=object)
    t_row = targets["row"].to_numpy(dtype=int)[::-1]
    t_col = pd.Index(GMV_FACTORS).get_indexer(targets["metric"])[::-1]
    thr_grid[t_row, t_col] = targets["threshold"].to_numpy(dtype=float)[::-1]
    op_grid[t_row, t_col] = targets["op"].to_numpy(dtype=object)[::-1]

    # columns gathered in a dict and made a frame once: inserting 45 columns one by one costs more than the arithmetic
    cols: dict[str, Any] = {}
    short = np.full((n, len(GMV_FACTORS)), np.nan)
    for j, f in enumerate(GMV_FACTORS):  # five factors, each vectorised over all brands
        v, b, m = values[f].to_numpy(dtype=float), basis[f].to_numpy(dtype=float), medians[f].to_numpy(dtype=float)
        t, op = thr_grid[:, j], op_grid[:, j]
        vs_m = _shortfall_vs(b, m, np.ones(n, dtype=bool))
        vs_t = _shortfall_vs(v, t, (op != "<=") & (op != "<"))
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
            "action": np.where(has, _action_texts(portfolio, ids, action_stage), None),
            "measured": values["gmv"].notna().to_numpy() | values[list(GMV_FACTORS)].notna().any(axis=1).to_numpy(),
        }
    )
    out = pd.DataFrame(cols, index=np.arange(n))
    return out


def shadow_verdicts(decisions: pd.DataFrame, pass_score: pd.Series, crit: pd.DataFrame | None = None) -> pd.DataFrame:
    """The verdict each decision would have had with its shadow criteria deciding too.

    pass_score: per decision row position. Verdicts decided before the criteria (ERROR, and
    INCONCLUSIVE for days in stage or min_sample) stay as they were. Otherwise the live and
    shadow criteria together follow the gate's rules: a missing value → INCONCLUSIVE, a must
    failing → FAIL, the weighted share of passing should criteria below pass_score → FAIL,
    else PASS. Rows without shadow criteria get no shadow verdict (None).
    """
    n = len(decisions)
    crit = criteria_frame(decisions) if crit is None else crit
    crit = crit[crit["role"] == "criterion"]
    shadow_rows = crit[crit["shadow"]]
    out = pd.DataFrame({"shadow_verdict": None, "shadow_reason": None, "shadow_criteria": 0}, index=np.arange(n))
    if shadow_rows.empty:
        return out
    index = pd.Index(np.arange(n))
    count = shadow_rows.groupby("row").size().reindex(index).fillna(0).astype(int)
    no_value = crit[crit["result"] == "no_value"].groupby("row").size().reindex(index).fillna(0) > 0
    must_fail = crit[(crit["kind"] == "must") & (crit["result"] == "fail")].groupby("row").size().reindex(index).fillna(0) > 0
    should = crit[crit["kind"] == "should"]
    total = should.groupby("row")["weight"].sum().reindex(index)
    passed = should[should["result"] == "pass"].groupby("row")["weight"].sum().reindex(index).fillna(0.0)
    score = (passed / total).where(total > 0, 1.0)
    live = decisions["verdict"].to_numpy(dtype=object)
    live_reason = decisions["reason"].fillna("").astype(str).to_numpy(dtype=object)
    before_criteria = (live == "ERROR") | ((live == "INCONCLUSIVE") & ~pd.Series(live_reason).str.startswith("no value").to_numpy())
    least = pass_score.reindex(index).to_numpy(dtype=float)
    verdict = np.select(
        [before_criteria, no_value.to_numpy(), must_fail.to_numpy(), score.to_numpy() < least - 1e-12],
        [live, "INCONCLUSIVE", "FAIL", "FAIL"],
        default="PASS",
    )
    failing = shadow_rows[shadow_rows["result"] != "pass"].groupby("row")["reason"].agg("; ".join).reindex(index).fillna("")
    reason = np.select(
        [before_criteria, failing.to_numpy() != ""],
        ["decided before the criteria: " + pd.Series(live_reason, dtype=object), "shadow: " + failing],
        default="every shadow criterion passes; score with shadow " + pd.Series(score).map("{:.4g}".format),
    )
    has = (count > 0).to_numpy()
    out["shadow_verdict"] = np.where(has, verdict, None)
    out["shadow_reason"] = np.where(has, reason, None)
    out["shadow_criteria"] = count.to_numpy()
    return out


def _pass_scores(decisions: pd.DataFrame, portfolio: Portfolio) -> pd.Series:
    ids = decisions["brand_id"].to_numpy(dtype=object)
    return pd.Series(stage_param_for(portfolio, ids, decisions["stage"].to_numpy(dtype=object), "pass_score").astype(float))


def _json_objects(frame: pd.DataFrame) -> pd.Series:
    return pd.Series(frame.to_json(orient="records", lines=True, force_ascii=False).splitlines(), index=frame.index, dtype=object)


def diagnose(decisions: pd.DataFrame, cohorts: pd.DataFrame, portfolio: Portfolio) -> pd.DataFrame:
    """The decisions with the diagnosis and shadow verdict added to their gmv_factors JSON (same columns, same rows).

    gmv_factors keeps its keys (gmv and the five factors) and gains "diagnosis":
    {cohort, tier, cohort_brands, factors: {factor: {value, basis, median, target, op,
    vs_median, vs_target, shortfall}}, limiting_factor, limiting_shortfall, lever,
    action_stage, action} and, when the stage has shadow criteria, "shadow": {verdict, reason, criteria}.
    """
    if decisions.empty or "gmv_factors" not in decisions:
        return decisions
    crit = criteria_frame(decisions)  # parsed once for both
    diag = factor_diagnosis(decisions, cohorts, portfolio, crit)
    shadow = shadow_verdicts(decisions, _pass_scores(decisions, portfolio), crit)
    factor_json = pd.Series("", index=diag.index, dtype=object)
    for j, f in enumerate(GMV_FACTORS):  # five factors
        part = diag[[f"{f}.{k}" for k in FIELDS]].set_axis(list(FIELDS), axis=1)
        factor_json = factor_json + ("," if j else "") + f'"{f}":' + _json_objects(part)
    head = diag[["cohort_brands", "tier", "limiting_factor", "limiting_shortfall", "lever", "action_stage", "action"]].copy()
    head.insert(0, "cohort", decisions["stage"].to_numpy(dtype=object))
    body = _json_objects(head).str.slice(0, -1) + ',"factors":{' + factor_json + "}}"
    shadow_part = _json_objects(shadow.rename(columns={"shadow_verdict": "verdict", "shadow_reason": "reason", "shadow_criteria": "criteria"}))
    with_shadow = shadow["shadow_verdict"].notna().to_numpy()
    original = decisions["gmv_factors"].fillna("{}").astype(str).reset_index(drop=True)
    stem = original.str.replace(r"\}\s*$", "", regex=True)
    sep = np.where(original.str.strip() == "{}", "", ",")
    merged = stem + sep + '"diagnosis":' + body + np.where(with_shadow, ',"shadow":' + shadow_part, "") + "}"
    out = decisions.copy()
    out["gmv_factors"] = np.where(diag["measured"].to_numpy() | with_shadow, merged.to_numpy(dtype=object), original.to_numpy(dtype=object))
    return out
