"""The portfolio's charts: the stage funnel over time (stacked bars), the days brands stayed in each stage (boxes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from brandsteps.catalogue import STAGE_IDS
from brandsteps.reports.visual.style import GREY, GRID_GREY, INK, STAGE_COLOURS, WHITE, chart_font, hex_rgb


def day_ticks(first: pd.Timestamp, n_days: int, most: int = 10) -> tuple[np.ndarray, list[str]]:
    """Positions (days from first) and labels of at most `most` date ticks.

    The first of these that fits: every day, Mondays, the 1st and 15th, months, quarters, years.
    """
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
    """0 up to at least top in whole steps of 1, 2 or 5 × 10^k, at most `most` + 1 ticks (brands and days are whole)."""
    top = max(int(np.ceil(top)), 1)
    step = next(s * 10**k for k in range(12) for s in (1, 2, 5) if -(-top // (s * 10**k)) <= most)
    return list(range(0, -(-top // step) * step + 1, step))


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
    font = chart_font("regular", 12)
    for tick in ticks:
        draw.text((plot.left - 6, plot.y(tick)), str(tick), font=font, fill=GREY, anchor="rm")
    draw.line((plot.left, plot.top, plot.left, plot.top + plot.height), fill=GREY)
    draw.line((plot.left, plot.top + plot.height, plot.left + plot.width, plot.top + plot.height), fill=GREY)
    draw.text((plot.left, plot.top - 20), title, font=chart_font("bold", 15), fill=INK, anchor="lm")


def _x_ticks(draw: ImageDraw.ImageDraw, plot: Plot, ticks: tuple[np.ndarray, list[str]], day_px: int) -> None:
    font = chart_font("regular", 12)
    bottom = plot.top + plot.height
    for position, text in zip(*ticks, strict=True):
        x = plot.left + int(position) * day_px + day_px // 2
        draw.line((x, bottom, x, bottom + 4), fill=GREY)
        draw.text((x, bottom + 6), text, font=font, fill=GREY, anchor="mt")


def funnel_grid(counts: np.ndarray, height: int, y_max: int) -> np.ndarray:
    """The stacked bars as a (height × days) array of stage positions.

    -1 above a day's total, and on days without decisions.

    counts: days × stages; pixel row r (0 at the top) shows the stage whose stacked range holds its value.
    """
    tops = np.cumsum(np.nan_to_num(counts.astype(float)), axis=1)  # days × stages: each stage's upper edge
    values = (height - np.arange(height) - 0.5) / height * y_max  # the value at each pixel row's centre
    stage = (values[:, None, None] > tops[None, :, :]).sum(axis=2)  # rows × days: stages below the value
    return np.where(stage < counts.shape[1], stage, -1)


def funnel_image(
    funnel: pd.DataFrame, first: pd.Timestamp, n_days: int, ticks: tuple[np.ndarray, list[str]]
) -> Image.Image:
    """Brands per stage after each day's cycle: a stacked bar per day topped by all brands; y in whole brands."""
    stages = list(funnel.columns)
    counts = np.full((n_days, len(stages)), np.nan)
    days = np.asarray((pd.DatetimeIndex(funnel.index) - first).days, dtype=np.int64)
    inside = (days >= 0) & (days < n_days)
    counts[days[inside]] = funnel.to_numpy(dtype=float)[inside]
    y_ticks = integer_ticks(np.nanmax(counts.sum(axis=1)) if inside.any() else 1)
    day_px = max(1, 720 // max(n_days, 1))  # about 720 pixels of bars, whatever the range
    legend_w = 24 + max(int(chart_font("regular", 12).getlength(s)) for s in stages) if stages else 0
    plot = Plot(46, 40, n_days * day_px, 320, y_ticks[-1])
    width, height = plot.left + plot.width + 20 + legend_w + 10, plot.top + plot.height + 30
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    grid = funnel_grid(counts, plot.height, plot.y_max)
    palette = np.array(
        [hex_rgb(STAGE_COLOURS.get(s, "#cccccc")) for s in stages] + [WHITE], dtype=np.uint8
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
        draw.rectangle((x, y - 6, x + 13, y + 7), fill=hex_rgb(STAGE_COLOURS.get(stage, "#cccccc")))
        draw.text((x + 20, y), stage, font=chart_font("regular", 12), fill=INK, anchor="lm")
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
    """Days in stage when a brand left it, per stage.

    Each stage has a box (quartiles), median line, mean triangle, whiskers, outliers, and its count below.
    """
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
    label_font = chart_font("regular", 12)
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
    blue, orange, green = (
        hex_rgb(STAGE_COLOURS[s]) for s in ("affiliate_trial", "public_traffic", "channel_exclusive")
    )
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
