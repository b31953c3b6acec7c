"""Rasterize a building-footprint layer onto a raster's grid: union mask and instance ids.

``load_footprints`` reads any OGR vector file (or takes a GeoDataFrame), reprojects it to the
raster's CRS, repairs invalid geometries (``shapely.make_valid``, keeping only the polygonal
parts: a self-intersecting "bow tie" becomes its two triangles, as QGIS's "Fix geometries" does;
``Footprints.repaired`` lists their feature ids, for the caller to say so) and drops empty ones.
An empty layer, a layer without a CRS (or one that cannot be reprojected), a layer that does not
overlap the raster at all, or a path that is not a regular file (a pipe would block the read
forever) is refused with a ``RitmError``.

``rasterize_footprints`` burns the prepared footprints into a grid or a window of it:
``mask`` (H, W) bool, the union of all buildings, and ``instances`` (H, W) int32 where each
building has its own id (1-based position in the prepared layer, 0 = background; see
``Footprints.ids``). Where buildings overlap, the smaller one wins so that every building keeps
its pixels where it is visible. A pixel belongs to a building when its centre is inside
(GDAL's rule), or any touched pixel with ``all_touched=True``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
from rasterio import features
from rasterio.windows import Window

from ritm_qgis.core.errors import RitmError
from ritm_qgis.engine.geo.raster_io import RasterGrid

__all__ = ["Footprints", "load_footprints", "rasterize_footprints", "BuildingMasks"]


@dataclass(frozen=True)
class Footprints:
    """Polygons ready to burn: valid, polygonal, in the grid's CRS. ``ids[i]`` is row i's id."""

    geometries: np.ndarray  # shapely Polygons/MultiPolygons
    ids: np.ndarray  # int32, 1-based ids used in the instance raster
    crs: object
    frame: gpd.GeoDataFrame  # the prepared layer (attributes kept), same order as geometries
    tree: shapely.STRtree
    repaired: tuple = ()  # feature ids (fid, else 1-based position) of the invalid polygons repaired

    def __len__(self) -> int:
        return len(self.geometries)


@dataclass(frozen=True)
class BuildingMasks:
    """``mask`` (union, bool) and ``instances`` (int32 ids, 0 background) on ``grid``."""

    mask: np.ndarray
    instances: np.ndarray
    grid: RasterGrid


def _polygonal(geoms: np.ndarray) -> np.ndarray:
    """Keep only the polygonal parts of each geometry (make_valid can yield lines/points)."""
    out = np.empty(len(geoms), dtype=object)
    types = shapely.get_type_id(geoms)
    for i, (g, t) in enumerate(zip(geoms, types)):
        if t in (3, 6):  # Polygon, MultiPolygon
            out[i] = g
        elif t == 7:  # GeometryCollection
            parts = [p for p in shapely.get_parts(g) if shapely.get_type_id(p) in (3, 6)]
            out[i] = shapely.union_all(parts) if parts else None
        else:
            out[i] = None
    return out


def load_footprints(
    layer: str | os.PathLike | gpd.GeoDataFrame | gpd.GeoSeries,
    grid: RasterGrid,
    *,
    layer_name: str | None = None,
    check_overlap: bool = True,
) -> Footprints:
    """Read/prepare a footprint layer for ``grid``: reproject, repair, drop empties (module doc)."""
    if isinstance(layer, gpd.GeoSeries):
        layer = gpd.GeoDataFrame(geometry=layer)
    if isinstance(layer, gpd.GeoDataFrame):
        gdf = layer
        name = "The footprint layer"
    else:
        from ritm_qgis.engine.geo.vector_io import read_vector

        path = os.fspath(layer).split("|", 1)[0]
        if os.path.exists(path) and not os.path.isfile(path) and not os.path.isdir(path):
            raise RitmError(f"'{path}' is not a regular file (a pipe or a device?); give a vector file of building "
                            "footprints.")
        gdf = read_vector(layer, layer=layer_name, fid_as_index=True)
        name = f"The footprint layer '{layer}'"
    if len(gdf) == 0 or gdf.geometry.isna().all() or gdf.geometry.is_empty.all():
        raise RitmError(f"{name} has no features; choose a layer that contains building polygons.")
    if grid.crs is None:
        raise RitmError(
            "The raster has no CRS, so the footprints cannot be placed on it; georeference the "
            "raster first."
        )
    if gdf.crs is None:
        raise RitmError(f"{name} has no CRS; assign one (e.g. in QGIS: Layer > Set CRS).")
    gdf = gdf[~(gdf.geometry.isna() | gdf.geometry.is_empty)].copy()
    if gdf.crs != grid.crs:
        gdf = _reprojected(gdf, grid.crs, name)
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    bad = ~shapely.is_valid(geoms)
    ids = gdf["fid"].tolist() if "fid" in gdf.columns else gdf.index.tolist()
    repaired = tuple(i for i, b in zip(ids, bad) if b)
    if bad.any():
        geoms = geoms.copy()
        geoms[bad] = shapely.make_valid(geoms[bad])
    geoms = _polygonal(geoms)
    keep = np.array([g is not None and not g.is_empty for g in geoms], dtype=bool)
    if not keep.any():
        raise RitmError(f"{name} has no polygons; building footprints must be (multi)polygons.")
    gdf = gdf.loc[keep].copy()
    geoms = geoms[keep]
    gdf = gdf.set_geometry(gpd.GeoSeries(geoms, index=gdf.index, crs=grid.crs))
    tree = shapely.STRtree(geoms)
    if check_overlap:
        box = shapely.box(*grid.bounds)
        if len(tree.query(box, predicate="intersects")) == 0:
            raise RitmError(
                f"{name} does not overlap the raster (raster bounds "
                f"{tuple(round(b, 6) for b in grid.bounds)} in {grid.crs}); check that the layer "
                "and the raster cover the same area."
            )
    ids = np.arange(1, len(geoms) + 1, dtype="int32")
    return Footprints(geoms, ids, grid.crs, gdf.reset_index(drop=True), tree, repaired)


def _reprojected(gdf: gpd.GeoDataFrame, crs, name: str) -> gpd.GeoDataFrame:
    from pyproj.exceptions import CRSError, ProjError

    try:
        return gdf.to_crs(crs)
    except (ProjError, CRSError):
        raise RitmError(f"{name} cannot be reprojected from its CRS ({gdf.crs.name}) to the raster's; assign the "
                        "layer its right CRS (in QGIS: Layer > Set CRS).") from None


def rasterize_footprints(
    footprints: Footprints | str | os.PathLike | gpd.GeoDataFrame,
    grid: RasterGrid,
    window: Window | None = None,
    *,
    all_touched: bool = False,
    layer_name: str | None = None,
) -> BuildingMasks:
    """Burn footprints into ``grid`` (or ``window`` of it): union mask + instance ids.

    Pass a prepared ``Footprints`` (from ``load_footprints``) when rasterizing many windows; a
    path or GeoDataFrame is prepared on the fly (and must overlap the whole grid). A window with
    no building gives all-zero masks.
    """
    if not isinstance(footprints, Footprints):
        footprints = load_footprints(footprints, grid, layer_name=layer_name)
    target = grid if window is None else grid.window_grid(window)
    shape = target.shape
    idx = footprints.tree.query(shapely.box(*target.bounds), predicate="intersects")
    instances = np.zeros(shape, dtype="int32")
    if len(idx):
        geoms = footprints.geometries[idx]
        ids = footprints.ids[idx]
        order = np.argsort(-shapely.area(geoms), kind="stable")  # big first, small on top
        features.rasterize(
            zip(geoms[order], ids[order].tolist()),
            out=instances,
            transform=target.transform,
            all_touched=all_touched,
            dtype="int32",
        )
    return BuildingMasks(mask=instances > 0, instances=instances, grid=target)
