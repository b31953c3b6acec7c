"""auto_annotate (the paper's demo) through processing.run on a generated scene and a real chip."""

import cv2
import geopandas as gpd
import numpy as np
import pytest

from conftest import shared_path
from data_builders import provider, scene, write_raster  # noqa: F401

qgis_core = pytest.importorskip("qgis.core", reason="PyQGIS (Debian's python3-qgis) is not installed")


def run(params):
    import processing

    cv2.setRNGSeed(0)
    return processing.run("ritm_qgis:auto_annotate", params)


def test_footprint_reference_gives_polygons_clicks_and_figures(provider, tmp_path):
    raster, gpkg, mask = scene(str(tmp_path), height=300, width=320)
    out = {"OUTPUT": str(tmp_path / "b.gpkg"), "OUTPUT_CLICKS": str(tmp_path / "c.gpkg"),
           "OUTPUT_OVERLAY": str(tmp_path / "o.png"), "OUTPUT_ERROR_MAP": str(tmp_path / "e.png"),
           "OUTPUT_CURVE": str(tmp_path / "k.png")}
    res = run({"INPUT": raster, "REFERENCE": gpkg, "MODEL": "grabcut", "TARGET_IOU": 0.85, "MAX_CLICKS": 8, **out})
    assert 1 <= res["N_CLICKS"] <= 8
    clicks = gpd.read_file(res["OUTPUT_CLICKS"])
    assert len(clicks) == res["N_CLICKS"] and list(clicks["order"]) == list(range(1, len(clicks) + 1))
    assert clicks.crs.to_epsg() == 32633 and bool(clicks["positive"].iloc[0])
    assert clicks["iou_after"].iloc[-1] == pytest.approx(res["FINAL_IOU"])
    polys = gpd.read_file(res["OUTPUT"])
    assert len(polys) >= 1 and polys.crs.to_epsg() == 32633
    import shapely

    from ritm_qgis.engine.geo.raster_io import raster_meta

    truth = gpd.read_file(gpkg).union_all().intersection(shapely.box(*raster_meta(raster).grid.bounds))
    iou = polys.union_all().intersection(truth).area / polys.union_all().union(truth).area
    assert iou == pytest.approx(res["FINAL_IOU"], abs=0.02)  # the polygons are the mask that was scored
    for key in ("OUTPUT_OVERLAY", "OUTPUT_ERROR_MAP", "OUTPUT_CURVE"):
        assert cv2.imread(res[key]) is not None


def test_mask_raster_reference_and_extent_on_a_real_chip(provider, tmp_path):
    import rasterio

    root = shared_path("aerial", "spacenet_rio")
    name = "3band_013022223130_Public_img51.tif"
    image, mask = root / "images" / name, root / "masks" / name
    with rasterio.open(image) as ds:
        b = ds.bounds
        half = ((b.left + b.right) / 2, b.bottom, b.right, b.top)  # the right half holds the buildings
    extent = f"{half[0]},{half[2]},{half[1]},{half[3]} [EPSG:4326]"
    res = run({"INPUT": str(image), "REFERENCE_MASK": str(mask), "EXTENT": extent, "MODEL": "grabcut",
               "TARGET_IOU": 0.9, "MAX_CLICKS": 3, "OUTPUT": str(tmp_path / "b.gpkg"),
               "OUTPUT_CLICKS": str(tmp_path / "c.gpkg")})
    clicks = gpd.read_file(res["OUTPUT_CLICKS"])
    assert len(clicks) == res["N_CLICKS"] <= 3 and clicks.crs.to_epsg() == 4326
    x = clicks.geometry.x.to_numpy()
    assert (x >= half[0]).all() and (x <= half[2]).all()  # every click inside the chosen extent


def test_reference_must_be_given_exactly_once(provider, tmp_path):
    from qgis.core import QgsProcessingException

    raster, gpkg, _ = scene(str(tmp_path), height=120, width=120, buildings=[(20, 20, 40, 40)])
    with pytest.raises(QgsProcessingException, match="exactly one"):
        run({"INPUT": raster, "OUTPUT": str(tmp_path / "b.gpkg"), "OUTPUT_CLICKS": str(tmp_path / "c.gpkg")})
    empty = write_raster(str(tmp_path / "empty_mask.tif"), np.zeros((120, 120), np.uint8))
    with pytest.raises(QgsProcessingException, match="no building"):
        run({"INPUT": raster, "REFERENCE_MASK": empty, "OUTPUT": str(tmp_path / "b.gpkg"),
             "OUTPUT_CLICKS": str(tmp_path / "c.gpkg")})
    assert not (tmp_path / "b.gpkg").exists()


def test_layer_stretch_of_a_uint16_raster_is_used_and_recorded(provider, tmp_path):
    from qgis.core import QgsProject, QgsRasterLayer

    from data_builders import footprints, uint16_scene
    from ritm_qgis.engine.geo.vector_io import write_gpkg

    raster = uint16_scene(tmp_path / "u16.tif")
    gpkg = str(tmp_path / "fp.gpkg")
    write_gpkg(footprints(), gpkg, layer="buildings")
    layer = QgsRasterLayer(raster, "u16")
    layer.renderer().contrastEnhancement().setMinimumValue(150)
    layer.renderer().contrastEnhancement().setMaximumValue(1100)
    QgsProject.instance().addMapLayer(layer)
    try:
        res = run({"INPUT": layer, "REFERENCE": gpkg, "MODEL": "grabcut", "MAX_CLICKS": 1, "STRETCH": "layer",
                   "OUTPUT": str(tmp_path / "p.gpkg"), "OUTPUT_CLICKS": str(tmp_path / "c.gpkg")})
    finally:
        QgsProject.instance().removeMapLayer(layer.id())
    assert set(gpd.read_file(res["OUTPUT"])["stretch"]) == {"layer:150-1100"}
    with pytest.raises(Exception, match="LOW below HIGH"):
        run({"INPUT": raster, "REFERENCE": gpkg, "MODEL": "grabcut", "MAX_CLICKS": 1, "STRETCH": "9,1",
             "OUTPUT": str(tmp_path / "q.gpkg"), "OUTPUT_CLICKS": str(tmp_path / "d.gpkg")})
