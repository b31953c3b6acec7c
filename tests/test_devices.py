"""One device list: the dock and Processing offer the same devices, and a GPU that Processing offers
(read from the NVIDIA driver at QGIS start, without importing torch) never makes a run fail."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("qgis.core", reason="PyQGIS (Debian's python3-qgis) is not installed")


def test_processing_and_the_dock_offer_the_same_devices():
    import torch  # noqa: F401 - loaded, as it is once the dock has run a model

    from ritm_qgis.engine.runtime.choices import available_devices
    from ritm_qgis.engine.runtime.device import device_choices

    assert available_devices() == [value for value, _ in device_choices()]
    assert available_devices()[:2] == ["auto", "cpu"]


_SCRIPT = r"""
import json, os, sys
from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingFeedback
from ritm_qgis.engine.runtime import device
device.NVIDIA_GPUS = sys.argv[1]
app = QgsApplication([], False); app.initQgis()
from ritm_qgis.algorithms.segment_from_points import SegmentFromPointsAlgorithm
from ritm_qgis.algorithms._model_params import device_to_use
alg = SegmentFromPointsAlgorithm(); alg.initAlgorithm({})
offered = alg.parameterDefinition("DEVICE").options()
torch_at_start = "torch" in sys.modules
warnings = []
class Feedback(QgsProcessingFeedback):
    def pushWarning(self, text):
        warnings.append(text)
used = device_to_use(alg, {"DEVICE": "cuda:0"}, QgsProcessingContext(), Feedback())
print(json.dumps({"offered": offered, "torch_at_start": torch_at_start, "used": used, "warnings": warnings}))
"""


def test_a_gpu_the_driver_lists_but_torch_cannot_use_runs_on_the_cpu_with_a_warning(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("PyTorch here can use a GPU: the case is one where it cannot")
    gpu = tmp_path / "gpus" / "0000:01:00.0"
    gpu.mkdir(parents=True)
    (gpu / "information").write_text("Model: \t\t NVIDIA Test Card\nIRQ: 1\n")
    out = subprocess.run([sys.executable, "-c", _SCRIPT, str(tmp_path / "gpus")], cwd=ROOT, capture_output=True,
                         text=True, env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"})
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["offered"] == ["auto", "cpu", "cuda:0"]
    assert not result["torch_at_start"]  # the list came from the driver, not from importing torch
    assert result["used"] == "cpu"
    assert len(result["warnings"]) == 1 and "'cuda:0' cannot be used" in result["warnings"][0]
    assert "processor (CPU)" in result["warnings"][0]


def test_the_driver_list_names_each_gpu(tmp_path, monkeypatch):
    from ritm_qgis.engine.runtime import device

    for i, name in enumerate(["First Card", "Second Card"]):
        (tmp_path / f"0000:0{i}:00.0").mkdir()
        (tmp_path / f"0000:0{i}:00.0" / "information").write_text(f"Model: {name}\n")
    monkeypatch.setattr(device, "NVIDIA_GPUS", str(tmp_path))
    assert device._driver_gpus() == ["First Card", "Second Card"]
    monkeypatch.setattr(device, "NVIDIA_GPUS", str(tmp_path / "absent"))
    assert device._driver_gpus() == []
