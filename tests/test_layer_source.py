"""Layer sources: QGIS decodes its own (the glue's one helper, ritm_qgis/layer_source.py), the engine
reads the text a user types (output_paths.split_layer), and both give (file, layer name)."""

import geopandas as gpd
import pytest
from shapely.geometry import box

from ritm_qgis.core.errors import RitmError
from ritm_qgis.engine.geo.output_paths import split_layer, vector_path
from ritm_qgis.engine.geo.vector_io import read_vector, write_gpkg

qgis_core = pytest.importorskip("qgis.core", reason="PyQGIS (Debian's python3-qgis) is not installed")


def _two_layer_gpkg(tmp_path):
    path = tmp_path / "a b.gpkg"
    for name, n in (("roofs: east", 1), ("footprints", 2)):
        frame = gpd.GeoDataFrame({"k": list(range(n))}, geometry=[box(i, 0, i + 1, 1) for i in range(n)],
                                 crs="EPSG:32633")
        write_gpkg(frame, str(path), layer=name, mode="a")
    return str(path)


@pytest.mark.parametrize("text, parts", [
    ("/d/f.gpkg", ("/d/f.gpkg", None)),
    ("/d/f.gpkg|layername=a:b c", ("/d/f.gpkg", "a:b c")),
    ("ogr:dbname='/a b/f.gpkg' table=\"my big buildings\" (geom)", ("/a b/f.gpkg", "my big buildings")),
])
def test_the_engine_and_qgis_split_a_source_alike(qgis_app, text, parts):
    from ritm_qgis.layer_source import destination_parts

    assert split_layer(text) == parts
    assert destination_parts(text) == parts


def test_the_engine_refuses_options_it_cannot_honour():
    with pytest.raises(RitmError, match=r"only '\|layername=NAME' can follow the file name, not '\|layerid=0'"):
        split_layer("/d/f.gpkg|layerid=0")
    with pytest.raises(RitmError, match="not '|subset"):
        read_vector("/d/f.gpkg|layername=x|subset=a")


def test_a_qgis_layer_gives_its_file_and_layer_and_the_engine_reads_that_layer(qgis_app, tmp_path):
    from qgis.core import QgsRasterLayer, QgsVectorLayer

    from ritm_qgis.gui.output import _same_source
    from ritm_qgis.layer_source import layer_parts, source_of

    path = _two_layer_gpkg(tmp_path)
    layer = QgsVectorLayer(source_of(path, "roofs: east"), "roofs", "ogr")
    assert layer.isValid()
    assert layer_parts(layer) == (path, "roofs: east")
    assert len(read_vector(*layer_parts(layer))) == 1
    assert len(read_vector(layer.source())) == 1  # the same source as text, read by the engine
    assert vector_path(layer.source()) == (path, "roofs: east")
    footprints = QgsVectorLayer(source_of(path, "footprints"), "f", "ogr")
    assert _same_source(footprints, path) and not _same_source(layer, path)
    memory = QgsVectorLayer("Polygon?crs=EPSG:32633", "scratch", "memory")
    assert layer_parts(memory) == ("", None) and not _same_source(memory, path)
    raster = QgsRasterLayer(f"/vsizip/{tmp_path}/z.zip/r.tif", "r", "gdal")
    assert layer_parts(raster)[0] == f"/vsizip/{tmp_path}/z.zip/r.tif"
