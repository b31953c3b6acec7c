"""Which part of a raster the model sees while a person clicks one building (no QGIS here).

The model never gets the whole raster: it gets a window at the raster's native resolution
around the clicks, read by window. The rule (``context_window``):

* the clicks' bounding box (pixel coordinates of the raster) is grown by ``margin`` pixels on
  every side and then to at least ``min_size`` pixels a side, about its centre; unless asked
  otherwise, a session on a georeferenced raster takes ``DEFAULT_MIN_SIZE`` raised to most of the
  ground the model's first click looks at (``default_min_side``; GrabCut's rules are in pixels),
  so that on a 0.1 m orthophoto the first click sees about the same ground as at 0.5 m (not
  38 m: a house enlarged five times, which the models outline as a small disc around the click);
* a side is at most ``max_size`` pixels (clicks spread wider than that are refused by
  ``RasterSession``, with a sentence saying why);
* the window is shifted (not shrunk) to lie inside the raster, and clipped only when the raster
  itself is smaller than the window.

``keeps_window`` says whether a window still suits a new set of clicks: every click lies inside
it at least ``margin`` pixels from any side that is not also a side of the raster. When it does
not, a new window is chosen from all the clicks (so the window grows when clicks spread).

Coordinates: a raster pixel (col, row) as floats, (0.0, 0.0) the upper-left corner of the
upper-left pixel (rasterio's convention); ``pixel_index`` floors them to the pixel hit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

__all__ = ["WindowBox", "context_window", "keeps_window", "default_min_side", "pixel_index",
           "DEFAULT_MIN_SIZE", "DEFAULT_MAX_SIZE", "DEFAULT_MARGIN", "GROUND_SHARE"]

DEFAULT_MIN_SIZE = 384  # about RITM's zoom-in target size (400): a few buildings of context at 0.3-0.5 m
DEFAULT_MAX_SIZE = 2048
DEFAULT_MARGIN = 64
# Share of the first click's ground (``Predictor.first_crop_m``) a window holds at least: with the
# map tool's 200 m, windows at 0.47 m per pixel and coarser keep DEFAULT_MIN_SIZE
GROUND_SHARE = 0.9


@dataclass(frozen=True)
class WindowBox:
    """A window of a raster in whole pixels: columns col_off..col_off+width-1, likewise rows."""

    col_off: int
    row_off: int
    width: int
    height: int

    def contains(self, col: float, row: float) -> bool:
        return self.col_off <= col < self.col_off + self.width and self.row_off <= row < self.row_off + self.height

    def to_local(self, col: int, row: int) -> tuple[int, int]:
        """Raster pixel index -> (row, col) index inside the window (the predictor's order)."""
        return row - self.row_off, col - self.col_off


def default_min_side(metres_per_pixel: float | None, ground_m: float | None,
                     max_size: int = DEFAULT_MAX_SIZE) -> int:
    """The window's minimum side in pixels when none is asked for: ``DEFAULT_MIN_SIZE``, raised to
    ``GROUND_SHARE`` of ``ground_m`` metres where the pixel size is known, at most ``max_size``."""
    if not ground_m or not metres_per_pixel or metres_per_pixel <= 0:
        return DEFAULT_MIN_SIZE
    return max(DEFAULT_MIN_SIZE, min(max_size, int(math.ceil(GROUND_SHARE * ground_m / metres_per_pixel))))


def pixel_index(col: float, row: float) -> tuple[int, int]:
    """The (col, row) index of the pixel containing a fractional pixel position."""
    return int(math.floor(col)), int(math.floor(row))


def _span(lo: float, hi: float, margin: int, min_size: int, max_size: int, limit: int) -> tuple[int, int]:
    """Offset and length along one axis: [lo, hi] grown by margin, at least min_size, inside [0, limit)."""
    start = math.floor(lo) - margin
    stop = math.floor(hi) + 1 + margin
    length = stop - start
    if length < min_size:
        start -= (min_size - length) // 2
        length = min_size
    length = min(length, max_size, limit)
    start = max(0, min(start, limit - length))
    return int(start), int(length)


def context_window(
    points: Iterable[Sequence[float]],
    raster_width: int,
    raster_height: int,
    *,
    min_size: int = DEFAULT_MIN_SIZE,
    max_size: int = DEFAULT_MAX_SIZE,
    margin: int = DEFAULT_MARGIN,
) -> WindowBox:
    """The window for clicks at ``points`` ((col, row) raster pixel positions), see module doc."""
    pts = [(float(p[0]), float(p[1])) for p in points]
    if not pts:
        raise ValueError("context_window needs at least one click")
    if min_size < 1 or max_size < min_size:
        raise ValueError(f"need 1 <= min_size <= max_size, got {min_size}, {max_size}")
    cols = [p[0] for p in pts]
    rows = [p[1] for p in pts]
    c0, w = _span(min(cols), max(cols), margin, min_size, max_size, raster_width)
    r0, h = _span(min(rows), max(rows), margin, min_size, max_size, raster_height)
    return WindowBox(c0, r0, w, h)


def keeps_window(
    window: WindowBox, points: Iterable[Sequence[float]], raster_width: int, raster_height: int,
    *, margin: int = DEFAULT_MARGIN,
) -> bool:
    """Whether every click lies in ``window`` at least ``margin`` pixels from its inner sides."""
    left = window.col_off + (margin if window.col_off > 0 else 0)
    top = window.row_off + (margin if window.row_off > 0 else 0)
    right_edge = window.col_off + window.width
    bottom_edge = window.row_off + window.height
    right = right_edge - (margin if right_edge < raster_width else 0)
    bottom = bottom_edge - (margin if bottom_edge < raster_height else 0)
    for col, row in ((float(p[0]), float(p[1])) for p in points):
        if not (left <= col < right and top <= row < bottom):
            return False
    return True
