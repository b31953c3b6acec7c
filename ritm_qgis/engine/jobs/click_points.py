"""Clicks given as map points (a point layer) -> one segmented building per object.

What a GIS user hands over is a table of points: map coordinates (in some CRS), a sign
(positive = on the building, negative = background), optionally an object id (many buildings in
one run) and an order. This module turns that into clicks on a raster and replays each object's
clicks through the interactive ``RasterSession``, as if a person clicked them on the canvas: a
window around the clicks is read, never the whole raster.

* ``ClickPoint``: one point as read from the layer (``fid`` is the feature id, used in messages).
* ``parse_sign``: booleans, 0/1 and the words true/false, yes/no, +/-, pos/neg (case-insensitive).
* ``group_clicks``: reprojects the points to the raster's CRS (pyproj, x/y order), converts them to
  pixels (the pixel whose area contains the point), refuses points outside the raster listing
  their feature ids, groups them by object id (in order of first appearance; without object ids
  all points are one object) and sorts each object's clicks by the order value (ties and missing
  orders: feature order). An object needs at least one positive click.
* ``segment_objects``: for each object, replays its clicks in order through one
  ``RasterSession`` (the map tool's road: the same window rule, raster-wide stretch, nodata
  refusal and outline settings), and returns one ``OutlineRecord`` per object (``outline_record``:
  the field set every interface saves). ``simplify_px`` is in raster pixels. Optionally each
  object's mask is burnt into a 0/255 mask raster of the raster's grid (written window by window,
  atomically).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np

from ritm_qgis.core.errors import RitmError
from ritm_qgis.core.progress import Progress
from ritm_qgis.engine.geo.raster_io import RasterGrid, Window, map_to_pixel

__all__ = [
    "ClickPoint",
    "ObjectClicks",
    "parse_sign",
    "group_clicks",
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
    xs: list = field(default_factory=list)  # map coordinates in the raster's CRS
    ys: list = field(default_factory=list)
    ids_name: str = "feature id(s)"  # what the ids are called in messages
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


def group_clicks(points: Iterable[ClickPoint], grid: RasterGrid, src_crs=None,
                 ids_name: str = "feature id(s)") -> list[ObjectClicks]:
    """Points (in ``src_crs``, default the raster's) -> per-object pixel clicks (module doc); messages
    name points by their ``fid`` as ``ids_name``."""
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
            f"{len(ids)} click point(s) lie outside the raster ({ids_name} {_list_ids(ids)}); move or delete "
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
        obj = ObjectClicks(key, ids_name=ids_name)
        for i in idx:
            obj.fids.append(points[i].fid)
            obj.xs.append(float(xs[i]))
            obj.ys.append(float(ys[i]))
            obj.rows.append(int(rows[i]))
            obj.cols.append(int(cols[i]))
            obj.positive.append(bool(points[i].positive))
        if not any(obj.positive):
            label = "" if key is None else f" {key!r}"
            raise RitmError(
                f"Object{label} has only negative clicks ({ids_name} {_list_ids(obj.fids)}); give every "
                "building at least one positive click."
            )
        out.append(obj)
    return out


def _on_invalid_pixel(obj: ObjectClicks, k: int) -> RitmError:
    return RitmError(f"Click point(s) with {obj.ids_name} {_list_ids([obj.fids[k]])} lie on nodata pixels of the "
                     "raster; move them onto the image.")


def _replay(session, obj: ObjectClicks, settings, model_name: str):
    """The object's clicks, in order, through the session (the map tool's road) -> its record."""
    from ritm_qgis.engine.interactive.raster_session import ClickOnInvalidPixel

    session.reset()
    for k, (x, y, positive) in enumerate(zip(obj.xs, obj.ys, obj.positive)):
        try:
            session.add_click(x, y, positive)
        except ClickOnInvalidPixel:
            raise _on_invalid_pixel(obj, k) from None
        except RitmError as exc:
            label = "" if obj.object_id is None else f" {obj.object_id!r}"
            raise RitmError(f"Object{label} ({obj.ids_name} {_list_ids(obj.fids)}): {exc}") from None
    return session.record(settings, model=model_name, object_id=obj.object_id)


def segment_objects(
    raster: str | os.PathLike,
    objects: Sequence[ObjectClicks],
    make_predictor: Callable[[], object],
    *,
    model_name: str = "model",
    simplify_px: float = 0.0,
    stretch_rule=None,
    regularize: bool = True,
    mask_path: str | os.PathLike | None = None,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
    staging=None,
) -> list:
    """Segment each object from its clicks; returns one ``OutlineRecord`` per object (module doc).

    ``cancel()`` is checked before each object; a True raises ``Cancelled`` and no mask raster is
    left behind. ``mask_path``: also write a 0/255 uint8 GeoTIFF mask on the raster's grid
    (staged in ``staging``, a ``core.atomic.OutputSet``, when given). ``regularize``: outlines
    shaped like buildings are squared (``regularize.square_building``), as in the map tool.
    """
    from ritm_qgis.core.atomic import atomic_path
    from ritm_qgis.core.cancel import check_cancel
    from ritm_qgis.engine.interactive.raster_session import OutlineSettings, RasterSession

    session = RasterSession(str(raster), make_predictor, stretch=stretch_rule)
    grid = session.grid
    settings = OutlineSettings(simplify_px=float(simplify_px), regularize=bool(regularize),
                               regularize_mode="building")
    if mask_path is None:
        ctx = contextlib.nullcontext()
    elif staging is not None:
        ctx = contextlib.nullcontext(staging.staged(str(mask_path)))
    else:
        ctx = atomic_path(str(mask_path), suffix=".tif")
    records = []
    with ctx as tmp_mask:
        dst = None
        if tmp_mask is not None:
            import rasterio

            dst = rasterio.open(tmp_mask, "w+", driver="GTiff", width=grid.width, height=grid.height, count=1,
                                dtype="uint8", crs=grid.crs, transform=grid.transform, nodata=None,
                                tiled=True, blockxsize=256, blockysize=256, compress="deflate")
        try:
            for k, obj in enumerate(objects):
                check_cancel(cancel)
                records.append(_replay(session, obj, settings, model_name))
                if dst is not None:
                    _burn(dst, *session.mask(settings.threshold))
                if progress is not None:
                    progress(k + 1, len(objects))
        finally:
            if dst is not None:
                dst.close()
    return records


def _burn(dst, window, mask: np.ndarray) -> None:
    if not mask.any():
        return
    win = Window(window.col_off, window.row_off, window.width, window.height)
    old = dst.read(1, window=win)
    dst.write(np.maximum(old, mask.astype("uint8") * 255), 1, window=win)
