"""tile_raster and vectorize_mask through processing.run in a real (headless) QGIS."""

import os

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from rasterio.enums import ColorInterp

from conftest import shared_path
from data_builders import provider, scene, scene_arrays, transform, write_raster  # noqa: F401

qgis_core = pytest.importorskip("qgis.core", reason="PyQGIS (Debian's python3-qgis) is not installed")


def run(alg, params, feedback=None):
    import processing

    return processing.run(f"ritm_qgis:{alg}", params, feedback=feedback)


def test_tile_raster_pad_keeps_georeference_and_writes_an_index(provider, tmp_path):
    raster, _, _ = scene(str(tmp_path))  # 640 x 600
    out = tmp_path / "tiles"
    res = run("tile_raster", {"INPUT": raster, "TILE_SIZE": 256, "EDGE": 1,
                              "OUTPUT_FOLDER": str(out), "OUTPUT_INDEX": str(tmp_path / "index.gpkg")})
    assert res["TILE_COUNT"] == 9
    names = sorted(os.listdir(out))
    assert names == sorted(f"scene_{r}_{c}.tif" for r in range(3) for c in range(3))
    with rasterio.open(raster) as src, rasterio.open(out / "scene_1_2.tif") as t:
        assert t.crs == src.crs and t.width == 256 and t.count == 3
        assert t.transform == src.transform * rasterio.Affine.translation(512, 256)
        np.testing.assert_array_equal(t.read()[:, :, :128], src.read(window=((256, 512), (512, 640))))
        assert t.nodata == 0
    index = gpd.read_file(res["OUTPUT_INDEX"])
    assert len(index) == 9 and set(index["name"]) == {n[:-4] for n in names}
    first = index[index["name"] == "scene_0_0"].geometry.iloc[0]
    assert first.bounds == pytest.approx((500000, 5000600 - 128, 500128, 5000600))


def test_tile_raster_drop_and_shift(provider, tmp_path):
    raster, _, _ = scene(str(tmp_path))
    drop = run("tile_raster", {"INPUT": raster, "TILE_SIZE": 256, "EDGE": 0,
                               "OUTPUT_FOLDER": str(tmp_path / "d"), "OUTPUT_INDEX": str(tmp_path / "d.gpkg")})
    assert drop["TILE_COUNT"] == 4
    shift = run("tile_raster", {"INPUT": raster, "TILE_SIZE": 256, "EDGE": 2, "OVERLAP": 16,
                                "OUTPUT_FOLDER": str(tmp_path / "s"), "OUTPUT_INDEX": str(tmp_path / "s.gpkg")})
    with rasterio.open(tmp_path / "s" / "scene_2_2.tif") as t:
        assert t.transform.c == pytest.approx(500000 + (640 - 256) * 0.5)


def test_tile_raster_rgba_keeps_four_bands_and_skips_transparent_tiles(provider, tmp_path):
    img, _ = scene_arrays(height=200, width=200)
    alpha = np.full((1, 200, 200), 255, np.uint8)
    alpha[:, :100, :100] = 0
    raster = write_raster(tmp_path / "rgba.tif", np.concatenate([img, alpha]),
                          colorinterp=[ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha])
    res = run("tile_raster", {"INPUT": raster, "TILE_SIZE": 100, "SKIP_EMPTY": True,
                              "OUTPUT_FOLDER": str(tmp_path / "t"), "OUTPUT_INDEX": str(tmp_path / "t.gpkg")})
    assert res["TILE_COUNT"] == 3
    assert not (tmp_path / "t" / "rgba_0_0.tif").exists()
    with rasterio.open(tmp_path / "t" / "rgba_1_1.tif") as t:
        assert t.count == 4 and t.colorinterp[3] == ColorInterp.alpha


def test_tile_raster_refuses_rotation_and_missing_crs(provider, tmp_path):
    from qgis.core import QgsProcessingException

    img, _ = scene_arrays(height=64, width=64)
    rotated = write_raster(tmp_path / "rot.tif", img, transform_=rasterio.Affine(0.5, 0.1, 500000, 0.1, -0.5, 5000000))
    with pytest.raises(QgsProcessingException, match="rotated or sheared"):
        run("tile_raster", {"INPUT": rotated, "TILE_SIZE": 32, "OUTPUT_FOLDER": str(tmp_path / "r"),
                            "OUTPUT_INDEX": str(tmp_path / "r.gpkg")})
    nocrs = write_raster(tmp_path / "nocrs.tif", img, crs=None)
    with pytest.raises(QgsProcessingException, match="no coordinate reference system"):
        run("tile_raster", {"INPUT": nocrs, "TILE_SIZE": 32, "OUTPUT_FOLDER": str(tmp_path / "n"),
                            "OUTPUT_INDEX": str(tmp_path / "n.gpkg")})
    assert not (tmp_path / "r.gpkg").exists() and not (tmp_path / "n.gpkg").exists()


def test_tile_raster_cancelled_mid_run_leaves_no_tile_and_no_index(provider, tmp_path):
    from data_builders import cancelling_feedback

    raster, _, _ = scene(str(tmp_path))
    fb = cancelling_feedback(30)
    out = tmp_path / "tiles"
    try:
        res = run("tile_raster", {"INPUT": raster, "TILE_SIZE": 64, "OUTPUT_FOLDER": str(out),
                                  "OUTPUT_INDEX": str(tmp_path / "index.gpkg")}, feedback=fb)
    except qgis_core.QgsProcessingException:
        res = {}
    assert fb.isCanceled() and any(p >= 30 for p in fb.seen)
    assert not res.get("TILE_COUNT")
    assert not (tmp_path / "index.gpkg").exists()
    assert not out.exists() or os.listdir(out) == []


def test_tile_raster_refuses_an_unwritable_output(provider, tmp_path):
    from qgis.core import QgsProcessingException

    raster, _, _ = scene(str(tmp_path))
    blocker = tmp_path / "a_file"  # a folder path through a plain file: unwritable even for root
    blocker.write_text("x")
    with pytest.raises(QgsProcessingException, match="cannot be written"):
        run("tile_raster", {"INPUT": raster, "OUTPUT_FOLDER": str(blocker / "tiles"),
                            "OUTPUT_INDEX": str(tmp_path / "i.gpkg")})
    with pytest.raises(QgsProcessingException, match="cannot be written"):
        run("tile_raster", {"INPUT": raster, "OUTPUT_FOLDER": str(tmp_path / "tiles"),
                            "OUTPUT_INDEX": str(blocker / "i.gpkg")})
    assert not (tmp_path / "i.gpkg").exists()


def test_vectorize_mask_matches_the_buildings_and_their_areas(provider, tmp_path):
    _, mask = scene_arrays()
    path = write_raster(tmp_path / "mask.tif", mask.astype(np.uint8) * 255)
    res = run("vectorize_mask", {"INPUT": path, "OUTPUT": str(tmp_path / "b.gpkg")})
    gdf = gpd.read_file(res["OUTPUT"], layer="buildings")
    assert len(gdf) == 5
    assert sorted(gdf["area_m2"].round(3)) == sorted(h * w * 0.25 for _, _, h, w in
                                                      __import__("data_builders").BUILDINGS)
    assert gdf.crs.to_epsg() == 32633


def test_vectorize_mask_probability_threshold_min_area_and_append(provider, tmp_path):
    prob = np.zeros((100, 100), np.float32)
    prob[10:40, 10:40] = 0.7
    prob[60:90, 60:90] = 0.4
    prob[5:7, 80:82] = 0.9  # a 4-pixel speck = 1 m2
    path = write_raster(tmp_path / "prob.tif", prob)
    out = str(tmp_path / "p.gpkg")
    run("vectorize_mask", {"INPUT": path, "MIN_AREA": 2.0, "OUTPUT": out})
    assert len(gpd.read_file(out)) == 1
    run("vectorize_mask", {"INPUT": path, "THRESHOLD": 0.3, "APPEND": True, "OUTPUT": out})
    assert len(gpd.read_file(out)) == 1 + 3


def test_vectorize_mask_uint16_with_nodata(provider, tmp_path):
    m = np.zeros((80, 80), np.uint16)
    m[10:30, 10:30] = 7
    m[50:70, 50:70] = 65535  # nodata: background, not a building
    path = write_raster(tmp_path / "u16.tif", m, nodata=65535)
    res = run("vectorize_mask", {"INPUT": path, "SIMPLIFY": 0.5, "REGULARIZE": 0.5, "OUTPUT": str(tmp_path / "u.gpkg")})
    gdf = gpd.read_file(res["OUTPUT"])
    assert len(gdf) == 1 and gdf["area_m2"].iloc[0] == pytest.approx(100.0)


def test_vectorize_mask_spacenet_chip_counts_its_buildings(provider, tmp_path):
    from ritm_qgis.engine.geo.vectorize import vectorize_raster

    mask = str(shared_path("aerial", "spacenet_rio", "masks", "3band_013022223130_Public_img50.tif"))
    res = run("vectorize_mask", {"INPUT": mask, "OUTPUT": str(tmp_path / "rio.gpkg")})
    gdf = gpd.read_file(res["OUTPUT"])
    assert len(gdf) == len(vectorize_raster(mask)) > 5
    assert gdf.crs.to_epsg() == 4326
    assert 10 < gdf["area_m2"].median() < 2000  # metres on the local UTM zone, not degrees


def test_vectorize_mask_refuses_a_non_geopackage_output(provider, tmp_path):
    from qgis.core import QgsProcessingException

    path = write_raster(tmp_path / "m.tif", np.ones((10, 10), np.uint8))
    with pytest.raises(QgsProcessingException, match="GeoPackage"):
        run("vectorize_mask", {"INPUT": path, "OUTPUT": str(tmp_path / "b.shp")})
