"""Issue 27 in the real plugin on QGIS: choosing a model whose speed-up path must be built first
(the int8 OpenVINO network of a tiny real network: converted, calibrated, quantized) says so in
the dock while it runs, the *in use*
line says how long the model took to be ready, and choosing the same model again reads the build
cache (nothing built)."""

import pytest

from test_model_picker import clean_settings, started  # noqa: F401 - the plugin on a real canvas
from tiny_model import tiny_checkpoint

from ritm_qgis.engine.runtime import build_cache, cpu_bf16, openvino_cpu, openvino_int8
from ritm_qgis.gui.settings import PREFIX

pytestmark = [pytest.mark.qgis,
              pytest.mark.skipif(not openvino_cpu.available(),
                                 reason="the optional openvino package is not installed (pip install openvino)")]


@pytest.fixture
def grabcut_first(clean_settings, tmp_path, monkeypatch):  # noqa: F811 - pytest's fixture by name
    """The tool starts on GrabCut (nothing to build), with a build cache of its own."""
    monkeypatch.setenv(build_cache.ROOT_ENV, str(tmp_path / "built"))
    monkeypatch.setenv(cpu_bf16.NATIVE_BF16_ENV, "0")  # 'auto' is OpenVINO int8 here, as on a CPU without bf16
    clean_settings.setValue(PREFIX + "model", "grabcut")


def test_a_first_build_shows_progress_and_a_model_used_before_reads_the_cache(grabcut_first, started, tmp_path):
    dock, tool = started.map_tool.dock, started.map_tool.tool
    tool.wait_idle()
    assert dock.in_use.text().startswith("in use: grabcut on cpu, ready in ")
    states = []
    tool.busyChanged.connect(lambda busy, what: states.append(dock.busy_label.text()))
    ckpt = tiny_checkpoint(tmp_path, name="fresh.pth", seed=5)  # weights never converted before
    before = openvino_cpu.conversions, openvino_int8.quantizations

    dock.model.choose_file(ckpt)
    tool.wait_idle(timeout=300)
    assert (openvino_cpu.conversions, openvino_int8.quantizations) == (before[0] + 1, before[1] + 1)
    building = [s for s in states if "building the int8 OpenVINO network" in s]
    assert building and building[0] == (f"busy: loading the model '{ckpt}': building the int8 OpenVINO network "
                                        "(once per model and CPU)…")
    assert states[-1] == "ready" and dock.busy_bar.isHidden()
    first = dock.in_use.text()
    assert first.startswith(f"in use: {ckpt} (hrnet_tiny) on cpu, ready in ") and first.endswith(
        " s (built once for this CPU)")
    assert tool.worker.state.backend.optimize == "openvino-int8"
    assert sorted(p.name.split("-")[1] for p in (tmp_path / "built").iterdir() if p.name.startswith("openvino-")) == [
        "f32", "int8"]

    states.clear()
    dock.use_model("grabcut")
    tool.wait_idle(timeout=120)
    assert dock.in_use.text().startswith("in use: grabcut on cpu, ready in ")
    dock.model.choose_file(ckpt)  # the same model again: read from the cache, nothing built
    tool.wait_idle(timeout=120)
    assert (openvino_cpu.conversions, openvino_int8.quantizations) == (before[0] + 1, before[1] + 1)
    assert not any("building" in s or "converting" in s for s in states)
    again = dock.in_use.text()
    assert again.startswith(f"in use: {ckpt} (hrnet_tiny) on cpu, ready in ") and "built" not in again
    backend = tool.worker.state.backend
    assert backend.optimize == "openvino-int8" and backend._openvino.source == "cache"
    assert backend._model is None  # ready without reading the weights (its PyTorch network is not needed)
