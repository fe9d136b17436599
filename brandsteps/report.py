"""Human-readable renderings of cycles and decisions: markdown for Prefect artifacts, text for the CLI."""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
import pandas as pd

from brandsteps.catalogue import EXITED, GMV_FACTORS, GRADUATED, METRICS, STAGE_IDS
from brandsteps.cycle import FUNNEL_ORDER, CycleSummary

STAGE_TITLES = {
    "affiliate_trial": "1 Affiliate trial",
    "public_traffic": "2 Public traffic",
    "self_broadcast": "3 Self-broadcast",
    "private_repurchase": "4 Private repurchase",
    "channel_exclusive": "5 Channel exclusive",
    GRADUATED: "Graduated",
    EXITED: "Exited",
}
FACTOR_LABELS = {
    "uv": "UV (visitors)",
    "watch_minutes_per_uv": "watch minutes per visitor",
    "conversion_per_watch_minute": "buyers per watch minute",
    "repurchase_frequency": "orders per buyer",
    "aov": "AOV per order",
}


def show_value(metric: str, value: float | None) -> str:
    """A metric value as a person reads it: ¥ with separators, percentages, plain counts."""
    if value is None or value != value:
        return "n/a"
    unit = METRICS[metric].unit if metric in METRICS else "ratio"
    if unit == "money":
        return f"¥{value:,.2f}"
    if unit == "share":
        return f"{value * 100:.2f}%"
    if unit in {"count", "days"}:
        return f"{value:,.0f}"
    return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"


def funnel_rows(funnel: dict[str, int]) -> list[dict[str, Any]]:
    total = sum(funnel.values()) or 1
    return [
        {"stage": STAGE_TITLES[s], "brands": funnel.get(s, 0), "share": f"{funnel.get(s, 0) / total:.0%}"}
        for s in FUNNEL_ORDER
    ]


def funnel_text(funnel: dict[str, int]) -> str:
    width = max(funnel.values() or [1]) or 1
    lines = []
    for s in FUNNEL_ORDER:
        n = funnel.get(s, 0)
        lines.append(f"  {STAGE_TITLES[s]:<22} {n:>6}  {'█' * max(0, round(30 * n / width))}")
    return "\n".join(lines)


def summary_markdown(summary: CycleSummary) -> str:
    rows = "\n".join(f"| {r['stage']} | {r['brands']} | {r['share']} |" for r in funnel_rows(summary.funnel))
    verdicts = ", ".join(f"{k} {v}" for k, v in summary.verdicts.items()) or "none"
    actions = ", ".join(f"{k} {v}" for k, v in summary.actions.items() if v) or "none"
    notes = []
    if summary.already_decided:
        notes.append(f"- {summary.already_decided} brands were already decided for this day (rerun: nothing changed)")
    if summary.later_decided:
        notes.append(f"- {summary.later_decided} brands skipped: a later day is already decided")
    if summary.quarantined_rows:
        notes.append(f"- {summary.quarantined_rows} metric rows quarantined (see the quarantined-rows artifact)")
    if summary.errors:
        notes.append(f"- ERROR (data failed validation): {', '.join(summary.errors[:20])}")
    if summary.overdue:
        notes.append(f"- overdue (past max_days_in_stage): {', '.join(summary.overdue[:20])}")
    return (
        f"# Onboarding cycle {summary.as_of}\n\n"
        f"Decided **{summary.decided}** brands. Verdicts: {verdicts}. Actions: {actions}.\n\n"
        "| stage | brands | share |\n|---|---:|---:|\n" + rows + "\n\n" + "\n".join(notes) + "\n"
    )


TABLE_ROWS = 1000  # a Prefect table artifact is read by people: beyond this many rows, the ledger is the place


def changes_rows(decisions: pd.DataFrame, names: pd.Series, limit: int = TABLE_ROWS) -> list[dict[str, Any]]:
    """Decisions that changed something (a move, an approval wait, or an overdue flag), the first `limit` of them."""
    if decisions.empty:
        return []
    changed = decisions[_changed(decisions)].head(limit)
    ids = changed["brand_id"].astype(str)
    table = pd.DataFrame(
        {
            "brand": (ids + " " + names.reindex(ids.to_numpy()).fillna("").astype(str).to_numpy()).str.strip(),
            "from": changed["stage"],
            "action": changed["action"],
            "to": changed["to_stage"],
            "verdict": changed["verdict"],
            "overdue": np.where(changed["overdue"].astype(bool), "yes", ""),
            "why": np.where(changed["action"] != "hold", changed["action_reason"], changed["reason"]),
        }
    )
    return list(table.astype(object).to_dict("records"))


def changed_count(decisions: pd.DataFrame) -> int:
    """How many decisions changed something (changes_rows shows at most TABLE_ROWS of them)."""
    return 0 if decisions.empty else int(_changed(decisions).sum())


def _changed(decisions: pd.DataFrame) -> pd.Series:
    return (decisions["action"] != "hold") | decisions["overdue"].astype(bool)


def quarantine_rows(quarantine: pd.DataFrame, limit: int = 500) -> list[dict[str, Any]]:
    q = quarantine.head(limit).astype(object).where(quarantine.head(limit).notna(), "")
    return [{k: str(v) for k, v in row.items()} for row in q.to_dict("records")]


def _criteria(decision: dict[str, Any]) -> list[dict[str, Any]]:
    items = decision.get("criteria") or "[]"
    return json.loads(items) if isinstance(items, str) else list(items)


def _factors(decision: dict[str, Any]) -> dict[str, Any]:
    items = decision.get("gmv_factors") or "{}"
    return json.loads(items) if isinstance(items, str) else dict(items)


def brand_report_markdown(decision: dict[str, Any], name: str, history: pd.DataFrame) -> str:
    """The per-brand decision report: verdict, criteria vs thresholds with reasons, GMV factors."""
    lines = [
        f"# {name} ({decision['brand_id']}) — {decision['as_of']}",
        "",
        f"**Stage** {STAGE_TITLES.get(decision['stage'], decision['stage'])} · **verdict** {decision['verdict']} · "
        f"**action** {decision['action']} → {STAGE_TITLES.get(decision['to_stage'], decision['to_stage'])}",
        "",
        f"- Why: {decision['reason']}",
        f"- Action: {decision['action_reason']}",
        f"- Days in stage: {decision['days_in_stage']}; passes in a row: {decision['pass_streak']}"
        + ("; **overdue**" if decision.get("overdue") else ""),
        f"- Policy version {decision['policy_version']}",
        "",
        "| criterion | kind | value | op | threshold | result | reason |",
        "|---|---|---:|:-:|---:|---|---|",
    ]
    for c in _criteria(decision):
        label = c["metric"] if c["role"] == "criterion" else f"{c['metric']} (guardrail {c['source_stage']})"
        kind = c["kind"] + (" shadow" if c.get("shadow") else "")
        lines.append(
            f"| {label} | {kind} | {show_value(c['metric'], c['value'])} | {c['op']} | "
            f"{show_value(c['metric'], c['threshold'])} | {c['result']} | {c['reason']} |"
        )
    factors = _factors(decision)
    lines += shadow_lines(factors, markdown=True)
    if factors:
        lines += factor_tree_markdown(factors)
    if len(history):
        lines += ["", "## Stage history", "", "| day | from | to | action | by | reason |", "|---|---|---|---|---|---|"]
        for r in history.itertuples():
            lines.append(f"| {r.as_of} | {r.from_stage} | {r.to_stage} | {r.action} | {r.actor or r.cause} | {r.reason} |")
    return "\n".join(lines) + "\n"


def explain_text(decision: dict[str, Any], name: str, history: pd.DataFrame) -> str:
    """The same evidence as the report, laid out for a terminal."""
    out = [
        f"{name} ({decision['brand_id']}) on {decision['as_of']}",
        f"  stage    {decision['stage']}  (day {decision['days_in_stage']} in stage, {decision['pass_streak']} passes in a row)",
        f"  verdict  {decision['verdict']}: {decision['reason']}",
        f"  action   {decision['action']} -> {decision['to_stage']}: {decision['action_reason']}",
    ]
    if decision.get("overdue"):
        out.append("  OVERDUE  past max_days_in_stage")
    crit = _criteria(decision)
    if crit:
        out.append("  criteria")
        for c in crit:
            tag = ("" if c["role"] == "criterion" else f" [guardrail {c['source_stage']}]") + (f" [shadow: would {c['result']}]" if c.get("shadow") else "")
            mark = {"pass": "ok  ", "fail": "FAIL", "no_value": "n/a "}[c["result"]]
            out.append(
                f"    {mark} {c['kind']:<6} {c['metric']:<28} {show_value(c['metric'], c['value']):>14} "
                f"{c['op']:>2} {show_value(c['metric'], c['threshold']):<12}{tag}"
            )
    factors = _factors(decision)
    out += shadow_lines(factors, markdown=False)
    if factors:
        out += factor_tree_text(factors)
    if len(history):
        out.append("  stage history")
        for r in history.itertuples():
            out.append(f"    {r.as_of} {r.from_stage} -> {r.to_stage} ({r.action}{', by ' + r.actor if r.actor else ''})")
    out.append(f"  policy {decision['policy_version']}, flow run {decision.get('flow_run_id') or '-'}")
    return "\n".join(out)


def stage_sort_key(stage: str) -> int:
    order = (*STAGE_IDS, GRADUATED, EXITED)
    return order.index(stage) if stage in order else len(order)


def _share(v: float | None) -> str:
    return "–" if v is None or v != v else f"{v * 100:.1f}%"


def _factor_rows(factors: dict[str, Any]) -> list[dict[str, str]]:
    """Each GMV factor with its value, cohort median (UV per day), target and shortfalls, as display strings."""
    diag = factors.get("diagnosis") or {}
    per = diag.get("factors") or {}
    rows = []
    for f in GMV_FACTORS:
        d = per.get(f) or {}
        per_day = f == "uv"
        basis, median = d.get("basis"), d.get("median")
        shown = show_value(f, factors.get(f)) + (f" ({show_value(f, basis)}/day)" if per_day and basis is not None else "")
        med = (show_value(f, median) + ("/day" if per_day else "")) if median is not None else "–"
        target = f"{d['op']} {show_value(f, d.get('target'))}" if d.get("target") is not None else "–"
        rows.append({
            "factor": FACTOR_LABELS[f], "value": shown, "median": med, "vs_median": _share(d.get("vs_median")),
            "target": target, "vs_target": _share(d.get("vs_target")), "limiting": "◀ limiting" if diag.get("limiting_factor") == f else "",
        })
    return rows


def _limiting_sentence(diag: dict[str, Any]) -> str:
    if not diag:
        return ""
    cohort = f"{diag.get('cohort')} · {diag.get('tier')} tier · {diag.get('cohort_brands')} brands"
    if not diag.get("limiting_factor"):
        return f"No factor is below its cohort median or stage target (cohort {cohort})."
    f = diag["limiting_factor"]
    return (
        f"Limiting factor: **{FACTOR_LABELS.get(f, f)}**, {_share(diag.get('limiting_shortfall'))} short (cohort {cohort}). "
        f"Lever: {diag.get('lever')}. Playbook ({diag.get('action_stage')}): {diag.get('action')}"
    )


def factor_tree_markdown(factors: dict[str, Any]) -> list[str]:
    """The GMV factor tree with cohort medians, targets, shortfalls and the limiting factor, as markdown lines."""
    lines = [
        "", "## GMV = UV × watch time × conversion × repurchase × AOV", "",
        f"Factor tree: **window GMV {show_value('gmv', factors.get('gmv'))}** = UV × watch min per visitor × buyers per watch min × orders per buyer × AOV",
        "",
        "| factor | value | cohort median | short of median | stage target | short of target | |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in _factor_rows(factors):  # five factors
        lines.append(f"| {r['factor']} | {r['value']} | {r['median']} | {r['vs_median']} | {r['target']} | {r['vs_target']} | {r['limiting']} |")
    sentence = _limiting_sentence(factors.get("diagnosis") or {})
    return lines + (["", sentence] if sentence else [])


def factor_tree_text(factors: dict[str, Any]) -> list[str]:
    """The same factor tree for a terminal."""
    out = [f"  GMV factor tree: window GMV {show_value('gmv', factors.get('gmv'))} = product of"]
    rows = _factor_rows(factors)
    for i, r in enumerate(rows):
        branch = "└─" if i == len(rows) - 1 else "├─"
        out.append(
            f"    {branch} {r['factor']:<28} {r['value']:>24}  median {r['median']:>14} short {r['vs_median']:>6}"
            f"  target {r['target']:>12} short {r['vs_target']:>6} {r['limiting']}"
        )
    sentence = _limiting_sentence(factors.get("diagnosis") or {}).replace("**", "")
    return out + ([f"    {sentence}"] if sentence else [])


def shadow_lines(factors: dict[str, Any], markdown: bool) -> list[str]:
    """The would-be verdict with the shadow criteria deciding too (recorded with the decision)."""
    shadow = factors.get("shadow")
    if not shadow:
        return []
    text = f"With its {shadow.get('criteria')} shadow criteria deciding, the verdict would be {shadow.get('verdict')} ({shadow.get('reason')})"
    return ["", f"**Shadow:** {text}"] if markdown else [f"  shadow   {text}"]


def print_progress(done: int, total: int, line: str) -> None:
    """Progress of a long run on stderr: one line rewritten in place on a terminal, every tenth step in a log."""
    if sys.stderr.isatty():
        sys.stderr.write(f"\r  [{done:>4}/{total}] {line[:110]:<110}" + ("\n" if done == total else ""))
    elif done == total or done % max(1, total // 10) == 0:
        sys.stderr.write(f"  [{done:>4}/{total}] {line}\n")
    sys.stderr.flush()
