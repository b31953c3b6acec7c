"""The noc_report algorithm through processing.run in a real (headless) QGIS."""

import json

import pytest

from conftest import shared_path
from data_builders import provider  # noqa: F401 (fixture)

qgis_core = pytest.importorskip("qgis.core", reason="PyQGIS (Debian's python3-qgis) is not installed")


def test_report_and_json_match_the_engine(provider, tmp_path):
    import processing

    from ritm_qgis.engine.protocol.noc import noc_report
    import numpy as np

    files = [str(shared_path("paper_ious", f"all_ious_{m}.npy")) for m in ("notrain", "finetune")]
    result = processing.run("ritm_qgis:noc_report", {
        "IOUS": files, "THRESHOLDS": "0.8,0.9", "MAX_CLICKS": 20,
        "OUTPUT_HTML": str(tmp_path / "r.html"), "OUTPUT_JSON": str(tmp_path / "r.json"),
    })
    data = json.loads(open(result["OUTPUT_JSON"]).read())
    engine = noc_report("x", np.load(files[1]), (0.8, 0.9))
    assert data["all_ious_finetune"]["noc"]["0.9"] == pytest.approx(engine.noc[0.9])
    assert data["all_ious_notrain"]["ge_max"]["0.8"] == pytest.approx(0.648, abs=5e-4)
    assert "16.22" in open(result["OUTPUT_HTML"]).read()


def test_bad_thresholds_are_a_processing_error_with_a_sentence(provider, tmp_path):
    import processing
    from qgis.core import QgsProcessingException

    files = [str(shared_path("paper_ious", "all_ious_notrain.npy"))]
    with pytest.raises(QgsProcessingException, match="comma-separated"):
        processing.run("ritm_qgis:noc_report", {"IOUS": files, "THRESHOLDS": "eighty",
                                                "OUTPUT_HTML": str(tmp_path / "r.html")})
    assert not (tmp_path / "r.html").exists()


def test_a_file_that_is_not_an_array_is_refused(provider, tmp_path):
    import processing
    from qgis.core import QgsProcessingException

    bogus = tmp_path / "not_an_array.npy"
    bogus.write_text("hello")
    with pytest.raises(QgsProcessingException, match="not a readable .npy array"):
        processing.run("ritm_qgis:noc_report", {"IOUS": [str(bogus)], "OUTPUT_HTML": str(tmp_path / "r.html")})
