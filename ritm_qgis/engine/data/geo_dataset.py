"""Evaluation samples from a georeferenced raster and a building-footprint layer.

Two modes:

- ``tiles`` (the paper's): fixed windows (500x500 by default) over the whole raster, the ground
  truth is the union of the buildings in the window. Edge tiles are padded past the raster's edge;
  padded and nodata pixels are ignored (never clicked, never counted). Tiles without any building
  are kept as empty samples (all-NaN rows: dropped from the metrics and counted, as in the paper).
- ``buildings``: one window per building, its bounding box grown by ``margin`` (40 % of its size
  on each side, at least ``min_size`` pixels across); the ground truth is that building alone, the
  others are background, as a user outlining one building sees them.

Each sample's ``meta`` holds its window's ``grid`` (CRS + transform), so predictions can be
vectorized back to map coordinates.
"""

from __future__ import annotations

import os

import numpy as np
import shapely
from rasterio.windows import Window

from ritm_qgis.core.errors import RitmError
from ritm_qgis.engine.data.datasets import Dataset, Sample
from ritm_qgis.engine.geo.footprints import load_footprints, rasterize_footprints
from ritm_qgis.engine.geo.raster_io import map_to_pixel, open_raster, raster_meta
from ritm_qgis.engine.geo.stretch import resolve_stretch
from ritm_qgis.engine.geo.tiling import tile_grid

MODES = ("tiles", "buildings")


def building_windows(footprints, grid, margin: float = 0.4, min_size: int = 64):
    """A pixel window around each building (in layer order), clipped to nothing: it may cross edges."""
    windows = []
    inv = ~grid.transform
    for geom in footprints.geometries:
        minx, miny, maxx, maxy = shapely.bounds(geom)
        c0, r0 = inv * (minx, maxy)
        c1, r1 = inv * (maxx, miny)
        c0, c1 = sorted((c0, c1))
        r0, r1 = sorted((r0, r1))
        w, h = c1 - c0, r1 - r0
        side_w = max(w * (1 + 2 * margin), min_size)
        side_h = max(h * (1 + 2 * margin), min_size)
        cc, rc = (c0 + c1) / 2, (r0 + r1) / 2
        windows.append(Window(int(np.floor(cc - side_w / 2)), int(np.floor(rc - side_h / 2)),
                              int(np.ceil(side_w)), int(np.ceil(side_h))))
    return windows


def raster_footprint_dataset(raster: str, footprints, mode: str = "tiles", tile_size: int = 500,
                             layer_name: str | None = None, area_of_interest=None, edge_tiles: str = "pad",
                             stretch=None) -> Dataset:
    """Samples of ``raster`` labelled by ``footprints`` (a path or GeoDataFrame); see the module doc.

    edge_tiles (tile mode), where the raster is not a whole number of tiles: 'pad' keeps the edge
    tiles, padded (a sliver of a few pixels then counts as a sample), 'drop' keeps whole tiles
    only, 'shift' moves the last tile of each row/column inward so every tile is whole.

    area_of_interest: an optional shapely geometry in the raster's CRS; only tiles/buildings
    intersecting it are kept. stretch: the input rule (``stretch.StretchRule``; default percentile).
    """
    if mode not in MODES:
        raise RitmError(f"unknown sampling mode '{mode}'; use 'tiles' (the paper's) or 'buildings'")
    if not os.path.exists(str(raster)):
        raise RitmError(f"no raster at '{raster}'")
    if not os.path.isfile(str(raster)):
        raise RitmError(f"'{raster}' is not a regular file (a folder, a pipe or a device?); give a raster file")
    with open_raster(raster) as ds:
        meta = raster_meta(ds)
        stretch = resolve_stretch(stretch, ds)
    grid = meta.grid
    fp = load_footprints(footprints, grid, layer_name=layer_name)
    stem = os.path.splitext(os.path.basename(str(raster)))[0]
    if mode == "tiles":
        if edge_tiles not in ("pad", "drop", "shift"):
            raise RitmError(f"unknown edge-tile policy '{edge_tiles}'; use 'pad', 'drop' or 'shift'")
        tiles = tile_grid(grid.width, grid.height, size=tile_size, edge=edge_tiles, stem=stem)
        if not tiles:
            raise RitmError(f"The raster ({grid.width} x {grid.height} px) holds no whole tile of {tile_size} px; "
                            "keep the padded edge tiles or choose a smaller tile size.")
        items = [(t.name, t.window, None) for t in tiles]
    else:
        items = [(f"{stem}_b{int(i)}", w, int(i)) for i, w in zip(fp.ids, building_windows(fp, grid))]
    if area_of_interest is not None:
        items = [it for it in items if shapely.box(*grid.window_grid(it[1]).bounds).intersects(area_of_interest)]
        if not items:
            raise RitmError("the area of interest does not overlap the raster's tiles or buildings")

    def load(i):
        name, window, building = items[i]
        rgb = stretch.read(raster, window)
        masks = rasterize_footprints(fp, grid, window)
        gt = masks.mask if building is None else masks.instances == building
        gt = gt & ~rgb.invalid
        return Sample(name, rgb.rgb, gt, rgb.invalid if rgb.invalid.any() else None,
                      meta={"raster": str(raster), "grid": rgb.grid, "window": window, "building_id": building})

    return Dataset(f"{stem}:{mode}", [it[0] for it in items], load, repaired_footprints=fp.repaired)


__all__ = ["raster_footprint_dataset", "building_windows", "MODES", "map_to_pixel"]
