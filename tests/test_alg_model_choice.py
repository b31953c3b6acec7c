"""The algorithms' model parameter: a choice among the models of the one list (plus a checkpoint
file), the device a choice among the devices present; a listed model is downloaded on first use."""

import hashlib

import geopandas as gpd
import pytest

from data_builders import provider  # noqa: F401
from loopback import LoopbackServer
from test_alg_segment import BUILDINGS, clicks_for, point_layer, scene
from tiny_model import tiny_checkpoint

qgis_core = pytest.importorskip("qgis.core", reason="PyQGIS (Debian's python3-qgis) is not installed")

ALGS = ("segment_from_points", "auto_annotate", "evaluate_noc")
SHIPPED = ["grabcut", "grabcut-multi", "aerial-finetuned-h18s", "aerial-finetuned-tiny", "aerial-finetuned-tiles-tiny",
           "aerial-scratch-tiny", "natural-tiny"]


def algorithm(name):
    from qgis.core import QgsApplication

    alg = QgsApplication.processingRegistry().createAlgorithmById(f"ritm_qgis:{name}")
    assert alg is not None
    return alg


@pytest.mark.parametrize("name", ALGS)
def test_model_parameter_lists_the_shipped_and_paper_models(provider, name, tmp_path, monkeypatch):
    from qgis.core import QgsProcessingParameterEnum, QgsProcessingParameterFile

    from ritm_qgis.models import catalog
    from ritm_qgis.models.catalog import default_model

    monkeypatch.setenv("RITM_QGIS_CACHE", str(tmp_path))
    alg = algorithm(name)
    model = alg.parameterDefinition("MODEL")
    assert isinstance(model, QgsProcessingParameterEnum) and model.usesStaticStrings()
    options = model.options()
    assert options[:len(SHIPPED)] == SHIPPED
    assert {"paper-finetune", "paper-scratch", "paper-notrain", "coco_lvis_h18_itermask"} <= set(options)
    assert model.defaultValue() == default_model()[0] == catalog.BEST_SHIPPED
    assert isinstance(alg.parameterDefinition("CHECKPOINT"), QgsProcessingParameterFile)
    assert alg.parameterDefinition("CHECKPOINT").flags() & alg.parameterDefinition("CHECKPOINT").FlagOptional
    device = alg.parameterDefinition("DEVICE")
    assert isinstance(device, QgsProcessingParameterEnum) and device.options()[:2] == ["auto", "cpu"]
    assert not device.checkValueIsAcceptable("tpu")
    assert not model.checkValueIsAcceptable("aerial-finetuned-h1")  # a partial name is not a model
    help_text = alg.shortHelpString()
    assert f"Default here: {catalog.BEST_SHIPPED}: " in help_text and "paper-finetune" in help_text
    # once paper-finetune is downloaded (the published file) it becomes the default, and the help says why
    (tmp_path / "paper-finetune.pth").write_bytes(b"x")
    assert algorithm(name).parameterDefinition("MODEL").defaultValue() == catalog.BEST_SHIPPED  # not published
    import dataclasses

    from test_catalog import blob_sha1

    monkeypatch.setitem(catalog._ENTRIES, "paper-finetune", dataclasses.replace(
        catalog.entry("paper-finetune"), digest="git-blob-sha1:" + blob_sha1(b"x")))
    alg = algorithm(name)
    assert alg.parameterDefinition("MODEL").defaultValue() == "paper-finetune"
    assert "paper-finetune is downloaded" in alg.shortHelpString()


def test_a_listed_model_is_downloaded_on_first_use(provider, tmp_path, monkeypatch):
    import processing
    from qgis.core import QgsProcessingFeedback

    from ritm_qgis.models import catalog

    monkeypatch.setenv("RITM_QGIS_CACHE", str(tmp_path / "cache"))
    payload = open(tiny_checkpoint(tmp_path), "rb").read()
    blob = hashlib.sha1(b"blob %d\0" % len(payload) + payload).hexdigest()
    raster, _, _ = scene(str(tmp_path))
    with LoopbackServer({"/t.pth": payload}) as server:
        catalog.add_entry(catalog.ModelEntry("test-remote", "hrnet_tiny", "tests", "a test entry", "paper",
                                             server.base + "/t.pth", f"git-blob-sha1:{blob}"))
        try:
            assert "test-remote" in algorithm("segment_from_points").parameterDefinition("MODEL").options()
            res = processing.run("ritm_qgis:segment_from_points", {
                "INPUT": raster, "POINTS": point_layer(clicks_for(BUILDINGS[:1])), "SIGN_FIELD": "sign",
                "MODEL": "test-remote", "DEVICE": "cpu", "OUTPUT": str(tmp_path / "o.gpkg")},
                feedback=QgsProcessingFeedback())
        finally:
            catalog.remove_entry("test-remote")
    assert (tmp_path / "cache" / "test-remote.pth").read_bytes() == payload
    assert [r[0] for r in server.state.requests] == ["/t.pth"]
    assert set(gpd.read_file(res["OUTPUT"])["model"]) == {"test-remote"}


def test_a_missing_checkpoint_file_is_one_sentence(provider, tmp_path):
    import processing
    from qgis.core import QgsProcessingException

    raster, _, _ = scene(str(tmp_path))
    with pytest.raises(QgsProcessingException, match="does not exist"):
        processing.run("ritm_qgis:segment_from_points", {
            "INPUT": raster, "POINTS": point_layer(clicks_for(BUILDINGS[:1])), "SIGN_FIELD": "sign",
            "CHECKPOINT": str(tmp_path / "nope.pth"), "OUTPUT": str(tmp_path / "o.gpkg")})


def test_processing_downloads_through_the_proxy_set_in_qgis(provider, tmp_path, monkeypatch):
    """Inside QGIS a Processing download takes QGIS's network stack, so the user's proxy carries it: the
    model's host does not resolve, only the proxy (a loopback server) can fetch it."""
    import processing
    from qgis.core import QgsNetworkAccessManager, QgsProcessingFeedback, QgsSettings

    from ritm_qgis.models import catalog

    monkeypatch.setenv("RITM_QGIS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(catalog.MIRROR_ENV, raising=False)
    payload = open(tiny_checkpoint(tmp_path), "rb").read()
    blob = hashlib.sha1(b"blob %d\0" % len(payload) + payload).hexdigest()
    url = "http://ritm-model-host.invalid/t.pth"
    raster, _, _ = scene(str(tmp_path))
    settings = QgsSettings()
    keys = ("proxy/proxyEnabled", "proxy/proxyType", "proxy/proxyHost", "proxy/proxyPort")
    before = {k: settings.value(k) for k in keys}
    with LoopbackServer({url: payload}) as proxy:  # a proxy is asked for the absolute URL
        port = proxy.base.rsplit(":", 1)[1]
        for key, value in zip(keys, (True, "HttpProxy", "127.0.0.1", port)):
            settings.setValue(key, value)
        QgsNetworkAccessManager.instance().setupDefaultProxyAndCache()
        catalog.add_entry(catalog.ModelEntry("test-proxied", "hrnet_tiny", "tests", "a test entry", "paper",
                                             url, f"git-blob-sha1:{blob}"))
        try:
            res = processing.run("ritm_qgis:segment_from_points", {
                "INPUT": raster, "POINTS": point_layer(clicks_for(BUILDINGS[:1])), "SIGN_FIELD": "sign",
                "MODEL": "test-proxied", "DEVICE": "cpu", "MARGIN": 40, "OUTPUT": str(tmp_path / "o.gpkg")},
                feedback=QgsProcessingFeedback())
        finally:
            catalog.remove_entry("test-proxied")
            for key, value in before.items():
                if value is None:
                    settings.remove(key)
                else:
                    settings.setValue(key, value)
            QgsNetworkAccessManager.instance().setupDefaultProxyAndCache()
    assert [r[0] for r in proxy.state.requests] == [url]
    assert (tmp_path / "cache" / "test-proxied.pth").read_bytes() == payload
    assert set(gpd.read_file(res["OUTPUT"])["model"]) == {"test-proxied"}
