"""Human-readable renderings of cycles and decisions: markdown for Prefect artifacts, text for the CLI."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd

from brandsteps.catalogue import EXITED, GMV_FACTORS, GRADUATED, METRICS, STAGE_IDS
from brandsteps.engine.cycle import FUNNEL_ORDER, CycleSummary
from brandsteps.engine.evidence import show_number
from brandsteps.wording import counted

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
    """A metric value as a person reads it: ¥ with separators, percentages, plain counts (as the reasons show it)."""
    return show_number(value, METRICS[metric].unit if metric in METRICS else "ratio")


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


NAMED_LIMIT = 20  # brands named in one line of the summary; the rest are counted


def _named(ids: list[str]) -> str:
    more = len(ids) - NAMED_LIMIT
    return ", ".join(ids[:NAMED_LIMIT]) + (f" and {more} more" if more > 0 else "")


def summary_lines(summary: CycleSummary) -> list[str]:
    """What a cycle did, one fact a line: the lines of the cycle-summary artifact and of `brandsteps run` (one rendering for both)."""
    rebuilt = summary.recorded is not None  # a rerun: the day as the ledger holds it
    decided = summary.recorded if summary.recorded is not None else summary.decided
    verdicts = ", ".join(f"{k} {v}" for k, v in summary.verdicts.items() if v)
    lines = [f"Decided {counted(decided, 'brand')}" + (f": {verdicts}." if verdicts else ".")]
    if decided:
        moves = ", ".join(f"{k} {v}" for k, v in summary.actions.items() if v and k != "hold")
        hold = summary.actions.get("hold", 0)
        lines.append(f"Moves: {moves or 'none'}" + (f" ({counted(hold, 'brand')} hold)." if hold else "."))
    if summary.already_decided:
        lines.append(
            f"{summary.already_decided} of them were decided by an earlier run of this day: this run changed nothing for them."
            if rebuilt
            else f"{counted(summary.already_decided, 'brand')} already decided for this day: nothing changed for them."
        )
    if summary.later_decided:
        lines.append(f"{counted(summary.later_decided, 'brand')} skipped: a later day is already decided.")
    if summary.conflicts:
        lines.append(f"{counted(summary.conflicts, 'brand')} skipped: another cycle changed them while this one ran.")
    if summary.quarantined_rows:
        first = "; ".join(summary.quarantine_first)
        more = "; …" if summary.quarantined_rows > len(summary.quarantine_first) else ""
        listed = f": {first}{more}" if first else ""
        lines.append(
            f"Quarantined {counted(summary.quarantined_rows, 'metric row')}{listed} (all of them: the quarantined-rows artifact)."
        )
    if summary.errors:
        lines.append(f"ERROR (data failed validation): {_named(summary.errors)}.")
    if summary.unknown_brands_rows:
        known = f": {_named(summary.unknown_brands)}" if summary.unknown_brands else ""
        lines.append(
            f"{counted(summary.unknown_brands_rows, 'metric row')} of brands no config knows, left out{known}."
        )
    if summary.overdue:
        lines.append(f"Overdue (past max_days_in_stage): {_named(summary.overdue)}.")
    return lines


def summary_markdown(summary: CycleSummary) -> str:
    rows = "\n".join(f"| {r['stage']} | {r['brands']} | {r['share']} |" for r in funnel_rows(summary.funnel))
    notes = "\n".join(f"- {line}" for line in summary_lines(summary))
    return f"# Onboarding cycle {summary.as_of}\n\n{notes}\n\n| stage | brands | share |\n|---|---:|---:|\n{rows}\n"


TABLE_ROWS = 1000  # a Prefect table artifact is read by people: beyond this many rows, the ledger is the place


def _labels(ids: pd.Series, names: pd.Series) -> np.ndarray:
    """'b001 山野茶社': the id, then the configured name where there is one."""
    ids = ids.astype(str)
    return np.asarray(
        (ids + " " + names.reindex(ids.to_numpy()).fillna("").astype(str).to_numpy()).str.strip(), dtype=object
    )


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """The table's rows as dicts of Python values (what a Prefect table artifact takes)."""
    return cast(list[dict[str, Any]], table.astype(object).to_dict("records"))


def changes_rows(decisions: pd.DataFrame, names: pd.Series, limit: int = TABLE_ROWS) -> list[dict[str, Any]]:
    """Decisions that changed something (a move, an approval wait, or an overdue flag), the first `limit` of them.

    why: the reason of the action taken (the ledger's action_reason: a paused brand holds because it is
    paused, whatever its verdict said), right after the brand.
    """
    if decisions.empty:
        return []
    changed = decisions[_changed(decisions)].head(limit)
    table = pd.DataFrame(
        {
            "brand": _labels(changed["brand_id"], names),
            "why": changed["action_reason"].to_numpy(dtype=object),
            "from": changed["stage"].to_numpy(dtype=object),
            "action": changed["action"].to_numpy(dtype=object),
            "to": changed["to_stage"].to_numpy(dtype=object),
            "verdict": changed["verdict"].to_numpy(dtype=object),
            "overdue": np.where(changed["overdue"].astype(bool), "yes", ""),
        }
    )
    return _records(table)


@dataclass(frozen=True)
class Table:
    """An artifact table's rows, and the columns left out because every row had the same value in them."""

    rows: list[dict[str, Any]]
    same: dict[str, Any]

    def note(self) -> str:
        """The left-out columns for the table's description: 'every row: verdict PASS'."""
        return "; every row: " + ", ".join(f"{k} {v}" for k, v in self.same.items()) if self.same else ""


def without_constant_columns(table: pd.DataFrame, keep: tuple[str, ...]) -> Table:
    """The table's rows without the columns that say the same for every row (an empty column, or one value in two rows or more).

    keep: columns shown whatever they hold (the brand, the why, what the table is for).
    """
    if table.empty:
        return Table([], {})
    text = table.astype(str)
    same = [
        c
        for c in table.columns
        if c not in keep and text[c].nunique() == 1 and (len(table) > 1 or text[c].iloc[0] == "")
    ]
    first = table.iloc[0]
    return Table(_records(table.drop(columns=same)), {str(c): first[c] for c in same if text[c].iloc[0] != ""})


def changes_table(decisions: pd.DataFrame, names: pd.Series, limit: int = TABLE_ROWS) -> Table:
    """The decision-changes artifact: changes_rows without the columns every row agrees on."""
    return without_constant_columns(pd.DataFrame(changes_rows(decisions, names, limit)), keep=("brand", "why"))


def table_brands(cohorts: pd.DataFrame, max_days: pd.Series) -> pd.DataFrame:
    """What the artifact tables show of each brand besides its decision (index brand_id): name, owner,
    awaiting_since of its ledger state, and max_days (its max_days_in_stage in its stage, NaN: none)."""
    return pd.DataFrame(
        {
            "name": cohorts["name"].to_numpy(dtype=object),
            "owner": cohorts["owner"].to_numpy(dtype=object),
            "awaiting_since": cohorts["awaiting_since"].to_numpy(dtype=object),
            "max_days": max_days.reindex(cohorts.index).to_numpy(dtype=float),
        },
        index=cohorts.index,
    )


def _owners(ids: pd.Series, brands: pd.DataFrame) -> np.ndarray:
    owner = brands["owner"].reindex(ids.astype(str).to_numpy()).to_numpy(dtype=object)
    return np.asarray(np.where(pd.isna(owner) | (owner == ""), "–", owner), dtype=object)


def overdue_table(decisions: pd.DataFrame, brands: pd.DataFrame, limit: int = TABLE_ROWS) -> Table:
    """The overdue-brands artifact: each overdue brand's days in stage against its limit ('12 / 10'), owner and why."""
    rows = decisions[decisions["overdue"].astype(bool)].head(limit) if len(decisions) else decisions
    if rows.empty:
        return Table([], {})
    ids = rows["brand_id"].astype(str)
    max_days = brands["max_days"].reindex(ids.to_numpy()).to_numpy(dtype=float)
    limit_text = np.where(
        np.isnan(max_days), "–", pd.Series(max_days).fillna(0).astype(int).astype(str).to_numpy(dtype=object)
    )
    table = pd.DataFrame(
        {
            "brand": _labels(ids, brands["name"]),
            "days": rows["days_in_stage"].astype(int).astype(str).to_numpy(dtype=object) + " / " + limit_text,
            "owner": _owners(ids, brands),
            "why": rows["action_reason"].to_numpy(dtype=object),
            "stage": rows["stage"].to_numpy(dtype=object),
            "action": rows["action"].to_numpy(dtype=object),
            "verdict": rows["verdict"].to_numpy(dtype=object),
        }
    )
    return without_constant_columns(table, keep=("brand", "days", "owner", "why"))


def awaiting_table(
    decisions: pd.DataFrame, brands: pd.DataFrame, links: Mapping[str, str], limit: int = TABLE_ROWS
) -> Table:
    """The awaiting-approval artifact: each waiting brand's owner, days waiting, since when, and its review run.

    The wait began on the ledger's awaiting_since: the decisions' own (a cycle's fresh decisions carry
    it), else the brand's state (decisions read back from the ledger do not). links: brand → the
    review-brand run's page, where the task layer found one.
    """
    rows = decisions[decisions["action"] == "await_approval"].head(limit) if len(decisions) else decisions
    if rows.empty:
        return Table([], {})
    ids = rows["brand_id"].astype(str)
    state = brands["awaiting_since"].reindex(ids.to_numpy()).to_numpy(dtype=object)
    own = (
        rows["awaiting_since"].to_numpy(dtype=object)
        if "awaiting_since" in rows.columns
        else np.full(len(rows), None, dtype=object)
    )
    since = pd.to_datetime(pd.Series(np.where(pd.isna(own), state, own)), errors="coerce")
    waited = (pd.to_datetime(rows["as_of"]).reset_index(drop=True) - since).dt.days
    link = pd.Series(dict(links), dtype=object).reindex(ids.to_numpy()).to_numpy(dtype=object)
    table = pd.DataFrame(
        {
            "brand": _labels(ids, brands["name"]),
            "owner": _owners(ids, brands),
            "days waiting": waited.astype("Int64").astype(object).where(waited.notna(), "–").to_numpy(dtype=object),
            "since": since.dt.strftime("%Y-%m-%d").fillna("–").to_numpy(dtype=object),
            "review": np.where(
                pd.isna(link), "no review run yet: brandsteps approve " + ids.to_numpy(dtype=object), link
            ),
            "stage": rows["stage"].to_numpy(dtype=object),
            "verdict": rows["verdict"].to_numpy(dtype=object),
        }
    )
    return without_constant_columns(table, keep=("brand", "owner", "days waiting", "since", "review"))


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
                f"| {r.as_of} | {r.from_stage} | {r.to_stage} | {r.action} | {r.actor or r.cause} | {r.reason} |"
            )
    return "\n".join(lines) + "\n"


def explain_text(
    decision: dict[str, Any], name: str, history: pd.DataFrame, revised: pd.DataFrame | None = None, record: str = ""
) -> str:
    """The same evidence as the report, laid out for a terminal; revised: inputs revised after the decision (imports.records)."""
    out = [
        f"{name} ({decision['brand_id']}) on {decision['as_of']}",
        f"  stage    {decision['stage']}  (day {decision['days_in_stage']} in stage, {decision['pass_streak']} passes in a row)",
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
                f"    {r.as_of} {r.from_stage} -> {r.to_stage} ({change_label(r.action, r.cause, r.actor)}): {one_line(r.reason)}"
            )
    out.append(f"  policy {decision['policy_version']}, flow run {decision.get('flow_run_id') or '-'}")
    return "\n".join(out)


def criterion_window(criterion: dict[str, Any]) -> str:
    """The days a criterion's value was computed over, as recorded: '2026-11-16..2026-11-29', '(lag 7)' after a lagged one.

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
        f"{r.column_name} on {r.date:%Y-%m-%d} ({_show_base(r.column_name, r.old_value)} → {_show_base(r.column_name, r.new_value)}, "
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
    """explain --format json's revised_inputs: one object per revision, ISO dates and times, null for no value (None: record unreadable)."""
    if revised is None:
        return None
    out = revised.assign(
        date=revised["date"].dt.strftime("%Y-%m-%d"), recorded_at=revised["recorded_at"].map(lambda t: t.isoformat())
    )
    return cast(list[dict[str, Any]], out.astype(object).where(out.notna(), None).to_dict("records"))


def change_label(action: object, cause: object, actor: object) -> str:
    """What a stage change did, why and who: 'advance, approval by 王敏', 'demote, decision' (a cycle's decision has no actor)."""
    return f"{action}, {cause}" + (f" by {actor}" if isinstance(actor, str) and actor else "")


def one_line(text: object) -> str:
    """Text on one terminal line: a reviewer's reason may hold newlines and tabs."""
    return " ".join(str(text).split())


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
        f"Limiting factor: **{FACTOR_LABELS.get(f, f)}**, {_share(diag.get('limiting_shortfall'))} short (cohort {cohort}). "
        f"Lever: {diag.get('lever')}. Playbook ({diag.get('action_stage')}): {diag.get('action')}"
    )


def factor_tree_markdown(factors: dict[str, Any]) -> list[str]:
    """The GMV factor tree with cohort medians, targets, shortfalls and the limiting factor, as markdown lines."""
    lines = [
        "",
        "## GMV = UV × watch time × conversion × repurchase × AOV",
        "",
        f"Factor tree: **window GMV {show_value('gmv', factors.get('gmv'))}** = UV × watch min per visitor × buyers per watch min × orders per buyer × AOV",
        "",
        "| factor | value | cohort median | short of median | stage target | short of target | |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in _factor_rows(factors):  # five factors
        lines.append(
            f"| {r['factor']} | {r['value']} | {r['median']} | {r['vs_median']} | {r['target']} | {r['vs_target']} | {r['limiting']} |"
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
    text = f"With its {shadow.get('criteria')} shadow criteria deciding, the verdict would be {shadow.get('verdict')} ({shadow.get('reason')})"
    return ["", f"**Shadow:** {text}"] if markdown else [f"  shadow   {text}"]


def print_progress(done: int, total: int, line: str) -> None:
    """Progress of a long run on stderr: one line rewritten in place on a terminal, every tenth step in a log."""
    if sys.stderr.isatty():
        sys.stderr.write(f"\r  [{done:>4}/{total}] {line[:110]:<110}" + ("\n" if done == total else ""))
    elif done == total or done % max(1, total // 10) == 0:
        sys.stderr.write(f"  [{done:>4}/{total}] {line}\n")
    sys.stderr.flush()
