"""Building mask (or probability + threshold) -> polygons in the raster's CRS.

Method (measured in ``bench/bench_vectorize.py`` against ``gdal_polygonize.py``):
the mask is upsampled 2x (nearest) and traced with OpenCV ``findContours`` (``RETR_CCOMP``:
outer borders and their holes). In the 2x image every traced boundary point lies in one quadrant
of a source pixel, so rounding it to that quadrant's pixel corner gives the exact pixel-edge
outline -- the same polygons as GDAL's polygonize, with holes -- at a fraction of the cost.
Buildings that touch only at a pixel corner become separate polygons (4-connectivity, as GDAL).
Large masks are traced in bands of rows; polygons cut by a band seam are merged exactly (integer
pixel coordinates) afterwards, so memory stays bounded.

Then, in this order: ``min_pixels`` / ``min_area`` (map units^2) drop specks (on the exact pixel
outline), the outline goes to map coordinates through the affine transform, ``simplify`` (map
units, topology-preserving Douglas-Peucker: rings stay valid, holes are kept unless they vanish),
optional ``regularize`` (``regularize.regularize_polygon``: squares outlines within a tolerance;
falls back to the simplified polygon; in a geographic CRS the squaring is done on the local UTM
zone so that the right angles are right angles on the ground), and the attributes:
``area_m2``, ``perimeter_m``: metres on the ground where the CRS allows it (a projected CRS whose
scale factor at the data is 1 within 0.2 %, such as UTM: its linear unit converted to metres;
geographic CRS and projections far from true scale, such as Web Mercator: computed on the local
UTM zone of the data via pyproj (``ground_scale``); no CRS: NaN), ``pixels``: the building's
pixel count, ``regularized``: whether squaring was applied.
"""

from __future__ import annotations

import math
import os
from typing import Callable

import cv2
import geopandas as gpd
import numpy as np
import pyproj
import shapely
from affine import Affine
from rasterio.windows import Window
from shapely import GeometryType

from ritm_qgis.core.defaults import MASK_THRESHOLD
from ritm_qgis.core.errors import RitmError
from ritm_qgis.engine.geo.ground_scale import as_pyproj, local_utm, lonlat, needs_local_utm, unit_metres
from ritm_qgis.engine.geo.raster_io import RasterGrid, open_raster, raster_meta

__all__ = [
    "vectorize_mask",
    "vectorize_raster",
    "binarize",
    "trace_polygons",
    "metric_area_perimeter",
    "simplify_polygons",
    "DEFAULT_THRESHOLD",
]

DEFAULT_THRESHOLD = MASK_THRESHOLD
_SINGLE_PASS_PIXELS = 32_000_000  # masks up to this size are traced in one pass
_BAND_PIXELS = 8_000_000  # larger ones in bands of about this many pixels (x4 after upsampling)


def binarize(mask: np.ndarray, threshold: float | None = None, invalid: np.ndarray | None = None):
    """bool -> as is; integers -> nonzero (or > threshold); floats -> > threshold (default ``MASK_THRESHOLD``).

    Pixels in ``invalid`` are background. Returns a uint8 0/1 array.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise RitmError(f"A building mask must be a 2-D array, got shape {mask.shape}.")
    if mask.dtype == bool:
        b = mask
    elif np.issubdtype(mask.dtype, np.floating):
        t = DEFAULT_THRESHOLD if threshold is None else threshold
        b = mask > t
    else:
        b = mask > (0 if threshold is None else threshold)
    if invalid is not None:
        b = b & ~invalid
    return b.view(np.uint8) if b.dtype == bool else b.astype(np.uint8)


def trace_polygons(binary: np.ndarray) -> np.ndarray:
    """Exact pixel-edge polygons (with holes) of a 0/1 uint8 array, in pixel coordinates.

    Coordinates are integers (pixel corners; x = column, y = row). Returns shapely Polygons.
    """
    h, w = binary.shape
    if h == 0 or w == 0 or not binary.any():
        return np.empty(0, dtype=object)
    up = cv2.resize(binary, (2 * w, 2 * h), interpolation=cv2.INTER_NEAREST)
    contours, hier = cv2.findContours(up, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return np.empty(0, dtype=object)
    hier = hier[0]
    parent = hier[:, 3]
    is_hole = parent >= 0
    poly_of = np.where(is_hole, parent, np.arange(len(contours)))
    order = np.lexsort((is_hole, poly_of))
    lens = np.fromiter((len(contours[i]) for i in order), dtype=np.int64, count=len(order))
    pts = np.concatenate([contours[i] for i in order]).reshape(-1, 2)
    pts = (pts + 1) // 2  # the quadrant's pixel corner
    ring = np.repeat(np.arange(len(lens)), lens)
    keep = np.ones(len(pts), dtype=bool)
    keep[1:] = ~((ring[1:] == ring[:-1]) & (pts[1:] == pts[:-1]).all(axis=1))
    pts, ring = pts[keep], ring[keep]
    # drop a last point equal to its ring's first point, then close every ring
    counts = np.bincount(ring, minlength=len(lens))
    ends = np.cumsum(counts)
    starts = ends - counts
    wrap = (counts > 1) & (pts[ends - 1] == pts[starts]).all(axis=1)
    if wrap.any():
        drop = np.ones(len(pts), dtype=bool)
        drop[(ends - 1)[wrap]] = False
        pts, ring = pts[drop], ring[drop]
        counts = np.bincount(ring, minlength=len(lens))
        ends = np.cumsum(counts)
        starts = ends - counts
    coords = np.insert(pts, ends, pts[starts], axis=0).astype("float64")
    ring_offsets = np.concatenate([[0], np.cumsum(counts + 1)])
    polys_sorted = poly_of[order]
    first_ring = np.flatnonzero(np.r_[True, polys_sorted[1:] != polys_sorted[:-1]])
    geom_offsets = np.concatenate([first_ring, [len(order)]])
    # rings of < 4 points cannot occur for pixel outlines, but guard against them
    geoms = shapely.from_ragged_array(GeometryType.POLYGON, coords, (ring_offsets, geom_offsets))
    return _split_invalid(geoms)


def _split_invalid(geoms: np.ndarray) -> np.ndarray:
    """Self-touching outlines (pixels meeting at a corner) -> separate valid polygons."""
    bad = ~shapely.is_valid(geoms)
    if not bad.any():
        return geoms
    fixed = shapely.make_valid(geoms[bad])
    parts = [p for p in shapely.get_parts(fixed) if shapely.get_type_id(p) == 3]
    return np.concatenate([geoms[~bad], np.array(parts, dtype=object)])


def _merge_seams(geoms: np.ndarray) -> np.ndarray:
    """Union polygons that share an edge (pieces of one building cut by band seams)."""
    if len(geoms) < 2:
        return geoms
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    parent = np.arange(len(geoms))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(a.tolist(), b.tolist()):
        if i < j:
            ri, rj = find(i), find(j)
            if ri != rj:
                parent[rj] = ri
    roots = np.array([find(i) for i in range(len(geoms))])
    out = []
    for r in np.unique(roots):
        members = geoms[roots == r]
        if len(members) == 1:
            out.append(members[0])
        else:
            u = shapely.union_all(members)
            out.extend(p for p in shapely.get_parts(u) if shapely.get_type_id(p) == 3)
    return _split_invalid(np.array(out, dtype=object))


def _trace_banded(
    read_band: Callable[[int, int], np.ndarray], height: int, width: int, band_rows: int | None
) -> np.ndarray:
    """Trace ``read_band(r0, r1)`` (0/1 uint8 rows r0..r1) band by band, merging seam pieces."""
    if band_rows is None:
        if height * width <= _SINGLE_PASS_PIXELS:
            band_rows = height
        else:
            band_rows = max(256, _BAND_PIXELS // max(width, 1))
    if band_rows >= height:
        return trace_polygons(read_band(0, height))
    inner, edge = [], []
    for r0 in range(0, height, band_rows):
        r1 = min(r0 + band_rows, height)
        g = trace_polygons(read_band(r0, r1))
        if not len(g):
            continue
        g = shapely.transform(g, lambda c, r0=r0: c + np.array([0.0, r0]))
        b = shapely.bounds(g)
        on_seam = ((b[:, 1] == r0) & (r0 > 0)) | ((b[:, 3] == r1) & (r1 < height))
        inner.append(g[~on_seam])
        edge.append(g[on_seam])
    parts = inner + ([_merge_seams(np.concatenate(edge))] if edge else [])
    return np.concatenate(parts) if parts else np.empty(0, dtype=object)


def simplify_polygons(geoms: np.ndarray, tolerance: float) -> np.ndarray:
    """Topology-preserving Douglas-Peucker simplification (``tolerance`` in map units).

    Fast path: plain Douglas-Peucker; every polygon whose result is invalid, empty or has lost or
    gained a hole is redone with GEOS's topology-preserving simplifier, so each output polygon is
    valid and keeps its holes.
    """
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) == 0 or tolerance <= 0:
        return geoms
    out = shapely.simplify(geoms, tolerance, preserve_topology=False)
    redo = (
        ~shapely.is_valid(out)
        | shapely.is_empty(out)
        | (shapely.get_type_id(out) != shapely.get_type_id(geoms))
        | (shapely.get_num_interior_rings(out) != shapely.get_num_interior_rings(geoms))
    )
    if redo.any():
        out[redo] = shapely.simplify(geoms[redo], tolerance, preserve_topology=True)
    return out


# ---------------------------------------------------------------------------------------------
# Metric attributes


def metric_area_perimeter(geoms: np.ndarray, crs) -> tuple[np.ndarray, np.ndarray]:
    """Area (m^2) and perimeter (m) of each geometry on the ground (see the module doc)."""
    geoms = np.asarray(geoms, dtype=object)
    n = len(geoms)
    if crs is None or n == 0:
        return np.full(n, np.nan), np.full(n, np.nan)
    pcrs = as_pyproj(crs)
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    if np.isfinite(cx) and needs_local_utm(pcrs, cx, cy):
        tr = pyproj.Transformer.from_crs(pcrs, local_utm(*lonlat(pcrs, cx, cy)), always_xy=True)
        proj = shapely.transform(geoms, lambda c: np.column_stack(tr.transform(c[:, 0], c[:, 1])))
        return shapely.area(proj), shapely.length(proj)
    if pcrs.is_projected:
        unit = unit_metres(pcrs)
        unit = float("nan") if unit is None else unit
        return shapely.area(geoms) * unit * unit, shapely.length(geoms) * unit
    return np.full(n, np.nan), np.full(n, np.nan)


# ---------------------------------------------------------------------------------------------
# Public entry points


def _regularize(raw: np.ndarray, tolerance: float, crs, mode: str = "strict",
                avoid=None) -> tuple[np.ndarray, np.ndarray]:
    """Square outlines; in a geographic CRS on the local UTM zone, so right angles are on the ground.

    There the tolerance (degrees) becomes metres with the length of a degree of longitude at the
    data's latitude (the shorter one), so no point moves more than ``tolerance`` degrees.
    """
    from ritm_qgis.engine.geo.regularize import regularize_polygons

    pcrs = None if crs is None else as_pyproj(crs)
    if pcrs is None or not pcrs.is_geographic:
        return regularize_polygons(raw, tolerance, mode, avoid)
    minx, miny, maxx, maxy = shapely.total_bounds(raw)
    lon, lat = (minx + maxx) / 2, (miny + maxy) / 2
    utm = local_utm(lon, lat)
    fwd = pyproj.Transformer.from_crs(pcrs, utm, always_xy=True)
    inv = pyproj.Transformer.from_crs(utm, pcrs, always_xy=True)
    geod = pyproj.Geod(ellps="WGS84")
    _, _, metres_per_degree = geod.inv(lon - 0.5, lat, lon + 0.5, lat)
    local = shapely.transform(raw, lambda c: np.column_stack(fwd.transform(c[:, 0], c[:, 1])))
    if avoid is not None:
        avoid = shapely.transform(avoid, lambda c: np.column_stack(fwd.transform(c[:, 0], c[:, 1])))
    squared, flags = regularize_polygons(local, tolerance * metres_per_degree, mode, avoid)
    if flags.any():
        squared[flags] = shapely.transform(
            squared[flags], lambda c: np.column_stack(inv.transform(c[:, 0], c[:, 1])))
    return squared, flags


def _finish(
    pix_geoms: np.ndarray,
    grid: RasterGrid,
    *,
    min_area: float,
    min_pixels: int,
    simplify: float,
    regularize: float | None,
    regularize_mode: str = "strict",
    regularize_avoid=None,
) -> gpd.GeoDataFrame:
    pixels = shapely.area(pix_geoms) if len(pix_geoms) else np.empty(0)
    pixel_area = abs(grid.transform.a * grid.transform.e - grid.transform.b * grid.transform.d)
    keep = (pixels >= min_pixels) & (pixels * pixel_area >= min_area)
    pix_geoms, pixels = pix_geoms[keep], pixels[keep]
    t = grid.transform
    raw = shapely.transform(
        pix_geoms,
        lambda c: np.column_stack(
            (t.a * c[:, 0] + t.b * c[:, 1] + t.c, t.d * c[:, 0] + t.e * c[:, 1] + t.f)
        ),
    ) if len(pix_geoms) else pix_geoms
    geoms = raw
    if simplify and simplify > 0 and len(geoms):
        geoms = simplify_polygons(geoms, simplify)
    regularized = np.zeros(len(geoms), dtype=bool)
    if regularize is not None and regularize > 0 and len(geoms):
        squared, regularized = _regularize(raw, regularize, grid.crs, regularize_mode, regularize_avoid)
        geoms = np.where(regularized, squared, geoms)
    area, perim = metric_area_perimeter(geoms, grid.crs)
    return gpd.GeoDataFrame(
        {
            "area_m2": area,
            "perimeter_m": perim,
            "pixels": pixels.astype("int64"),
            "regularized": regularized,
        },
        geometry=gpd.GeoSeries(geoms, crs=grid.crs),
        crs=grid.crs,
    )


def vectorize_mask(
    mask: np.ndarray,
    grid: RasterGrid | Affine,
    *,
    threshold: float | None = None,
    invalid: np.ndarray | None = None,
    min_area: float = 0.0,
    min_pixels: int = 0,
    simplify: float = 0.0,
    regularize: float | None = None,
    band_rows: int | None = None,
    regularize_mode: str = "strict",
    regularize_avoid=None,
) -> gpd.GeoDataFrame:
    """Mask/probability array on ``grid`` -> building polygons (GeoDataFrame, grid's CRS).

    ``grid`` may also be a bare Affine (no CRS: metric attributes are NaN). ``threshold``: see
    ``binarize``. ``min_area`` in map units^2, ``min_pixels`` in pixels, ``simplify`` and
    ``regularize`` (the squaring tolerance; for ``regularize_mode="building"`` the pixel size) in
    map units; ``regularize_avoid`` (a geometry in map units, e.g. negative clicks) is never covered
    by a squared outline. Columns: geometry, area_m2, perimeter_m, pixels, regularized.
    """
    if isinstance(grid, Affine):
        grid = RasterGrid(None, grid, mask.shape[1], mask.shape[0])
    if tuple(mask.shape) != grid.shape:
        raise RitmError(f"The mask shape {mask.shape} does not match the raster grid {grid.shape}.")
    b = binarize(mask, threshold, invalid)
    geoms = _trace_banded(lambda r0, r1: b[r0:r1], grid.height, grid.width, band_rows)
    return _finish(geoms, grid, min_area=min_area, min_pixels=min_pixels, simplify=simplify,
                   regularize=regularize, regularize_mode=regularize_mode, regularize_avoid=regularize_avoid)


def vectorize_raster(
    path: str | os.PathLike,
    *,
    band: int = 1,
    threshold: float | None = None,
    min_area: float = 0.0,
    min_pixels: int = 0,
    simplify: float = 0.0,
    regularize: float | None = None,
    band_rows: int | None = None,
    pixel_space: bool = False,
    simplify_px: float = 0.0,
    regularize_px: float = 0.0,
    min_area_m2: float = 0.0,
) -> gpd.GeoDataFrame:
    """A mask/probability raster file -> building polygons, read in bands of rows (bounded memory).

    The raster's nodata pixels are background; the rest as in ``vectorize_mask``. Tolerances come
    in map units (``simplify``, ``regularize``) or raster pixels (``simplify_px``,
    ``regularize_px``, converted here with the raster's pixel size; the two add up). ``min_area_m2``
    drops polygons whose ``area_m2`` (square metres whatever the CRS) is smaller.
    """
    with open_raster(path) as ds:
        meta = raster_meta(ds, pixel_space=pixel_space)
        if not 1 <= band <= meta.count:
            raise RitmError(f"Band {band} does not exist in '{path}' ({meta.count} band(s)).")
        nodata = meta.nodata[band - 1]

        def read_band(r0, r1):
            a = ds.read(band, window=Window(0, r0, meta.width, r1 - r0))
            inv = None
            if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
                inv = a == nodata
            elif np.issubdtype(a.dtype, np.floating):
                inv = np.isnan(a)
            return binarize(a, threshold, inv)

        geoms = _trace_banded(read_band, meta.height, meta.width, band_rows)
    px = max(meta.grid.res)
    simplify = simplify + simplify_px * px
    if regularize_px:
        regularize = (regularize or 0.0) + regularize_px * px
    gdf = _finish(geoms, meta.grid, min_area=min_area, min_pixels=min_pixels, simplify=simplify,
                  regularize=regularize)
    if min_area_m2 > 0 and len(gdf):
        gdf = gdf[~(gdf["area_m2"] < min_area_m2)].reset_index(drop=True)
    return gdf
