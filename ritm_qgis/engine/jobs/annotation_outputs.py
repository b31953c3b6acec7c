"""What the demo writes for one annotated image: figures, and for georeferenced input, layers.

Shared by ``ritm-qgis demo`` and the ``auto_annotate`` Processing algorithm.
"""

from __future__ import annotations

import numpy as np


def write_annotation_figures(rgb, gt, ann, invalid=None, *, overlay_path=None, error_map_path=None,
                             curve_path=None, target_iou=None, title="IoU after each click"):
    """The paper's figures: image + predicted mask (red) + clicks (green +, red -); TP/TN/FP/FN map;
    the IoU-per-click curve. Each path is optional; each file is written atomically."""
    from ritm_qgis.engine.reports.figures import plot_iou_per_click
    from ritm_qgis.engine.reports.visualize import error_map, overlay, save_rgb_png

    if overlay_path:
        save_rgb_png(overlay_path, overlay(rgb, ann.mask, ann.clicks))
    if error_map_path:
        save_rgb_png(error_map_path, error_map(gt, ann.mask, invalid))
    if curve_path:
        plot_iou_per_click(ann.ious, curve_path, target_iou, title=title)


def annotation_frames(ann, grid, model: str, min_pixels: int = 4):
    """(footprints, clicks) GeoDataFrames in the grid's CRS: the final mask as polygons (area_m2,
    perimeter_m, model, n_clicks) and the clicks as points (order, positive, iou_after)."""
    import geopandas as gpd
    from shapely.geometry import Point

    from ritm_qgis.engine.geo.raster_io import pixel_to_map
    from ritm_qgis.engine.geo.vectorize import vectorize_mask

    polys = vectorize_mask(ann.mask, grid, min_pixels=min_pixels)
    polys["model"] = model
    polys["n_clicks"] = ann.n_clicks
    cols = np.array([c.col for c in ann.clicks], float)
    rows = np.array([c.row for c in ann.clicks], float)
    xs, ys = pixel_to_map(grid.transform, cols, rows)
    clicks = gpd.GeoDataFrame(
        {"order": list(range(1, ann.n_clicks + 1)), "positive": [bool(c.is_positive) for c in ann.clicks],
         "iou_after": [float(v) for v in ann.ious]},
        geometry=[Point(x, y) for x, y in zip(np.atleast_1d(xs), np.atleast_1d(ys))], crs=grid.crs)
    return polys, clicks
