"""Backtests: replay daily cycles over history into a scratch ledger and summarise what a policy would have done."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import sqlalchemy as sa
from pydantic import ValidationError

from brandsteps.catalogue import EVALUATED_STAGES, EXITED, Action
from brandsteps.config import (
    ConfigError,
    Playbook,
    Portfolio,
    effective_stage,
    format_validation_error,
    load_model,
)
from brandsteps.config.portfolio import brand_policy_version, playbook_policy_version
from brandsteps.engine.cycle import CycleSummary, brand_table, run_day
from brandsteps.engine.readiness import deadline_of
from brandsteps.ledger import Ledger, decisions, stage_changes
from brandsteps.sources.imports.records import as_known
from brandsteps.sources.metrics_source import MetricsBatch

Progress = Callable[[int, int, CycleSummary], None]
ADVANCING = (Action.ADVANCE.value, Action.GRADUATE.value)
DECISION_FIELDS = [
    "brand_id",
    "as_of",
    "stage",
    "verdict",
    "action",
    "to_stage",
    "days_in_stage",
    "reason",
    "action_reason",
    "criteria",
]


@dataclass
class BacktestRun:
    """One policy replayed over a range of days: its decisions and stage changes."""

    label: str
    policy_version: str
    date_from: date
    date_to: date
    decisions: pd.DataFrame
    changes: pd.DataFrame
    summaries: list[CycleSummary] = field(default_factory=list)


def with_playbook(portfolio: Portfolio, path: Path | str) -> Portfolio:
    """The portfolio with another playbook (a steps.yaml-shaped file), validated like configs/steps.yaml."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError([f"{p}: no such policy file"])
    playbook: Playbook = load_model(Playbook, p, str(p))
    problems: list[str] = []
    for brand in portfolio.brands.values():
        for stage_id in brand.gates:
            try:
                effective_stage(playbook.stage(stage_id), brand)
            except ValidationError as exc:
                problems += format_validation_error(f"{p} with brands/{brand.brand_id}.yaml gates.{stage_id}", exc)
    if problems:
        raise ConfigError(problems)
    version = playbook_policy_version(playbook)
    overrides = [b for b in portfolio.brands.values() if b.has_overrides()]
    brand_versions = {b.brand_id: brand_policy_version(version, b) for b in overrides}
    return replace(portfolio, playbook=playbook, playbook_version=version, brand_versions=brand_versions)


def known_at(portfolio: Portfolio, day: date) -> datetime:
    """When a live cycle would have decided `day` at the latest.

    Its data deadline, or without one the end of the day after.
    """
    onboarding = portfolio.onboarding
    deadline = deadline_of(day, onboarding.data_deadline, onboarding.timezone)
    return deadline or datetime.combine(day + timedelta(days=2), time(0, 0), tzinfo=ZoneInfo(onboarding.timezone))


def replay(
    portfolio: Portfolio,
    history: MetricsBatch,
    date_from: date,
    date_to: date,
    label: str = "policy",
    progress: Progress | None = None,
    revisions: pd.DataFrame | None = None,
) -> BacktestRun:
    """Every day from date_from to date_to in order, into a scratch SQLite ledger that is deleted afterwards.

    Each day's cycle sees only rows dated up to that day (run_day slices the history), decided as of
    the day's data deadline. revisions (the source's revision record): each day also sees the values
    as they stood then (known_at), restatements imported later undone, so refunds that were still
    arriving read as low as a live cycle read them; without it every day sees today's restated values.
    """
    if date_to < date_from:
        raise ValueError(f"--to {date_to} is before --from {date_from}")
    days = [date_from + timedelta(days=i) for i in range((date_to - date_from).days + 1)]
    brands = brand_table(portfolio)
    summaries: list[CycleSummary] = []
    with tempfile.TemporaryDirectory(prefix="brandsteps-backtest-") as scratch:
        ledger = Ledger(f"sqlite:///{Path(scratch) / 'ledger.sqlite'}")
        ledger.create()
        try:
            for i, day in enumerate(days, start=1):
                seen = (
                    history
                    if revisions is None
                    else replace(history, daily=as_known(history.daily, revisions, known_at(portfolio, day)))
                )
                summaries.append(run_day(portfolio, seen, ledger, day, None, brands))
                if progress is not None:
                    progress(i, len(days), summaries[-1])
            with ledger.engine.connect() as conn:
                made = pd.read_sql(
                    sa.select(*[decisions.c[c] for c in DECISION_FIELDS]).order_by(
                        decisions.c.as_of, decisions.c.brand_id
                    ),
                    conn,
                )
                changes = pd.read_sql(sa.select(stage_changes).order_by(stage_changes.c.id), conn)
        finally:
            ledger.dispose()
    made["as_of"] = pd.to_datetime(made["as_of"])
    changes["as_of"] = pd.to_datetime(changes["as_of"])
    return BacktestRun(label, portfolio.playbook_version, date_from, date_to, made, changes, summaries)


def _percentile(values: pd.Series, q: float) -> float:
    return float(np.percentile(values.to_numpy(dtype=float), q)) if len(values) else float("nan")


def stage_table(run: BacktestRun) -> pd.DataFrame:
    """Per stage: brands seen, entering, advancing, median and p90 days to advance, demotions, exits, awaiting.

    entering counts brands that started the backtest in the stage (their first decision) plus
    every move into it (advance, demotion); advancing counts advance and graduate decisions;
    days to advance is the brand's days in stage on the day of that decision.
    """
    d = run.decisions
    d = d[d["stage"] != EXITED]
    first = d.drop_duplicates("brand_id", keep="first")
    moved_in = run.changes[(run.changes["to_stage"] != run.changes["from_stage"])]
    adv = d[d["action"].isin(ADVANCING)]
    awaiting = d[d["action"] == Action.AWAIT_APPROVAL].drop_duplicates(["brand_id", "stage"])
    days = adv.groupby("stage")["days_in_stage"]
    table = pd.DataFrame(
        {
            "brands": d.groupby("stage")["brand_id"].nunique(),
            "entering": first["stage"].value_counts().add(moved_in["to_stage"].value_counts(), fill_value=0),
            "advancing": adv["stage"].value_counts(),
            "median_days_to_advance": days.median(),
            "p90_days_to_advance": days.agg(lambda s: _percentile(s, 90)),
            "demotions": d[d["action"] == Action.DEMOTE]["stage"].value_counts(),
            "exits": d[d["action"] == Action.EXIT]["stage"].value_counts(),
            "awaiting_approval": awaiting["stage"].value_counts(),
        }
    ).reindex(list(EVALUATED_STAGES))
    counts = ["brands", "entering", "advancing", "demotions", "exits", "awaiting_approval"]
    table[counts] = table[counts].fillna(0).astype(int)
    table.index.name = "stage"
    return table


def differences(base: BacktestRun, other: BacktestRun) -> pd.DataFrame:
    """Brands whose decisions differ between two policies: the first day, and each policy's decision and reason."""
    keys = ["brand_id", "as_of"]
    cols = ["stage", "verdict", "action", "reason", "action_reason"]
    merged = base.decisions[keys + cols].merge(
        other.decisions[keys + cols], on=keys, how="outer", suffixes=("_a", "_b"), indicator=True
    )
    differs = merged["_merge"] != "both"
    for c in ("stage", "verdict", "action"):  # three fields, not brands
        differs |= merged[f"{c}_a"] != merged[f"{c}_b"]
    first = merged[differs].sort_values(keys).drop_duplicates("brand_id", keep="first")
    days_differing = merged[differs].groupby("brand_id").size()
    out = first.assign(
        days_differing=first["brand_id"].map(days_differing).astype(int),
        advanced_a=first["brand_id"].map(_advances(base)),
        advanced_b=first["brand_id"].map(_advances(other)),
    )
    shown = [
        "brand_id",
        "as_of",
        "days_differing",
        *[f"{c}_{s}" for s in ("a", "b") for c in cols],
        "advanced_a",
        "advanced_b",
    ]
    return out[shown].reset_index(drop=True)


def _advances(run: BacktestRun) -> pd.Series:
    """brand_id → its moves up under this policy, '2026-08-26 affiliate_trial -> public_traffic; …'.

    Brands that never moved up are absent.
    """
    d = run.decisions[run.decisions["action"].isin(ADVANCING)]
    target = d["to_stage"] if "to_stage" in d.columns else d["action"]  # a run built by hand may lack to_stage
    text = (
        pd.to_datetime(d["as_of"]).dt.strftime("%Y-%m-%d") + " " + d["stage"].astype(str) + " -> " + target.astype(str)
    )
    return text.groupby(d["brand_id"]).agg("; ".join)


def advanced_only(diff_row: object, label_a: str, label_b: str) -> str:
    """'advanced only under A: 2026-08-26 affiliate_trial -> public_traffic': the moves up one policy made and the other
    did not make on the same day; '' when both made the same."""
    a, b = (getattr(diff_row, f"advanced_{side}") for side in ("a", "b"))
    a, b = (x if isinstance(x, str) else "" for x in (a, b))
    if a == b:
        return ""
    only_a = [m for m in a.split("; ") if m and m not in b.split("; ")]
    only_b = [m for m in b.split("; ") if m and m not in a.split("; ")]
    parts = [
        f"advanced only under {label}: {'; '.join(moves)}"
        for label, moves in ((label_a, only_a), (label_b, only_b))
        if moves
    ]
    return " | ".join(parts)


def _fmt_days(v: float) -> str:
    return "–" if v != v else f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"


def _rows(frame: pd.DataFrame) -> Iterator[Any]:
    """The frame's rows as named tuples, one attribute per column (whatever each column holds)."""
    return frame.itertuples()


def _stage_markdown(table: pd.DataFrame) -> list[str]:
    lines = [
        "| stage | brands | entering | advancing | median days to advance | p90 days | demotions | exits "
        "| awaiting approval |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in _rows(table):  # one row per stage, six rows
        lines.append(
            f"| {r.Index} | {r.brands} | {r.entering} | {r.advancing} | {_fmt_days(r.median_days_to_advance)} | "
            f"{_fmt_days(r.p90_days_to_advance)} | {r.demotions} | {r.exits} | {r.awaiting_approval} |"
        )
    return lines


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ") if text == text else "no decision"


def report_markdown(runs: list[BacktestRun], diff: pd.DataFrame | None = None, limit: int = 200) -> str:
    """The backtest report: one stage table per policy and, for two policies, the brands that differ."""
    first = runs[0]
    lines = [f"# Backtest {first.date_from} to {first.date_to}", ""]
    lines.append(
        "Replayed into a scratch ledger (the real ledger is untouched); each day saw only data up to that day. "
        "Brands in a stage that requires approval stop at `await_approval` (nobody approves in a backtest)."
    )
    for run in runs:
        lines += ["", f"## {run.label} (policy {run.policy_version})", "", *_stage_markdown(stage_table(run))]
    if diff is not None and len(runs) == 2:
        a, b = runs[0].label, runs[1].label
        lines += ["", f"## Brands whose decisions differ ({len(diff)})", ""]
        if diff.empty:
            lines.append("No brand's decisions differ between the two policies.")
        else:
            lines += [
                f"| brand | first day | days differing | {a} | {b} | moves up in one only |",
                "|---|---|---:|---|---|---|",
            ]
            for r in _rows(diff.head(limit)):  # at most `limit` report lines
                left = (
                    f"{r.stage_a} {r.verdict_a} → {r.action_a}: {_cell(r.reason_a)}"
                    if r.verdict_a == r.verdict_a
                    else "no decision"
                )
                right = (
                    f"{r.stage_b} {r.verdict_b} → {r.action_b}: {_cell(r.reason_b)}"
                    if r.verdict_b == r.verdict_b
                    else "no decision"
                )
                moved = _cell(advanced_only(r, a, b)) or "–"
                day = pd.Timestamp(r.as_of).date()
                lines.append(f"| {r.brand_id} | {day} | {r.days_differing} | {left} | {right} | {moved} |")
            if len(diff) > limit:
                lines.append(f"\n… and {len(diff) - limit} more brands")
    return "\n".join(lines) + "\n"


def report_text(runs: list[BacktestRun], diff: pd.DataFrame | None = None) -> str:
    """The same report for a terminal."""
    out = [f"Backtest {runs[0].date_from} to {runs[0].date_to} (scratch ledger; the real ledger is untouched)"]
    for run in runs:
        out += ["", f"{run.label} (policy {run.policy_version})"]
        out.append(
            f"  {'stage':<20} {'brands':>6} {'enter':>6} {'adv':>5} {'med d':>6} {'p90 d':>6} "
            f"{'demote':>7} {'exit':>5} {'await':>6}"
        )
        for r in _rows(stage_table(run)):  # six stage rows
            out.append(
                f"  {r.Index:<20} {r.brands:>6} {r.entering:>6} {r.advancing:>5} "
                f"{_fmt_days(r.median_days_to_advance):>6} {_fmt_days(r.p90_days_to_advance):>6} "
                f"{r.demotions:>7} {r.exits:>5} {r.awaiting_approval:>6}"
            )
    if diff is not None and len(runs) == 2:
        out += ["", f"Brands whose decisions differ: {len(diff)}"]
        for r in _rows(diff):  # the differing brands, one line each
            out.append(f"  {r.brand_id} from {pd.Timestamp(r.as_of).date()} ({r.days_differing} days)")
            out.append(f"    {runs[0].label}: {r.stage_a} {r.verdict_a} -> {r.action_a}: {r.reason_a}")
            out.append(f"    {runs[1].label}: {r.stage_b} {r.verdict_b} -> {r.action_b}: {r.reason_b}")
            moved = advanced_only(r, runs[0].label, runs[1].label)
            if moved:
                out.append(f"    {moved}")
    return "\n".join(out)
