"""pip's rasterio/pyproj/shapely/geopandas (own GDAL and PROJ) share one process with PyQGIS
(Debian's GDAL and PROJ): files written by one are read identically by the other, and both
reproject to the same coordinates. This is the measurement behind docs/installing.md's dependency choice."""

import numpy as np
import pytest

pytest.importorskip("qgis.core", reason="PyQGIS (Debian's python3-qgis) is not installed")


def test_geotiff_and_geopackage_round_trip_between_pip_gdal_and_qgis(qgis_app, tmp_path):
    import geopandas as gpd
    import rasterio
    from qgis.core import QgsRasterLayer, QgsVectorLayer
    from rasterio.transform import from_origin
    from shapely.geometry import box

    tif = tmp_path / "r.tif"
    with rasterio.open(tif, "w", driver="GTiff", width=40, height=30, count=3, dtype="uint8",
                       crs="EPSG:32618", transform=from_origin(500000.0, 4100000.0, 0.5, 0.5)) as dst:
        dst.write(np.arange(3 * 30 * 40, dtype=np.uint32).reshape(3, 30, 40).astype(np.uint8))
    layer = QgsRasterLayer(str(tif), "r")
    assert layer.isValid()
    assert layer.crs().authid() == "EPSG:32618"
    e = layer.extent()
    assert (e.xMinimum(), e.yMaximum(), e.xMaximum(), e.yMinimum()) == (500000.0, 4100000.0, 500020.0, 4099985.0)
    assert layer.dataProvider().sample(layer.extent().center(), 2)[0] == float(np.uint8(1 * 1200 + 15 * 40 + 20))

    gpkg = tmp_path / "b.gpkg"
    gpd.GeoDataFrame({"name": ["a"]}, geometry=[box(500001, 4099990, 500005, 4099995)], crs="EPSG:32618").to_file(
        gpkg, layer="buildings", driver="GPKG")
    vl = QgsVectorLayer(f"{gpkg}|layername=buildings", "b", "ogr")
    assert vl.isValid() and vl.featureCount() == 1
    assert vl.crs().authid() == "EPSG:32618"
    assert next(vl.getFeatures()).geometry().area() == pytest.approx(20.0)


def test_pyproj_and_qgis_reproject_to_the_same_coordinates(qgis_app):
    from pyproj import Transformer
    from qgis.core import QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsPointXY, QgsProject

    lonlat = [(-43.2, -22.9), (2.35, 48.85), (-122.6, 47.6)]  # Rio, Paris, Kitsap
    for lon, lat in lonlat:
        zone = int((lon + 180) // 6) + 1
        epsg = (32700 if lat < 0 else 32600) + zone
        x, y = Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True).transform(lon, lat)
        ct = QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:4326"), QgsCoordinateReferenceSystem(f"EPSG:{epsg}"),
                                    QgsProject.instance())
        p = ct.transform(QgsPointXY(lon, lat))
        assert (p.x(), p.y()) == (pytest.approx(x, abs=1e-6), pytest.approx(y, abs=1e-6))
