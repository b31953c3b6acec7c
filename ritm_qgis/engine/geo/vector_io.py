"""GeoPackage output that never leaves a corrupt or half-filled file, nor replaces a user's layer.

* A GeoPackage that exists is written **in place**, one SQLite transaction per layer (create,
  replace or append; ``gpkg_in_place``): the rows are first written by GDAL into a separate file
  beside it (``name.<pid>-<token>.incomplete.gpkg``, removed afterwards, and by the next write when
  its process was killed), then moved into the user's file in one transaction, so other programs
  that have it open (QGIS in edit mode, the map tool, a reader in WAL mode) keep working and see
  the old layer or the new one. A file whose write lock another program holds for more than a few
  seconds gets one sentence and nothing is written.
* A GeoPackage that does not exist yet is written whole beside it and linked into place, which
  never replaces a file another program created meanwhile (the layer then goes into that file in
  place). With ``staging`` (a ``core.atomic.OutputSet``) a new file is written under
  ``name.incomplete.gpkg`` and renamed with the other files of the run at its commit. A layer
  written into an existing file cannot wait for a rename: it goes in at once, so callers write
  it last in their run.
* A layer that this project did not write (marked in ``gpkg_contents.description``) is never
  replaced unless ``overwrite=True``: the user asked for it (an overwrite choice, or by naming
  that table). The refusal is ``LayerExists``, phrased by the interface that caught it.
* ``mode="a"`` (append to an existing layer): the rows are reprojected into the layer's CRS and fill
  the columns the layer has; new columns the layer lacks are left out, so the user's layer (e.g.
  the map tool's ``footprints``) keeps its columns. Appending to a missing file or layer creates it
  as in ``mode="w"``.
* Cancel (``cancel()`` polled between chunks) or a failure at any point leaves the file as it was.
"""

from __future__ import annotations

import glob
import os
import sqlite3
import uuid
from pathlib import Path
from typing import Callable

import geopandas as gpd
import pyogrio

from ritm_qgis.core.atomic import incomplete_path, output_path, remove_file
from ritm_qgis.core.cancel import Cancelled
from ritm_qgis.core.errors import RitmError
from ritm_qgis.engine.geo.gpkg_in_place import (append_rows_in, gpkg_layers, layer_columns, layer_crs_wkt,
                                               layer_description, move_layer_in)
from ritm_qgis.engine.geo.output_paths import split_layer

__all__ = ["write_gpkg", "write_vector", "read_vector", "list_layers", "LayerExists", "written_by_us", "to_layer_crs",
           "missing_columns"]

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
    """Names of the layers in a vector file ([] when it does not exist). A GeoPackage is read through
    the system SQLite (``gpkg_in_place``), which other programs in this process share."""
    if not Path(path).exists():
        return []
    if os.fspath(path).lower().endswith(".gpkg"):
        return gpkg_layers(os.path.abspath(path))
    return [str(name) for name, _ in pyogrio.list_layers(path)]


def read_vector(path: str | os.PathLike, layer: str | None = None, **kwargs) -> gpd.GeoDataFrame:
    """Read any OGR vector file (a layer of it), with a ``RitmError`` when it cannot be read.

    The layer can also be named the way QGIS names layer sources, ``file.gpkg|layername=NAME``. A
    file holding several layers must have one named: reading the first silently would evaluate
    or train on whichever layer GDAL lists first."""
    text, named = split_layer(os.fspath(path))
    layer = layer or named
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


def missing_columns(path: str | os.PathLike, layer: str, gdf: gpd.GeoDataFrame) -> list[str]:
    """The columns of ``gdf`` that ``layer`` of the GeoPackage ``path`` lacks (an append leaves them out);
    [] when there is no such file or layer."""
    if not os.fspath(path).lower().endswith(".gpkg") or not Path(path).exists():
        return []
    have = {c.lower() for c in layer_columns(os.path.abspath(path), layer)}
    if not have:
        return []
    return [str(c) for c in gdf.columns if c != gdf.geometry.name and str(c).lower() not in have]


def written_by_us(path: str | os.PathLike, layer: str) -> bool:
    """True when ``layer`` of the GeoPackage ``path`` carries this project's mark."""
    try:
        description = layer_description(os.path.abspath(path), layer)
    except RitmError:
        return False
    return bool(description and OWN_MARK in description)


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
    # GeoPackage 1.2: QGIS 3.22's GDAL 3.6 warns on every open of a 1.4 file (pyogrio's GDAL writes 1.4)
    gdf.to_file(path, layer=layer, driver="GPKG", engine="pyogrio", mode="a" if append else "w",
                dataset_options={"VERSION": "1.2"}, **options)


def _cancelled(path) -> RitmError:
    return RitmError(f"Writing '{path}' was cancelled; the file was left as it was.")


def _write_chunks(gdf: gpd.GeoDataFrame, target: str, layer: str, chunk_size: int, cancel, final: Path) -> None:
    """``gdf`` as ``layer`` of the GeoPackage ``target`` (a file only this run has open), in chunks,
    with ``cancel()`` polled before each."""
    starts = list(range(0, len(gdf), chunk_size)) or [0]
    for i, start in enumerate(starts):
        if cancel is not None and cancel():
            raise _cancelled(final)
        _write_layer(gdf.iloc[start : start + chunk_size], target, layer, append=i > 0)


def _aside_path(path: Path) -> str:
    """A fresh name beside ``path`` for the rows on their way into it: unique, as two runs may write one
    file, and carrying the writer's process id, so that the leftover of a killed run can be told apart
    from the file of a run still going; leftovers are removed here."""
    _remove_leftovers(path)
    return str(path.with_name(f"{path.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.incomplete.gpkg"))


def _remove_leftovers(path: Path) -> None:
    remove_file(incomplete_path(str(path)))  # a new file's, from a run killed before its rename
    for aside in path.parent.glob(f"{glob.escape(path.stem)}.*-*.incomplete.gpkg"):
        pid = aside.name[len(path.stem) + 1:].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            remove_file(str(aside))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process, or no permission to ask
        return True
    return True


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

    ``mode``: ``"w"`` creates the file or the layer, or replaces the layer (one this project wrote,
    or any with ``overwrite``); ``"a"`` appends rows, reprojected into the layer's CRS. Rows are
    written in chunks of ``chunk_size`` and ``cancel()`` is checked between chunks; a True (or any
    exception) leaves the file as it was and raises ``RitmError`` (cancel) or the original
    exception. ``staging``: an ``OutputSet`` that renames a new file into place with the run's
    other outputs (an existing file is written in place at once). Returns the path.
    """
    path = Path(os.path.abspath(path))
    if mode not in ("w", "a"):
        raise RitmError(f"Unknown write mode '{mode}'; use 'w' (write/replace) or 'a' (append).")
    if path.suffix.lower() != ".gpkg":
        raise RitmError(f"'{path}' is not a GeoPackage name; give the output a .gpkg extension.")
    if not path.parent.exists():
        raise RitmError(f"The folder '{path.parent}' does not exist; create it or choose another.")
    if not path.exists() and staging is not None:
        with output_path(str(path), staging) as tmp:
            _write_chunks(gdf, tmp, layer, chunk_size, cancel, path)
        return path
    if not path.exists() and _create_whole(gdf, path, layer, chunk_size, cancel):
        return path
    has_layer = layer.lower() in (name.lower() for name in list_layers(path))
    if mode == "a" and has_layer:
        gdf = to_layer_crs(gdf, layer_crs_wkt(str(path), layer), f"the layer '{layer}' of '{path}'")
        _append_in_place(gdf, path, layer, chunk_size, cancel)
        return path
    if has_layer and not overwrite and not written_by_us(path, layer):
        raise LayerExists(str(path), layer)
    aside = _aside_path(path)
    try:
        _write_chunks(gdf, aside, layer, chunk_size, cancel, path)
        move_layer_in(str(path), aside, layer, replace=has_layer, cancel=cancel)
    except Cancelled:
        raise _cancelled(path) from None
    except sqlite3.Error as exc:
        raise RitmError(f"Writing the layer '{layer}' into '{path}' failed ({exc}); the file was left as it "
                        "was.") from exc
    finally:
        remove_file(aside)
    return path


def _create_whole(gdf: gpd.GeoDataFrame, path: Path, layer: str, chunk_size: int, cancel) -> bool:
    """Write a new GeoPackage beside ``path`` and link it into place, which fails rather than replace a
    file another program created meanwhile (then False: the caller writes into that file in place)."""
    aside = _aside_path(path)
    try:
        _write_chunks(gdf, aside, layer, chunk_size, cancel, path)
        try:
            os.link(aside, path)
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links (FAT, some network shares)
            if path.exists():
                return False
            os.replace(aside, path)
        return True
    finally:
        remove_file(aside)


def _append_in_place(gdf: gpd.GeoDataFrame, path: Path, layer: str, chunk_size: int, cancel) -> list[str]:
    aside = _aside_path(path)
    try:
        _write_chunks(gdf, aside, layer, chunk_size, cancel, path)
        return append_rows_in(str(path), aside, layer, cancel=cancel)
    except Cancelled:
        raise _cancelled(path) from None
    except RitmError:
        raise
    except Exception as exc:  # noqa: BLE001 - GDAL and SQLite raise several types
        raise RitmError(
            f"Appending {len(gdf)} feature(s) to layer '{layer}' of '{path}' failed ({exc}); "
            "nothing was appended. Check that the columns and geometry type match the layer."
        ) from exc
    finally:
        remove_file(aside)


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
