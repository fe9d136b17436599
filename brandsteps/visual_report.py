"""The visual report: a self-contained HTML page and PNG charts (funnel over time, stage durations, brand trends) from the ledger."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display on servers and in Prefect workers

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from brandsteps.catalogue import EXITED, GRADUATED, STAGE_IDS  # noqa: E402
from brandsteps.config import Portfolio  # noqa: E402
from brandsteps.diagnosis import criteria_frame  # noqa: E402
from brandsteps.ledger import Ledger, decisions  # noqa: E402

Progress = Callable[[int, int, str], None]
STAGE_ORDER: tuple[str, ...] = (*STAGE_IDS, GRADUATED, EXITED)
STAGE_COLOURS = dict(zip(STAGE_ORDER, ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#b07aa1", "#9c9c9c"], strict=True))
FIELDS = ["brand_id", "as_of", "stage", "to_stage", "action", "verdict", "days_in_stage", "criteria"]
MOVES = ("advance", "graduate", "demote", "exit", "recycle")


@dataclass
class ReportData:
    """The ledger's decisions of the report range, and each brand's criteria values over time."""

    decisions: pd.DataFrame
    criteria: pd.DataFrame  # brand_id, as_of, stage, metric, op, threshold, value, result
    date_from: date
    date_to: date


def read_report_data(ledger: Ledger, date_from: date | None = None, date_to: date | None = None) -> ReportData:
    """Decisions between the two days (default: the whole ledger), read with bound parameters."""
    query = sa.select(*[decisions.c[c] for c in FIELDS]).order_by(decisions.c.as_of, decisions.c.brand_id)
    if date_from is not None:
        query = query.where(decisions.c.as_of >= date_from)
    if date_to is not None:
        query = query.where(decisions.c.as_of <= date_to)
    with ledger.engine.connect() as conn:
        frame = pd.read_sql(query, conn)
    if frame.empty:
        raise ValueError(f"the ledger {ledger.display_url} has no decisions" + (f" between {date_from} and {date_to}" if date_from or date_to else ""))
    frame["as_of"] = pd.to_datetime(frame["as_of"])
    crit = criteria_frame(frame)
    crit = crit[(crit["role"] == "criterion") & ~crit["shadow"]]
    rows = frame.iloc[crit["row"].to_numpy()]
    long = pd.DataFrame(
        {
            "brand_id": rows["brand_id"].to_numpy(),
            "as_of": rows["as_of"].to_numpy(),
            "stage": rows["stage"].to_numpy(),
            "metric": crit["metric"].to_numpy(),
            "op": crit["op"].to_numpy(),
            "threshold": crit["threshold"].to_numpy(dtype=float),
            "value": crit["value"].to_numpy(dtype=float),
            "result": crit["result"].to_numpy(),
        }
    )
    first, last = frame["as_of"].min().date(), frame["as_of"].max().date()
    return ReportData(frame.drop(columns=["criteria"]), long, date_from or first, date_to or last)


def funnel_over_time(data: ReportData) -> pd.DataFrame:
    """Brands per stage after each day's decisions: one row per day, one column per stage."""
    counts = data.decisions.pivot_table(index="as_of", columns="to_stage", values="brand_id", aggfunc="count", fill_value=0)
    return counts.reindex(columns=[s for s in STAGE_ORDER if s in counts.columns]).astype(int)


def stage_durations(data: ReportData) -> pd.DataFrame:
    """Completed stays: the days in stage on the day a brand left it (advance, graduate, demote, exit) or restarted it (recycle)."""
    d = data.decisions
    left = d[d["action"].isin(MOVES)]
    return left[["brand_id", "stage", "action", "days_in_stage", "as_of"]].reset_index(drop=True)


def stage_changes_of(data: ReportData) -> pd.DataFrame:
    d = data.decisions
    return d[(d["to_stage"] != d["stage"]) | (d["action"] == "recycle")][["brand_id", "as_of", "stage", "to_stage", "action"]]


def funnel_figure(funnel: pd.DataFrame) -> Figure:
    """One line per stage, one point per day."""
    fig, ax = plt.subplots(figsize=(10, 4.2), dpi=100)
    for stage in funnel.columns:  # at most seven stages
        ax.plot(funnel.index, funnel[stage], marker=".", markersize=3, linewidth=1.4, label=stage, color=STAGE_COLOURS.get(stage), gid=f"funnel-{stage}")
    ax.set_title("Brands per stage after each day's cycle")
    ax.set_ylabel("brands")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8, ncol=4)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def durations_figure(durations: pd.DataFrame) -> Figure:
    """Box plot of days in stage at leaving, per stage, with the number of stays."""
    fig, ax = plt.subplots(figsize=(10, 3.8), dpi=100)
    stages = [s for s in STAGE_IDS if (durations["stage"] == s).any()]
    groups = [durations.loc[durations["stage"] == s, "days_in_stage"].to_numpy(dtype=float) for s in stages]  # five stages
    if groups:
        ax.boxplot(groups, tick_labels=[f"{s}\n(n={len(g)})" for s, g in zip(stages, groups, strict=True)], showmeans=True)
    else:
        ax.text(0.5, 0.5, "no brand left a stage in this range", ha="center", va="center", transform=ax.transAxes)
    ax.set_title("Days in stage when a brand left it (advance, graduate, demote, exit, recycle)")
    ax.set_ylabel("days in stage")
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def brand_figure(brand_id: str, crit: pd.DataFrame, changes: pd.DataFrame, max_metrics: int = 24) -> Figure:
    """A brand's criterion metrics over time against their thresholds, stage changes marked as vertical lines.

    A metric is drawn only on days its stage evaluated it: a gap, not a line across stages.
    """
    days = pd.DatetimeIndex(sorted(crit["as_of"].unique()))
    full = pd.date_range(days.min(), days.max(), freq="D")
    metrics = list(dict.fromkeys(crit.sort_values("as_of")["metric"]))[:max_metrics]
    values = crit.pivot_table(index="as_of", columns="metric", values="value", aggfunc="first", dropna=False).reindex(index=full, columns=metrics)
    thresholds = crit.pivot_table(index="as_of", columns="metric", values="threshold", aggfunc="first", dropna=False).reindex(index=full, columns=metrics)
    ops = crit.groupby("metric")["op"].last()
    cols = 4
    rows = max(1, -(-len(metrics) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(13, 1.9 * rows + 0.6), dpi=80, squeeze=False, sharex=True)
    for ax, metric in zip(axes.flat, metrics, strict=False):  # the brand's criteria metrics, two dozen at most
        ax.plot(full, values[metric].to_numpy(dtype=float), linewidth=1.2, color="#4e79a7", gid=f"value-{metric}")
        ax.plot(full, thresholds[metric].to_numpy(dtype=float), linestyle="--", linewidth=1, color="#e15759", gid=f"threshold-{metric}")
        for day in changes["as_of"]:  # a brand changes stage a handful of times
            ax.axvline(day, color="#59a14f", linewidth=0.8, alpha=0.7)
        ax.set_title(f"{metric} ({ops.get(metric, '')} threshold)", fontsize=8)
        ax.tick_params(labelsize=6)
        ax.grid(alpha=0.25)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    fig.suptitle(f"{brand_id}: criteria values (solid) vs thresholds (dashed); green lines: stage changes", fontsize=9)
    fig.autofmt_xdate()
    fig.subplots_adjust(left=0.05, right=0.99, top=1 - 0.75 / (1.9 * rows + 0.6), bottom=0.7 / (1.9 * rows + 0.6), hspace=0.45, wspace=0.25)
    return fig


def _png(fig: Figure, path: Path) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    data = buffer.getvalue()
    path.write_bytes(data)
    return data


def _img(data: bytes, name: str, alt: str, **attrs: object) -> str:
    extra = " ".join(f'data-{k.replace("_", "-")}="{html.escape(str(v))}"' for k, v in attrs.items())
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img id="{html.escape(name)}" alt="{html.escape(alt)}" {extra} src="data:image/png;base64,{encoded}">'


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(border=0, classes="data", na_rep="–", escape=True)


STYLE = """
body{font-family:-apple-system,"Segoe UI","Noto Sans CJK SC",sans-serif;margin:24px;color:#222;max-width:1240px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}
img{max-width:100%;border:1px solid #eee;margin:8px 0}table.data{border-collapse:collapse;font-size:12px}
table.data td,table.data th{padding:3px 8px;border-bottom:1px solid #eee;text-align:right}
.brand{margin-bottom:20px}.muted{color:#777;font-size:12px}
"""


def write_report(
    portfolio: Portfolio,
    ledger: Ledger,
    out_dir: Path,
    date_from: date | None = None,
    date_to: date | None = None,
    progress: Progress | None = None,
    max_brands: int | None = None,
) -> Path:
    """Write out_dir/index.html (PNGs embedded, so the page stands alone) and the same PNGs beside it.

    max_brands limits the per-brand charts to the brands with the most recent stage changes.
    """
    data = read_report_data(ledger, date_from, date_to)
    out_dir.mkdir(parents=True, exist_ok=True)
    funnel = funnel_over_time(data)
    durations = stage_durations(data)
    changes = stage_changes_of(data)
    brands = list(data.decisions.groupby("brand_id")["as_of"].max().index)
    if max_brands is not None and len(brands) > max_brands:
        latest = changes.groupby("brand_id")["as_of"].max().reindex(brands).fillna(pd.Timestamp.min)
        brands = list(latest.sort_values(ascending=False).index[:max_brands])
    total = 2 + len(brands)
    funnel_png = _png(funnel_figure(funnel), out_dir / "funnel.png")
    if progress:
        progress(1, total, "funnel")
    durations_png = _png(durations_figure(durations), out_dir / "stage_durations.png")
    if progress:
        progress(2, total, "stage durations")
    names = {b.brand_id: b.name for b in portfolio.brands.values()}
    crit_by_brand = dict(tuple(data.criteria.groupby("brand_id", sort=False)))
    changes_by_brand = dict(tuple(changes.groupby("brand_id", sort=False)))
    empty_changes = changes.iloc[0:0]
    brand_html = []
    for i, brand_id in enumerate(brands, start=3):  # one chart per brand: drawing is per brand, the data above is not
        crit = crit_by_brand.get(brand_id)
        if crit is None or crit.empty:
            continue
        moves = changes_by_brand.get(brand_id, empty_changes)
        png = _png(brand_figure(brand_id, crit, moves), out_dir / f"brand-{brand_id}.png")
        steps = zip(moves["as_of"], moves["action"], moves["stage"], moves["to_stage"], strict=True)
        moves_text = "; ".join(f"{d:%Y-%m-%d} {a} {f} → {t}" for d, a, f, t in steps)
        brand_html.append(
            f'<div class="brand"><h3>{html.escape(names.get(brand_id, brand_id))} ({html.escape(brand_id)})</h3>'
            f'<p class="muted">Stage changes: {html.escape(moves_text or "none in this range")}</p>'
            + _img(png, f"brand-{brand_id}", f"{brand_id} metric trends", chart="brand", brand=brand_id, stage_changes=len(moves))
            + "</div>"
        )
        if progress:
            progress(i, total, brand_id)
    summary = durations.groupby("stage")["days_in_stage"].describe()[["count", "50%", "mean", "max"]].reindex([s for s in STAGE_IDS])
    summary.columns = ["stays", "median days", "mean days", "max days"]
    last_day = funnel.tail(1).T.rename(columns=lambda c: f"brands on {c:%Y-%m-%d}")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>STEPS onboarding report {data.date_from} to {data.date_to}</title>
<style>{STYLE}</style></head><body>
<h1>STEPS onboarding report, {data.date_from} to {data.date_to}</h1>
<p class="muted">{data.decisions['brand_id'].nunique()} brands, {len(funnel)} days, {len(data.decisions)} decisions from {html.escape(ledger.display_url)};
playbook {portfolio.playbook_version}. Charts are also saved as PNG files beside this page.</p>
<h2>Stage funnel over time</h2>
{_img(funnel_png, "funnel", "brands per stage per day", chart="funnel", points=len(funnel), days=len(funnel))}
{_table(last_day)}
<h2>Stage durations</h2>
{_img(durations_png, "stage-durations", "days in stage at leaving", chart="durations", stays=len(durations))}
{_table(summary.round(1))}
<h2>Brands: metrics against thresholds</h2>
<p class="muted">Each panel is one criterion of the brand's stage at the time: the measured window value (solid) and its threshold (dashed);
green lines mark stage changes.{f" Showing the {len(brands)} brands with the most recent stage changes." if max_brands is not None else ""}</p>
{"".join(brand_html)}
</body></html>
"""
    index = out_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def funnel_points(fig: Figure) -> dict[str, int]:
    """The number of plotted points per stage line of a funnel figure (what a reader sees)."""
    ax = fig.axes[0]
    return {str(line.get_gid()).removeprefix("funnel-"): len(np.asarray(line.get_xdata())) for line in ax.get_lines()}
