"""GeoPackage output that never leaves a corrupt or half-filled file, nor replaces a user's layer.

* ``mode="w"`` (create, or replace one layer): the layer is written into ``name.incomplete.gpkg``
  beside the target (a copy of the existing GeoPackage when there is one, so its other layers are
  kept), then renamed over it; with ``staging`` (a ``core.atomic.OutputSet``) the rename waits
  for the other files of the run. A failure or cancel before the rename removes the incomplete
  file; one left by a killed run is visible under that name and removed by the next write.
* A layer that this project did not write (marked in ``gpkg_contents.description``) is never
  replaced unless ``overwrite=True``: the user asked for it (an overwrite choice, or by naming
  that table). The refusal is ``LayerExists``, phrased by the interface that caught it.
* ``mode="a"`` (append to an existing layer): the rows are reprojected into the layer's CRS and
  go in through one OGR transaction (pyogrio writes inside ``StartTransaction``/
  ``CommitTransaction``); a failure rolls it back, so the layer has either all new rows or none.
  Appending to a missing file or layer creates it as in ``mode="w"``.

A file open in another program (e.g. QGIS) is best edited through that program; replacing it
from outside gives that program's open handle the old contents.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path
from typing import Callable

import geopandas as gpd
import pyogrio

from ritm_qgis.core.atomic import output_path
from ritm_qgis.core.errors import RitmError

__all__ = ["write_gpkg", "write_vector", "read_vector", "list_layers", "LayerExists", "written_by_us", "to_layer_crs"]

# gpkg_contents.description of every layer this project writes
OWN_MARK = "written by ritm_qgis"


class LayerExists(RitmError):
    """``path`` holds a layer ``layer`` that this project did not write; it was left as it is."""

    def __init__(self, path: str, layer: str, choices: str | None = None):
        self.path, self.layer = str(path), layer
        choices = choices or ("append to it, write to another layer name, or choose to overwrite it")
        super().__init__(f"'{self.path}' already holds a layer '{layer}' that ritm_qgis did not write, so it was "
                         f"left as it is; {choices}.")


def list_layers(path: str | os.PathLike) -> list[str]:
    """Names of the layers in a vector file ([] when it does not exist)."""
    if not Path(path).exists():
        return []
    return [str(name) for name, _ in pyogrio.list_layers(path)]


def read_vector(path: str | os.PathLike, layer: str | None = None, **kwargs) -> gpd.GeoDataFrame:
    """Read any OGR vector file (a layer of it), with a ``RitmError`` when it cannot be read.

    The layer can also be named the way QGIS names layer sources, ``file.gpkg|layername=NAME``. A
    file holding several layers must have one named: reading the first silently would evaluate
    or train on whichever layer GDAL lists first."""
    text = os.fspath(path)
    if "|" in text:
        text, options = text.split("|", 1)
        for option in options.split("|"):
            key, _, value = option.partition("=")
            if key != "layername" or not value:
                raise RitmError(f"'{path}': only '|layername=NAME' can follow the file name, not '|{option}'.")
            layer = layer or value
    if layer is None:
        try:
            layers = list_layers(text)
        except Exception:  # noqa: BLE001 - unreadable: gpd.read_file below says why
            layers = []
        if len(layers) > 1:
            raise RitmError(f"'{text}' holds {len(layers)} layers ({', '.join(layers)}); name the one to read "
                            f"as '{text}|layername={layers[0]}'.")
    try:
        return gpd.read_file(text, layer=layer, **kwargs)
    except Exception as exc:  # noqa: BLE001 - pyogrio/GDAL raise several types
        where = f"layer '{layer}' of " if layer else ""
        raise RitmError(f"Could not read {where}'{text}' ({exc}); check the path and layer name.") from None


def written_by_us(path: str | os.PathLike, layer: str) -> bool:
    """True when ``layer`` of the GeoPackage ``path`` carries this project's mark."""
    try:
        con = sqlite3.connect(f"file:{os.fspath(path)}?mode=ro", uri=True)
        try:
            row = con.execute("SELECT description FROM gpkg_contents WHERE lower(table_name) = lower(?)",
                              (layer,)).fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return False
    return bool(row and row[0] and OWN_MARK in row[0])


def _layer_crs(path: str, layer: str):
    info = pyogrio.read_info(path, layer=layer)
    return info.get("crs")


def to_layer_crs(gdf: gpd.GeoDataFrame, target_crs, where: str) -> gpd.GeoDataFrame:
    """``gdf`` in ``target_crs`` (reprojected when they differ); a missing CRS on one side is refused."""
    from pyproj import CRS

    if target_crs is None and gdf.crs is None:
        return gdf
    if target_crs is None or gdf.crs is None:
        missing = where if target_crs is None else "the new features"
        raise RitmError(f"Cannot append: {missing} has no CRS, so the features cannot be placed; "
                        "assign a CRS or write to a new layer.")
    target = CRS.from_user_input(target_crs)
    if gdf.crs == target:
        return gdf
    return gdf.to_crs(target)


def _write_layer(gdf: gpd.GeoDataFrame, path: str, layer: str, append: bool) -> None:
    options = {} if append else {"layer_options": {"DESCRIPTION": OWN_MARK}}
    gdf.to_file(path, layer=layer, driver="GPKG", engine="pyogrio", mode="a" if append else "w", **options)


def write_gpkg(
    gdf: gpd.GeoDataFrame,
    path: str | os.PathLike,
    layer: str = "buildings",
    *,
    mode: str = "w",
    overwrite: bool = False,
    chunk_size: int = 50_000,
    cancel: Callable[[], bool] | None = None,
    staging=None,
) -> Path:
    """Write ``gdf`` as ``layer`` of the GeoPackage ``path``, atomically (see the module doc).

    ``mode``: ``"w"`` creates the file or replaces the layer (one this project wrote, or any with
    ``overwrite``), ``"a"`` appends rows in one transaction, reprojected into the layer's CRS. In
    mode ``"w"`` rows are written in chunks of ``chunk_size`` and ``cancel()`` is checked between
    chunks; a True (or any exception) leaves the old file as it was and raises ``RitmError``
    (cancel) or the original exception. ``staging``: an ``OutputSet`` that renames the file into
    place with the run's other outputs. Returns the path.
    """
    path = Path(os.path.abspath(path))
    if mode not in ("w", "a"):
        raise RitmError(f"Unknown write mode '{mode}'; use 'w' (write/replace) or 'a' (append).")
    if path.suffix.lower() != ".gpkg":
        raise RitmError(f"'{path}' is not a GeoPackage name; give the output a .gpkg extension.")
    if not path.parent.exists():
        raise RitmError(f"The folder '{path.parent}' does not exist; create it or choose another.")
    existing = list_layers(path) if path.exists() else []
    has_layer = layer.lower() in (name.lower() for name in existing)
    if mode == "a" and has_layer:
        gdf = to_layer_crs(gdf, _layer_crs(str(path), layer), f"the layer '{layer}' of '{path}'")
        try:
            _write_layer(gdf, str(path), layer, append=True)
        except Exception as exc:  # noqa: BLE001
            raise RitmError(
                f"Appending {len(gdf)} feature(s) to layer '{layer}' of '{path}' failed ({exc}); "
                "nothing was appended. Check that the columns and geometry type match the layer."
            ) from exc
        return path
    if has_layer and not overwrite and not written_by_us(path, layer):
        raise LayerExists(str(path), layer)

    with output_path(str(path), staging) as tmp:
        if path.exists():
            shutil.copy2(path, tmp)
        n = len(gdf)
        starts = list(range(0, n, chunk_size)) or [0]
        for i, start in enumerate(starts):
            if cancel is not None and cancel():
                raise RitmError(f"Writing '{path}' was cancelled; the file was left as it was.")
            _write_layer(gdf.iloc[start : start + chunk_size], tmp, layer, append=i > 0)
    return path


def write_vector(gdf: gpd.GeoDataFrame, path: str | os.PathLike, layer: str = "buildings", *, mode: str = "w",
                 overwrite: bool = False, cancel: Callable[[], bool] | None = None, staging=None) -> Path:
    """``write_gpkg`` for a GeoPackage; any other one-file format (GeoJSON, FlatGeobuf...) is written
    whole under its incomplete name and renamed over the file the user chose."""
    from ritm_qgis.engine.geo.output_paths import VECTOR_DRIVERS

    path = Path(os.path.abspath(path))
    if path.suffix.lower() == ".gpkg":
        return write_gpkg(gdf, path, layer, mode=mode, overwrite=overwrite, cancel=cancel, staging=staging)
    driver = VECTOR_DRIVERS.get(path.suffix.lower())
    if driver is None:
        raise RitmError(f"'{path}' is not a vector format this project writes; use .gpkg, .geojson or .fgb.")
    if mode == "a":
        raise RitmError(f"Appending needs a GeoPackage; '{path.name}' is {driver}. Write to a .gpkg layer instead.")
    if cancel is not None and cancel():
        raise RitmError(f"Writing '{path}' was cancelled; the file was left as it was.")
    with output_path(str(path), staging) as tmp:
        gdf.to_file(tmp, driver=driver, engine="pyogrio")
    return path
