"""QGIS-side helpers shared by the algorithms: QGIS layers in, engine values out.

Only adapters live here (a raster layer -> its file, a vector layer -> a GeoDataFrame, the
error mapping is in ``base.RitmAlgorithm``); the work itself is done by ``ritm_qgis.engine``.
Heavy imports (geopandas, shapely) happen inside the functions, so the provider loads without them.
"""

from __future__ import annotations

import os

from qgis.core import QgsCoordinateReferenceSystem, QgsProcessingException

from ritm_qgis.layer_source import layer_parts


def _isolate_geo_stack():
    from ritm_qgis.core.geos_compat import load_geo_stack_isolated

    load_geo_stack_isolated()


# see ritm_qgis/core/geos_compat.py: inside QGIS, the pip wheels must not bind to QGIS's GDAL/PROJ/GEOS
_isolate_geo_stack()


def raster_file(alg, parameters, name, context) -> str:
    """The file behind a raster parameter; a layer that is not a GDAL file is refused in words."""
    layer = alg.parameterAsRasterLayer(parameters, name, context)
    if layer is None:
        raise QgsProcessingException(f"Choose a raster for '{alg.parameterDefinition(name).description()}'.")
    path = layer_parts(layer)[0] if layer.providerType() == "gdal" else layer.source()
    if layer.providerType() != "gdal" or not os.path.isfile(path):
        raise QgsProcessingException(
            f"The raster '{layer.name()}' is not a local file GDAL can read ({layer.providerType()}: {path}); "
            "save it as a GeoTIFF first.")
    return path


def crs_text(crs: QgsCoordinateReferenceSystem) -> str | None:
    """A QGIS CRS as text pyproj understands (authority id, else WKT2), or None when unset.

    A GeoPackage layer written without a CRS has QGIS's 'Undefined SRS' (a LOCAL_CS that nothing can
    be reprojected from or to): that is no CRS either."""
    if not crs.isValid():
        return None
    if not crs.authid() and crs.toWkt().startswith('LOCAL_CS["Undefined'):
        return None
    auth = crs.authid()
    if auth and ":" in auth and not auth.upper().startswith("USER:"):
        return auth
    return crs.toWkt(QgsCoordinateReferenceSystem.WKT_PREFERRED)


def python_value(value):
    """A QVariant attribute -> a plain Python value (NULL -> None)."""
    try:
        from qgis.PyQt.QtCore import QVariant

        if isinstance(value, QVariant):
            return None if value.isNull() else value.value()
    except ImportError:  # pragma: no cover
        pass
    return value


def layer_to_frame(layer, fields=(), what="layer"):
    """A QGIS vector layer -> GeoDataFrame (geometry, ``fid`` and the named fields), CRS kept.

    Geometries are taken as stored: invalid ones are passed on for the engine to repair, empty
    ones become None. No geometry-validity filter applies (unlike Processing feature sources).
    """
    import geopandas as gpd
    import shapely

    if layer is None:
        raise QgsProcessingException(f"Choose a {what}.")
    geoms, fids, cols = [], [], {f: [] for f in fields}
    for feat in layer.getFeatures():
        g = feat.geometry()
        geoms.append(None if g is None or g.isNull() or g.isEmpty() else shapely.from_wkb(bytes(g.asWkb())))
        fids.append(int(feat.id()))
        for f in fields:
            cols[f].append(python_value(feat[f]))
    data = {"fid": fids, **cols}
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, dtype="geometry"), crs=crs_text(layer.crs()))


def stretch_rule(alg, parameters, name, input_name, context, warn):
    """The engine's StretchRule for the STRETCH parameter and the input raster layer (RitmError on bad text);
    ``warn(text)`` says when the layer's style cannot be copied."""
    from ritm_qgis.layer_stretch import stretch_for_layer

    choice = alg.parameterAsString(parameters, name, context) or "percentile"
    rule, note = stretch_for_layer(choice, alg.parameterAsRasterLayer(parameters, input_name, context))
    if note:
        warn(note)
    return rule


def layer_place(alg, key: str, layer=None, context=None):
    """Where a layer parameter's data lives, as an engine ``Place`` (file, layer name) named by the
    parameter; None for a layer that is not a file (a memory layer, a database)."""
    from ritm_qgis.engine.jobs.same_file import Place

    if layer is None:
        return None
    path, name = layer_parts(layer)
    if not path or not os.path.exists(path):
        return None
    return Place(alg.describe(key), path, name)


def refuse_outputs_among_inputs(outputs, inputs) -> None:
    """``same_file.refuse_outputs_among_inputs`` with the None entries (no such output, no file) left out."""
    from ritm_qgis.engine.jobs.same_file import refuse_outputs_among_inputs as refuse

    refuse([o for o in outputs if o is not None and o.path], [i for i in inputs if i is not None and i.path])
