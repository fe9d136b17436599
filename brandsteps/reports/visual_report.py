"""The visual report: an HTML page and PNG charts (stacked stage funnel, stage durations, brands by need of attention) from the ledger."""

from __future__ import annotations

import functools
import html
import importlib.util
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from PIL import Image, ImageDraw, ImageFont

from brandsteps.catalogue import EXITED, GRADUATED, STAGE_IDS
from brandsteps.config import Portfolio
from brandsteps.engine.diagnosis import criteria_frame
from brandsteps.ledger import Ledger, decisions

Progress = Callable[[int, int, str], None]
STAGE_ORDER: tuple[str, ...] = (*STAGE_IDS, GRADUATED, EXITED)
STAGE_COLOURS = dict(
    zip(STAGE_ORDER, ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#b07aa1", "#9c9c9c"], strict=True)
)
FIELDS = [
    "brand_id",
    "as_of",
    "stage",
    "to_stage",
    "action",
    "verdict",
    "days_in_stage",
    "overdue",
    "reason",
    "criteria",
]
MOVES = ("advance", "graduate", "demote", "exit", "recycle")
SETBACKS = ("demote", "exit", "recycle")  # the moves that cost a brand its progress
FAILING = ("FAIL", "ERROR")
RECENT_DAYS = 14

# Need of attention, most first. A brand takes the first tier it meets, from its decisions of the report's range:
ATTENTION_TIERS: tuple[tuple[str, str], ...] = (
    ("set-back", "demoted, exited or recycled in the last days of the range: it lost progress"),
    ("overdue", "past max_days_in_stage on its last decision"),
    ("failing", "its last decision was FAIL (held, or guardrail) or ERROR (its data failed validation)"),
    ("awaiting-approval", "earned its passes and waits for a person"),
    ("in-progress", "on its way: passing, or too early to judge"),
    ("finished", "graduated or exited earlier, nothing failing"),
)
TIER_COLOURS = ("#b2182b", "#d6604d", "#e08214", "#2166ac", "#4d4d4d", "#7f7f7f")

# Heat-map cells: a criterion's margin to its threshold, green when it passes and red when it fails, darker the farther.
PASS_LIGHT, PASS_DARK = np.array([0.78, 0.91, 0.75]), np.array([0.10, 0.50, 0.22])
FAIL_LIGHT, FAIL_DARK = np.array([0.99, 0.78, 0.68]), np.array([0.72, 0.07, 0.10])
NO_VALUE = np.array([0.35, 0.35, 0.35])
NOT_EVALUATED = np.array([0.95, 0.95, 0.95])
VERDICT_COLOURS = {
    "PASS": PASS_DARK,
    "FAIL": FAIL_DARK,
    "INCONCLUSIVE": np.array([0.80, 0.80, 0.80]),
    "ERROR": np.array([0.46, 0.16, 0.53]),
}
MAX_METRICS = 24

# Fonts with Chinese glyphs, tried in order (Debian, macOS, Windows), then whatever fontconfig knows for Chinese:
# brand names like 拖后腿 render instead of empty boxes. BRANDSTEPS_CJK_FONT names a file to use instead.
CJK_FILES = (
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "/System/Library/Fonts/STHeiti Light.ttc",
    "C:/Windows/Fonts/msyh.ttc",
    "C:/Windows/Fonts/simhei.ttf",
)
CJK_FONT_ENV = "BRANDSTEPS_CJK_FONT"


def _hex(colour: str) -> tuple[int, int, int]:
    colour = colour.lstrip("#")
    return int(colour[0:2], 16), int(colour[2:4], 16), int(colour[4:6], 16)


@dataclass
class ReportData:
    """The ledger's decisions of the report range (of some brands, or all), and their criteria values over time."""

    decisions: pd.DataFrame
    criteria: pd.DataFrame  # brand_id, as_of, stage, metric, op, threshold, value, result
    date_from: date
    date_to: date


@dataclass
class Overview:
    """What the report shows of the whole portfolio, aggregated by the database: no brand's criteria are read for it."""

    funnel: pd.DataFrame  # one row per day, one column per stage: brands after the day's decisions
    durations: pd.DataFrame  # stage_durations' columns
    order: pd.DataFrame  # attention_order's columns
    n_decisions: int
    date_from: date
    date_to: date


def _in_range(query: sa.Select[Any], date_from: date | None, date_to: date | None) -> sa.Select[Any]:
    if date_from is not None:
        query = query.where(decisions.c.as_of >= date_from)
    if date_to is not None:
        query = query.where(decisions.c.as_of <= date_to)
    return query


def _no_decisions(ledger: Ledger, date_from: date | None, date_to: date | None) -> ValueError:
    return ValueError(
        f"the ledger {ledger.display_url} has no decisions"
        + (f" between {date_from} and {date_to}" if date_from or date_to else "")
    )


def read_report_data(
    ledger: Ledger, date_from: date | None = None, date_to: date | None = None, brands: list[str] | None = None
) -> ReportData:
    """Decisions between the two days (default: the whole ledger) of these brands (default: all), read with bound parameters."""
    query = _in_range(
        sa.select(*[decisions.c[c] for c in FIELDS]).order_by(decisions.c.as_of, decisions.c.brand_id),
        date_from,
        date_to,
    )
    if brands is not None:
        query = query.where(decisions.c.brand_id.in_(brands))  # the unique index (brand_id, as_of) finds them
    with ledger.engine.connect() as conn:
        frame = pd.read_sql(query, conn)
    if frame.empty and brands is None:
        raise _no_decisions(ledger, date_from, date_to)
    frame["as_of"] = pd.to_datetime(frame["as_of"])
    frame["overdue"] = frame["overdue"].astype(bool)
    crit = criteria_frame(frame)
    crit = crit[(crit["role"] == "criterion") & ~crit["shadow"]]
    rows = frame.iloc[crit["row"].to_numpy(dtype=np.int64)]
    long = pd.DataFrame(
        {
            "brand_id": rows["brand_id"].to_numpy(),
            "as_of": pd.DatetimeIndex(rows["as_of"]),
            "stage": rows["stage"].to_numpy(),
            "metric": crit["metric"].to_numpy(),
            "op": crit["op"].to_numpy(),
            "threshold": crit["threshold"].to_numpy(dtype=float),
            "value": crit["value"].to_numpy(dtype=float),
            "result": crit["result"].to_numpy(),
        }
    )
    first = frame["as_of"].min().date() if len(frame) else date_from
    last = frame["as_of"].max().date() if len(frame) else date_to
    return ReportData(
        frame.drop(columns=["criteria"]), long, date_from or first or date.today(), date_to or last or date.today()
    )


def read_overview(
    ledger: Ledger, date_from: date | None = None, date_to: date | None = None, recent_days: int = RECENT_DAYS
) -> Overview:
    """The funnel, the completed stays and every brand's need of attention, from a few aggregating queries.

    The same numbers as funnel_over_time, stage_durations and attention_order of read_report_data's
    decisions, without reading every decision's criteria (what a cycle over many brands cannot afford daily).
    """
    c = decisions.c
    with ledger.engine.connect() as conn:
        counts = pd.read_sql(
            _in_range(sa.select(c.as_of, c.to_stage, sa.func.count().label("n")), date_from, date_to).group_by(
                c.as_of, c.to_stage
            ),
            conn,
        )
        if counts.empty:
            raise _no_decisions(ledger, date_from, date_to)
        counts["as_of"] = pd.to_datetime(counts["as_of"])
        first, last_day = counts["as_of"].min().date(), counts["as_of"].max().date()
        end = date_to or last_day
        stays = _in_range(sa.select(c.brand_id, c.stage, c.action, c.days_in_stage, c.as_of), date_from, date_to).where(
            c.action.in_(MOVES)
        )
        durations = pd.read_sql(stays.order_by(c.as_of, c.brand_id), conn)
        latest = (
            _in_range(sa.select(c.brand_id, sa.func.max(c.as_of).label("day")), date_from, date_to)
            .group_by(c.brand_id)
            .subquery()
        )
        last = pd.read_sql(
            sa.select(
                c.brand_id, c.as_of, c.stage, c.to_stage, c.action, c.verdict, c.days_in_stage, c.overdue, c.reason
            ).select_from(decisions.join(latest, (c.brand_id == latest.c.brand_id) & (c.as_of == latest.c.day))),
            conn,
        )
        since = max(end - timedelta(days=recent_days - 1), date_from or first)
        recent = pd.read_sql(
            _in_range(sa.select(c.brand_id, c.as_of, c.stage, c.to_stage, c.action, c.verdict), since, end).where(
                c.action.in_(SETBACKS) | c.verdict.in_(FAILING)
            ),
            conn,
        )
    funnel = counts.pivot_table(index="as_of", columns="to_stage", values="n", aggfunc="sum", fill_value=0)
    funnel = funnel.reindex(columns=[s for s in STAGE_ORDER if s in funnel.columns]).astype(int)
    funnel.columns.name = "to_stage"
    durations["as_of"] = pd.to_datetime(durations["as_of"])
    durations["days_in_stage"] = durations["days_in_stage"].astype(
        np.int64
    )  # also when no brand left a stage (an empty read has no type)
    for frame in (last, recent):
        frame["as_of"] = pd.to_datetime(frame["as_of"])
    last["overdue"] = last["overdue"].astype(bool)
    return Overview(
        funnel, durations, rank_attention(last, recent), int(counts["n"].sum()), date_from or first, date_to or last_day
    )


def funnel_over_time(data: ReportData) -> pd.DataFrame:
    """Brands per stage after each day's decisions: one row per day, one column per stage."""
    counts = data.decisions.pivot_table(
        index="as_of", columns="to_stage", values="brand_id", aggfunc="count", fill_value=0
    )
    return counts.reindex(columns=[s for s in STAGE_ORDER if s in counts.columns]).astype(int)


def stage_durations(data: ReportData) -> pd.DataFrame:
    """Completed stays: the days in stage on the day a brand left it (advance, graduate, demote, exit) or restarted it (recycle)."""
    d = data.decisions
    left = d[d["action"].isin(MOVES)]
    return left[["brand_id", "stage", "action", "days_in_stage", "as_of"]].reset_index(drop=True)


def stage_changes_of(data: ReportData) -> pd.DataFrame:
    d = data.decisions
    return d[(d["to_stage"] != d["stage"]) | (d["action"] == "recycle")][
        ["brand_id", "as_of", "stage", "to_stage", "action"]
    ]


def attention_order(
    decisions_frame: pd.DataFrame, date_to: date | None = None, recent_days: int = RECENT_DAYS
) -> pd.DataFrame:
    """rank_attention of a decisions table (read_report_data's): each brand's last decision and its recent set-backs and fails."""
    d = decisions_frame.sort_values(["brand_id", "as_of"], kind="stable")
    end = pd.Timestamp(date_to) if date_to is not None else d["as_of"].max()
    recent = d[(d["as_of"] > end - pd.Timedelta(days=recent_days)) & (d["as_of"] <= end)]
    recent = recent[recent["action"].isin(SETBACKS) | recent["verdict"].isin(FAILING)]
    return rank_attention(d.drop_duplicates("brand_id", keep="last"), recent)


def rank_attention(last: pd.DataFrame, recent: pd.DataFrame) -> pd.DataFrame:
    """One row per brand, most in need of attention first: brand_id, tier, label, why, recent_fails, days_in_stage, stage.

    last: each brand's latest decision; recent: its decisions of the last days that set it back or
    were FAIL/ERROR. Tiers (ATTENTION_TIERS): a recent set-back, then overdue, failing, awaiting
    approval, in progress, finished; a brand takes the first that applies. Within a tier: more
    FAIL/ERROR days recently first (failing steadily before failing once), then longer in stage
    (stuck longest), then brand id, so the order never depends on the database's row order.
    """
    last = (
        last.sort_values(["brand_id", "as_of"], kind="stable")
        .drop_duplicates("brand_id", keep="last")
        .set_index("brand_id")
    )
    recent = recent.sort_values(["brand_id", "as_of"], kind="stable")
    setback = (
        recent[recent["action"].isin(SETBACKS)]
        .drop_duplicates("brand_id", keep="last")
        .set_index("brand_id")
        .reindex(last.index)
    )
    fails = recent[recent["verdict"].isin(FAILING)].groupby("brand_id").size().reindex(last.index, fill_value=0)
    tier = np.select(
        [
            setback["action"].notna().to_numpy(),
            last["overdue"].to_numpy(dtype=bool),
            last["verdict"].isin(FAILING).to_numpy(),
            (last["action"] == "await_approval").to_numpy(),
            ~last["to_stage"].isin((GRADUATED, EXITED)).to_numpy(),
        ],
        [0, 1, 2, 3, 4],
        default=5,
    )
    whys = [
        _why(int(t), row, back) for t, row, back in zip(tier, last.itertuples(), setback.itertuples(), strict=True)
    ]  # one line per brand
    out = pd.DataFrame(
        {
            "brand_id": last.index.to_numpy(dtype=object),
            "tier": tier.astype(int),
            "label": [ATTENTION_TIERS[t][0] for t in tier],
            "why": whys,
            "recent_fails": fails.to_numpy(dtype=int),
            "days_in_stage": last["days_in_stage"].to_numpy(dtype=int),
            "stage": last["to_stage"].to_numpy(dtype=object),
        }
    )
    out = out.sort_values(
        ["tier", "recent_fails", "days_in_stage", "brand_id"], ascending=[True, False, False, True], kind="stable"
    )
    return out.reset_index(drop=True)


def _why(tier: int, last: Any, setback: Any) -> str:
    day = f"day {int(last.days_in_stage)} in {last.to_stage}"
    if tier == 0:
        return f"{setback.action} on {setback.as_of:%Y-%m-%d}: {setback.stage} → {setback.to_stage}; now {day}"
    if tier == 1:
        return f"overdue, {day}: {last.verdict} {last.reason}"
    if tier == 3:
        return f"awaiting approval to leave {last.stage} ({day})"
    if tier == 5:
        return f"{last.to_stage}; last decision {last.as_of:%Y-%m-%d}: {last.verdict}"
    return f"{last.verdict}, {day}: {last.reason}"


# ---------------------------------------------------------------- fonts


@functools.cache
def cjk_font_file() -> str | None:
    """A font file with Chinese glyphs: BRANDSTEPS_CJK_FONT, else the first of CJK_FILES there, else fontconfig's first for Chinese; or None."""
    chosen = os.environ.get(CJK_FONT_ENV)
    if chosen and Path(chosen).is_file():
        return chosen
    found = next((f for f in CJK_FILES if Path(f).is_file()), None)
    fc_list = shutil.which("fc-list")
    if found is None and fc_list:
        try:
            listed = subprocess.run(  # noqa: S603 - fixed arguments
                [fc_list, ":lang=zh", "file"], capture_output=True, text=True, timeout=10, check=False
            ).stdout
        except (OSError, subprocess.TimeoutExpired):
            listed = ""
        found = next((line.strip().removesuffix(":") for line in sorted(listed.splitlines()) if line.strip()), None)
    return found


def _dejavu(name: str) -> str | None:
    """DejaVu Sans from matplotlib's own data (a dependency, found without importing it) or the system's fonts."""
    spec = importlib.util.find_spec("matplotlib")
    places = [Path(p) / "mpl-data" / "fonts" / "ttf" for p in (spec.submodule_search_locations or [])] if spec else []
    places.append(Path("/usr/share/fonts/truetype/dejavu"))
    return next((str(place / name) for place in places if (place / name).is_file()), None)


@functools.cache
def _font(kind: str, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The charts' fonts: DejaVu Sans (regular, bold), or the CJK font for Chinese names; Pillow's own font as the last resort."""
    if kind == "cjk" and (cjk := cjk_font_file()) is not None:
        return ImageFont.truetype(cjk, size)
    path = _dejavu("DejaVuSans-Bold.ttf" if kind in ("bold", "cjk") else "DejaVuSans.ttf")
    return ImageFont.truetype(path, size) if path else ImageFont.load_default(size)


def title_name(name: str, brand_id: str) -> str:
    """'name (id)', or just the id when the name needs glyphs no installed font has (the page's heading still shows it)."""
    if name == brand_id:
        return brand_id
    if not name.isascii() and cjk_font_file() is None:
        return brand_id
    return f"{name} ({brand_id})"


# ---------------------------------------------------------------- charts


def day_ticks(first: pd.Timestamp, n_days: int, most: int = 10) -> tuple[np.ndarray, list[str]]:
    """Positions (days from first) and labels of at most `most` date ticks: days, Mondays, 1st and 15th, months or quarters."""
    days = pd.date_range(first, periods=max(n_days, 1), freq="D")
    candidates = (
        (np.ones(len(days), dtype=bool), "%m-%d"),
        (days.day_of_week == 0, "%m-%d"),
        (np.isin(days.day, (1, 15)), "%m-%d"),
        (days.day == 1, "%Y-%m"),
        ((days.day == 1) & np.isin(days.month, (1, 4, 7, 10)), "%Y-%m"),
        ((days.day == 1) & (days.month == 1), "%Y"),
    )
    mask, fmt = next(((m, f) for m, f in candidates if 0 < m.sum() <= most), candidates[-1])
    positions = np.flatnonzero(mask)
    return positions, list(days[positions].strftime(fmt))


def integer_ticks(top: float, most: int = 8) -> list[int]:
    """0 up to at least top in whole steps of 1, 2 or 5 × 10^k, at most `most` + 1 ticks: counts of brands and days are whole."""
    top = max(int(np.ceil(top)), 1)
    step = next(s * 10**k for k in range(12) for s in (1, 2, 5) if -(-top // (s * 10**k)) <= most)
    return list(range(0, -(-top // step) * step + 1, step))


INK, GREY, GRID_GREY, WHITE = (34, 34, 34), (110, 110, 110), (225, 225, 225), (255, 255, 255)


@dataclass
class Plot:
    """A plot area in pixels (left, top, width, height) and its y scale from 0 to y_max."""

    left: int
    top: int
    width: int
    height: int
    y_max: int

    def y(self, value: float) -> int:
        return self.top + self.height - int(round(value / self.y_max * self.height))


def _grid_lines(canvas: np.ndarray, plot: Plot, ticks: list[int]) -> None:
    """Horizontal lines at the y ticks, painted only on the white background: behind what is drawn."""
    area = canvas[plot.top : plot.top + plot.height + 1, plot.left : plot.left + plot.width]
    for tick in ticks[1:]:
        row = area[plot.y(tick) - plot.top]
        row[(row == 255).all(axis=1)] = GRID_GREY


def _axes(draw: ImageDraw.ImageDraw, plot: Plot, ticks: list[int], title: str) -> None:
    """The y tick labels at the left, the two axes' lines and the title above."""
    font = _font("regular", 12)
    for tick in ticks:
        draw.text((plot.left - 6, plot.y(tick)), str(tick), font=font, fill=GREY, anchor="rm")
    draw.line((plot.left, plot.top, plot.left, plot.top + plot.height), fill=GREY)
    draw.line((plot.left, plot.top + plot.height, plot.left + plot.width, plot.top + plot.height), fill=GREY)
    draw.text((plot.left, plot.top - 20), title, font=_font("bold", 15), fill=INK, anchor="lm")


def _x_ticks(draw: ImageDraw.ImageDraw, plot: Plot, ticks: tuple[np.ndarray, list[str]], day_px: int) -> None:
    font = _font("regular", 12)
    bottom = plot.top + plot.height
    for position, text in zip(*ticks, strict=True):
        x = plot.left + int(position) * day_px + day_px // 2
        draw.line((x, bottom, x, bottom + 4), fill=GREY)
        draw.text((x, bottom + 6), text, font=font, fill=GREY, anchor="mt")


def funnel_grid(counts: np.ndarray, height: int, y_max: int) -> np.ndarray:
    """The stacked bars as a (height × days) array of stage positions, -1 above a day's total (and on days without decisions).

    counts: days × stages; pixel row r (0 at the top) shows the stage whose stacked range holds its value.
    """
    tops = np.cumsum(np.nan_to_num(counts.astype(float)), axis=1)  # days × stages: each stage's upper edge
    values = (height - np.arange(height) - 0.5) / height * y_max  # the value at each pixel row's centre
    stage = (values[:, None, None] > tops[None, :, :]).sum(axis=2)  # rows × days: stages below the value
    return np.where(stage < counts.shape[1], stage, -1)


def funnel_image(
    funnel: pd.DataFrame, first: pd.Timestamp, n_days: int, ticks: tuple[np.ndarray, list[str]]
) -> Image.Image:
    """Brands per stage after each day's cycle: one stacked bar per day (its top is all brands), whole brands on the y axis."""
    stages = list(funnel.columns)
    counts = np.full((n_days, len(stages)), np.nan)
    days = np.asarray((pd.DatetimeIndex(funnel.index) - first).days, dtype=np.int64)
    inside = (days >= 0) & (days < n_days)
    counts[days[inside]] = funnel.to_numpy(dtype=float)[inside]
    y_ticks = integer_ticks(np.nanmax(counts.sum(axis=1)) if inside.any() else 1)
    day_px = max(1, 720 // max(n_days, 1))  # about 720 pixels of bars, whatever the range
    legend_w = 24 + max(int(_font("regular", 12).getlength(s)) for s in stages) if stages else 0
    plot = Plot(46, 40, n_days * day_px, 320, y_ticks[-1])
    width, height = plot.left + plot.width + 20 + legend_w + 10, plot.top + plot.height + 30
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    grid = funnel_grid(counts, plot.height, plot.y_max)
    palette = np.array(
        [_hex(STAGE_COLOURS.get(s, "#cccccc")) for s in stages] + [WHITE], dtype=np.uint8
    )  # -1: the last, white
    canvas[plot.top : plot.top + plot.height, plot.left : plot.left + plot.width] = np.repeat(
        palette[grid], day_px, axis=1
    )
    _grid_lines(canvas, plot, y_ticks)
    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    _axes(draw, plot, y_ticks, "Brands per stage after each day's cycle (stacked, one bar per day)")
    _x_ticks(draw, plot, ticks, day_px)
    x = plot.left + plot.width + 20
    for i, stage in enumerate(reversed(stages)):  # the top stage first, as stacked
        y = plot.top + 6 + i * 20
        draw.rectangle((x, y - 6, x + 13, y + 7), fill=_hex(STAGE_COLOURS.get(stage, "#cccccc")))
        draw.text((x + 20, y), stage, font=_font("regular", 12), fill=INK, anchor="lm")
    return image


def box_stats(values: np.ndarray) -> dict[str, Any]:
    """Quartiles, mean, whiskers (the farthest values within 1.5 IQR of the box) and the values beyond them."""
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    reach = 1.5 * (q3 - q1)
    inner = values[(values >= q1 - reach) & (values <= q3 + reach)]
    low, high = float(inner.min()), float(inner.max())
    outliers = np.unique(values[(values < low) | (values > high)])
    return {
        "q1": q1,
        "median": median,
        "q3": q3,
        "mean": float(values.mean()),
        "low": low,
        "high": high,
        "outliers": outliers,
        "n": len(values),
    }


def durations_image(durations: pd.DataFrame) -> Image.Image:
    """Days in stage when a brand left it, per stage: box (quartiles), median line, mean triangle, whiskers, outliers; n per stage."""
    stages = [s for s in STAGE_IDS if (durations["stage"] == s).any()]
    stats = [
        box_stats(durations.loc[durations["stage"] == s, "days_in_stage"].to_numpy(dtype=float)) for s in stages
    ]  # five stages
    y_ticks = integer_ticks(max((max([st["high"], *st["outliers"]]) for st in stats), default=1))
    plot = Plot(46, 40, 900, 260, y_ticks[-1])
    canvas = np.full((plot.top + plot.height + 50, plot.left + plot.width + 20, 3), 255, dtype=np.uint8)
    _grid_lines(canvas, plot, y_ticks)
    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    _axes(draw, plot, y_ticks, "Days in stage when a brand left it (advance, graduate, demote, exit, recycle)")
    label_font = _font("regular", 12)
    if not stats:
        draw.text(
            (plot.left + plot.width // 2, plot.top + plot.height // 2),
            "no brand left a stage in this range",
            font=label_font,
            fill=GREY,
            anchor="mm",
        )
    slot = plot.width // max(len(stats), 1)
    box = slot * 2 // 5
    blue, orange, green = (_hex(STAGE_COLOURS[s]) for s in ("affiliate_trial", "public_traffic", "channel_exclusive"))
    for i, (stage, st) in enumerate(zip(stages, stats, strict=True)):
        cx = plot.left + i * slot + slot // 2
        draw.line((cx, plot.y(st["low"]), cx, plot.y(st["q1"])), fill=INK)
        draw.line((cx, plot.y(st["q3"]), cx, plot.y(st["high"])), fill=INK)
        for cap in (st["low"], st["high"]):
            draw.line((cx - box // 4, plot.y(cap), cx + box // 4, plot.y(cap)), fill=INK)
        draw.rectangle(
            (cx - box // 2, plot.y(st["q3"]), cx + box // 2, plot.y(st["q1"])),
            fill=(220, 230, 242),
            outline=blue,
            width=2,
        )
        draw.line((cx - box // 2, plot.y(st["median"]), cx + box // 2, plot.y(st["median"])), fill=orange, width=3)
        my = plot.y(st["mean"])
        draw.polygon([(cx, my - 5), (cx - 5, my + 4), (cx + 5, my + 4)], fill=green)
        for value in st["outliers"]:
            oy = plot.y(value)
            draw.ellipse((cx - 4, oy - 4, cx + 4, oy + 4), outline=INK)
        draw.multiline_text(
            (cx, plot.top + plot.height + 8),
            f"{stage}\n(n={st['n']})",
            font=label_font,
            fill=INK,
            anchor="ma",
            align="center",
        )
    return image


def margins(crit: pd.DataFrame) -> np.ndarray:
    """Each criterion's distance to its threshold on the passing side, relative to the threshold, in [-1, 1]; NaN without a value.

    Positive passes, negative fails (a `value == threshold` under a strict operator fails: its sign follows the result).
    """
    value, threshold = crit["value"].to_numpy(dtype=float), crit["threshold"].to_numpy(dtype=float)
    higher = crit["op"].isin((">=", ">")).to_numpy()
    scale = np.where(np.abs(threshold) > 0, np.abs(threshold), 1.0)
    with np.errstate(invalid="ignore"):
        m = np.clip(np.where(higher, value - threshold, threshold - value) / scale, -1.0, 1.0)
    result = crit["result"].to_numpy(dtype=object)
    return np.asarray(
        np.where(result == "pass", np.maximum(m, 0.0), np.where(result == "fail", np.minimum(m, 0.0), np.nan)),
        dtype=float,
    )


def _ramp(light: np.ndarray, dark: np.ndarray, levels: int) -> np.ndarray:
    return light + (dark - light) * (np.arange(levels)[:, None] / (levels - 1))


# The brand charts are palette images: a PNG of indices encodes about six times faster than one of RGB pixels,
# and a chart needs few colours. Indices: white, text (white to ink, for anti-aliased glyphs), each attention
# tier's label colour, the pass and fail ramps (darker = farther from the threshold), then single colours.
RAMP = 16
TEXT_0 = 1
TIER_0 = TEXT_0 + 32
PASS_0 = TIER_0 + 8 * len(TIER_COLOURS)
FAIL_0 = PASS_0 + RAMP
NO_VALUE_I, NOT_EVALUATED_I = FAIL_0 + RAMP, FAIL_0 + RAMP + 1
STAGE_0 = NOT_EVALUATED_I + 1
VERDICT_0 = STAGE_0 + len(STAGE_ORDER)
INK_RGB = np.array([34, 34, 34]) / 255
PALETTE = np.rint(
    255
    * np.vstack(
        [
            np.ones((1, 3)),
            _ramp(np.ones(3), INK_RGB, 32),
            *[_ramp(np.ones(3), np.array(_hex(c)) / 255, 8) for c in TIER_COLOURS],
            _ramp(PASS_LIGHT, PASS_DARK, RAMP),
            _ramp(FAIL_LIGHT, FAIL_DARK, RAMP),
            NO_VALUE,
            NOT_EVALUATED,
            *[np.array(_hex(STAGE_COLOURS[s])) / 255 for s in STAGE_ORDER],
            *VERDICT_COLOURS.values(),
        ]
    )
).astype(np.uint8)


def _cell_indices(m: np.ndarray) -> np.ndarray:
    """Palette index per margin: the pass ramp or the fail ramp by how far from the threshold, NO_VALUE_I without a value."""
    level = np.rint(np.sqrt(np.abs(np.nan_to_num(m))) * (RAMP - 1)).astype(
        np.int64
    )  # the square root: small margins stay visible
    return np.where(np.isnan(m), NO_VALUE_I, np.where(m >= 0, PASS_0, FAIL_0) + level)


@dataclass
class BrandPanel:
    """What one brand's chart shows: row labels and the grid of palette indices (rows × days), stage changes as day positions."""

    brand_id: str
    title: str
    label: str
    rows: list[str]
    grid: np.ndarray
    changes: np.ndarray


def brand_panels(
    data: ReportData, brands: list[str], titles: dict[str, str], labels: dict[str, str]
) -> Iterator[BrandPanel]:
    """Each brand's grid: a stage row, a verdict row, then one row per criterion metric (first evaluated first), one column per day.

    The colours of every criterion and decision of the range are worked out at once; each brand's grid is filled by position.
    """
    first = pd.Timestamp(data.date_from)
    n_days = (pd.Timestamp(data.date_to) - first).days + 1
    crit = data.criteria.sort_values(["brand_id", "as_of"], kind="stable")
    cells = _cell_indices(margins(crit))
    crit_days = np.asarray((crit["as_of"] - first).dt.days, dtype=np.int64)
    crit_index = crit.groupby("brand_id", sort=False).indices
    metric_col, op_col, thr_col = (
        crit["metric"].to_numpy(dtype=object),
        crit["op"].to_numpy(dtype=object),
        crit["threshold"].to_numpy(dtype=float),
    )
    dec = data.decisions
    dec_days = np.asarray((dec["as_of"] - first).dt.days, dtype=np.int64)
    stage_code = pd.Index(STAGE_ORDER).get_indexer(pd.Index(dec["stage"]))
    stage_i = np.where(stage_code >= 0, STAGE_0 + stage_code, NOT_EVALUATED_I)
    verdict_code = pd.Index(list(VERDICT_COLOURS)).get_indexer(pd.Index(dec["verdict"]))
    verdict_i = np.where(verdict_code >= 0, VERDICT_0 + verdict_code, NOT_EVALUATED_I)
    moved = ((dec["to_stage"] != dec["stage"]) | (dec["action"] == "recycle")).to_numpy()
    dec_index = dec.groupby("brand_id", sort=False).indices
    none = np.zeros(0, dtype=np.int64)
    for brand_id in brands:
        rows_i = np.asarray(crit_index.get(brand_id, none))
        codes, metrics = pd.factorize(metric_col[rows_i])  # first evaluated first: rows are in date order
        keep = codes < MAX_METRICS
        shown = min(len(metrics), MAX_METRICS)
        grid = np.full((2 + shown, n_days), NOT_EVALUATED_I, dtype=np.uint8)
        grid[2 + codes[keep], crit_days[rows_i][keep]] = cells[rows_i][keep]
        d_i = np.asarray(dec_index.get(brand_id, none))
        grid[0, dec_days[d_i]] = stage_i[d_i]
        grid[1, dec_days[d_i]] = verdict_i[d_i]
        # each metric's operator and threshold as last evaluated: its last row, rows being in date order
        last_row = (
            rows_i[len(rows_i) - 1 - np.unique(codes[::-1], return_index=True)[1][:shown]] if len(rows_i) else none
        )
        names = [
            f"{m} {o} {t:g}" for m, o, t in zip(metric_col[last_row], op_col[last_row], thr_col[last_row], strict=True)
        ]
        yield BrandPanel(
            brand_id,
            titles.get(brand_id, brand_id),
            labels.get(brand_id, ""),
            ["stage", "verdict", *names],
            grid,
            dec_days[d_i][moved[d_i]],
        )


# Brand chart geometry, in pixels.
ROW_PX, DAY_PX_MAX, GRID_PX, TITLE_PX, AXIS_PX, PAD_PX, GAP_PX, LABEL_PT = 17, 8, 600, 34, 24, 8, 5, 12


def label_width(panels: list[BrandPanel]) -> int:
    """Pixels of the longest row label of these charts: with it as every chart's margin, their days line up on the page."""
    font = _font("regular", LABEL_PT)
    return int(max((font.getlength(r) for p in panels for r in p.rows), default=0))


def brand_image(
    panel: BrandPanel, ticks: tuple[np.ndarray, list[str]], tier: int = 4, labels_px: int | None = None
) -> Image.Image:
    """One brand's chart: title, then its grid (a cell per row and day) with row labels, stage changes dashed, dates below.

    The cells are painted as one array of palette indices (rows and days repeated to pixels); the text is
    drawn into a coverage mask that becomes indices of the text ramp. tier: the attention tier, for the
    label's colour. labels_px: the width of the label column (default: this chart's longest label).
    """
    rows, n_days = panel.grid.shape
    label_font, title_font, tag_font = (
        _font("regular", LABEL_PT),
        _font("cjk" if not panel.title.isascii() else "bold", 16),
        _font("bold", LABEL_PT),
    )
    day_px = max(1, min(DAY_PX_MAX, GRID_PX // max(n_days, 1)))
    left = PAD_PX + (label_width([panel]) if labels_px is None else labels_px) + 8
    width = max(left + n_days * day_px + PAD_PX, 640)
    gap_after = 2  # the stage and verdict rows, then a gap, then the criteria
    grid_h = rows * ROW_PX + GAP_PX
    height = TITLE_PX + grid_h + AXIS_PX
    canvas = np.zeros((height, width), dtype=np.uint8)  # index 0: white
    cells = np.repeat(np.repeat(panel.grid, ROW_PX, axis=0), day_px, axis=1)
    cells[ROW_PX - 1 :: ROW_PX] = 0  # a white line between rows
    row_top = TITLE_PX + np.arange(rows) * ROW_PX + np.where(np.arange(rows) >= gap_after, GAP_PX, 0)
    for r in range(rows):  # a few dozen rows at most
        canvas[row_top[r] : row_top[r] + ROW_PX, left : left + n_days * day_px] = cells[r * ROW_PX : (r + 1) * ROW_PX]
    bottom = TITLE_PX + grid_h
    dashes = np.arange(TITLE_PX, bottom)
    for (
        day
    ) in panel.changes:  # a new stage starts the day after the decision that moved the brand: the line is at its end
        x = left + min(int(day) + 1, n_days) * day_px - 1
        canvas[dashes[(dashes // 4) % 2 == 0], max(x - 1, left) : x + 1] = TEXT_0 + 31
    ink, tag = Image.new("L", (width, height), 0), Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(ink)
    grey = round(255 * (255 - GREY[0]) / (255 - INK[0]))  # GREY is a lighter shade of INK: that far along the text ramp
    draw.text((PAD_PX, TITLE_PX // 2), panel.title, font=title_font, fill=255, anchor="lm")
    for r, text in enumerate(panel.rows):
        draw.text((left - 8, int(row_top[r]) + ROW_PX // 2), text, font=label_font, fill=255, anchor="rm")
    for position, text in zip(*ticks, strict=True):
        x = left + int(position) * day_px + day_px // 2
        draw.line((x, bottom, x, bottom + 4), fill=grey)
        draw.text((x, bottom + 6), text, font=label_font, fill=grey, anchor="mt")
    ImageDraw.Draw(tag).text((width - PAD_PX, TITLE_PX // 2), panel.label, font=tag_font, fill=255, anchor="rm")
    for mask, first, levels in ((np.asarray(ink), TEXT_0, 32), (np.asarray(tag), TIER_0 + 8 * tier, 8)):
        covered = mask > 0
        canvas[covered] = first + (mask[covered].astype(np.int64) * (levels - 1) + 127) // 255
    image = Image.fromarray(canvas)
    image.putpalette(PALETTE.tobytes())  # the indices' colours: the image becomes a palette ("P") image
    return image


def _save_image(image: Image.Image, path: Path) -> tuple[int, int]:
    image.save(path, format="png", compress_level=3)
    return image.size


def _img(src: str, size: tuple[int, int], alt: str, **attrs: object) -> str:
    extra = " ".join(f'data-{k.replace("_", "-")}="{html.escape(str(v))}"' for k, v in attrs.items())
    return f'<img src="{html.escape(src)}" width="{size[0]}" height="{size[1]}" alt="{html.escape(alt)}" {extra}>'


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(border=0, classes="data", na_rep="–", escape=True)


STYLE = """
body{font-family:-apple-system,"Segoe UI","Noto Sans CJK SC","WenQuanYi Zen Hei","Microsoft YaHei",sans-serif;margin:24px;color:#222;
max-width:1240px;font-size:15px}
h1{font-size:24px}h2{font-size:19px;margin-top:32px;border-bottom:1px solid #ddd}h3{font-size:17px;margin:4px 0}
img{max-width:100%;height:auto;border:1px solid #eee;margin:6px 0}table.data{border-collapse:collapse;font-size:13px}
table.data td,table.data th{padding:3px 8px;border-bottom:1px solid #eee;text-align:right}
ol.brands{padding-left:28px}li.brand{margin-bottom:22px}.muted{color:#666;font-size:13px}
.tag{display:inline-block;padding:1px 7px;border-radius:9px;color:#fff;font-size:12px;margin-right:6px}
.key span{display:inline-block;width:34px;height:12px;vertical-align:middle;margin:0 4px 0 12px;border:1px solid #ccc}
"""


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
    rest = order.iloc[len(drawn) :]
    rest_html = ""
    if len(rest):
        listed = rest.head(REST_ROWS)
        rows = "".join(
            f"<tr><td>{html.escape(names.get(b, b))}</td><td>{html.escape(b)}</td><td>{lab}</td><td>{html.escape(w)}</td></tr>"
            for b, lab, w in zip(listed["brand_id"], listed["label"], listed["why"], strict=True)
        )
        more = (
            f" The first {REST_ROWS} are listed; <code>brandsteps status</code> has them all."
            if len(rest) > REST_ROWS
            else ""
        )
        rest_html = (
            f'<h3>The other {len(rest)} brands, in the same order</h3><p class="muted">No chart: the cycle\'s report draws the brands most in need'
            f" of attention; <code>brandsteps report</code> draws every brand.{more}</p>"
            f'<table class="data rest"><tr><th>brand</th><th>id</th><th>attention</th><th>why</th></tr>{rows}</table>'
        )
    counts = order["label"].value_counts()
    tiers_text = ", ".join(f"{counts[t]} {t}" for t, _ in ATTENTION_TIERS if t in counts)
    summary = (
        durations.groupby("stage")["days_in_stage"].describe()[["count", "50%", "mean", "max"]].reindex(list(STAGE_IDS))
    )
    summary.columns = ["stays", "median days", "mean days", "max days"]
    last_day = funnel.tail(1).T.rename(columns=lambda c: f"brands on {c:%Y-%m-%d}")
    tier_list = "".join(f"<li><b>{t}</b>: {html.escape(d)}</li>" for t, d in ATTENTION_TIERS)
    shown = (
        f"the {len(drawn)} of {len(order)} brands most in need of attention"
        if len(rest)
        else f"all {len(order)} brands"
    )
    span = f"{overview.date_from} to {overview.date_to}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>STEPS onboarding report {span}</title>
<style>{STYLE}</style></head><body>
<h1>STEPS onboarding report, {span}</h1>
<p class="muted">{len(order)} brands ({tiers_text}), {len(funnel)} days, {overview.n_decisions} decisions from {html.escape(ledger.display_url)};
playbook {html.escape(str(portfolio.playbook_version))}.</p>
<h2>Stage funnel over time</h2>
{_img("funnel.png", funnel_size, "brands per stage per day, stacked", chart="funnel", points=len(funnel), days=len(funnel))}
{_table(last_day)}
<h2>Stage durations</h2>
{_img("stage_durations.png", durations_size, "days in stage at leaving", chart="durations", stays=len(durations))}
{_table(summary.round(1))}
<h2>Brands by need of attention</h2>
<p class="muted">Showing {shown}, most first: a brand takes the first of these that applies, then come more FAIL/ERROR days in
the last {RECENT_DAYS} days, then longer in stage.</p><ol class="muted">{tier_list}</ol>
<p class="muted">Each chart has one column per day: the brand's stage, its verdict, then each criterion it was judged on (operator and
threshold as last evaluated); dashed lines: stage changes. <code>brandsteps explain BRAND --as-of DAY</code> gives the values.</p>
{_key()}
<ol class="brands">{"".join(brand_html)}</ol>
{rest_html}
</body></html>
"""
