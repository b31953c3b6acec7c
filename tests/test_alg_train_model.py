"""train_model through processing.run: a few real training steps on a generated scene."""

import pytest

from data_builders import cancelling_feedback, provider, scene  # noqa: F401

qgis_core = pytest.importorskip("qgis.core", reason="PyQGIS (Debian's python3-qgis) is not installed")


def params(tmp_path, raster, gpkg, **kw):
    p = {"INPUT": raster, "FOOTPRINTS": gpkg, "INIT": "none", "ARCH": "hrnet_tiny", "SAMPLES": 1, "EPOCHS": 1,
         "BATCH_SIZE": 2, "DEVICE": "cpu", "OUTPUT_FOLDER": str(tmp_path / "run")}
    p.update(kw)
    return p


def test_training_writes_a_loadable_checkpoint_with_metadata(provider, tmp_path):
    import processing

    from ritm_qgis.models import load_model

    raster, gpkg, _ = scene(str(tmp_path), height=300, width=320)
    res = processing.run("ritm_qgis:train_model", params(tmp_path, raster, gpkg))
    model, info = load_model(res["CHECKPOINT"])
    assert info.arch == "hrnet_tiny"
    assert info.metadata.get("regime") and "raster:" in str(info.metadata)
    # the layer's temporary copy is not left beside the checkpoints (issue 16, point 8)
    assert not [p.name for p in (tmp_path / "run").iterdir() if p.suffix == ".gpkg"]


def test_cancel_saves_the_weights_so_far(provider, tmp_path):
    import processing

    raster, gpkg, _ = scene(str(tmp_path), height=300, width=320)
    fb = cancelling_feedback(1)
    res = processing.run("ritm_qgis:train_model", params(tmp_path, raster, gpkg, EPOCHS=50), feedback=fb)
    assert fb.isCanceled()
    from ritm_qgis.models import load_model

    _, info = load_model(res["CHECKPOINT"])
    assert info.metadata.get("complete") is False


def test_empty_footprint_layer_is_refused(provider, tmp_path):
    import geopandas as gpd
    import processing
    from qgis.core import QgsProcessingException

    raster, gpkg, _ = scene(str(tmp_path), height=120, width=120, buildings=[(20, 20, 40, 40)])
    empty = str(tmp_path / "empty.gpkg")
    gpd.read_file(gpkg).iloc[:0].to_file(empty, layer="footprints")
    with pytest.raises(QgsProcessingException, match="no features"):
        processing.run("ritm_qgis:train_model", params(tmp_path, raster, empty))
