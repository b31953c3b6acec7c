"""'Adapt a model to this area' through processing.run (issue 23): real raster and footprint layer."""

import pytest

from data_builders import provider  # noqa: F401
from ritm_qgis.engine.geo.synthetic_scene import make_scene, write_scene
from tiny_model import one_torch_thread  # noqa: F401

qgis_core = pytest.importorskip("qgis.core", reason="PyQGIS (Debian's python3-qgis) is not installed")


def test_adapt_model_reports_the_holdout_and_saves_a_listed_model(provider, tmp_path, monkeypatch):
    import processing

    from ritm_qgis.models.adapted import read_provenance
    from ritm_qgis.models.catalog import model_choices

    monkeypatch.setenv("RITM_QGIS_CACHE", str(tmp_path / "cache"))
    write_scene(make_scene(size=512, n_buildings=14, seed=5), str(tmp_path / "scene.tif"),
                footprints_path=str(tmp_path / "truth.gpkg"))
    res = processing.run("ritm_qgis:adapt_model", {
        "INPUT": str(tmp_path / "scene.tif"), "FOOTPRINTS": str(tmp_path / "truth.gpkg"),
        "MODEL": "aerial-finetuned-tiny", "MINUTES": 0.1, "NAME": "my-area"})
    assert "held-out 7 buildings, NoC10@85" in res["REPORT"] and "IoU at click 1" in res["REPORT"]
    if res["IMPROVED"]:
        assert res["MODEL_NAME"] == "my-area" and "my-area" in model_choices()
        assert read_provenance("my-area")["layer"] == "truth"
    else:
        assert res["MODEL_NAME"] == "" and "stays as it was" in res["REPORT"]
        assert not (tmp_path / "cache" / "my-area.pth").exists()


def test_adapt_model_refuses_an_empty_layer(provider, tmp_path):
    import geopandas as gpd
    import processing
    from qgis.core import QgsProcessingException

    write_scene(make_scene(size=256, n_buildings=3, seed=1), str(tmp_path / "scene.tif"),
                footprints_path=str(tmp_path / "truth.gpkg"))
    empty = str(tmp_path / "empty.gpkg")
    gpd.read_file(tmp_path / "truth.gpkg").iloc[:0].to_file(empty, layer="footprints")
    with pytest.raises(QgsProcessingException, match="no features"):
        processing.run("ritm_qgis:adapt_model", {"INPUT": str(tmp_path / "scene.tif"), "FOOTPRINTS": empty,
                                                 "MODEL": "aerial-finetuned-tiny", "MINUTES": 0.1})
    with pytest.raises(QgsProcessingException, match="at least 10 buildings"):
        processing.run("ritm_qgis:adapt_model", {"INPUT": str(tmp_path / "scene.tif"),
                                                 "FOOTPRINTS": str(tmp_path / "truth.gpkg"),
                                                 "MODEL": "aerial-finetuned-tiny", "MINUTES": 0.1})


def test_adapt_model_offers_the_networks_only_and_no_device(provider):
    from qgis.core import QgsApplication

    alg = QgsApplication.processingRegistry().algorithmById("ritm_qgis:adapt_model")
    options = alg.parameterDefinition("MODEL").options()
    assert "aerial-finetuned-h18s" in options and "paper-finetune" in options
    assert "grabcut" not in options and "grabcut-multi" not in options  # weight-free: nothing to train
    assert alg.parameterDefinition("CHECKPOINT") is not None and alg.parameterDefinition("DEVICE") is None
