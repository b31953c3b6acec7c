"""The algorithms in a Graphical Modeler model (.model3) and from qgis_process with the packaged plugin."""

import csv
import os
import subprocess
import zipfile

import geopandas as gpd
import numpy as np
import pytest
import rasterio

from conftest import ROOT, unpacked_profile
from data_builders import provider, scene, scene_arrays, write_raster  # noqa: F401

qgis_core = pytest.importorskip("qgis.core", reason="PyQGIS (Debian's python3-qgis) is not installed")

MODEL = ROOT / "tests" / "models" / "tile_then_evaluate.model3"
QGIS_PROCESS = "/usr/bin/qgis_process.bin"  # Debian's wrapper passes a flag 3.22 rejects


def test_model3_tile_then_evaluate_runs_in_the_modeler_engine(provider, tmp_path):
    import processing
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback, QgsProcessingModelAlgorithm

    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(str(MODEL))
    assert [c.algorithmId() for c in model.childAlgorithms().values()].count("ritm_qgis:tile_raster") == 1
    # the evaluation's area of interest is the tile index written by the tiling step
    ev = model.childAlgorithm("evaluate")
    assert ev.parameterSources()["AREA_OF_INTEREST"][0].outputChildId() == "tile"
    raster, gpkg, _ = scene(str(tmp_path))
    # make the lower half nodata: the tiling step skips those tiles, so they are not evaluated
    with rasterio.open(raster, "r+") as ds:
        ds.nodata = 0
        data = ds.read()
        data[:, 400:, :] = 0
        ds.write(data)
    params = {"raster": raster, "footprints": gpkg, "tile_size": 200,
              "tile:tiles": str(tmp_path / "tiles"), "evaluate:table": str(tmp_path / "t.csv"),
              "evaluate:report": str(tmp_path / "r.html"), "evaluate:ious": str(tmp_path / "i.npy")}
    feedback = QgsProcessingFeedback()
    res = processing.run(model, params, feedback=feedback, context=QgsProcessingContext())
    tiles = sorted(os.listdir(tmp_path / "tiles"))
    assert tiles == sorted(f"scene_{r}_{c}.tif" for r in range(2) for c in range(4))  # rows 0-1 of 3
    rows = list(csv.DictReader(open(res["evaluate:table"])))
    assert sorted(r["sample"] for r in rows) == [t[:-4] for t in tiles]
    ious = np.load(res["evaluate:ious"])
    assert ious.shape == (8, 3)
    assert "NoC" in open(res["evaluate:report"]).read()


@pytest.fixture(scope="module")
def profile(plugin_zip, tmp_path_factory):
    if not os.path.exists(QGIS_PROCESS):
        pytest.skip("QGIS (qgis_process) is not installed")
    config, _ = unpacked_profile(plugin_zip, tmp_path_factory.mktemp("qgis-config-alg"))
    out = qgis_process(config, "plugins", "enable", "ritm_qgis")
    assert out.returncode == 0, out.stdout + out.stderr
    return config


def qgis_process(config, *args):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QGIS_CUSTOM_CONFIG_PATH=str(config))
    env["PATH"] = os.path.dirname(os.path.abspath(os.sys.executable)) + os.pathsep + env.get("PATH", "")
    env.pop("PYTHONPATH", None)  # the packaged plugin, not the source tree
    return subprocess.run([QGIS_PROCESS, *args], capture_output=True, text=True, env=env, cwd=config, timeout=300)


def test_qgis_process_lists_every_algorithm_of_the_packaged_plugin(profile, plugin_zip):
    names = zipfile.ZipFile(plugin_zip).namelist()
    for module in ("tile_raster", "segment_from_points", "vectorize_mask", "evaluate_noc"):
        assert f"ritm_qgis/algorithms/{module}.py" in names
    listing = qgis_process(profile, "list")
    for alg in ("tile_raster", "segment_from_points", "vectorize_mask", "evaluate_noc"):
        assert f"ritm_qgis:{alg}" in listing.stdout


def test_qgis_process_runs_vectorize_mask_and_tile_raster(profile, tmp_path):
    _, mask = scene_arrays()
    mask_path = write_raster(tmp_path / "mask.tif", mask.astype(np.uint8) * 255)
    out = qgis_process(profile, "run", "ritm_qgis:vectorize_mask", "--", f"INPUT={mask_path}",
                       "SIMPLIFY=0.25", f"OUTPUT={tmp_path / 'b.gpkg'}")
    assert out.returncode == 0, out.stdout + out.stderr
    # messages wait for the progress dots to end instead of running into them (issue 16)
    assert any(line.startswith("5 polygon(s) written") for line in out.stdout.splitlines()), out.stdout
    gdf = gpd.read_file(tmp_path / "b.gpkg")
    assert len(gdf) == 5 and gdf.crs.to_epsg() == 32633

    raster, _, _ = scene(str(tmp_path))
    out = qgis_process(profile, "run", "ritm_qgis:tile_raster", "--", f"INPUT={raster}", "TILE_SIZE=320",
                       f"OUTPUT_FOLDER={tmp_path / 'tiles'}", f"OUTPUT_INDEX={tmp_path / 'index.gpkg'}")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "TILE_COUNT:\t2" in out.stdout
    assert sorted(os.listdir(tmp_path / "tiles")) == ["scene_0_0.tif", "scene_0_1.tif"]  # drop: 1 row of 2
    assert len(gpd.read_file(tmp_path / "index.gpkg")) == 2


def test_qgis_process_reports_a_bad_input_in_words(profile, tmp_path):
    img, _ = scene_arrays(height=64, width=64)
    nocrs = write_raster(tmp_path / "nocrs.tif", img, crs=None)
    out = qgis_process(profile, "run", "ritm_qgis:tile_raster", "--", f"INPUT={nocrs}", "TILE_SIZE=32",
                       f"OUTPUT_FOLDER={tmp_path / 't'}", f"OUTPUT_INDEX={tmp_path / 'i.gpkg'}")
    assert out.returncode != 0
    assert (out.stdout + out.stderr).count("no coordinate reference system") == 1  # printed once (issue 16)


def test_qgis_process_runs_the_model3_with_the_packaged_plugin(profile, tmp_path):
    """The model file from the command line: tiling then evaluation (GrabCut, torch and the geo stack in
    QGIS's own process), exiting cleanly (exit code 0, no crash at teardown)."""
    raster, gpkg, _ = scene(str(tmp_path))
    out = qgis_process(profile, "run", str(MODEL), "--", f"raster={raster}", f"footprints={gpkg}", "tile_size=320",
                       f"tile:tiles={tmp_path / 'tiles'}", f"evaluate:table={tmp_path / 't.csv'}",
                       f"evaluate:report={tmp_path / 'r.html'}", f"evaluate:ious={tmp_path / 'i.npy'}")
    assert out.returncode == 0, out.stdout + out.stderr
    assert np.load(tmp_path / "i.npy").shape == (4, 3)  # 640 x 600 in 320 px tiles, padded: 2 x 2
    assert len(os.listdir(tmp_path / "tiles")) == 4
