"""The charts' colours and fonts: a colour per stage, attention tier and verdict; DejaVu Sans and a Chinese font."""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
from PIL import ImageFont

from brandsteps.catalogue import STAGE_ORDER

STAGE_COLOURS = dict(
    zip(STAGE_ORDER, ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#b07aa1", "#9c9c9c"], strict=True)
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
INK, GREY, GRID_GREY, WHITE = (34, 34, 34), (110, 110, 110), (225, 225, 225), (255, 255, 255)

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


def hex_rgb(colour: str) -> tuple[int, int, int]:
    colour = colour.lstrip("#")
    return int(colour[0:2], 16), int(colour[2:4], 16), int(colour[4:6], 16)


@functools.cache
def cjk_font_file() -> str | None:
    """A font file with Chinese glyphs, or None.

    BRANDSTEPS_CJK_FONT, else the first of CJK_FILES there, else fontconfig's first for Chinese.
    """
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
def chart_font(kind: str, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans (regular, bold), or the CJK font for Chinese names; Pillow's own font as the last resort."""
    if kind == "cjk" and (cjk := cjk_font_file()) is not None:
        return ImageFont.truetype(cjk, size)
    path = _dejavu("DejaVuSans-Bold.ttf" if kind in ("bold", "cjk") else "DejaVuSans.ttf")
    return ImageFont.truetype(path, size) if path else ImageFont.load_default(size)


def title_name(name: str, brand_id: str) -> str:
    """'name (id)', or just the id when the name needs glyphs no installed font has (the page's heading shows it)."""
    if name == brand_id:
        return brand_id
    if not name.isascii() and cjk_font_file() is None:
        return brand_id
    return f"{name} ({brand_id})"
