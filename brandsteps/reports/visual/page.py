"""The report's HTML page, with its PNG charts beside it: write_report draws them all from the ledger."""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from brandsteps.catalogue import STAGE_IDS, STAGE_ORDER
from brandsteps.config import Portfolio
from brandsteps.ledger import Ledger
from brandsteps.reports.visual.attention import ATTENTION_TIERS, RECENT_DAYS
from brandsteps.reports.visual.brand_charts import brand_image, brand_panels, label_width
from brandsteps.reports.visual.charts import day_ticks, durations_image, funnel_image
from brandsteps.reports.visual.data import Overview, read_overview, read_report_data, stage_changes_of
from brandsteps.reports.visual.style import (
    FAIL_DARK,
    FAIL_LIGHT,
    NO_VALUE,
    NOT_EVALUATED,
    PASS_DARK,
    PASS_LIGHT,
    STAGE_COLOURS,
    TIER_COLOURS,
    VERDICT_COLOURS,
    title_name,
)

Progress = Callable[[int, int, str], None]


def _save_image(image: Image.Image, path: Path) -> tuple[int, int]:
    image.save(path, format="png", compress_level=3)
    return image.size


def _img(src: str, size: tuple[int, int], alt: str, **attrs: object) -> str:
    extra = " ".join(f'data-{k.replace("_", "-")}="{html.escape(str(v))}"' for k, v in attrs.items())
    return f'<img src="{html.escape(src)}" width="{size[0]}" height="{size[1]}" alt="{html.escape(alt)}" {extra}>'


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(border=0, classes="data", na_rep="–", escape=True)


STYLE = (
    "\n"
    'body{font-family:-apple-system,"Segoe UI","Noto Sans CJK SC","WenQuanYi Zen Hei","Microsoft YaHei",sans-serif;'
    "margin:24px;color:#222;\n"
    "max-width:1240px;font-size:15px}\n"
    "h1{font-size:24px}h2{font-size:19px;margin-top:32px;border-bottom:1px solid #ddd}h3{font-size:17px;margin:4px 0}\n"
    "img{max-width:100%;height:auto;border:1px solid #eee;margin:6px 0}"
    "table.data{border-collapse:collapse;font-size:13px}\n"
    "table.data td,table.data th{padding:3px 8px;border-bottom:1px solid #eee;text-align:right}\n"
    "ol.brands{padding-left:28px}li.brand{margin-bottom:22px}.muted{color:#666;font-size:13px}\n"
    ".tag{display:inline-block;padding:1px 7px;border-radius:9px;color:#fff;font-size:12px;margin-right:6px}\n"
    ".key span{display:inline-block;width:34px;height:12px;vertical-align:middle;margin:0 4px 0 12px;"
    "border:1px solid #ccc}\n"
)


def _rgb(c: np.ndarray) -> str:
    return "#" + "".join(f"{int(round(v * 255)):02x}" for v in c)


def _key() -> str:
    """The colour key of the brand charts, in HTML (legible at any zoom and costs no drawing)."""
    ramps = (
        ("passes, darker = farther past the threshold", PASS_LIGHT, PASS_DARK),
        ("fails, darker = farther off", FAIL_LIGHT, FAIL_DARK),
    )
    items = [
        f'<span style="background:linear-gradient(90deg,{_rgb(a)},{_rgb(b)})"></span>{html.escape(t)}'
        for t, a, b in ramps
    ]
    items += [
        f'<span style="background:{_rgb(c)}"></span>{t}'
        for t, c in (("no value", NO_VALUE), ("not evaluated that day", NOT_EVALUATED))
    ]
    items += [f'<span style="background:{_rgb(c)}"></span>verdict {v}' for v, c in VERDICT_COLOURS.items()]
    items += [f'<span style="background:{STAGE_COLOURS[s]}"></span>{s}' for s in STAGE_ORDER]
    return f'<p class="key muted">{"".join(items)}</p>'


def write_report(
    portfolio: Portfolio,
    ledger: Ledger,
    out_dir: Path,
    date_from: date | None = None,
    date_to: date | None = None,
    progress: Progress | None = None,
    max_brands: int | None = None,
) -> Path:
    """Write out_dir/index.html and its PNGs beside it (linked relatively: the folder can be served, copied or zipped).

    Brands come most in need of attention first (rank_attention); max_brands draws only the first
    ones, and only their criteria are read; the others are listed without a chart.
    """
    overview = read_overview(ledger, date_from, date_to)
    order = overview.order
    drawn = order if max_brands is None else order.head(max_brands)
    brand_ids = list(drawn["brand_id"])
    data = read_report_data(
        ledger, overview.date_from, overview.date_to, brands=None if max_brands is None else brand_ids
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    total = 2 + len(drawn)
    names = {b.brand_id: b.name for b in portfolio.brands.values()}
    first = pd.Timestamp(overview.date_from)
    n_days = (pd.Timestamp(overview.date_to) - first).days + 1
    ticks = day_ticks(first, n_days)
    funnel_size = _save_image(funnel_image(overview.funnel, first, n_days, ticks), out_dir / "funnel.png")
    if progress:
        progress(1, total, "funnel")
    durations_size = _save_image(durations_image(overview.durations), out_dir / "stage_durations.png")
    if progress:
        progress(2, total, "stage durations")
    titles = {b: title_name(names.get(b, b), b) for b in brand_ids}
    labels = dict(zip(drawn["brand_id"], drawn["label"], strict=True))
    tiers = dict(zip(drawn["brand_id"], drawn["tier"].astype(int), strict=True))
    panels = list(brand_panels(data, brand_ids, titles, labels))
    labels_px = label_width(panels)
    sizes = {}
    for i, panel in enumerate(panels, start=3):  # one image per brand
        image = brand_image(panel, ticks, tiers[panel.brand_id], labels_px)
        sizes[panel.brand_id] = _save_image(image, out_dir / f"brand-{panel.brand_id}.png")
        if progress:
            progress(i, total, panel.brand_id)
    page = _page(
        portfolio, ledger, overview, drawn, stage_changes_of(data), names, (funnel_size, durations_size, sizes)
    )
    index = out_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


REST_ROWS = 500  # brands listed without a chart, at most: a page for people, `brandsteps status` has them all
ORDER_NOTE = (
    "most first: a brand takes the first of these that applies, then come more FAIL/ERROR days in\n"
    f"the last {RECENT_DAYS} days, then longer in stage."
)
CHART_NOTE = (
    "Each chart has one column per day: the brand's stage, its verdict, then each criterion it was judged on "
    "(operator and\nthreshold as last evaluated); dashed lines: stage changes. "
    "<code>brandsteps explain BRAND --as-of DAY</code> gives the values."
)


def _page(
    portfolio: Portfolio,
    ledger: Ledger,
    overview: Overview,
    drawn: pd.DataFrame,
    changes: pd.DataFrame,
    names: dict[str, str],
    sizes: tuple[tuple[int, int], tuple[int, int], dict[str, tuple[int, int]]],
) -> str:
    funnel_size, durations_size, brand_sizes = sizes
    order, funnel, durations = overview.order, overview.funnel, overview.durations
    rest = order.iloc[len(drawn) :]
    counts = order["label"].value_counts()
    tiers_text = ", ".join(f"{counts[t]} {t}" for t, _ in ATTENTION_TIERS if t in counts)
    decided = f"{len(order)} brands ({tiers_text}), {len(funnel)} days, {overview.n_decisions} decisions"
    last_day = funnel.tail(1).T.rename(columns=lambda c: f"brands on {c:%Y-%m-%d}")
    tier_list = "".join(f"<li><b>{t}</b>: {html.escape(d)}</li>" for t, d in ATTENTION_TIERS)
    shown = (
        f"the {len(drawn)} of {len(order)} brands most in need of attention"
        if len(rest)
        else f"all {len(order)} brands"
    )
    span = f"{overview.date_from} to {overview.date_to}"
    funnel_img = _img(
        "funnel.png",
        funnel_size,
        "brands per stage per day, stacked",
        chart="funnel",
        points=len(funnel),
        days=len(funnel),
    )
    durations_img = _img(
        "stage_durations.png", durations_size, "days in stage at leaving", chart="durations", stays=len(durations)
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>STEPS onboarding report {span}</title>
<style>{STYLE}</style></head><body>
<h1>STEPS onboarding report, {span}</h1>
<p class="muted">{decided} from {html.escape(ledger.display_url)};
playbook {html.escape(str(portfolio.playbook_version))}.</p>
<h2>Stage funnel over time</h2>
{funnel_img}
{_table(last_day)}
<h2>Stage durations</h2>
{durations_img}
{_table(_stays(durations).round(1))}
<h2>Brands by need of attention</h2>
<p class="muted">Showing {shown}, {ORDER_NOTE}</p><ol class="muted">{tier_list}</ol>
<p class="muted">{CHART_NOTE}</p>
{_key()}
<ol class="brands">{_brand_items(drawn, changes, names, brand_sizes)}</ol>
{_rest_list(rest, names)}
</body></html>
"""


def _stays(durations: pd.DataFrame) -> pd.DataFrame:
    """Per stage: how many stays ended in the range, and their median, mean and longest days."""
    summary = (
        durations.groupby("stage")["days_in_stage"].describe()[["count", "50%", "mean", "max"]].reindex(list(STAGE_IDS))
    )
    summary.columns = ["stays", "median days", "mean days", "max days"]
    return summary


def _brand_items(
    drawn: pd.DataFrame, changes: pd.DataFrame, names: dict[str, str], brand_sizes: dict[str, tuple[int, int]]
) -> str:
    """One list item per drawn brand: its name, attention tier and why, its stage changes and its chart."""
    changes_by_brand = dict(tuple(changes.groupby("brand_id", sort=False)))
    empty_changes = changes.iloc[0:0]
    brand_html = []
    for rank, (brand_id, tier, label, why) in enumerate(
        zip(drawn["brand_id"], drawn["tier"], drawn["label"], drawn["why"], strict=True), start=1
    ):
        moves = changes_by_brand.get(brand_id, empty_changes)
        steps = zip(moves["as_of"], moves["action"], moves["stage"], moves["to_stage"], strict=True)
        moves_text = "; ".join(f"{d:%Y-%m-%d} {a} {f} → {t}" for d, a, f, t in steps)
        name, bid = html.escape(names.get(brand_id, brand_id)), html.escape(brand_id)
        brand_html.append(
            f'<li class="brand" id="brand-{bid}" data-brand="{bid}" data-attention="{label}" data-rank="{rank}">'
            f'<h3>{name} <span class="muted">({bid})</span></h3>'
            f'<p><span class="tag" style="background:{TIER_COLOURS[tier]}">{label}</span>{html.escape(why)}</p>'
            f'<p class="muted">Stage changes: {html.escape(moves_text or "none in this range")}</p>'
            + _img(
                f"brand-{brand_id}.png",
                brand_sizes[brand_id],
                f"{names.get(brand_id, brand_id)} ({brand_id}): stage, verdict and criteria per day",
                chart="brand",
                brand=brand_id,
                stage_changes=len(moves),
            )
            + "</li>"
        )
    return "".join(brand_html)


def _rest_list(rest: pd.DataFrame, names: dict[str, str]) -> str:
    """The brands without a chart, in the same order: a table of the first REST_ROWS (empty if all are drawn)."""
    if not len(rest):
        return ""
    listed = rest.head(REST_ROWS)
    rows = "".join(
        f"<tr><td>{html.escape(names.get(b, b))}</td><td>{html.escape(b)}</td>"
        f"<td>{lab}</td><td>{html.escape(w)}</td></tr>"
        for b, lab, w in zip(listed["brand_id"], listed["label"], listed["why"], strict=True)
    )
    more = (
        f" The first {REST_ROWS} are listed; <code>brandsteps status</code> has them all."
        if len(rest) > REST_ROWS
        else ""
    )
    return (
        f"<h3>The other {len(rest)} brands, in the same order</h3>"
        '<p class="muted">No chart: the cycle\'s report draws the brands most in need'
        f" of attention; <code>brandsteps report</code> draws every brand.{more}</p>"
        '<table class="data rest"><tr><th>brand</th><th>id</th><th>attention</th><th>why</th></tr>'
        f"{rows}</table>"
    )
