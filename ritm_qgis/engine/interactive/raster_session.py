"""Clicking one building after another on a georeferenced raster (the map tool's engine, no QGIS).

    session = RasterSession("ortho.tif", lambda: Predictor(GrabCutBackend()))
    step = session.add_click(x, y, positive=True)     # map coordinates in the raster's CRS
    gdf = session.outline(simplify_px=1.0)            # polygons of the current mask, raster CRS
    session.undo(); session.reset()

Each click is turned into a raster pixel (``raster_io.map_to_pixel``); the model sees a window
of the raster at native resolution around the clicks (``context_window``), read by window with
the engine's normalisation to RGB uint8 (1 band, 16 bit, RGBA... ``raster_io.read_rgb``, with
one stretch per raster so windows look alike: ``stretch.StretchRule``, default percentile). When a new click falls outside the window's safe
area, a larger window is chosen from all the clicks, read, and the clicks are replayed in order
on a fresh ``Predictor`` (so the result is what the model gives for those clicks on that
window). Undo restores the previous step exactly (same window, same prediction object state):
the session keeps one entry per click, sharing the predictor between steps on the same window.

A click on an invalid pixel (nodata, alpha 0, outside the raster) is refused with a
``RitmError`` and leaves the session unchanged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ritm_qgis.core.defaults import MASK_THRESHOLD
from ritm_qgis.core.errors import RitmError
from ritm_qgis.engine.geo.ground_scale import ground_pixel_size
from ritm_qgis.engine.geo.raster_io import RgbWindow, Window, map_to_pixel, raster_meta
from ritm_qgis.engine.geo.stretch import StretchRule, resolve_stretch
from ritm_qgis.engine.interactive.context_window import (
    DEFAULT_MARGIN,
    DEFAULT_MAX_SIZE,
    WindowBox,
    context_window,
    default_min_side,
    keeps_window,
    pixel_index,
)

__all__ = ["RasterSession", "Step", "OutlineSettings", "ClickOnInvalidPixel"]


class ClickOnInvalidPixel(RitmError):
    """A click on a nodata (or transparent) pixel; the session is unchanged."""


@dataclass(frozen=True)
class OutlineSettings:
    """How a mask becomes polygons: threshold on the probability, tolerances in raster pixels,
    minimum area in square metres (``area_m2`` of ``vectorize_mask``). ``regularize_mode``:
    "building" squares outlines shaped like buildings (``regularize.square_building``), "strict"
    only within ``regularize_px`` of the traced outline, "rectangle" gives the minimum rotated
    rectangle."""

    threshold: float = MASK_THRESHOLD
    simplify_px: float = 0.0
    regularize: bool = False
    regularize_px: float = 1.5
    min_area_m2: float = 0.0
    regularize_mode: str = "building"
    refine: str = "none"  # "guided": the probabilities follow the image's edges first (refine_mask)


def _negative_clicks(step: Step, t):
    """The negative clicks as pixel-sized squares in map coordinates (``t``: the raster's transform);
    squaring must not cover them."""
    import shapely

    boxes = []
    for col, row, positive in step.pixels:
        if not positive:
            x0, y0 = t * (col, row)
            x1, y1 = t * (col + 1, row + 1)
            boxes.append(shapely.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
    return shapely.union_all(boxes) if boxes else None


def _squaring_tolerance(settings: OutlineSettings, px: float) -> float | None:
    """``vectorize_mask``'s ``regularize``: the strict rule's tolerance, else the pixel size."""
    if not settings.regularize:
        return None
    if settings.regularize_mode == "strict":
        return max(settings.regularize_px, settings.simplify_px) * px
    return px


@dataclass
class Step:
    """The session after one click."""

    clicks: list  # [(x, y, positive)] in the raster's CRS, in order
    pixels: list  # [(col, row, positive)] raster pixel indices
    window: WindowBox
    image: RgbWindow
    predictor: object
    prob: np.ndarray  # (h, w) float32 on the window
    predict_s: float  # seconds spent in the predictor for this step (replays included)
    replayed: bool  # a new window was read and the clicks replayed


class RasterSession:
    def __init__(self, raster_path: str, predictor_factory: Callable[[], object], *,
                 min_size: int | None = None, max_size: int = DEFAULT_MAX_SIZE,
                 margin: int = DEFAULT_MARGIN, stretch: StretchRule | str | None = None):
        """``min_size``: the window's minimum side in pixels (None: ``default_min_side``, at least
        384 px and most of the ground the predictor's first click looks at)."""
        self.path = str(raster_path)
        self.meta = raster_meta(self.path)
        self.stretch = resolve_stretch(stretch, self.path)  # one per raster, so windows look alike
        self.predictor_factory = predictor_factory
        self.max_size, self.margin = int(max_size), int(margin)
        self.min_size = None if min_size is None else int(min_size)
        self.steps: list[Step] = []
        self.reads = 0  # windows read (for tests and the benchmark)

    # ------------------------------------------------------------------ state
    @property
    def grid(self):
        return self.meta.grid

    @property
    def metres_per_pixel(self) -> float | None:
        """The pixel's size on the ground (mean of x and y), None when the CRS does not say."""
        return ground_pixel_size(self.grid)

    @property
    def clicks(self) -> list:
        return list(self.steps[-1].clicks) if self.steps else []

    @property
    def current(self) -> Step | None:
        return self.steps[-1] if self.steps else None

    def reset(self) -> None:
        self.steps = []

    def to_pixel(self, x: float, y: float) -> tuple[int, int]:
        col, row = map_to_pixel(self.grid.transform, x, y)
        return pixel_index(float(col), float(row))

    # ------------------------------------------------------------------ clicks
    def _read(self, window: WindowBox) -> RgbWindow:
        self.reads += 1
        win = Window(window.col_off, window.row_off, window.width, window.height)
        return self.stretch.read(self.path, win)

    def add_click(self, x: float, y: float, positive: bool = True) -> Step:
        """A click at map coordinates (x, y) of the raster's CRS; returns the new step."""
        col, row = self.to_pixel(x, y)
        if not (0 <= col < self.grid.width and 0 <= row < self.grid.height):
            raise RitmError("That click is outside the raster; click on the image.")
        prev = self.current
        pixels = (prev.pixels if prev else []) + [(col, row, bool(positive))]
        clicks = (prev.clicks if prev else []) + [(float(x), float(y), bool(positive))]
        pts = [(c + 0.5, r + 0.5) for c, r, _ in pixels]
        if prev is not None and keeps_window(prev.window, pts, self.grid.width, self.grid.height,
                                             margin=self.margin):
            window, image, predictor, replay = prev.window, prev.image, prev.predictor, False
        else:
            predictor = self.predictor_factory()
            min_size, capped = self.min_size, None
            if min_size is None:
                min_size = default_min_side(self.metres_per_pixel, getattr(predictor, "first_crop_m", None),
                                            self.max_size)
                capped = self.max_size if min_size == self.max_size else None  # finer than about 0.09 m
            window = context_window(pts, self.grid.width, self.grid.height, min_size=min_size,
                                    max_size=self.max_size, margin=self.margin)
            if not all(window.contains(c, r) for c, r in pts):
                raise RitmError(
                    f"These clicks span more than {self.max_size} pixels of the raster; one building "
                    "at a time, please (Esc starts over).")
            image, replay = self._read(window), True
        lr, lc = window.to_local(col, row)
        if image.invalid[lr, lc]:
            raise ClickOnInvalidPixel(
                "That click is on a nodata (or transparent) pixel of the raster; click on the image.")
        t0 = time.perf_counter()
        if replay:
            if hasattr(predictor, "set_ground_resolution"):
                predictor.set_ground_resolution(self.metres_per_pixel, capped)
            predictor.set_image(image.rgb)
            for c, r, p in pixels:
                rr, cc = window.to_local(c, r)
                pred = predictor.add_click(rr, cc, p)
        else:
            pred = predictor.add_click(lr, lc, positive)
        dt = time.perf_counter() - t0
        step = Step(clicks, pixels, window, image, predictor, pred.prob, dt, replay)
        self.steps.append(step)
        return step

    def undo(self) -> Step | None:
        """Forget the last click; the previous step (window, prediction) comes back exactly."""
        if not self.steps:
            return None
        last = self.steps.pop()
        prev = self.current
        if prev is not None and prev.predictor is last.predictor:
            last.predictor.undo()
        return prev

    # ------------------------------------------------------------------ polygons
    def mask(self, threshold: float = MASK_THRESHOLD) -> tuple[WindowBox, np.ndarray] | None:
        """The current mask on its window (valid pixels above ``threshold``, as ``vectorize.binarize``);
        None before a click."""
        step = self.current
        if step is None:
            return None
        return step.window, (step.prob > threshold) & ~step.image.invalid

    def touches_window(self, mask: np.ndarray) -> bool:
        """Whether ``mask`` (on the current window) reaches a side of the window inside the raster:
        the building may go on beyond what the model saw."""
        w = self.current.window
        return bool((w.row_off > 0 and mask[0].any())
                    or (w.row_off + w.height < self.grid.height and mask[-1].any())
                    or (w.col_off > 0 and mask[:, 0].any())
                    or (w.col_off + w.width < self.grid.width and mask[:, -1].any()))

    def record(self, settings: OutlineSettings = OutlineSettings(), *, model: str = "", object_id=None):
        """The current building as an ``OutlineRecord`` (one MultiPolygon, raster CRS); None before a click."""
        import shapely

        from ritm_qgis.engine.interactive.outline_record import OutlineRecord

        step = self.current
        if step is None:
            return None
        gdf = self.outline(settings)
        geom = shapely.MultiPolygon(list(shapely.get_parts(shapely.union_all(gdf.geometry.values)))) if len(
            gdf) else shapely.MultiPolygon()
        _, mask = self.mask(settings.threshold)
        return OutlineRecord(
            geometry=geom, area_m2=float(gdf["area_m2"].sum()), perimeter_m=float(gdf["perimeter_m"].sum()),
            pixels=int(mask.sum()), clicks=tuple(step.clicks), model=model, stretch=self.stretch.rule.label,
            source=self.path, crs=self.grid.crs, touches_window=self.touches_window(mask), object_id=object_id)

    def outline(self, settings: OutlineSettings = OutlineSettings()):
        """Polygons of the current mask (GeoDataFrame in the raster's CRS; empty before a click)."""
        import geopandas as gpd

        from ritm_qgis.engine.geo.vectorize import vectorize_mask

        step = self.current
        if step is None:
            return gpd.GeoDataFrame({"area_m2": [], "perimeter_m": []}, geometry=[], crs=self.grid.crs)
        px = max(self.grid.res)
        prob = step.prob
        if settings.refine == "guided":
            from ritm_qgis.engine.interactive.refine_mask import guided_probability

            prob = guided_probability(prob, step.image.rgb, threshold=settings.threshold)
        gdf = vectorize_mask(
            prob, step.image.grid, threshold=settings.threshold, invalid=step.image.invalid,
            simplify=settings.simplify_px * px,
            regularize=_squaring_tolerance(settings, px), regularize_mode=settings.regularize_mode,
            regularize_avoid=_negative_clicks(step, self.grid.transform),
        )
        if settings.min_area_m2 > 0 and len(gdf):
            gdf = gdf[~(gdf["area_m2"] < settings.min_area_m2)].reset_index(drop=True)
        return gdf
