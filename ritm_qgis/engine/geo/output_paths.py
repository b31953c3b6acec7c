"""Check an output path before any work is done, so a long run never fails at its very end."""

from __future__ import annotations

import os

from ritm_qgis.core.errors import RitmError

__all__ = ["check_writable", "gpkg_path", "vector_path", "VECTOR_DRIVERS"]


def check_writable(path: str | os.PathLike, what: str = "output") -> str:
    """``path`` as a string if its folder exists (or can be created) and is writable, else a RitmError."""
    path = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(path)
    probe = folder
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe) or not os.access(probe, os.W_OK | os.X_OK):
        raise RitmError(f"The {what} '{path}' cannot be written: the folder '{probe}' is not writable; "
                        "choose another location.")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise RitmError(f"The {what} '{path}' exists and is read-only; choose another file name.")
    os.makedirs(folder, exist_ok=True)
    return path


# vector formats an output may take (one file each, so it can be replaced in one rename)
VECTOR_DRIVERS = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON", ".fgb": "FlatGeobuf",
                  ".gml": "GML", ".kml": "KML", ".sqlite": "SQLite"}


def vector_path(destination: str, what: str = "output layer") -> tuple[str, str | None]:
    """A QGIS/OGR vector destination ('file.gpkg', 'ogr:dbname=... table=...', 'f.gpkg|layername=x',
    'f.geojson', ...) -> (file path, layer name or None), checked writable; a format that is not
    one file (a Shapefile) or that OGR cannot write is a RitmError."""
    layer = None
    dest = destination
    if dest.startswith("ogr:"):
        import re

        m = re.match(r"ogr:dbname='?([^' ]+)'?(?:\s+table=\"?([^\" ]+)\"?)?", dest)
        if m:
            dest, layer = m.group(1), m.group(2)
    if "|layername=" in dest:
        dest, layer = dest.split("|layername=", 1)
    ext = os.path.splitext(dest)[1].lower()
    if ext not in VECTOR_DRIVERS:
        raise RitmError(f"The {what} cannot be written as '{destination}'; choose a GeoPackage (.gpkg), GeoJSON "
                        "(.geojson) or FlatGeobuf (.fgb) file.")
    return check_writable(dest, what), layer


def gpkg_path(destination: str, what: str = "output layer") -> tuple[str, str | None]:
    """``vector_path`` for outputs that must be a GeoPackage."""
    path, layer = vector_path(destination, what)
    if not path.lower().endswith(".gpkg"):
        raise RitmError(f"The {what} must be a GeoPackage (.gpkg), not '{destination}'; "
                        "choose a file name ending in .gpkg.")
    return path, layer
