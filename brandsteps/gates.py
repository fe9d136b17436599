"""The gate engine: verdicts and actions for all brands of one stage at once, each with its reason."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from brandsteps.catalogue import EXITED, GMV_FACTORS, GRADUATED, STAGE_IDS, TIERS
from brandsteps.config import Criterion, Portfolio, Stage

# Severity order, most severe first; a cycle's worst verdict is the first of these it contains.
VERDICTS: tuple[str, ...] = ("ERROR", "INCONCLUSIVE", "FAIL", "PASS")
ACTIONS: tuple[str, ...] = ("advance", "hold", "recycle", "demote", "exit", "await_approval", "graduate")
MOVING_ACTIONS = frozenset({"advance", "recycle", "demote", "exit", "graduate"})
GUARD_COLUMNS: tuple[str, ...] = tuple(f"g_{s}" for s in STAGE_IDS)
_NEGATED = {">=": "<", ">": "<=", "<=": ">", "<": ">="}
CRITERIA_COLUMNS = ["brand_id", "role", "source_stage", "metric", "op", "threshold", "kind", "weight", "shadow"]


def _fmt_one(v: float) -> str:
    return "n/a" if v != v else f"{v:.4g}" if abs(v) < 1e4 else f"{v:,.0f}"


def fmt(values: np.ndarray | pd.Series) -> np.ndarray:
    """Numbers for people (4 significant digits, thousands separators) as an object array."""
    return pd.Series(np.asarray(values, dtype=float), dtype=float).map(_fmt_one).to_numpy(dtype=object)


# ---------------------------------------------------------------- rule tables


@dataclass(frozen=True)
class StageRules:
    """Per-brand parameters and long tables of criteria and minimum samples for one cohort."""

    params: pd.DataFrame  # index brand_id: min_days, max_days, consecutive, pass_score, on_fail, requires_approval
    criteria: pd.DataFrame  # CRITERIA_COLUMNS
    sample: pd.DataFrame  # brand_id, key, minimum


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


def _criteria_rows(brand_ids: Sequence[str] | np.ndarray, tiers: np.ndarray, items: list[Criterion], role: str, source: str) -> pd.DataFrame:
    """Cross join of brands × criteria with each brand's tier threshold, without a loop over brands."""
    b = len(brand_ids)
    k = len(items)
    if b == 0 or k == 0:
        return pd.DataFrame(columns=CRITERIA_COLUMNS)
    tier_codes = pd.Categorical(tiers, categories=list(TIERS)).codes
    thr = np.array([[c.threshold_for(t) for t in TIERS] for c in items])  # k × 3
    return pd.DataFrame(
        {
            "brand_id": np.repeat(np.asarray(brand_ids, dtype=object), k),
            "role": role,
            "source_stage": source,
            "metric": np.tile([c.metric for c in items], b),
            "op": np.tile([c.op for c in items], b),
            "threshold": thr[np.tile(np.arange(k), b), np.repeat(tier_codes, k)],
            "kind": np.tile([c.kind for c in items], b),
            "weight": np.tile([c.weight for c in items], b),
            "shadow": np.tile([c.shadow for c in items], b),
        }
    )


def stage_rules(portfolio: Portfolio, cohort: pd.DataFrame, stage_id: str) -> StageRules:
    """Effective rules for every brand in the cohort: playbook defaults, brand overrides patched in."""
    playbook = portfolio.playbook
    ids = cohort.index.to_numpy()
    tiers = cohort["tier"].to_numpy()
    graduated = stage_id == GRADUATED
    stage = None if graduated else playbook.stage(stage_id)
    guard_stages = playbook.stages if graduated else playbook.stages[: STAGE_IDS.index(stage_id)]
    overridden = np.isin(ids, list(portfolio.brand_versions))  # brands with overrides have their own version

    plain_ids, plain_tiers = ids[~overridden], tiers[~overridden]
    parts = [] if stage is None else [_criteria_rows(plain_ids, plain_tiers, stage.criteria, "criterion", stage_id)]
    parts += [_criteria_rows(plain_ids, plain_tiers, g.guardrails, "guardrail", g.id) for g in guard_stages]
    defaults = GRADUATED_PARAMS if stage is None else _stage_params(stage)
    params = pd.DataFrame({k: [v] * len(ids) for k, v in defaults.items()}, index=cohort.index)
    sample_items = {} if stage is None else stage.min_sample
    sample = pd.DataFrame(
        {
            "brand_id": np.repeat(plain_ids, len(sample_items)),
            "key": np.tile(list(sample_items), len(plain_ids)),
            "minimum": np.tile(np.array(list(sample_items.values()), dtype=float), len(plain_ids)),
        }
    )
    samples = [sample]
    # Overrides are per-brand configuration, so these few brands are assembled one by one.
    records: list[dict[str, object]] = []
    patched: dict[str, list[object]] = {}

    def add(brand_id: str, tier: str, items: list[Criterion], role: str, source: str) -> None:
        records.extend(
            {"brand_id": brand_id, "role": role, "source_stage": source, "metric": c.metric, "op": c.op,
             "threshold": c.threshold_for(tier), "kind": c.kind, "weight": c.weight, "shadow": c.shadow}
            for c in items
        )

    for brand_id, tier in zip(ids[overridden], tiers[overridden], strict=True):
        brand = portfolio.brands[brand_id]
        if stage is not None:
            eff = portfolio.effective_stage(brand, stage_id)
            add(brand_id, tier, eff.criteria, "criterion", stage_id)
            patched[brand_id] = list(_stage_params(eff).values())
            samples.append(pd.DataFrame({"brand_id": brand_id, "key": list(eff.min_sample), "minimum": list(eff.min_sample.values())}))
        for g in guard_stages:
            add(brand_id, tier, portfolio.effective_stage(brand, g.id).guardrails, "guardrail", g.id)
    if records:
        parts.append(pd.DataFrame.from_records(records, columns=CRITERIA_COLUMNS))
    if patched:
        params.update(pd.DataFrame.from_dict(patched, orient="index", columns=list(defaults)))
    criteria = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) else pd.DataFrame(columns=CRITERIA_COLUMNS)
    samples_frame = pd.concat(samples, ignore_index=True)
    return StageRules(params, criteria, samples_frame)


# ---------------------------------------------------------------- criteria


def evaluate_criteria(criteria: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """Attach value, result (pass/fail/no_value) and a reason like 'refund_rate 0.41 > 0.3'."""
    out = criteria.copy()
    rows = metrics.index.get_indexer(out["brand_id"])
    cols = metrics.columns.get_indexer(out["metric"])
    matrix = metrics.to_numpy(dtype=float)
    value = np.where(rows >= 0, matrix[np.maximum(rows, 0), np.maximum(cols, 0)], np.nan)
    thr = out["threshold"].to_numpy(dtype=float)
    op = out["op"].to_numpy()
    with np.errstate(invalid="ignore"):
        ok = np.select([op == ">=", op == ">", op == "<=", op == "<"], [value >= thr, value > thr, value <= thr, value < thr], False)
    missing = np.isnan(value)
    out["value"] = value
    out["result"] = np.where(missing, "no_value", np.where(ok, "pass", "fail"))
    shown_op = np.where(ok, op, pd.Series(op).map(_NEGATED).to_numpy())
    prefix = np.where(out["role"].to_numpy() == "guardrail", "guardrail " + out["source_stage"].astype(str) + ": ", "")
    prefix = np.where(out["shadow"].to_numpy(dtype=bool), "shadow " + prefix, prefix)
    body = out["metric"] + " " + fmt(value) + " " + shown_op + " " + fmt(thr)
    out["reason"] = prefix + np.where(missing, out["metric"] + " has no value", body)
    return out


def _join_by_brand(rows: pd.DataFrame, index: pd.Index, column: str = "reason", sep: str = "; ") -> pd.Series:
    if rows.empty:
        return pd.Series("", index=index, dtype=object)
    joined = rows.groupby("brand_id", sort=False)[column].agg(sep.join)
    return joined.reindex(index).fillna("").astype(object)


# ---------------------------------------------------------------- verdicts


@dataclass(frozen=True)
class Evidence:
    """What the verdict rules read: the cohort, its rules, evaluated criteria and samples."""

    cohort: pd.DataFrame
    params: pd.DataFrame
    deciding: pd.DataFrame  # evaluated rows that decide the verdict (no shadow)
    sample: pd.DataFrame  # brand_id, key, minimum, value
    score: pd.Series  # weighted share of passing should-criteria per brand


Rule = Callable[[Evidence], tuple[np.ndarray, pd.Series]]


def _data_error(ev: Evidence) -> tuple[np.ndarray, pd.Series]:
    err = ev.cohort["data_error"].fillna("").astype(str)
    return (err != "").to_numpy(), "data failed validation: " + err


def _too_early(ev: Evidence) -> tuple[np.ndarray, pd.Series]:
    days, least = ev.cohort["days_in_stage"], ev.params["min_days"]
    return (days < least).to_numpy(), days.astype(str) + " days in stage < min_days_in_stage " + least.astype(int).astype(str)


def _sample_short(ev: Evidence) -> tuple[np.ndarray, pd.Series]:
    s = ev.sample
    short = s[~(s["value"] >= s["minimum"])]
    text = "min_sample " + short["key"].astype(object) + " " + fmt(short["value"]) + " < " + fmt(short["minimum"])
    reasons = _join_by_brand(short.assign(reason=text.str.replace(" n/a <", " not measured, need", regex=False)), ev.cohort.index)
    return (reasons != "").to_numpy(), reasons


def _no_value(ev: Evidence) -> tuple[np.ndarray, pd.Series]:
    rows = ev.deciding[ev.deciding["result"] == "no_value"]
    reasons = _join_by_brand(rows, ev.cohort.index, "metric", ", ")
    return (reasons != "").to_numpy(), "no value: " + reasons


def _must_failed(ev: Evidence) -> tuple[np.ndarray, pd.Series]:
    d = ev.deciding
    rows = d[(d["result"] == "fail") & (d["kind"] == "must")]
    reasons = _join_by_brand(rows, ev.cohort.index)
    return (reasons != "").to_numpy(), reasons


def score(deciding: pd.DataFrame, index: pd.Index) -> pd.Series:
    """Weighted share of passing should-criteria; 1.0 when a stage has none."""
    d = deciding[deciding["kind"] == "should"]
    total = d.groupby("brand_id", sort=False)["weight"].sum().reindex(index)
    passed = d[d["result"] == "pass"].groupby("brand_id", sort=False)["weight"].sum().reindex(index).fillna(0.0)
    return (passed / total).where(total > 0, 1.0)


def _score_short(ev: Evidence) -> tuple[np.ndarray, pd.Series]:
    s, least = ev.score, ev.params["pass_score"].astype(float)
    d = ev.deciding
    failed = _join_by_brand(d[(d["kind"] == "should") & (d["result"] == "fail")], ev.cohort.index)
    text = "score " + fmt(s) + " < pass_score " + fmt(least) + " (" + failed + ")"
    return (s < least - 1e-12).to_numpy(), pd.Series(text, index=ev.cohort.index)


def _passed(ev: Evidence) -> pd.Series:
    s, least = ev.score, ev.params["pass_score"].astype(float)
    return pd.Series("all must criteria pass; score " + fmt(s) + " >= pass_score " + fmt(least), index=ev.cohort.index)


VERDICT_RULES: tuple[tuple[Rule, str], ...] = (
    (_data_error, "ERROR"),
    (_too_early, "INCONCLUSIVE"),
    (_sample_short, "INCONCLUSIVE"),
    (_no_value, "INCONCLUSIVE"),
    (_must_failed, "FAIL"),
    (_score_short, "FAIL"),
)


def verdicts(ev: Evidence) -> tuple[np.ndarray, np.ndarray]:
    """The verdict and its reason for every brand of the cohort.

    Aggregation rule, in this order (the first rule that matches decides):
    1. ERROR        if the brand's rows in the window failed validation;
    2. INCONCLUSIVE if days in stage < min_days_in_stage;
    3. INCONCLUSIVE if any min_sample window sum is below its minimum or not measured;
    4. INCONCLUSIVE if any deciding criterion's metric has no value;
    5. FAIL         if any must criterion fails;
    6. FAIL         if the weighted share of passing should criteria < pass_score;
    7. PASS         otherwise.
    Shadow criteria are evaluated and recorded but never decide.
    """
    masks, verdict_list, reason_list = [], [], []
    for rule, verdict in VERDICT_RULES:
        mask, reason = rule(ev)
        masks.append(mask)
        verdict_list.append(verdict)
        reason_list.append(np.asarray(reason, dtype=object))
    verdict = np.select(masks, verdict_list, default="PASS")
    reason = np.select(masks, reason_list, default=_passed(ev).to_numpy(dtype=object))
    return verdict, reason


# ---------------------------------------------------------------- actions


def _guardrail_trips(evaluated: pd.DataFrame, cohort: pd.DataFrame, params_by_stage: dict[str, int]) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """New guardrail streaks per earlier stage, the earliest stage tripped, and its reasons.

    A guardrail stage FAILS an evaluation when any of its guardrails fails with a value; it
    passes when all have values and pass; with a value missing its streak stands still.
    """
    g = evaluated[(evaluated["role"] == "guardrail") & ~evaluated["shadow"].astype(bool)]
    streaks = cohort[list(GUARD_COLUMNS)].copy()
    tripped = pd.Series("", index=cohort.index, dtype=object)
    reasons = pd.Series("", index=cohort.index, dtype=object)
    if g.empty:
        return streaks, tripped, reasons
    flags = g.assign(failed=g["result"] == "fail", complete=g["result"] != "no_value")
    by = flags.groupby(["brand_id", "source_stage"], sort=False)
    failed = by["failed"].any().unstack()
    complete = by["complete"].all().unstack()
    valid = cohort["data_error"].fillna("").astype(str) == ""
    for stage_id in STAGE_IDS:  # five fixed stages, not brands
        if stage_id not in failed.columns:
            continue
        col = f"g_{stage_id}"
        f = failed[stage_id].reindex(cohort.index).fillna(False).astype(bool) & valid
        ok = complete[stage_id].reindex(cohort.index).fillna(False).astype(bool) & ~f & valid
        streaks[col] = np.where(f, streaks[col] + 1, np.where(ok, 0, streaks[col]))
        hit = f & (streaks[col] >= params_by_stage[stage_id]) & (tripped == "")
        if hit.any():
            rows = g[(g["source_stage"] == stage_id) & (g["result"] == "fail")]
            why = _join_by_brand(rows, cohort.index)
            tripped = tripped.where(~hit, stage_id)
            detail = why.str.replace(f"guardrail {stage_id}: ", "", regex=False)
            text = "guardrail " + stage_id + " failed " + streaks[col].astype(str) + " evaluations in a row (" + detail + ")"
            reasons = reasons.where(~hit, text)
    return streaks, tripped, reasons


def _next_stage(stage_id: str) -> str:
    i = STAGE_IDS.index(stage_id)
    return STAGE_IDS[i + 1] if i + 1 < len(STAGE_IDS) else GRADUATED


def decide_stage(portfolio: Portfolio, stage_id: str, cohort: pd.DataFrame, metrics: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """One decision per brand of the cohort (all brands currently in `stage_id`), vectorised.

    cohort: index brand_id; tier, paused, awaiting, awaiting_since, days_in_stage, pass_streak,
    stage_entered_on, g_<stage> streaks, data_error, policy_version.
    """
    if cohort.empty:
        return pd.DataFrame()
    rules = stage_rules(portfolio, cohort, stage_id)
    params = rules.params
    evaluated = evaluate_criteria(rules.criteria, metrics)
    graduated = stage_id == GRADUATED
    deciding = evaluated[~evaluated["shadow"].astype(bool)]
    if not graduated:
        deciding = deciding[deciding["role"] == "criterion"]
    sample = rules.sample.copy()
    sample_rows = metrics.index.get_indexer(sample["brand_id"])
    sample_cols = metrics.columns.get_indexer(np.where(sample["key"] == "days_with_data", "days_with_data", "sum_" + sample["key"].astype(str)))
    sample["value"] = metrics.to_numpy(dtype=float)[np.maximum(sample_rows, 0), np.maximum(sample_cols, 0)] if len(sample) else []
    ev = Evidence(cohort, params, deciding, sample, score(deciding, cohort.index))
    verdict, reason = verdicts(ev)
    brand_score = ev.score.to_numpy()

    consecutive_by_stage = {s.id: s.consecutive_passes for s in portfolio.playbook.stages}
    guard_streaks, tripped, guard_reason = _guardrail_trips(evaluated, cohort, consecutive_by_stage)

    is_pass = verdict == "PASS"
    is_fail = verdict == "FAIL"
    paused = cohort["paused"].to_numpy(dtype=bool)
    awaiting = cohort["awaiting"].to_numpy(dtype=bool)
    streak = cohort["pass_streak"].to_numpy(dtype=int)
    new_streak = np.where(paused, streak, np.where(is_pass, streak + 1, np.where(is_fail, 0, streak)))
    need = params["consecutive"].to_numpy(dtype=int)
    earned = is_pass & (new_streak >= need)
    last_stage = stage_id == STAGE_IDS[-1]
    on_fail = params["on_fail"].to_numpy(dtype=object)
    approval = params["requires_approval"].to_numpy(dtype=bool)
    trip = (tripped != "").to_numpy() & ~paused
    pass_word = "PASS " + pd.Series(new_streak).astype(str) + " of " + pd.Series(need).astype(str) + " in a row"
    if graduated:
        action_rules = [
            (paused, "hold", "brand is paused"),
            (trip, "demote", guard_reason.to_numpy(dtype=object)),
        ]
    else:
        nxt = _next_stage(stage_id)
        waiting_for = "awaiting approval to " + ("graduate" if last_stage else f"advance to {nxt}") + " since "
        action_rules = [
            (paused, "hold", "brand is paused"),
            (trip, "demote", guard_reason.to_numpy(dtype=object)),
            (awaiting, "await_approval", (waiting_for + cohort["awaiting_since"].astype(str)).to_numpy(dtype=object)),
            (~is_pass & ~is_fail, "hold", "no move on " + verdict.astype(object)),
            (is_fail & (on_fail == "recycle"), "recycle", f"on_fail recycle: restart the {stage_id} clock"),
            (is_fail & (on_fail == "demote"), "demote", f"on_fail demote: back to {STAGE_IDS[max(STAGE_IDS.index(stage_id) - 1, 0)]}"),
            (is_fail & (on_fail == "exit"), "exit", "on_fail exit: leave the programme"),
            (is_fail, "hold", "on_fail hold"),
            (~earned, "hold", (pass_word + " needed").to_numpy(dtype=object)),
            (approval, "await_approval", (pass_word + ("; graduating" if last_stage else f"; advancing to {nxt}") + " needs approval").to_numpy(dtype=object)),
            (np.full(len(cohort), last_stage), "graduate", (pass_word + ": graduate").to_numpy(dtype=object)),
        ]
    masks = [m for m, _, _ in action_rules]
    action = np.select(masks, [a for _, a, _ in action_rules], default="advance" if not graduated else "hold")
    default_reason = (pass_word + (f": advance to {_next_stage(stage_id)}" if not graduated else ": guardrails hold")).to_numpy(dtype=object)
    action_reason = np.select(masks, [np.broadcast_to(np.asarray(r, dtype=object), len(cohort)) for _, _, r in action_rules], default=default_reason)

    demote_to = np.where(trip, tripped.to_numpy(dtype=object), STAGE_IDS[max(STAGE_IDS.index(stage_id) - 1, 0)] if not graduated else stage_id)
    to_stage = np.select(
        [action == "advance", action == "graduate", action == "demote", action == "exit"],
        [_next_stage(stage_id) if not graduated else stage_id, GRADUATED, demote_to, EXITED],
        default=stage_id,
    )
    moved = (to_stage != stage_id) | (action == "recycle")
    next_day = pd.Timestamp(as_of + timedelta(days=1))
    entered = pd.to_datetime(cohort["stage_entered_on"]).to_numpy(dtype="datetime64[ns]")
    max_days = params["max_days"].to_numpy(dtype=float)
    days = cohort["days_in_stage"].to_numpy(dtype=int)
    frame = pd.DataFrame(
        {
            "brand_id": cohort.index.to_numpy(),
            "as_of": pd.Timestamp(as_of),
            "stage": stage_id,
            "verdict": verdict,
            "action": action,
            "to_stage": to_stage,
            "score": np.where(np.isin(verdict, ["PASS", "FAIL"]), brand_score, np.nan),
            "reason": reason,
            "action_reason": action_reason,
            "overdue": ~np.isnan(max_days) & (days > np.nan_to_num(max_days, nan=0)) & ~moved,
            "days_in_stage": days,
            "pass_streak": np.where(moved, 0, new_streak),
            "stage_entered_on": np.where(moved, np.datetime64(next_day, "ns"), entered),
            "awaiting": np.where(moved, False, action == "await_approval"),
            "awaiting_since": np.where(
                action == "await_approval",
                np.where(awaiting, cohort["awaiting_since"].astype(object).to_numpy(), as_of.isoformat()),
                None,
            ),
            "policy_version": cohort["policy_version"].to_numpy(),
        }
    )
    for col in GUARD_COLUMNS:
        frame[col] = np.where(moved, 0, np.where(paused, cohort[col].to_numpy(), guard_streaks[col].to_numpy())).astype(int)
    frame["criteria"] = criteria_json(evaluated, cohort.index)
    frame["gmv_factors"] = factors_json(metrics, cohort.index)
    return frame


def criteria_json(evaluated: pd.DataFrame, index: pd.Index) -> np.ndarray:
    """Each brand's evaluated criteria as one JSON array, built without a loop over brands."""
    if evaluated.empty:
        return np.full(len(index), "[]", dtype=object)
    cols = ["role", "source_stage", "metric", "op", "threshold", "kind", "weight", "shadow", "value", "result", "reason"]
    lines = evaluated[cols].to_json(orient="records", lines=True, force_ascii=False).splitlines()
    joined = pd.Series(lines, index=evaluated["brand_id"].to_numpy()).groupby(level=0, sort=False).agg(",".join)
    return ("[" + joined.reindex(index).fillna("") + "]").to_numpy(dtype=object)


def factors_json(metrics: pd.DataFrame, index: pd.Index) -> np.ndarray:
    cols = ["gmv", *GMV_FACTORS]
    frame = metrics.reindex(index)[cols]
    return np.array(frame.to_json(orient="records", lines=True).splitlines(), dtype=object)


def exited_decisions(cohort: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Brands that left the programme keep one record per day saying so, and are not evaluated."""
    frame = pd.DataFrame(
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
            "stage_entered_on": pd.to_datetime(cohort["stage_entered_on"]).to_numpy(dtype="datetime64[ns]"),
            "awaiting": False,
            "awaiting_since": None,
            "policy_version": cohort["policy_version"].to_numpy(),
        }
    )
    for col in GUARD_COLUMNS:
        frame[col] = 0
    frame["criteria"] = "[]"
    frame["gmv_factors"] = "{}"
    return frame
