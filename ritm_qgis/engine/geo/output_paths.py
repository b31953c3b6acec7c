"""Check an output path before any work is done, so a long run never fails at its very end."""

from __future__ import annotations

import os
import re

from ritm_qgis.core.errors import RitmError

__all__ = ["check_writable", "gpkg_path", "split_layer", "vector_path", "vector_destination", "VECTOR_DRIVERS"]


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


# one key=value of an OGR destination: 'single quoted' (backslash escapes), "double quoted" ("" escapes) or bare
_OGR_PART = re.compile(r"""\s*(\w+)=('(?:[^'\\]|\\.)*'|"(?:[^"]|"")*"|[^\s'"]+)""")


def _unquote(value: str) -> str:
    if value.startswith("'"):
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    if value.startswith('"'):
        return value[1:-1].replace('""', '"')
    return value


def parse_ogr_destination(text: str) -> tuple[str, str | None]:
    """``ogr:dbname='/a b/f.gpkg' table="my layer" (geom)`` (QGIS's "Save to GeoPackage") -> (file, layer);
    values may be quoted and hold spaces. Text without ``dbname=`` is a RitmError."""
    body = text[4:] if text.startswith("ogr:") else text
    values, pos = {}, 0
    while (m := _OGR_PART.match(body, pos)) is not None:
        values[m.group(1).lower()] = _unquote(m.group(2))
        pos = m.end()
    if not values.get("dbname"):
        raise RitmError(f"Could not read a file name from the destination '{text}'; give a file such as "
                        "'out.gpkg' or 'out.gpkg|layername=buildings'.")
    return values["dbname"], values.get("table") or None


def vector_destination(path: str, layer: str | None, what: str = "output layer", shown: str | None = None):
    """(file path, layer name or None) of a vector output, checked: a format that is not one file (a
    Shapefile) or that OGR cannot write is a RitmError, as is a folder that cannot be written."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in VECTOR_DRIVERS:
        raise RitmError(f"The {what} cannot be written as '{shown or path}'; choose a GeoPackage (.gpkg), GeoJSON "
                        "(.geojson) or FlatGeobuf (.fgb) file.")
    if layer is not None and not layer.strip():
        raise RitmError(f"The {what} names an empty layer in '{shown or path}'; give a layer name or none.")
    return check_writable(path, what), layer


def split_layer(text: str) -> tuple[str, str | None]:
    """A vector file named as text -> (file path, layer name or None): 'file.gpkg', 'f.gpkg|layername=x'
    (QGIS's layer source; nothing else may follow the file) or QGIS's 'ogr:dbname=... table=...'.

    The engine's one reader of such text, which only the command line gives; the QGIS glue decodes
    QGIS's own sources with QGIS (``ritm_qgis/layer_source.py``)."""
    text = str(text)
    if text.startswith("ogr:"):
        return parse_ogr_destination(text)
    path, *options = text.split("|")
    layer = None
    for option in options:
        key, _, value = option.partition("=")
        if key.strip().lower() != "layername" or not value:
            raise RitmError(f"'{text}': only '|layername=NAME' can follow the file name, not '|{option}'.")
        layer = layer or value
    return path, layer


def vector_path(destination: str, what: str = "output layer") -> tuple[str, str | None]:
    """A vector destination as text ('file.gpkg', 'f.gpkg|layername=x', 'f.geojson', or QGIS's
    'ogr:dbname=... table=...') -> (file path, layer name or None), checked by ``vector_destination``."""
    return vector_destination(*split_layer(destination), what, shown=destination)


def gpkg_path(destination: str, what: str = "output layer") -> tuple[str, str | None]:
    """``vector_path`` for outputs that must be a GeoPackage."""
    path, layer = vector_path(destination, what)
    if not path.lower().endswith(".gpkg"):
        raise RitmError(f"The {what} must be a GeoPackage (.gpkg), not '{destination}'; "
                        "choose a file name ending in .gpkg.")
    return path, layer
