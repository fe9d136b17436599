"""One onboarding cycle as plain functions: cohorts from configs and ledger, windows, gates, summary."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from brandsteps.catalogue import EXITED, GUARD_COLUMNS, STAGE_ORDER, Action, Verdict
from brandsteps.config import Portfolio
from brandsteps.engine.diagnosis import diagnose
from brandsteps.engine.evidence import combine, join_groups, render
from brandsteps.engine.gates import COHORT_COLUMNS, gate_cohort, gate_exited
from brandsteps.engine.readiness import UNREADY, apply_deadline, deadline_of, missing_inputs
from brandsteps.engine.rules import brands_reading_lag, compiled, lagged_metrics, uses_metric, window_days_for
from brandsteps.engine.window import compute_window_metrics, lagged_name, stage_windows
from brandsteps.ledger import Ledger, WriteResult
from brandsteps.sources.metrics_source import MetricsBatch


def brand_table(portfolio: Portfolio) -> pd.DataFrame:
    """The configured brands as one frame (index brand_id)."""
    brands = list(portfolio.brands.values())
    return pd.DataFrame(
        {
            "name": [b.name for b in brands],
            "tier": [b.tier for b in brands],
            "category": [b.category for b in brands],
            "owner": [b.owner for b in brands],
            "paused": np.array([b.paused for b in brands], dtype=bool),
            "start_date": pd.to_datetime([b.start_date for b in brands]),
            "config_stage": [b.stage for b in brands],
            "policy_version": [portfolio.policy_version(b.brand_id) for b in brands],
        },
        index=pd.Index([b.brand_id for b in brands], name="brand_id", dtype=object),
    )


def prepare_cohorts(
    portfolio: Portfolio, state: pd.DataFrame, as_of: date, brands: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Every configured brand with its ledger state, days in stage, window and status for as_of.

    status: due | not_started (start_date after as_of) | already_decided (as_of decided) |
    later_decided (a later day is decided: cycles apply in date order); mark_readiness later makes
    due brands whose data has not arrived unready, until the data deadline.
    """
    frame = brand_table(portfolio) if brands is None else brands.copy()
    st = state.reindex(frame.index)
    known = st["stage"].notna().to_numpy()
    frame["stage"] = np.where(known, st["stage"].astype(object), frame["config_stage"])
    frame["stage_entered_on"] = pd.to_datetime(
        np.where(known, pd.to_datetime(st["stage_entered_on"]), frame["start_date"])
    )
    frame["pass_streak"] = st["pass_streak"].fillna(0).astype(int)
    frame["awaiting"] = st["awaiting"].fillna(False).astype(bool)
    frame["awaiting_since"] = st["awaiting_since"].astype(object).where(st["awaiting_since"].notna(), None)
    for col in GUARD_COLUMNS:
        frame[col] = st[col].fillna(0).astype(int)
    frame["last_as_of"] = pd.to_datetime(st["last_as_of"])
    day = pd.Timestamp(as_of)
    frame["days_in_stage"] = (day - frame["stage_entered_on"]).dt.days + 1
    frame["status"] = np.select(
        [frame["start_date"] > day, frame["last_as_of"] == day, frame["last_as_of"] > day],
        ["not_started", "already_decided", "later_decided"],
        default="due",
    )
    frame["window_days"] = window_days_for(portfolio, frame.index, frame["stage"].to_numpy(dtype=object))
    start, end = stage_windows(
        as_of, frame["stage_entered_on"].to_numpy(dtype="datetime64[ns]"), frame["window_days"].to_numpy()
    )
    frame["window_start"] = start
    frame["window_end"] = end
    frame["window_len"] = (day - frame["window_start"]).dt.days + 1
    frame["burst"] = uses_metric(portfolio, frame.index, frame["stage"].to_numpy(dtype=object), "burst_coefficient")
    return frame


def mark_readiness(
    portfolio: Portfolio, batch: MetricsBatch, cohorts: pd.DataFrame, as_of: date, now: datetime | None
) -> tuple[pd.DataFrame, pd.Series]:
    """The cohorts with onboarding.yaml's data_deadline applied (readiness.apply_deadline), and each brand's
    missing inputs.

    now None: as of the day's deadline, as a replay or backtest decides each past day. Without a
    deadline the cohorts are as they were and nothing is missing.
    """
    onboarding = portfolio.onboarding
    deadline = deadline_of(as_of, onboarding.data_deadline, onboarding.timezone)
    if deadline is None:
        return cohorts, pd.Series("", index=cohorts.index, dtype=object)
    missing = missing_inputs(portfolio, batch.daily, cohorts, as_of)
    return apply_deadline(cohorts, missing, deadline, deadline if now is None else now), missing


def data_errors(batch: MetricsBatch, cohorts: pd.DataFrame) -> pd.Series:
    """brand_id → reasons of its quarantined rows inside its window (or of unknown date)."""
    q = batch.quarantine
    out = np.full(len(cohorts), "", dtype=object)
    pos = cohorts.index.get_indexer(pd.Index(q["brand_id"])) if len(q) else np.empty(0, dtype=np.int64)
    if not (pos >= 0).any():
        return pd.Series(out, index=cohorts.index, dtype=object)
    q, pos = q[pos >= 0], pos[pos >= 0]
    qdate = pd.to_datetime(q["date"], errors="coerce").to_numpy(dtype="datetime64[ns]")
    start = cohorts["window_start"].to_numpy(dtype="datetime64[ns]")[pos]
    end = cohorts["window_end"].to_numpy(dtype="datetime64[ns]")[pos]
    inside = np.isnat(qdate) | ((qdate >= start) & (qdate <= end))
    if not inside.any():
        return pd.Series(out, index=cohorts.index, dtype=object)
    rows, pos = q[inside], pos[inside]
    text = (
        "row "
        + rows["row"].astype(str)
        + " ("
        + rows["date"].fillna("no date").astype(str)
        + "): "
        + rows["reason"].astype(str)
    ).to_numpy(dtype=object)
    # The first three rows of each brand, in file order, then how many more there are.
    order = np.argsort(pos, kind="stable")
    pos, text = pos[order], text[order]
    first = np.r_[True, pos[1:] != pos[:-1]]
    rank = np.arange(len(pos)) - np.maximum.accumulate(np.where(first, np.arange(len(pos)), 0))
    per_brand = np.bincount(pos, minlength=len(cohorts))
    keep = rank < 3
    joined = join_groups(pos[keep], text[keep], len(cohorts), "; ")
    more = per_brand > 3
    joined[more] = joined[more] + "; and " + (per_brand[more] - 3).astype(str).astype(object) + " more rows"
    return pd.Series(joined, index=cohorts.index, dtype=object)


def window_metrics_for(portfolio: Portfolio, batch: MetricsBatch, cohorts: pd.DataFrame) -> pd.DataFrame:
    """Every due brand's window metrics, plus each lagged metric its rules read as a column of its own (lagged_name).

    A lag's windows are computed only for the brands whose rules read a metric with that lag, and only
    the lagged metrics are kept of them: a playbook lagging refund_rate adds one column, not a second frame.
    """
    due = (cohorts["status"] == "due").to_numpy(dtype=bool) & (cohorts["stage"] != EXITED).to_numpy(dtype=bool)
    windows = cohorts[["window_start", "window_end", "window_len", "burst"]]  # the four columns taken, not all of them
    frame = compute_window_metrics(batch.daily, windows[due])
    if not len(frame):
        return frame
    as_of = pd.Timestamp(cohorts["window_end"].iloc[0]).date()
    stages = cohorts["stage"].to_numpy(dtype=object)
    for lag, metrics in lagged_metrics(portfolio).items():
        reading = due & brands_reading_lag(portfolio, cohorts.index, stages, lag)
        lagged = cohorts[reading]
        start, end = stage_windows(
            as_of, lagged["stage_entered_on"].to_numpy(dtype="datetime64[ns]"), lagged["window_days"].to_numpy(), lag
        )
        length = (end - start) // np.timedelta64(1, "D") + 1
        burst = uses_metric(portfolio, lagged.index, stages[reading], "burst_coefficient", lag)
        shifted = pd.DataFrame(
            {"window_start": start, "window_end": end, "window_len": length, "burst": burst}, index=lagged.index
        )
        values = compute_window_metrics(batch.daily, shifted)[metrics]
        for metric in metrics:
            frame[lagged_name(metric, lag)] = values[metric].reindex(frame.index).to_numpy(dtype=float)
    return frame


def cohort_for(cohorts: pd.DataFrame, stage_id: str, errors: pd.Series) -> pd.DataFrame:
    """The due brands of stage_id with what the gates read of them: the COHORT_COLUMNS cohorts has, and
    data_error ('' for none) from errors (brand_id → its data error, as data_errors gives them).

    Only those columns are taken (not the names, owners, windows, ... of the whole cohorts frame):
    six stages are cut from it every cycle.
    """
    due = (cohorts["status"] == "due").to_numpy(dtype=bool)
    pos = np.flatnonzero(due & (cohorts["stage"] == stage_id).to_numpy(dtype=bool))
    ids = cohorts.index[pos]
    error = errors.reindex(ids).to_numpy(dtype=object)
    columns: dict[str, object] = {c: cohorts[c].array.take(pos) for c in COHORT_COLUMNS if c in cohorts.columns}
    # a Series on ids: pandas would make Arrow text of a bare object array
    columns["data_error"] = pd.Series(np.where(pd.isna(error), "", error), index=ids, dtype=object)
    return pd.DataFrame(columns, index=ids, copy=False)  # the arrays are new: kept, not copied into blocks


def decide_all(
    portfolio: Portfolio, cohorts: pd.DataFrame, batch: MetricsBatch, metrics: pd.DataFrame, as_of: date
) -> pd.DataFrame:
    """Every due brand's decision for as_of, in the order of the flow's per-stage tasks.

    The flow runs one task per stage; a replay decides hundreds of days, so here every stage's
    brands go through the same engine in one call (same rules, same rows, one fixed cost a day).
    """
    errors = data_errors(batch, cohorts)
    rank = pd.Categorical(cohorts["stage"].to_numpy(dtype=object), categories=list(STAGE_ORDER)).codes
    keep = (cohorts["status"].to_numpy() == "due") & (rank >= 0)
    due = cohorts[keep].iloc[np.argsort(rank[keep], kind="stable")]
    due = due.assign(data_error=errors.reindex(due.index).fillna("").to_numpy(dtype=object))
    exited = due["stage"].to_numpy() == EXITED
    live = due[~exited]
    parts = [
        gate_cohort(portfolio, live, live["stage"].to_numpy(dtype=object), metrics, as_of),
        gate_exited(due[exited], as_of),
    ]
    return render(diagnose(combine(parts), cohorts, portfolio))


@dataclass
class CycleSummary:
    """What a cycle did, for logs, artifacts and the command line."""

    as_of: date
    decided: int = 0
    already_decided: int = 0
    conflicts: int = 0
    later_decided: int = 0
    not_started: int = 0
    unready: int = 0  # due, but left undecided until their data arrives or the data deadline passes
    verdicts: dict[str, int] = field(default_factory=dict)
    actions: dict[str, int] = field(default_factory=dict)
    funnel: dict[str, int] = field(default_factory=dict)
    overdue: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    quarantined_rows: int = 0
    quarantine_first: list[str] = field(default_factory=list)  # the first QUARANTINE_SHOWN rows, each with its reason
    unknown_brands_rows: int = 0
    unknown_brands: list[str] = field(default_factory=list)  # the first UNKNOWN_SHOWN brand ids of those rows
    cycle_id: str | None = None
    recorded: int | None = None  # a rerun's summary (from_ledger): the day's decisions the ledger holds

    def line(self) -> str:
        verdicts = ", ".join(f"{v} {n}" for v, n in self.verdicts.items() if n)
        moves = ", ".join(f"{a} {n}" for a, n in self.actions.items() if n and a != Action.HOLD)
        decided = self.decided if self.recorded is None else self.recorded  # a rerun: the day as the ledger holds it
        parts = [f"{self.as_of}: decided {decided} brands ({verdicts or 'none'})"]
        if moves:
            parts.append(f"moves: {moves}")
        if self.already_decided:
            parts.append(f"{self.already_decided} already decided")
        if self.later_decided:
            parts.append(f"{self.later_decided} skipped (a later day is already decided)")
        if self.unready:
            parts.append(f"{self.unready} waiting for their data (see data-readiness)")
        if self.quarantined_rows:
            parts.append(f"{self.quarantined_rows} rows quarantined")
        return "; ".join(parts)


def funnel(cohorts: pd.DataFrame, decisions: pd.DataFrame) -> dict[str, int]:
    """Brands per stage after the cycle (brands not started yet are left out)."""
    started = cohorts["status"].to_numpy() != "not_started"
    stage = cohorts["stage"].to_numpy(dtype=object)[started]
    if len(decisions):
        pos = cohorts.index[started].get_indexer(decisions["brand_id"])
        stage = stage.copy()
        stage[pos[pos >= 0]] = decisions["to_stage"].to_numpy(dtype=object)[pos >= 0]
    names, counts = np.unique(stage.astype(str), return_counts=True)
    found = dict(zip(names.tolist(), counts.tolist(), strict=True))
    return {s: int(found.get(s, 0)) for s in STAGE_ORDER}


def count_statuses(summary: CycleSummary, cohorts: pd.DataFrame) -> int:
    """Brands not started and skipped (a later day decided) into the summary; returns how many were already decided."""
    status = cohorts["status"].value_counts()
    summary.not_started = int(status.get("not_started", 0))
    summary.later_decided = int(status.get("later_decided", 0))
    summary.unready = int(status.get(UNREADY, 0))
    return int(status.get("already_decided", 0))


def count_decisions(summary: CycleSummary, decisions: pd.DataFrame) -> None:
    """Verdict and action counts, overdue and ERROR brands of a day's decisions, into the summary."""
    if decisions.empty:
        return
    v = decisions["verdict"].value_counts()
    a = decisions["action"].value_counts()
    # the best verdict first: the reverse of their severity order
    summary.verdicts = {k.value: int(v.get(k.value, 0)) for k in reversed(Verdict)}
    summary.actions = {k.value: int(a.get(k.value, 0)) for k in Action}
    summary.overdue = sorted(decisions.loc[decisions["overdue"].astype(bool), "brand_id"])
    summary.errors = sorted(decisions.loc[decisions["verdict"] == Verdict.ERROR, "brand_id"])


QUARANTINE_SHOWN = 3
UNKNOWN_SHOWN = 5


@dataclass(frozen=True)
class UnknownBrands:
    """Valid metric rows of brands that have no config: how many, and the first few brand ids (sorted)."""

    rows: int
    first: list[str]


def unknown_brand_rows(batch: MetricsBatch, cohorts: pd.DataFrame) -> UnknownBrands:
    """Valid metric rows of brands that have no config (counted, then left out)."""
    unknown = ~batch.daily["brand_id"].isin(cohorts.index).to_numpy(dtype=bool)
    if not unknown.any():
        return UnknownBrands(0, [])
    ids = batch.daily["brand_id"][unknown].astype(object).unique()  # only the unknown rows, each id once
    return UnknownBrands(int(unknown.sum()), sorted(str(b) for b in ids)[:UNKNOWN_SHOWN])


def first_quarantined(quarantine: pd.DataFrame, n: int = QUARANTINE_SHOWN) -> list[str]:
    """The first n quarantined rows as 'metrics.csv row 4 (b1, 2026-01-02): gmv is negative'."""
    q = quarantine.head(n)
    if q.empty:
        return []
    source = q["source"].astype(str).str.rsplit("/", n=1).str[-1]  # the file, not its whole path
    where = (source + " row " + q["row"].astype(str)).str.strip()
    return list(
        where
        + " ("
        + q["brand_id"].fillna("no brand").astype(str)
        + ", "
        + q["date"].fillna("no date").astype(str)
        + "): "
        + q["reason"].astype(str)
    )


def without_rows(batch: MetricsBatch) -> MetricsBatch:
    """The batch without its daily rows, once the windows are computed.

    At 100,000 brands the rows are most of a cycle's memory.
    """
    # a copy: an empty slice would be a view keeping every column of the full frame alive
    return MetricsBatch(
        batch.daily.iloc[:0].copy(), batch.quarantine, batch.missing_columns, batch.unknown_columns, batch.sources
    )


def return_free_memory() -> None:
    """Give freed heap pages back to the system (glibc), so what a phase released is not counted again.

    The daily columns (tens of MB each) come from the heap, not their own mappings, once glibc has
    raised its mmap threshold; freed, they stay resident until trimmed. Elsewhere this does nothing.
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def summarise(
    as_of: date,
    cohorts: pd.DataFrame,
    decisions: pd.DataFrame,
    batch: MetricsBatch,
    written: WriteResult,
    unknown: UnknownBrands | None = None,
) -> CycleSummary:
    """What the cycle did, from its cohorts, decisions, metrics and what the ledger accepted.

    unknown: unknown_brand_rows of the batch, when its rows were already released.
    """
    summary = CycleSummary(as_of=as_of, decided=written.written, conflicts=written.conflicts, cycle_id=written.cycle_id)
    summary.already_decided = count_statuses(summary, cohorts) + written.already_decided
    count_decisions(summary, decisions)
    summary.funnel = funnel(cohorts, decisions)
    summary.quarantined_rows = len(batch.quarantine)
    summary.quarantine_first = first_quarantined(batch.quarantine)
    unknown = unknown_brand_rows(batch, cohorts) if unknown is None else unknown
    summary.unknown_brands_rows, summary.unknown_brands = unknown.rows, unknown.first
    return summary


def from_ledger(summary: CycleSummary, day_decisions: pd.DataFrame) -> CycleSummary:
    """A rerun's summary: verdicts, moves, ERROR and overdue brands of every decision the ledger holds
    for the day (an earlier run wrote them; this one wrote nothing or a few), so it does not read "Decided 0".

    day_decisions: the ledger's decisions of summary.as_of. What this run wrote (decided) and found
    decided already stay as they were; the funnel (from the state after the day) too.
    """
    out = replace(summary, recorded=len(day_decisions), verdicts={}, actions={}, overdue=[], errors=[])
    count_decisions(out, day_decisions)
    return out


def metrics_start(portfolio: Portfolio, as_of: date) -> date:
    """The earliest day any window can reach, so reads can skip older history."""
    comp = compiled(portfolio)
    longest = int(comp.params["window_days"].max())  # every stage, every brand override
    lag = int(comp.lag.max()) if len(comp.lag) else 0  # a lagged window starts that much earlier
    return as_of - timedelta(days=longest - 1 + lag)


def slice_batch(batch: MetricsBatch, as_of: date) -> MetricsBatch:
    """The part of a history batch a cycle for as_of may see: nothing after as_of."""
    day = pd.Timestamp(as_of)
    daily = batch.daily[batch.daily["date"] <= day]
    qdate = pd.to_datetime(batch.quarantine["date"], errors="coerce")
    quarantine = batch.quarantine[(qdate <= day) | qdate.isna()]
    return MetricsBatch(daily, quarantine, batch.missing_columns, batch.unknown_columns, batch.sources)


def expected_versions(cohorts: pd.DataFrame) -> pd.Series:
    """The ledger state each decision was computed from, checked again at write time."""
    return cohorts["last_as_of"]


def run_day(
    portfolio: Portfolio,
    history: MetricsBatch,
    ledger: Ledger,
    as_of: date,
    flow_run_id: str | None,
    brands: pd.DataFrame | None = None,
) -> CycleSummary:
    """One whole cycle from an in-memory history (the replay's unit; same functions as the flow)."""
    with ledger.cycle_lock():  # cycles started at once apply one after another, each on the state the last one wrote
        cohorts = prepare_cohorts(portfolio, ledger.read_state(), as_of, brands)
        batch = slice_batch(history, as_of)
        cohorts, _ = mark_readiness(portfolio, batch, cohorts, as_of, now=None)
        window = window_metrics_for(portfolio, batch, cohorts)
        decisions = decide_all(portfolio, cohorts, batch, window, as_of)
        result = ledger.record_cycle(decisions, as_of, flow_run_id, expected_versions(cohorts), len(batch.quarantine))
    return summarise(as_of, cohorts, decisions, batch, result)
