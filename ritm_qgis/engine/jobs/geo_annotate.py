"""The paper's demo on a georeferenced raster: a reference (footprint layer or mask raster) and a
window of the raster -> simulated clicks until a target IoU, with the outputs in map coordinates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rasterio.windows import Window

from ritm_qgis.core.errors import RitmError

# Above this many pixels the demo asks for an extent: it reads the window whole, at native resolution.
MAX_PIXELS = 4000 * 4000


@dataclass
class GeoAnnotation:
    rgb: np.ndarray
    gt: np.ndarray
    invalid: np.ndarray | None
    grid: object  # RasterGrid of the window
    annotation: object  # evaluation.Annotation


def extent_window(grid, bounds) -> Window:
    """(minx, miny, maxx, maxy) in the raster's CRS -> the pixel window covering it, clipped to the raster."""
    from ritm_qgis.engine.geo.raster_io import clip_window

    inv = ~grid.transform
    cols, rows = zip(*(inv * (x, y) for x, y in ((bounds[0], bounds[3]), (bounds[2], bounds[1]))))
    c0, c1 = int(np.floor(min(cols))), int(np.ceil(max(cols)))
    r0, r1 = int(np.floor(min(rows))), int(np.ceil(max(rows)))
    win = clip_window(Window(c0, r0, c1 - c0, r1 - r0), grid.width, grid.height)
    if win is None:
        raise RitmError("The extent does not overlap the raster; choose an extent inside it.")
    return win


def reference_mask(grid, window, footprints=None, mask_raster=None) -> np.ndarray:
    """Building pixels of the window: from a footprint layer (rasterized) or a mask raster (> 128, or 1
    in a 0/1 mask). Exactly one of the two must be given."""
    if (footprints is None) == (mask_raster is None):
        raise RitmError("Give the reference either as a footprint layer or as a mask raster (exactly one).")
    if footprints is not None:
        from ritm_qgis.engine.geo.footprints import rasterize_footprints

        return rasterize_footprints(footprints, grid, window).mask
    from ritm_qgis.engine.geo.raster_io import raster_meta, read_window

    meta = raster_meta(mask_raster)
    if (meta.width, meta.height) != (grid.width, grid.height) or not np.allclose(
            tuple(meta.grid.transform)[:6], tuple(grid.transform)[:6]):
        raise RitmError("The mask raster is not on the image raster's grid (same size and geotransform needed); "
                        "resample it onto the image first.")
    band = read_window(mask_raster, window).data[0]
    return band > (0 if band.max() <= 1 else 128)


def annotate_raster(raster: str, make_session, *, footprints=None, mask_raster=None, bounds=None,
                    target_iou: float = 0.9, max_clicks: int = 20, progress=None, cancel=None,
                    stretch=None) -> GeoAnnotation:
    """The demo on a window of ``raster``; progress(clicks, max_clicks) and cancel() as ``annotate``;
    ``stretch``: the input rule (``geo.stretch.StretchRule``, default percentile)."""
    from ritm_qgis.engine.data.datasets import Sample
    from ritm_qgis.engine.geo.raster_io import raster_meta
    from ritm_qgis.engine.geo.stretch import resolve_stretch
    from ritm_qgis.engine.protocol.evaluation import annotate

    grid = raster_meta(raster).grid
    window = Window(0, 0, grid.width, grid.height) if bounds is None else extent_window(grid, bounds)
    if window.width * window.height > MAX_PIXELS:
        raise RitmError(f"The window is {int(window.width)}x{int(window.height)} pixels, too large to annotate at "
                        "once; choose an extent of at most 4000x4000 pixels.")
    rgb = resolve_stretch(stretch, raster).read(raster, window)
    gt = reference_mask(grid, window, footprints, mask_raster) & ~rgb.invalid
    if not gt.any():
        raise RitmError("The reference has no building in this window; choose an extent that contains one.")
    invalid = rgb.invalid if rgb.invalid.any() else None
    ann = annotate(Sample("window", rgb.rgb, gt, invalid), make_session(), target_iou, max_clicks,
                   progress=progress, cancel=cancel)
    return GeoAnnotation(rgb.rgb, gt, invalid, rgb.grid, ann)
