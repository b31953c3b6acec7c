"""Cut a raster into fixed-size tiles (the paper's 500 x 500 crops) and write them as GeoTIFFs.

``tile_grid`` is pure: it lays out ``Tile`` windows over a width x height raster.

* ``size``: tile width and height in pixels (default 500); ``overlap``: pixels shared by
  neighbouring tiles (stride = size - overlap).
* Names are ``{stem}_{row}_{col}``: row/col are the indices of the tile in the grid (0-based),
  as the INRIA 500 x 500 crops are named.
* ``edge`` says what happens where the raster is not a whole number of strides:
  - ``'drop'``: tiles that would reach past the right/bottom edge are skipped; every tile is full
    size and inside the raster; the last pixels may be left uncovered.
  - ``'pad'``: the grid covers the whole raster; edge tiles keep their grid position and reach
    past the edge; the outside part is filled with nodata (the source's nodata value, or 0 with
    nodata set to 0 when the source has none).
  - ``'shift'``: the grid covers the whole raster; the last tile in each row/column is shifted
    inward so that it ends exactly at the edge, staying full size and overlapping its neighbour
    more than ``overlap``. A raster smaller than one tile cannot be shifted and is refused.

``write_tiles`` writes the tiles as GeoTIFFs (CRS and transform kept, every band, the source's
dtype and nodata), each to a temporary file in the output folder that is renamed into place
once complete, so a cancelled or failed run never leaves a half-written tile. It can also write
a tile-index GeoPackage (one polygon per tile, fields name/row/col/path).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import rasterio
from rasterio.windows import Window

from ritm_qgis.core.atomic import atomic_path
from ritm_qgis.core.errors import RitmError
from ritm_qgis.core.progress import Progress
from ritm_qgis.engine.geo.raster_io import RasterGrid, clip_window, open_raster, raster_meta

__all__ = ["Tile", "TilingResult", "tile_grid", "tile_offsets", "write_tiles", "EDGE_POLICIES"]

EDGE_POLICIES = ("drop", "pad", "shift")


@dataclass(frozen=True)
class Tile:
    """One tile: its name, grid indices and pixel window in the source raster."""

    name: str
    row: int
    col: int
    window: Window

    @property
    def col_off(self) -> int:
        return int(self.window.col_off)

    @property
    def row_off(self) -> int:
        return int(self.window.row_off)


@dataclass(frozen=True)
class TilingResult:
    """What ``write_tiles`` did: written tile paths (in grid order), index path, cancelled flag."""

    paths: tuple[Path, ...]
    tiles: tuple[Tile, ...]
    index_path: Path | None
    cancelled: bool


def tile_offsets(length: int, size: int, stride: int, edge: str) -> list[int]:
    """Start offsets of tiles along one axis of ``length`` pixels (see the module doc)."""
    if edge not in EDGE_POLICIES:
        raise RitmError(f"Unknown edge policy '{edge}'; choose one of {', '.join(EDGE_POLICIES)}.")
    if edge == "drop":
        if length < size:
            return []
        return list(range(0, length - size + 1, stride))
    # pad / shift: cover the whole length
    n = 1 if length <= size else -(-(length - size) // stride) + 1
    offs = [i * stride for i in range(n)]
    if edge == "shift":
        if length < size:
            raise RitmError(
                f"The raster ({length} px) is smaller than one tile ({size} px), so edge tiles "
                "cannot be shifted inward; use edge='pad' or a smaller tile size."
            )
        offs[-1] = length - size
    return offs


def tile_grid(
    width: int,
    height: int,
    *,
    size: int = 500,
    overlap: int = 0,
    edge: str = "drop",
    stem: str = "tile",
) -> list[Tile]:
    """Lay out tiles over a ``width`` x ``height`` raster, row by row (module doc: the rules)."""
    size = int(size)
    overlap = int(overlap)
    if size < 1:
        raise RitmError(f"The tile size must be at least 1 pixel, not {size}.")
    if not 0 <= overlap < size:
        raise RitmError(
            f"The overlap ({overlap} px) must be at least 0 and smaller than the tile size ({size})."
        )
    stride = size - overlap
    rows = tile_offsets(height, size, stride, edge)
    cols = tile_offsets(width, size, stride, edge)
    return [
        Tile(f"{stem}_{r}_{c}", r, c, Window(co, ro, size, size))
        for r, ro in enumerate(rows)
        for c, co in enumerate(cols)
    ]


def _tile_profile(src, grid: RasterGrid, tile: Tile, nodata, compress: str | None) -> dict:
    profile = {
        "driver": "GTiff",
        "width": int(tile.window.width),
        "height": int(tile.window.height),
        "count": src.count,
        "dtype": src.dtypes[0],
        "crs": grid.crs,
        "transform": grid.window_grid(tile.window).transform,
        "nodata": nodata,
    }
    if compress:
        profile["compress"] = compress
    return profile


def _write_atomic(path: Path, profile: dict, data: np.ndarray, colorinterp, descriptions) -> None:
    with atomic_path(str(path), suffix=".tif") as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(data)
            if colorinterp is not None:
                try:
                    dst.colorinterp = colorinterp
                except Exception:  # noqa: BLE001 - colour interpretation is cosmetic
                    pass
            for i, d in enumerate(descriptions, start=1):
                if d:
                    dst.set_band_description(i, d)


def write_tiles(
    raster: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    size: int = 500,
    overlap: int = 0,
    edge: str = "drop",
    stem: str | None = None,
    index_path: str | os.PathLike | None = None,
    skip_empty: bool = False,
    compress: str | None = None,
    pixel_space: bool = False,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
    staging=None,
) -> TilingResult:
    """Write the tiles of ``raster`` into ``out_dir`` as ``{stem}_{row}_{col}.tif``.

    ``stem`` defaults to the raster's file stem. ``skip_empty`` skips tiles whose pixels are all
    invalid (nodata). ``progress(done, total)`` is called after each tile; ``cancel()`` is checked
    before each tile and a True stops the run (``cancelled=True``; finished tiles are kept, no
    partial tile exists). ``index_path`` (a .gpkg) receives one polygon per written tile with
    fields name, row, col, path (written atomically, also after a cancel unless ``staging`` is given).
    With ``staging`` (a ``core.atomic.OutputSet``) every tile and the index are written under
    their incomplete names and the caller moves them into place together (or discards them), so
    existing tiles are replaced only by a complete run. Memory: one tile of all bands at a time.
    """
    raster = Path(raster)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = stem or raster.stem
    written: list[Path] = []
    written_tiles: list[Tile] = []
    cancelled = False
    with open_raster(raster) as src:
        meta = raster_meta(src, pixel_space=pixel_space)
        grid = meta.grid
        tiles = tile_grid(meta.width, meta.height, size=size, overlap=overlap, edge=edge, stem=stem)
        if not tiles:
            raise RitmError(
                f"The raster ({meta.width} x {meta.height} px) is smaller than one tile "
                f"({size} px), so edge='drop' leaves no tile; use edge='pad' or a smaller size."
            )
        src_nodata = src.nodata
        nodata = src_nodata
        pad_needed = edge == "pad" and any(
            t.col_off + size > meta.width or t.row_off + size > meta.height for t in tiles
        )
        if pad_needed and nodata is None:
            nodata = 0
        colorinterp = list(src.colorinterp)
        descriptions = list(src.descriptions)
        bands = list(range(1, src.count + 1))
        n = len(tiles)
        for i, tile in enumerate(tiles):
            if cancel is not None and cancel():
                cancelled = True
                break
            inner = clip_window(tile.window, meta.width, meta.height)
            data = src.read(bands, window=inner)
            if data.shape[1:] != (size, size):
                full = np.full((len(bands), size, size), nodata, dtype=data.dtype)
                r0 = inner.row_off - tile.row_off
                c0 = inner.col_off - tile.col_off
                full[:, r0 : r0 + data.shape[1], c0 : c0 + data.shape[2]] = data
                data = full
            if skip_empty and _all_invalid(src, meta, data, inner):
                if progress is not None:
                    progress(i + 1, n)
                continue
            path = out_dir / f"{tile.name}.tif"
            profile = _tile_profile(src, grid, tile, nodata, compress)
            _write_atomic(Path(staging.staged(str(path))) if staging is not None else path, profile, data,
                          colorinterp, descriptions)
            written.append(path)
            written_tiles.append(tile)
            if progress is not None:
                progress(i + 1, n)
    index = None
    # a staged run that was cancelled is discarded by the caller; its index would go into an existing
    # GeoPackage in place at once (vector_io), so it is not written
    if index_path is not None and not (cancelled and staging is not None):
        index = Path(index_path)
        _write_index(index, grid, written_tiles, written, staging=staging)
    return TilingResult(tuple(written), tuple(written_tiles), index, cancelled)


def _all_invalid(src, meta, data: np.ndarray, inner: Window) -> bool:
    nod = src.nodata
    if meta.alpha_band is not None:
        return not (src.read(meta.alpha_band, window=inner) > 0).any()
    if nod is None:
        return False
    if np.isnan(nod):
        return bool(np.isnan(data).all())
    return bool((data == nod).all())


def _write_index(path: Path, grid: RasterGrid, tiles: Sequence[Tile], paths: Sequence[Path], staging=None) -> None:
    import geopandas as gpd
    import shapely

    from ritm_qgis.engine.geo.vector_io import write_vector

    geoms = []
    for t in tiles:
        g = grid.window_grid(t.window)
        geoms.append(shapely.box(*g.bounds))
    gdf = gpd.GeoDataFrame(
        {
            "name": [t.name for t in tiles],
            "row": np.array([t.row for t in tiles], dtype="int32"),
            "col": np.array([t.col for t in tiles], dtype="int32"),
            "path": [str(p) for p in paths],
        },
        geometry=geoms,
        crs=grid.crs,
    )
    write_vector(gdf, path, layer="tiles", mode="w", staging=staging)
