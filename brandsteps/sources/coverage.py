"""Data coverage: which deciding criteria had no value, for how many brands, and which report fills the gap.

The gates read 23 base columns, but real exports fill few of them, and a deciding criterion without
a value keeps a brand INCONCLUSIVE (docs/design.md#verdict-rules) for as long as the column stays unmeasured. Per stage,
this module counts the brands each deciding criterion, guardrail and min_sample key had no value
for, names the base columns it reads that had no measured day in the window, and the reports that
would fill them.

Pure: a portfolio, each brand's stage and a window metrics frame (window.compute_window_metrics) in,
a small table out, with array operations over all brands at once. Which report fills a column is a
parameter (`sources`: base column → report or import-profile names), so this module does not depend
on the import profiles; FALLBACK_SOURCES names the Kuaishou reports of docs/domain.md#kuaishou-exports for when they are
not there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

import numpy as np
import pandas as pd

from brandsteps.catalogue import BASE_COLUMNS, EVALUATED_STAGES, METRICS, STAGE_IDS, TIERS, UV_COLUMNS
from brandsteps.config import Portfolio
from brandsteps.engine.evidence import join_groups, show_numbers, unit_codes
from brandsteps.engine.rules import Compiled, compiled, uses_metric

__all__ = [
    "FALLBACK_SOURCES",
    "NO_REPORT",
    "Coverage",
    "artifact_rows",
    "coverage_records",
    "coverage_text",
    "data_coverage",
    "default_days",
    "metric_reads",
    "sources_from_profiles",
    "table_rows",
    "uniform_windows",
]

NO_REPORT = "no built-in report: define a profile in configs/imports/ (see README Imports)"
WHOLE_STORE = "生意通 全店成交分析"
AD_ACCOUNT = "磁力金牛 account report"
DISTRIBUTION = "快分销 效果明细"
ACCOUNT_BREAKDOWN = "全店成交分析 账号构成「下载明细」"

# Which Kuaishou report fills each base column (docs/domain.md#kuaishou-exports), for when the
# import profiles (brandsteps.sources.imports) are not there to say it. A column missing here has no known
# export (live, traffic-source and repurchase reports publish no header list): NO_REPORT.
FALLBACK_SOURCES: Mapping[str, tuple[str, ...]] = {
    **dict.fromkeys(
        (
            "gmv",
            "orders",
            "buyers",
            "refund_amount",
            "product_impressions",
            "product_clicks",
            "gmv_self",
            "gmv_affiliate",
        ),
        (WHOLE_STORE,),
    ),
    "commission": (WHOLE_STORE, DISTRIBUTION),
    "ad_spend": (AD_ACCOUNT,),
    "ad_gmv": (AD_ACCOUNT,),
    "active_affiliates": (DISTRIBUTION, ACCOUNT_BREAKDOWN),
}

ROLES: tuple[str, ...] = ("criterion", "guardrail", "min_sample")
# burst_coefficient is computed day by day from gmv_affiliate (window.py), not from a numerator field
_SPECIAL_READS: Mapping[str, tuple[str, ...]] = {"burst_coefficient": ("gmv_affiliate",)}
# a row's table columns, as table_rows gives them (the artifact's and the command's)
TABLE_KEYS: tuple[str, ...] = ("stage", "criterion", "kind", "no value", "missing columns", "filled by")
_MEASURED = "a zero denominator or too few measured days"


def metric_reads(name: str) -> tuple[str, ...]:
    """The base columns a metric of the catalogue (or a min_sample key) reads; uv stands for its three parts."""
    if name in _SPECIAL_READS:
        return _SPECIAL_READS[name]
    if name in BASE_COLUMNS:  # a min_sample key
        return (name,)
    spec = METRICS.get(name)
    if spec is None:  # days_with_data and any name that reads no column
        return ()
    parts = [p for p in (spec.numerator, spec.denominator) if p]
    return tuple(dict.fromkeys(c for p in parts for c in (UV_COLUMNS if p == "uv" else (p,)) if c in BASE_COLUMNS))


class HasColumns(Protocol):
    """An import profile as far as coverage reads it: the base columns it fills."""

    @property
    def columns(self) -> Mapping[str, Any]: ...


def sources_from_profiles(profiles: Mapping[str, HasColumns]) -> dict[str, tuple[str, ...]]:
    """base column → the names of the profiles that fill it, in the profiles' order."""
    out: dict[str, list[str]] = {}
    for name, profile in profiles.items():  # a handful of profiles
        for column in profile.columns:
            out.setdefault(str(column), []).append(name)
    return {c: tuple(names) for c, names in out.items()}


# ---------------------------------------------------------------- windows


def default_days(portfolio: Portfolio) -> int:
    """The longest window of the five stages, brand overrides included (graduated brands' watch is not a stage)."""
    comp = compiled(portfolio)
    # rule set s × variants + v: the first five stages' rule sets come first
    return int(comp.params["window_days"][: len(STAGE_IDS) * comp.variants].max())


def uniform_windows(portfolio: Portfolio, cohorts: pd.DataFrame, as_of: date, days: int) -> pd.DataFrame:
    """The same window of `days` days to as_of for every evaluated brand of cohorts (exited ones left out).

    The columns compute_window_metrics reads; burst only where the brand's rules read burst_coefficient.
    """
    stage = cohorts["stage"].to_numpy(dtype=object)
    evaluated = pd.Index(EVALUATED_STAGES, dtype=object).get_indexer(pd.Index(stage, dtype=object)) >= 0
    ids = cohorts.index[evaluated]
    end = pd.Timestamp(as_of)
    return pd.DataFrame(
        {
            "window_start": end - pd.Timedelta(days=days - 1),
            "window_end": end,
            "window_len": days,
            "burst": uses_metric(portfolio, ids, stage[evaluated], "burst_coefficient"),
        },
        index=ids,
    )


# ---------------------------------------------------------------- counting


@dataclass(frozen=True)
class Coverage:
    """Per stage and deciding criterion, guardrail or min_sample key: how many brands had no value, and why.

    rows: one row per stage and criterion (COLUMNS); missing maps each base column it reads that
    had no measured day to the number of brands without it; measured counts the brands without a
    value whose every column had one (a zero denominator, too few days for a burst).
    brands: brands per evaluated stage (0 where none).
    """

    rows: pd.DataFrame
    brands: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.brands.values())


COLUMNS: tuple[str, ...] = (
    "stage",
    "role",
    "source_stage",
    "metric",
    "op",
    "kind",
    "threshold",
    "brands",
    "without_value",
    "measured",
    "missing",
)


def _expand(start: np.ndarray, rule_set: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(brand position, item) for every item start[r]:start[r + 1] of each brand's rule set r, without a loop."""
    counts = start[1:][rule_set] - start[:-1][rule_set]
    brand = np.repeat(np.arange(len(rule_set)), counts)
    first = np.cumsum(counts) - counts
    item = start[:-1][rule_set][brand] + np.arange(len(brand)) - first[brand]
    return brand, np.asarray(item, dtype=np.int64)


def _gather(metrics: pd.DataFrame, at: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """metrics[names] at rows `at` (brands × names), NaN for a row -1 or a column the frame lacks."""
    table = np.full((len(at), len(names)), np.nan)
    has = at >= 0
    safe = np.where(has, at, 0)
    for j, name in enumerate(names):  # the few metrics and base columns, not brands
        if name in metrics.columns and len(metrics):
            table[:, j] = np.where(has, metrics[name].to_numpy(dtype=float).take(safe), np.nan)
    return table


def _labels(comp: Compiled) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """What a row of the table is about, once per distinct one, and the label of each criterion and min_sample key.

    Brands with their own overrides share a label with the playbook's when role, stage, metric, op
    and kind agree: the rows count a criterion's brands whatever their thresholds.
    """
    n_crit, n_sample = len(comp.metric), len(comp.sample_key)
    frame = pd.DataFrame(
        {
            "role": np.r_[comp.role.astype(object), np.full(n_sample, "min_sample", dtype=object)],
            "source_stage": np.r_[comp.source.astype(object), np.full(n_sample, "", dtype=object)],
            "metric": np.r_[comp.metric.astype(object), comp.sample_key.astype(object)],
            "op": np.r_[comp.op.astype(object), np.full(n_sample, ">=", dtype=object)],
            "kind": np.r_[comp.kind.astype(object), np.full(n_sample, "min_sample", dtype=object)],
        },
        dtype=object,
    )
    # numbered in order of first appearance, which is config order
    codes = frame.groupby(list(frame.columns), sort=False).ngroup().to_numpy(dtype=np.int64)
    labels = frame.drop_duplicates().reset_index(drop=True)
    labels["unit"] = unit_codes(labels["metric"].to_numpy(dtype=object))
    return labels, codes[:n_crit], codes[n_crit:]


def _reads_matrix(names: np.ndarray) -> np.ndarray:
    """names × BASE_COLUMNS: whether each metric or min_sample key reads the column."""
    out = np.zeros((len(names), len(BASE_COLUMNS)), dtype=bool)
    position = {c: j for j, c in enumerate(BASE_COLUMNS)}
    for i, name in enumerate(names.tolist()):  # distinct labels, not brands
        for column in metric_reads(str(name)):
            out[i, position[column]] = True
    return out


def data_coverage(portfolio: Portfolio, cohorts: pd.DataFrame, metrics: pd.DataFrame) -> Coverage:
    """Per stage, each deciding criterion's, guardrail's and min_sample key's brands without a value.

    cohorts: index brand_id; stage (a STEPS stage, graduated or exited) and tier of each brand to
    count (exited brands are not evaluated and left out). metrics: window metrics (window sums
    sum_<column> and the derived metrics) indexed by brand_id; a brand it lacks has no value at all.
    Exactly the criteria the gates decide on: shadow criteria are left out.
    """
    comp = compiled(portfolio)
    stage_code = pd.Index(EVALUATED_STAGES, dtype=object).get_indexer(
        pd.Index(cohorts["stage"].to_numpy(dtype=object), dtype=object)
    )
    keep = np.flatnonzero(stage_code >= 0)
    ids, stage_code = cohorts.index[keep], stage_code[keep].astype(np.int64)
    brands = dict(zip(EVALUATED_STAGES, np.bincount(stage_code, minlength=len(EVALUATED_STAGES)).tolist(), strict=True))
    tier = pd.Index(TIERS, dtype=object).get_indexer(
        pd.Index(cohorts["tier"].to_numpy(dtype=object)[keep], dtype=object)
    )
    rule_set = comp.rule_sets(ids, stage_code)
    at = np.asarray(metrics.index.get_indexer(ids), dtype=np.int64) if len(ids) else np.empty(0, dtype=np.int64)
    labels, crit_label, sample_label = _labels(comp)

    # every brand's criteria and guardrails that decide, then its min_sample keys
    c_brand, c_item = _expand(comp.crit_start, rule_set)
    decides = comp.deciding[c_item] | comp.guard[c_item]
    c_brand, c_item = c_brand[decides], c_item[decides]
    s_brand, s_item = _expand(comp.sample_start, rule_set)
    c_value = (
        _gather(metrics, at, comp.metric_names.tolist())[c_brand, comp.metric_id[c_item]]
        if len(c_item)
        else np.empty(0)
    )
    s_value = (
        _gather(metrics, at, comp.sample_names.tolist())[s_brand, comp.sample_id[s_item]]
        if len(s_item)
        else np.empty(0)
    )
    brand = np.r_[c_brand, s_brand].astype(np.int64)
    label = np.r_[crit_label[c_item], sample_label[s_item]].astype(np.int64)
    c_tier = tier[c_brand]
    threshold = np.r_[np.where(c_tier >= 0, comp.thr[c_item, np.maximum(c_tier, 0)], np.nan), comp.sample_min[s_item]]
    no_value = np.isnan(np.r_[c_value, s_value])

    # a base column is missing for a brand when no day of its window has a value
    unmeasured = np.isnan(_gather(metrics, at, [f"sum_{c}" for c in BASE_COLUMNS]))
    missing = _reads_matrix(labels["metric"].to_numpy(dtype=object))[label] & unmeasured[brand] & no_value[:, None]

    n_labels = len(labels)
    keys, group = np.unique(stage_code[brand] * n_labels + label, return_inverse=True)
    group = group.reshape(-1)
    size = len(keys)
    counts = {
        "brands": np.bincount(group, minlength=size),
        "without_value": np.bincount(group[no_value], minlength=size),
        "measured": np.bincount(group[no_value & ~missing.any(axis=1)], minlength=size),
    }
    per_column = {
        c: np.bincount(group[missing[:, j]], minlength=size) for j, c in enumerate(BASE_COLUMNS) if missing[:, j].any()
    }
    row_label = keys % n_labels
    # each row's missing columns in the order its metric reads them (paid_roi: ad_gmv, then ad_spend)
    missing_counts = [
        {c: int(per_column[c][g]) for c in metric_reads(str(name)) if c in per_column and per_column[c][g]}
        for g, name in enumerate(labels["metric"].to_numpy(dtype=object)[row_label].tolist())  # a few rows per stage
    ]
    out = labels.iloc[row_label].reset_index(drop=True)
    out.insert(0, "stage", np.asarray(EVALUATED_STAGES, dtype=object)[keys // n_labels])
    out["threshold"] = _thresholds(group, threshold, labels["unit"].to_numpy()[label], size)
    for name, values in counts.items():
        out[name] = values.astype(int)
    out["missing"] = pd.Series(missing_counts, dtype=object)
    # stage order, then criteria, guardrails (by their stage), min_sample keys, each in config order
    order = np.lexsort(
        (
            row_label,
            pd.Index((*STAGE_IDS, ""), dtype=object).get_indexer(
                pd.Index(out["source_stage"].to_numpy(dtype=object), dtype=object)
            ),
            pd.Index(ROLES, dtype=object).get_indexer(pd.Index(out["role"].to_numpy(dtype=object), dtype=object)),
            keys // n_labels,
        )
    )
    rows = out.iloc[order].reset_index(drop=True)
    return Coverage(rows.reindex(columns=list(COLUMNS)), brands)


def _thresholds(group: np.ndarray, threshold: np.ndarray, unit: np.ndarray, size: int) -> np.ndarray:
    """Each row's distinct thresholds in its metric's unit, lowest first: '¥300.00'; '10 / 100' (tiers, overrides)."""
    pairs = pd.DataFrame({"group": group, "threshold": threshold, "unit": unit}).drop_duplicates(["group", "threshold"])
    pairs = pairs.sort_values(["group", "threshold"], kind="stable")
    text = show_numbers(pairs["threshold"].to_numpy(dtype=float), pairs["unit"].to_numpy(dtype=np.int64))
    return join_groups(pairs["group"].to_numpy(dtype=np.int64), text, size, " / ")


# ---------------------------------------------------------------- tables


def _criterion(row: Mapping[Any, Any]) -> str:
    return f"{row['metric']} {row['op']} {row['threshold']}"


def _kind(row: Mapping[Any, Any]) -> str:
    if row["role"] == "guardrail":
        return f"guardrail of {row['source_stage']}"
    return str(row["kind"])


def _missing_text(missing: Mapping[str, int], without: int, measured: int) -> str:
    """'ad_gmv, ad_spend'; a column only some of the brands without a value lack says how many: 'commission (1)'."""
    parts = [", ".join(c if n == without else f"{c} ({n})" for c, n in missing.items())] if missing else []
    if measured:
        parts.append(
            f"every column measured ({_MEASURED})"
            if measured == without
            else f"every column measured for {measured} ({_MEASURED})"
        )
    return "; ".join(parts) if parts else "-"


def _filled_by(columns: Sequence[str], sources: Mapping[str, Sequence[str]]) -> str:
    """The reports that fill the columns: one list when they share it, else per column group."""
    if not columns:
        return "-"
    groups: dict[tuple[str, ...], list[str]] = {}
    for column in columns:  # the few missing columns of one criterion
        groups.setdefault(tuple(sources.get(column, ())) or (NO_REPORT,), []).append(column)
    if len(groups) == 1:
        return " or ".join(next(iter(groups)))
    return "; ".join(f"{', '.join(cs)}: {' or '.join(rs)}" for rs, cs in groups.items())


def table_rows(
    coverage: Coverage, sources: Mapping[str, Sequence[str]], only_missing: bool = False
) -> list[dict[str, str]]:
    """The rows as people read them (TABLE_KEYS): criterion, kind, 'brands without a value of brands', missing
    columns, reports.

    only_missing: just the rows with a brand without a value, most brands affected first (the artifact's).
    """
    frame = coverage.rows
    if only_missing:
        frame = frame[frame["without_value"] > 0].sort_values("without_value", ascending=False, kind="stable")
    out = []
    for row in frame.to_dict("records"):  # one row per stage and criterion: a few dozen
        out.append(
            {
                "stage": str(row["stage"]),
                "criterion": _criterion(row),
                "kind": _kind(row),
                "no value": f"{row['without_value']} of {row['brands']}",
                "missing columns": _missing_text(row["missing"], int(row["without_value"]), int(row["measured"])),
                "filled by": _filled_by(list(row["missing"]), sources),
            }
        )
    return out


def artifact_rows(coverage: Coverage, sources: Mapping[str, Sequence[str]]) -> list[dict[str, str]]:
    """The data-coverage artifact: criteria a brand has no value for, most brands first; else a 'none missing' row."""
    rows = table_rows(coverage, sources, only_missing=True)
    if rows:
        return rows
    none = dict.fromkeys(TABLE_KEYS, "")
    none["criterion"] = f"none missing: every deciding criterion had a value for all {coverage.total} brands"
    return [none]


def coverage_records(coverage: Coverage, sources: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
    """Per stage (the five, then graduated when it has brands): its brands and every criterion's counts, for JSON."""
    stages = [s for s in EVALUATED_STAGES if s in STAGE_IDS or coverage.brands.get(s, 0)]
    out: list[dict[str, Any]] = [{"stage": s, "brands": coverage.brands.get(s, 0), "criteria": []} for s in stages]
    by_stage = {s["stage"]: s["criteria"] for s in out}
    for row in coverage.rows.to_dict("records"):  # a few dozen rows
        missing: dict[str, int] = row["missing"]
        by_stage[row["stage"]].append(
            {
                "criterion": _criterion(row),
                "role": row["role"],
                "source_stage": row["source_stage"] or None,
                "metric": row["metric"],
                "op": row["op"],
                "threshold": row["threshold"],
                "kind": _kind(row),
                "brands": int(row["brands"]),
                "without_value": int(row["without_value"]),
                "missing_columns": missing,
                "measured_without_value": int(row["measured"]),
                "filled_by": {c: list(sources.get(c, ())) or [NO_REPORT] for c in missing},
            }
        )
    return out


def coverage_text(coverage: Coverage, sources: Mapping[str, Sequence[str]]) -> list[str]:
    """Per stage a heading and a table of its criteria (the reports last: Chinese names would break the alignment)."""
    rows = table_rows(coverage, sources)
    lines: list[str] = []
    heads = {
        "criterion": "criterion",
        "kind": "kind",
        "no value": "no value",
        "missing columns": "missing columns",
        "filled by": "filled by",
    }
    for record in coverage_records(coverage, sources):
        stage, count = record["stage"], record["brands"]
        mine = [r for r in rows if r["stage"] == stage]
        if not count:
            lines.append(f"{stage}: no brands")
            continue
        lines.append(f"{stage}: {count} brand{'s' if count != 1 else ''}")
        shown = [heads, *mine]
        widths = {k: max(len(r[k]) for r in shown) for k in ("criterion", "kind", "no value", "missing columns")}
        for r in shown:
            cells = [r[k].ljust(w) for k, w in widths.items()]
            lines.append(("  " + "  ".join(cells) + "  " + r["filled by"]).rstrip())
    return lines
