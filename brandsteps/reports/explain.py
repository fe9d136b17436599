"""One decision explained: criteria against thresholds, GMV factors, stage history and inputs revised since."""

from __future__ import annotations

import json
from typing import Any, cast

import pandas as pd

from brandsteps.catalogue import GMV_FACTORS, METRICS
from brandsteps.engine.evidence import show_number
from brandsteps.reports.summary import STAGE_TITLES

FACTOR_LABELS = {
    "uv": "UV (visitors)",
    "watch_minutes_per_uv": "watch minutes per visitor",
    "conversion_per_watch_minute": "buyers per watch minute",
    "repurchase_frequency": "orders per buyer",
    "aov": "AOV per order",
}


def show_value(metric: str, value: float | None) -> str:
    """A metric value as a person reads it: ¥ with separators, percentages, plain counts (as the reasons show it)."""
    return show_number(value, METRICS[metric].unit if metric in METRICS else "ratio")


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
        "| criterion | kind | window | value | op | threshold | result | reason |",
        "|---|---|---|---:|:-:|---:|---|---|",
    ]
    for c in _criteria(decision):
        label = c["metric"] if c["role"] == "criterion" else f"{c['metric']} (guardrail {c['source_stage']})"
        kind = c["kind"] + (" shadow" if c.get("shadow") else "")
        lines.append(
            f"| {label} | {kind} | {criterion_window(c)} | {show_value(c['metric'], c['value'])} | {c['op']} | "
            f"{show_value(c['metric'], c['threshold'])} | {c['result']} | {c['reason']} |"
        )
    factors = _factors(decision)
    lines += shadow_lines(factors, markdown=True)
    if factors:
        lines += factor_tree_markdown(factors)
    if len(history):
        lines += ["", "## Stage history", "", "| day | from | to | action | by | reason |", "|---|---|---|---|---|---|"]
        for r in history.itertuples():
            lines.append(
                f"| {r.as_of} | {r.from_stage} | {r.to_stage} | {r.action} | {r.actor or r.cause!s} | {r.reason} |"
            )
    return "\n".join(lines) + "\n"


def explain_text(
    decision: dict[str, Any], name: str, history: pd.DataFrame, revised: pd.DataFrame | None = None, record: str = ""
) -> str:
    """The same evidence as the report, laid out for a terminal.

    revised: inputs revised after the decision (brandsteps.sources.imports.records); record: where they are kept.
    """
    out = [
        f"{name} ({decision['brand_id']}) on {decision['as_of']}",
        f"  stage    {decision['stage']}  "
        f"(day {decision['days_in_stage']} in stage, {decision['pass_streak']} passes in a row)",
        f"  verdict  {decision['verdict']}: {decision['reason']}",
        f"  action   {decision['action']} -> {decision['to_stage']}: {decision['action_reason']}",
    ]
    if decision.get("overdue"):
        out.append("  OVERDUE  past max_days_in_stage")
    if revised is not None and len(revised):
        out.append("  " + revised_note(revised, record))
    crit = _criteria(decision)
    if crit:
        out.append("  criteria")
        for c in crit:
            tag = ("" if c["role"] == "criterion" else f" [guardrail {c['source_stage']}]") + (
                f" [shadow: would {c['result']}]" if c.get("shadow") else ""
            )
            mark = {"pass": "ok  ", "fail": "FAIL", "no_value": "n/a "}[c["result"]]
            out.append(
                f"    {mark} {c['kind']:<6} {c['metric']:<28} {show_value(c['metric'], c['value']):>14} "
                f"{c['op']:>2} {show_value(c['metric'], c['threshold']):<12} {criterion_window(c):<26}{tag}"
            )
    factors = _factors(decision)
    out += shadow_lines(factors, markdown=False)
    if factors:
        out += factor_tree_text(factors)
    if len(history):
        out.append("  stage history")
        for r in history.itertuples():
            out.append(
                f"    {r.as_of} {r.from_stage} -> {r.to_stage} "
                f"({change_label(r.action, r.cause, r.actor)}): {one_line(r.reason)}"
            )
    out.append(f"  policy {decision['policy_version']}, flow run {decision.get('flow_run_id') or '-'}")
    return "\n".join(out)


def criterion_window(criterion: dict[str, Any]) -> str:
    """The days a criterion's value was computed over, as recorded: '2026-11-16..2026-11-29'.

    A lagged criterion's days end with '(lag 7)'.

    Decisions recorded before windows were kept show '–'; an empty lagged window (the brand entered the
    stage after it ended) shows 'no days yet'.
    """
    window = criterion.get("window")
    lag = int(criterion.get("lag_days") or 0)
    text = "–" if window is None else window or "no days yet"
    return text + (f" (lag {lag})" if lag else "")


REVISIONS_NAMED = 5  # revised values named in explain's note; the rest are counted


def _show_base(column: Any, value: Any) -> str:
    """A base column's value as the revision note shows it: money in ¥, the rest plain; none is 'not measured'."""
    from brandsteps.sources.imports.profiles import MONEY_COLUMNS

    if value != value:  # NaN: the cell had no value (new) or held text that was not a number (old)
        return "not measured"
    return show_number(float(value), "money" if column in MONEY_COLUMNS else "count")


def revised_note(revised: pd.DataFrame, record: str) -> str:
    """One line: which inputs of a decision were revised after it, old → new, by which file and when.

    The decision stays as it was (a rerun of its day finds it decided and changes nothing), so the
    note says so and points to the record of the old values.
    """
    named = revised.head(REVISIONS_NAMED)
    items = [
        f"{r.column_name} on {r.date:%Y-%m-%d} "
        f"({_show_base(r.column_name, r.old_value)} → {_show_base(r.column_name, r.new_value)}, "
        f"file {r.file}, {r.recorded_at:%Y-%m-%d %H:%M} UTC)"
        for r in named.itertuples()  # a handful of revisions of one brand's window
    ]
    more = f"; and {len(revised) - len(named)} more" if len(revised) > len(named) else ""
    where = f" in {record}" if record else ""
    return (
        f"note: inputs revised after this decision: {'; '.join(items)}{more}; "
        f"a rerun of this day would not change it (decisions are kept), see the revision record{where}"
    )


def revised_inputs_records(revised: pd.DataFrame | None) -> list[dict[str, Any]] | None:
    """explain --format json's revised_inputs: one object per revision, ISO dates and times, null for no value.

    None when the revision record could not be read.
    """
    if revised is None:
        return None
    out = revised.assign(
        date=revised["date"].dt.strftime("%Y-%m-%d"), recorded_at=revised["recorded_at"].map(lambda t: t.isoformat())
    )
    return cast(list[dict[str, Any]], out.astype(object).where(out.notna(), None).to_dict("records"))


def change_label(action: object, cause: object, actor: object) -> str:
    """What a stage change did, why and who: 'advance, approval by 王敏'; 'demote, decision' (a cycle has no actor)."""
    return f"{action}, {cause}" + (f" by {actor}" if isinstance(actor, str) and actor else "")


def one_line(text: object) -> str:
    """Text on one terminal line: a reviewer's reason may hold newlines and tabs."""
    return " ".join(str(text).split())


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
        shown = show_value(f, factors.get(f)) + (
            f" ({show_value(f, basis)}/day)" if per_day and basis is not None else ""
        )
        med = (show_value(f, median) + ("/day" if per_day else "")) if median is not None else "–"
        target = f"{d['op']} {show_value(f, d.get('target'))}" if d.get("target") is not None else "–"
        rows.append(
            {
                "factor": FACTOR_LABELS[f],
                "value": shown,
                "median": med,
                "vs_median": _share(d.get("vs_median")),
                "target": target,
                "vs_target": _share(d.get("vs_target")),
                "limiting": "◀ limiting" if diag.get("limiting_factor") == f else "",
            }
        )
    return rows


def _limiting_sentence(diag: dict[str, Any]) -> str:
    if not diag:
        return ""
    cohort = f"{diag.get('cohort')} · {diag.get('tier')} tier · {diag.get('cohort_brands')} brands"
    if not diag.get("limiting_factor"):
        return f"No factor is below its cohort median or stage target (cohort {cohort})."
    f = diag["limiting_factor"]
    return (
        f"Limiting factor: **{FACTOR_LABELS.get(f, f)}**, "
        f"{_share(diag.get('limiting_shortfall'))} short (cohort {cohort}). "
        f"Lever: {diag.get('lever')}. Playbook ({diag.get('action_stage')}): {diag.get('action')}"
    )


def factor_tree_markdown(factors: dict[str, Any]) -> list[str]:
    """The GMV factor tree with cohort medians, targets, shortfalls and the limiting factor, as markdown lines."""
    lines = [
        "",
        "## GMV = UV × watch time × conversion × repurchase × AOV",
        "",
        f"Factor tree: **window GMV {show_value('gmv', factors.get('gmv'))}** = "
        "UV × watch min per visitor × buyers per watch min × orders per buyer × AOV",
        "",
        "| factor | value | cohort median | short of median | stage target | short of target | |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in _factor_rows(factors):  # five factors
        lines.append(
            f"| {r['factor']} | {r['value']} | {r['median']} | {r['vs_median']} "
            f"| {r['target']} | {r['vs_target']} | {r['limiting']} |"
        )
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
    text = (
        f"With its {shadow.get('criteria')} shadow criteria deciding, "
        f"the verdict would be {shadow.get('verdict')} ({shadow.get('reason')})"
    )
    return ["", f"**Shadow:** {text}"] if markdown else [f"  shadow   {text}"]
