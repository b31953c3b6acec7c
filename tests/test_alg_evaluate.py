"""evaluate_noc through processing.run: the engine's protocol on a raster + footprint layer."""

import csv

import cv2

import geopandas as gpd
import numpy as np
import pytest
import shapely

from conftest import shared_path
from data_builders import (BUILDINGS, cancelling_feedback, footprints, provider, scene,  # noqa: F401
                           spacenet_reference)

qgis_core = pytest.importorskip("qgis.core", reason="PyQGIS (Debian's python3-qgis) is not installed")

CHIPS = ["3band_013022223130_Public_img50", "3band_013022223130_Public_img51"]


def run(params, feedback=None):
    """Runs the algorithm with OpenCV's RNG seeded: GrabCut draws from it (its k-means start), so the
    engine's own evaluation, seeded the same way and with the same batch size, gives the same numbers."""
    import processing

    params = {"MODEL": "grabcut", **params}  # the figures below were measured with GrabCut, not the default

    cv2.setRNGSeed(0)
    params.setdefault("BATCH_SIZE", 1)
    return processing.run("ritm_qgis:evaluate_noc", params, feedback=feedback)


def engine_ious(raster, reference, mode="tiles", max_clicks=5, tile_size=500):
    from ritm_qgis.engine.protocol.evaluation import evaluate
    from ritm_qgis.engine.data.geo_dataset import raster_footprint_dataset
    from ritm_qgis.engine.interactive.grabcut_backend import GrabCutBackend
    from ritm_qgis.engine.interactive.predictor import Predictor

    backend = GrabCutBackend()
    cv2.setRNGSeed(0)
    ds = raster_footprint_dataset(raster, reference, mode=mode, tile_size=tile_size)
    return evaluate(ds, lambda: Predictor(backend), "grabcut", max_clicks).iou_array


def outputs(tmp_path, tag):
    return {"OUTPUT_TABLE": str(tmp_path / f"{tag}.csv"), "OUTPUT_HTML": str(tmp_path / f"{tag}.html"),
            "OUTPUT_IOUS": str(tmp_path / f"{tag}.npy")}


@pytest.mark.parametrize("chip", CHIPS)
def test_spacenet_chip_report_equals_the_engine_evaluation(provider, tmp_path, chip):
    root = shared_path("aerial", "spacenet_rio")
    image = str(root / "images" / f"{chip}.tif")
    reference = spacenet_reference(root / "masks" / f"{chip}.tif", tmp_path / "ref.gpkg")
    res = run({"INPUT": image, "REFERENCE": reference, "MODEL": "grabcut", "MAX_CLICKS": 5, "TILE_SIZE": 200,
               **outputs(tmp_path, "rio"), "OUTPUT_FOOTPRINTS": str(tmp_path / "pred.gpkg")})
    ours = np.load(res["OUTPUT_IOUS"])
    ref = engine_ious(image, reference, max_clicks=5, tile_size=200)
    np.testing.assert_array_equal(ours, ref)
    from ritm_qgis.engine.protocol.noc import noc_report

    report = noc_report("grabcut", ref, (0.8, 0.85, 0.9))
    assert res["N_SAMPLES"] == report.n_samples > 0 and res["N_EMPTY"] == report.n_empty_dropped
    assert res["NOC_80"] == pytest.approx(report.noc[0.8]) and res["NOC_90"] == pytest.approx(report.noc[0.9])
    html = open(res["OUTPUT_HTML"]).read()
    assert f"{report.noc[0.8]:.2f}" in html and "data:image/png;base64," in html
    rows = list(csv.DictReader(open(res["OUTPUT_TABLE"])))
    assert len(rows) == len(ref) == 9  # 438 x 406 in 200 px tiles, padded
    for row, ious in zip(rows, ref):
        if row["empty"] == "1":
            assert np.isnan(ious).all()
        else:
            assert float(row["iou_5"]) == pytest.approx(ious[4], abs=1e-6)
    pred = gpd.read_file(res["OUTPUT_FOOTPRINTS"])
    assert len(pred) > 0 and pred.crs.to_epsg() == 4326
    # each predicted polygon's IoU field is its sample's IoU at the last click
    last = {r["sample"]: float(r["iou_5"]) for r in rows if r["empty"] == "0"}
    assert all(abs(last[s] - i) < 1e-6 for s, i in zip(pred["sample"], pred["iou"]))


def test_building_mode_reference_in_another_crs_and_invalid_polygons(provider, tmp_path):
    raster, gpkg, _ = scene(str(tmp_path))
    fp = footprints()
    expected = engine_ious(raster, fp, mode="buildings", max_clicks=3)
    # the same footprints in Web Mercator, plus a self-intersecting "bow-tie" over building 5
    other = fp.to_crs("EPSG:3857")
    r, c, h, w = BUILDINGS[4]
    b = fp.geometry.iloc[4].bounds
    bowtie = shapely.Polygon([(b[0], b[1]), (b[2], b[3]), (b[2], b[1]), (b[0], b[3])])
    assert not bowtie.is_valid
    bad = gpd.GeoDataFrame({"bid": [99]}, geometry=[bowtie], crs=fp.crs).to_crs("EPSG:3857")
    layer = gpd.GeoDataFrame(__import__("pandas").concat([other.iloc[:4], bad]), crs="EPSG:3857")
    path = tmp_path / "merc.gpkg"
    layer.to_file(path)
    res = run({"INPUT": raster, "REFERENCE": str(path), "MODE": 1, "MAX_CLICKS": 3, **outputs(tmp_path, "b")})
    ious = np.load(res["OUTPUT_IOUS"])
    assert ious.shape == (5, 3) and not np.isnan(ious).any()
    # reprojection round trip moves edges by far less than a pixel: same numbers for the 4 plain ones
    np.testing.assert_allclose(ious[:4], expected[:4], atol=0.02)


def test_area_of_interest_keeps_only_the_tiles_it_touches(provider, tmp_path):
    raster, gpkg, _ = scene(str(tmp_path))
    aoi = gpd.GeoDataFrame(geometry=[shapely.box(500010, 5000580, 500020, 5000590)], crs="EPSG:32633")
    aoi.to_file(tmp_path / "aoi.gpkg")
    res = run({"INPUT": raster, "REFERENCE": gpkg, "TILE_SIZE": 200, "MAX_CLICKS": 2,
               "AREA_OF_INTEREST": str(tmp_path / "aoi.gpkg"), **outputs(tmp_path, "a")})
    rows = list(csv.DictReader(open(res["OUTPUT_TABLE"])))
    assert [r["sample"] for r in rows] == ["scene_0_0"]


def test_empty_reference_layer_is_refused(provider, tmp_path):
    raster, _, _ = scene(str(tmp_path))
    empty = footprints().iloc[:0]
    empty.to_file(tmp_path / "empty.gpkg")
    with pytest.raises(qgis_core.QgsProcessingException, match="has no features"):
        run({"INPUT": raster, "REFERENCE": str(tmp_path / "empty.gpkg"), **outputs(tmp_path, "e")})
    assert not (tmp_path / "e.csv").exists() and not (tmp_path / "e.html").exists()


def test_reference_elsewhere_and_raster_without_crs_are_refused(provider, tmp_path):
    from data_builders import scene_arrays, write_raster

    raster, _, _ = scene(str(tmp_path))
    far = footprints()
    far["geometry"] = far.translate(100_000, 0)
    far.to_file(tmp_path / "far.gpkg")
    with pytest.raises(qgis_core.QgsProcessingException, match="does not overlap the raster"):
        run({"INPUT": raster, "REFERENCE": str(tmp_path / "far.gpkg"), **outputs(tmp_path, "f")})
    img, _ = scene_arrays(height=100, width=100)
    nocrs = write_raster(tmp_path / "nocrs.tif", img, crs=None)
    footprints().to_file(tmp_path / "fp.gpkg")
    with pytest.raises(qgis_core.QgsProcessingException, match="no coordinate reference system"):
        run({"INPUT": nocrs, "REFERENCE": str(tmp_path / "fp.gpkg"), **outputs(tmp_path, "n")})


def test_unwritable_output_is_refused_before_any_work(provider, tmp_path):
    raster, gpkg, _ = scene(str(tmp_path))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(qgis_core.QgsProcessingException, match="cannot be written"):
        run({"INPUT": raster, "REFERENCE": gpkg, "OUTPUT_TABLE": str(blocker / "t.csv"),
             "OUTPUT_HTML": str(tmp_path / "r.html")})
    assert not (tmp_path / "r.html").exists()


def test_cancel_mid_run_writes_nothing(provider, tmp_path):
    raster, gpkg, _ = scene(str(tmp_path))
    fb = cancelling_feedback(1)
    with pytest.raises(qgis_core.QgsProcessingException, match="cancelled"):
        run({"INPUT": raster, "REFERENCE": gpkg, "TILE_SIZE": 128, "MAX_CLICKS": 3, "BATCH_SIZE": 1,
             **outputs(tmp_path, "c"), "OUTPUT_FOOTPRINTS": str(tmp_path / "c.gpkg")}, feedback=fb)
    assert fb.isCanceled()
    for ext in ("csv", "html", "npy", "gpkg"):
        assert not (tmp_path / f"c.{ext}").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
