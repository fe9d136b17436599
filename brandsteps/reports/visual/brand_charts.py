"""One chart per brand: its stage, verdict and every criterion's margin to its threshold, one column per day."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from brandsteps.catalogue import STAGE_ORDER
from brandsteps.reports.visual.data import ReportData
from brandsteps.reports.visual.style import (
    FAIL_DARK,
    FAIL_LIGHT,
    GREY,
    INK,
    NO_VALUE,
    NOT_EVALUATED,
    PASS_DARK,
    PASS_LIGHT,
    STAGE_COLOURS,
    TIER_COLOURS,
    VERDICT_COLOURS,
    chart_font,
    hex_rgb,
)

MAX_METRICS = 24


def margins(crit: pd.DataFrame) -> np.ndarray:
    """Each criterion's distance to its threshold on the passing side, relative to the threshold, in [-1, 1].

    Positive passes, negative fails (a `value == threshold` under a strict operator fails: its sign follows
    the result); NaN without a value.
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
    return np.asarray(light + (dark - light) * (np.arange(levels)[:, None] / (levels - 1)), dtype=float)


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
            *[_ramp(np.ones(3), np.array(hex_rgb(c)) / 255, 8) for c in TIER_COLOURS],
            _ramp(PASS_LIGHT, PASS_DARK, RAMP),
            _ramp(FAIL_LIGHT, FAIL_DARK, RAMP),
            NO_VALUE,
            NOT_EVALUATED,
            *[np.array(hex_rgb(STAGE_COLOURS[s])) / 255 for s in STAGE_ORDER],
            *VERDICT_COLOURS.values(),
        ]
    )
).astype(np.uint8)


def _cell_indices(m: np.ndarray) -> np.ndarray:
    """Palette index per margin: on the pass or fail ramp by distance to the threshold; NO_VALUE_I without a value."""
    level = np.rint(np.sqrt(np.abs(np.nan_to_num(m))) * (RAMP - 1)).astype(
        np.int64
    )  # the square root: small margins stay visible
    return np.where(np.isnan(m), NO_VALUE_I, np.where(m >= 0, PASS_0, FAIL_0) + level)


@dataclass
class BrandPanel:
    """What one brand's chart shows: row labels, the grid of palette indices (rows × days), stage changes' days."""

    brand_id: str
    title: str
    label: str
    rows: list[str]
    grid: np.ndarray
    changes: np.ndarray


def brand_panels(
    data: ReportData, brands: list[str], titles: dict[str, str], labels: dict[str, str]
) -> Iterator[BrandPanel]:
    """Each brand's grid, one column per day: a stage row, a verdict row, then a row per criterion metric.

    Metrics come in the order they were first evaluated.
    The colours of every criterion and decision of the range are worked out at once; each brand's grid is
    filled by position.
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
    """Pixels of the longest row label of these charts: as every chart's margin, it lines their days up on the page."""
    font = chart_font("regular", LABEL_PT)
    return int(max((font.getlength(r) for p in panels for r in p.rows), default=0))


def brand_image(
    panel: BrandPanel, ticks: tuple[np.ndarray, list[str]], tier: int = 4, labels_px: int | None = None
) -> Image.Image:
    """One brand's chart: title, then its grid (a cell per row and day).

    Row labels at the left, stage changes dashed, dates below.
    The cells are painted as one array of palette indices (rows and days repeated to pixels); the text is
    drawn into a coverage mask that becomes indices of the text ramp. tier: the attention tier, for the
    label's colour. labels_px: the width of the label column (default: this chart's longest label).
    """
    rows, n_days = panel.grid.shape
    label_font, title_font, tag_font = (
        chart_font("regular", LABEL_PT),
        chart_font("cjk" if not panel.title.isascii() else "bold", 16),
        chart_font("bold", LABEL_PT),
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
