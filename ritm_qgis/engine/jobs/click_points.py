"""Clicks given as map points (a point layer) -> one segmented building per object.

What a GIS user hands over is a table of points: map coordinates (in some CRS), a sign
(positive = on the building, negative = background), optionally an object id (many buildings in
one run) and an order. This module turns that into pixel clicks on a raster and runs a
``Predictor`` session per object on a window read around its clicks -- never the whole raster.

* ``ClickPoint``: one point as read from the layer (``fid`` is the feature id, used in messages).
* ``parse_sign``: booleans, 0/1 and the words true/false, yes/no, +/-, pos/neg (case-insensitive).
* ``group_clicks``: reprojects the points to the raster's CRS (pyproj, x/y order), converts them to
  pixels (the pixel whose area contains the point), refuses points outside the raster listing
  their feature ids, groups them by object id (in order of first appearance; without object ids
  all points are one object) and sorts each object's clicks by the order value (ties and missing
  orders: feature order). An object needs at least one positive click.
* ``context_window``: the bounding box of an object's clicks grown by ``margin`` pixels on each
  side (so at least 2 x margin + 1 pixels across), clipped to the raster.
* ``segment_objects``: for each object, reads that window as RGB uint8 (``raster_io.read_rgb``
  with one raster-wide stretch so every object sees the same colours), refuses clicks on nodata
  pixels, replays the clicks in order and vectorizes the final mask into one (multi)polygon in
  the raster's CRS with ``object_id``, ``area_m2``, ``perimeter_m``, ``n_clicks``, ``model``,
  ``touches_window`` (the mask reaches the window's border: the building may be cut; raise the
  margin), ``stretch`` (the input rule, ``stretch.StretchRule.label``). ``simplify_px`` is in
  raster pixels (``simplify`` in map units; they add up). Optionally each object's mask is burnt into a 0/255 mask raster of the raster's grid
  (written window by window, atomically).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np

from ritm_qgis.core.errors import RitmError
from ritm_qgis.core.progress import Progress
from ritm_qgis.engine.geo.raster_io import RasterGrid, Window, clip_window, map_to_pixel

__all__ = [
    "ClickPoint",
    "ObjectClicks",
    "parse_sign",
    "group_clicks",
    "context_window",
    "segment_objects",
]

_TRUE = {"1", "true", "t", "yes", "y", "+", "pos", "positive", "fg"}
_FALSE = {"0", "false", "f", "no", "n", "-", "neg", "negative", "bg"}


@dataclass(frozen=True)
class ClickPoint:
    fid: int
    x: float
    y: float
    positive: bool
    object_id: object = None
    order: float | None = None


@dataclass
class ObjectClicks:
    """One object's clicks in raster pixels, in click order."""

    object_id: object
    fids: list = field(default_factory=list)
    rows: list = field(default_factory=list)
    cols: list = field(default_factory=list)
    positive: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)


def _list_ids(ids: Sequence, limit: int = 20) -> str:
    ids = list(ids)
    text = ", ".join(str(i) for i in ids[:limit])
    return text + (f" (and {len(ids) - limit} more)" if len(ids) > limit else "")


def parse_sign(value, fid=None) -> bool:
    """A sign field value -> True (positive) / False (negative); anything else is a RitmError."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    if isinstance(value, (float, np.floating)) and value in (0.0, 1.0):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    where = f" of feature {fid}" if fid is not None else ""
    raise RitmError(
        f"The sign {value!r}{where} is not a click sign; use a boolean field or 1 (on the building) "
        "and 0 (background)."
    )


def group_clicks(points: Iterable[ClickPoint], grid: RasterGrid, src_crs=None) -> list[ObjectClicks]:
    """Points (in ``src_crs``, default the raster's) -> per-object pixel clicks (module doc)."""
    points = list(points)
    if not points:
        raise RitmError("The click layer has no points; add at least one positive click per building.")
    xs = np.array([p.x for p in points], dtype="float64")
    ys = np.array([p.y for p in points], dtype="float64")
    bad_xy = ~(np.isfinite(xs) & np.isfinite(ys))
    if bad_xy.any():
        raise RitmError(f"Click feature(s) {_list_ids([p.fid for p, b in zip(points, bad_xy) if b])} have no "
                        "point geometry; give every click a point.")
    if src_crs is not None and grid.crs is not None:
        import pyproj

        src = pyproj.CRS.from_user_input(src_crs)
        dst = pyproj.CRS.from_user_input(grid.crs.to_wkt() if hasattr(grid.crs, "to_wkt") else grid.crs)
        if not src.equals(dst, ignore_axis_order=True):
            try:
                tr = pyproj.Transformer.from_crs(src, dst, always_xy=True)
                xs, ys = tr.transform(xs, ys)
            except pyproj.exceptions.ProjError:
                raise RitmError(f"The click points cannot be reprojected from their CRS ({src.name}) to the "
                                "raster's; assign the click layer its right CRS (in QGIS: Layer > Set CRS).") from None
            xs, ys = np.asarray(xs, dtype="float64"), np.asarray(ys, dtype="float64")
    cols, rows = map_to_pixel(grid.transform, xs, ys)
    with np.errstate(invalid="ignore"):
        cols = np.floor(cols)
        rows = np.floor(rows)
    outside = ~((cols >= 0) & (cols < grid.width) & (rows >= 0) & (rows < grid.height))
    if outside.any():
        ids = [p.fid for p, o in zip(points, outside) if o]
        raise RitmError(
            f"{len(ids)} click point(s) lie outside the raster (feature id(s) {_list_ids(ids)}); move or delete "
            "them, or check that the point layer and the raster cover the same area."
        )
    objects: dict = {}
    for i, p in enumerate(points):
        key = p.object_id
        if key not in objects:
            objects[key] = []
        objects[key].append(i)
    out = []
    for key, idx in objects.items():
        idx.sort(key=lambda i: (points[i].order is None, points[i].order if points[i].order is not None else 0, i))
        obj = ObjectClicks(key)
        for i in idx:
            obj.fids.append(points[i].fid)
            obj.rows.append(int(rows[i]))
            obj.cols.append(int(cols[i]))
            obj.positive.append(bool(points[i].positive))
        if not any(obj.positive):
            label = "" if key is None else f" {key!r}"
            raise RitmError(
                f"Object{label} has only negative clicks (feature id(s) {_list_ids(obj.fids)}); give every "
                "building at least one positive click."
            )
        out.append(obj)
    return out


def context_window(obj: ObjectClicks, grid: RasterGrid, margin: int = 200) -> Window:
    """The clicks' bounding box grown by ``margin`` pixels, clipped to the raster."""
    margin = int(margin)
    if margin < 1:
        raise RitmError(f"The context margin must be at least 1 pixel, not {margin}.")
    r0, r1 = min(obj.rows) - margin, max(obj.rows) + margin + 1
    c0, c1 = min(obj.cols) - margin, max(obj.cols) + margin + 1
    return clip_window(Window(c0, r0, c1 - c0, r1 - r0), grid.width, grid.height)


def _segment_one(ds, obj: ObjectClicks, window: Window, stretch, make_session, model_name, simplify, dst,
                 squaring: float | None = None) -> dict:
    import shapely

    from ritm_qgis.engine.geo.vectorize import vectorize_mask

    rgb = stretch.read(ds, window)
    r = np.asarray(obj.rows) - int(window.row_off)
    c = np.asarray(obj.cols) - int(window.col_off)
    on_nodata = rgb.invalid[r, c]
    if on_nodata.any():
        ids = [f for f, b in zip(obj.fids, on_nodata) if b]
        raise RitmError(
            f"Click point(s) with feature id(s) {_list_ids(ids)} lie on nodata pixels of the raster; "
            "move them onto the image."
        )
    session = make_session()
    if hasattr(session, "set_ground_resolution"):
        from ritm_qgis.engine.interactive.raster_session import ground_pixel_size

        session.set_ground_resolution(ground_pixel_size(rgb.grid))
    session.set_image(rgb.rgb)
    for rr, cc, pos in zip(r, c, obj.positive):
        session.add_click(int(rr), int(cc), pos)
    mask = session.mask & ~rgb.invalid
    polys = vectorize_mask(mask, rgb.grid, simplify=simplify, regularize=squaring, regularize_mode="building")
    geom = shapely.union_all(polys.geometry.values) if len(polys) else shapely.Polygon()
    # only a window edge inside the raster can cut the outline; at the raster's border no margin helps
    row0, col0 = int(window.row_off), int(window.col_off)
    touches = bool((row0 > 0 and mask[0].any()) or (row0 + mask.shape[0] < ds.height and mask[-1].any())
                   or (col0 > 0 and mask[:, 0].any()) or (col0 + mask.shape[1] < ds.width and mask[:, -1].any()))
    if dst is not None and mask.any():
        old = dst.read(1, window=window)
        dst.write(np.maximum(old, mask.astype("uint8") * 255), 1, window=window)
    return {"object_id": obj.object_id, "n_clicks": len(obj), "model": model_name,
            "pixels": int(mask.sum()), "touches_window": touches, "stretch": stretch.rule.label, "geometry": geom}


def segment_objects(
    raster: str | os.PathLike,
    objects: Sequence[ObjectClicks],
    make_session: Callable[[], object],
    *,
    model_name: str = "model",
    margin: int = 200,
    simplify: float = 0.0,
    simplify_px: float = 0.0,
    stretch_rule=None,
    regularize: bool = True,
    mask_path: str | os.PathLike | None = None,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
    staging=None,
):
    """Segment each object from its clicks; returns a GeoDataFrame (one row per object, module doc).

    ``cancel()`` is checked before each object; a True raises ``Cancelled`` and no mask raster is
    left behind. ``mask_path``: also write a 0/255 uint8 GeoTIFF mask on the raster's grid
    (staged in ``staging``, a ``core.atomic.OutputSet``, when given). ``regularize``: outlines
    shaped like buildings are squared (``regularize.square_building``), as in the map tool.
    """
    import geopandas as gpd
    import shapely

    from ritm_qgis.core.atomic import atomic_path
    from ritm_qgis.core.cancel import check_cancel
    from ritm_qgis.engine.geo.raster_io import open_raster, raster_meta
    from ritm_qgis.engine.geo.stretch import resolve_stretch

    rows = []
    with open_raster(raster) as ds:
        meta = raster_meta(ds)
        grid = meta.grid
        stretch = resolve_stretch(stretch_rule, ds)
        simplify = simplify + simplify_px * max(grid.res)  # map units, as vectorize_mask takes them
        windows = [context_window(o, grid, margin) for o in objects]
        if mask_path is None:
            ctx = contextlib.nullcontext()
        elif staging is not None:
            ctx = contextlib.nullcontext(staging.staged(str(mask_path)))
        else:
            ctx = atomic_path(str(mask_path), suffix=".tif")
        with ctx as tmp_mask:
            dst = None
            if tmp_mask is not None:
                import rasterio

                dst = rasterio.open(tmp_mask, "w+", driver="GTiff", width=grid.width, height=grid.height, count=1,
                                    dtype="uint8", crs=grid.crs, transform=grid.transform, nodata=None,
                                    tiled=True, blockxsize=256, blockysize=256, compress="deflate")
            try:
                for k, (obj, window) in enumerate(zip(objects, windows)):
                    check_cancel(cancel)
                    rows.append(_segment_one(ds, obj, window, stretch, make_session, model_name, simplify, dst,
                                             max(grid.res) if regularize else None))
                    if progress is not None:
                        progress(k + 1, len(objects))
            finally:
                if dst is not None:
                    dst.close()
    from ritm_qgis.engine.geo.vectorize import metric_area_perimeter

    gdf = gpd.GeoDataFrame(rows, geometry="geometry", crs=grid.crs) if rows else gpd.GeoDataFrame(
        {"object_id": [], "n_clicks": [], "model": [], "pixels": [], "touches_window": [], "stretch": []},
        geometry=gpd.GeoSeries([], crs=grid.crs), crs=grid.crs)
    area, perim = metric_area_perimeter(np.asarray(gdf.geometry.values, dtype=object), grid.crs)
    gdf.insert(1, "area_m2", area)
    gdf.insert(2, "perimeter_m", perim)
    # one geometry type for the GeoPackage layer
    multi = [shapely.MultiPolygon() if g.is_empty else shapely.MultiPolygon([g]) if g.geom_type == "Polygon" else g
             for g in gdf.geometry.values]
    return gdf.set_geometry(gpd.GeoSeries(multi, index=gdf.index, crs=grid.crs))
