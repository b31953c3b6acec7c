"""GeoPackage output that never leaves a corrupt or half-filled file.

* ``mode="w"`` (create, or replace one layer): the layer is written into a temporary file in
  the same folder (a copy of the existing GeoPackage when there is one, so its other layers are
  kept), then ``os.replace``-d over the target. If anything fails or is cancelled before the
  rename, the temporary file is removed and the old file (or the absence of one) is untouched.
* ``mode="a"`` (append to an existing layer): the rows go in through one OGR transaction
  (pyogrio writes inside ``StartTransaction``/``CommitTransaction``); a failure rolls it back, so
  the layer has either all new rows or none. Appending to a missing file or layer creates it as
  in ``mode="w"``.

A file open in another program (e.g. QGIS) is best edited through that program; replacing it
from outside gives that program's open handle the old contents.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import geopandas as gpd
import pyogrio

from ritm_qgis.core.errors import RitmError

__all__ = ["write_gpkg", "read_vector", "list_layers"]


def list_layers(path: str | os.PathLike) -> list[str]:
    """Names of the layers in a vector file ([] when it does not exist)."""
    if not Path(path).exists():
        return []
    return [str(name) for name, _ in pyogrio.list_layers(path)]


def read_vector(path: str | os.PathLike, layer: str | None = None, **kwargs) -> gpd.GeoDataFrame:
    """Read any OGR vector file (a layer of it), with a ``RitmError`` when it cannot be read."""
    try:
        return gpd.read_file(path, layer=layer, **kwargs)
    except Exception as exc:  # noqa: BLE001 - pyogrio/GDAL raise several types
        where = f"layer '{layer}' of " if layer else ""
        raise RitmError(f"Could not read {where}'{path}' ({exc}); check the path and layer name.") from None


def _write_layer(gdf: gpd.GeoDataFrame, path: str, layer: str, append: bool) -> None:
    gdf.to_file(path, layer=layer, driver="GPKG", engine="pyogrio", mode="a" if append else "w")


def write_gpkg(
    gdf: gpd.GeoDataFrame,
    path: str | os.PathLike,
    layer: str = "buildings",
    *,
    mode: str = "w",
    chunk_size: int = 50_000,
    cancel: Callable[[], bool] | None = None,
) -> Path:
    """Write ``gdf`` as ``layer`` of the GeoPackage ``path``, atomically (see the module doc).

    ``mode``: ``"w"`` creates the file or replaces the layer, ``"a"`` appends rows in one
    transaction. In mode ``"w"`` rows are written in chunks of ``chunk_size`` and ``cancel()`` is
    checked between chunks; a True (or any exception) leaves the old file as it was and raises
    ``RitmError`` (cancel) or the original exception. Returns the path.
    """
    path = Path(path)
    if mode not in ("w", "a"):
        raise RitmError(f"Unknown write mode '{mode}'; use 'w' (write/replace) or 'a' (append).")
    if path.suffix.lower() != ".gpkg":
        raise RitmError(f"'{path}' is not a GeoPackage name; give the output a .gpkg extension.")
    if not path.parent.exists():
        raise RitmError(f"The folder '{path.parent}' does not exist; create it or choose another.")
    if mode == "a" and path.exists() and layer in list_layers(path):
        try:
            _write_layer(gdf, str(path), layer, append=True)
        except Exception as exc:  # noqa: BLE001
            raise RitmError(
                f"Appending {len(gdf)} feature(s) to layer '{layer}' of '{path}' failed ({exc}); "
                "nothing was appended. Check that the columns and geometry type match the layer."
            ) from exc
        return path

    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".part.gpkg", dir=path.parent)
    os.close(fd)
    try:
        os.remove(tmp)  # OGR must create the file itself (or we copy the old one there)
        if path.exists():
            shutil.copy2(path, tmp)
        n = len(gdf)
        starts = list(range(0, n, chunk_size)) or [0]
        for i, start in enumerate(starts):
            if cancel is not None and cancel():
                raise RitmError(f"Writing '{path}' was cancelled; the file was left as it was.")
            _write_layer(gdf.iloc[start : start + chunk_size], tmp, layer, append=i > 0)
        os.replace(tmp, path)
    except BaseException:
        for suffix in ("", "-journal", "-wal", "-shm"):
            if os.path.exists(tmp + suffix):
                os.remove(tmp + suffix)
        raise
    return path
