"""Where a QGIS layer's data lives, as the engine takes it: (file path, layer name or None).

QGIS glue shared by the map tool (``gui``) and the Processing algorithms, one layer below them.
QGIS decodes its own layer sources and destinations here (``QgsProviderRegistry.decodeUri``,
``QgsDataSourceUri``), so no glue module splits ``|layername=`` by hand; the engine gets a path and a
layer name. Text a user types on the command line is parsed by the engine
(``engine/geo/output_paths.split_layer``).
"""

from __future__ import annotations

from qgis.core import QgsDataSourceUri, QgsProviderRegistry


def source_parts(source: str, provider: str = "ogr") -> tuple[str, str | None]:
    """A layer source -> (file, layer name or None), decoded by ``provider``; a GDAL path inside an
    archive keeps its /vsi prefix and suffix (the path GDAL reads). ('', None) for a source that is
    not a file (a memory layer, a web service)."""
    parts = QgsProviderRegistry.instance().decodeUri(provider, source)
    path = parts.get("path") or ""
    if path and parts.get("vsiPrefix"):
        path = f"{parts['vsiPrefix']}{path}{parts.get('vsiSuffix') or ''}"
    return path, parts.get("layerName") or None


def source_of(path: str, layer: str | None = None, provider: str = "ogr") -> str:
    """The layer source QGIS writes for a file (and a layer of it): ``source_parts`` inverted."""
    parts = {"path": path}
    if layer:
        parts["layerName"] = layer
    return QgsProviderRegistry.instance().encodeUri(provider, parts)


def layer_parts(layer) -> tuple[str, str | None]:
    """``source_parts`` of a QGIS map layer, decoded by its own provider."""
    return source_parts(layer.source(), layer.providerType())


def destination_parts(destination: str) -> tuple[str, str | None]:
    """A vector destination as QGIS writes it -> (file, layer or None), decoded by QGIS itself:
    ``ogr:dbname='/a b/f.gpkg' table="my buildings" (geom)`` (the "Save to GeoPackage" choice, which
    the OGR provider's ``decodeUri`` does not read in QGIS 3.22) through ``QgsDataSourceUri``, and
    ``f.gpkg|layername=x`` or a plain file through ``QgsProviderRegistry.decodeUri('ogr', ...)``."""
    text = destination[4:] if destination.startswith("ogr:") else destination
    if text.lstrip().startswith("dbname="):
        uri = QgsDataSourceUri(text)
        return uri.database(), uri.table() or None
    path, layer = source_parts(text)
    return path or text, layer
