"""The evaluation loop and the `evaluate` command (issue 7)."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from ritm_qgis.engine.data.datasets import mask_folder
from ritm_qgis.engine.data.registry import open_dataset, parse_dataset_spec
from ritm_qgis.core.errors import RitmError
from ritm_qgis.engine.protocol.evaluation import Cancelled, evaluate
from ritm_qgis.engine.runtime.modes import auto_mode
from ritm_qgis.engine.protocol.noc import noc_report

from conftest import ROOT, shared_path


def write_scene_folder(root, n=10, size=96, seed=0):
    """A folder dataset of synthetic 'roofs': bright rectangles/L-shapes on textured ground."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        img = rng.integers(40, 90, (size, size, 3)).astype(np.uint8)
        mask = np.zeros((size, size), np.uint8)
        if i != 3:  # sample 3 has no building: an empty sample
            r, c = rng.integers(10, 40, 2)
            h, w = rng.integers(20, 45, 2)
            mask[r:r + h, c:c + w] = 255
            if i % 2:
                mask[r:r + h // 2, c + w:c + w + 15] = 255  # an L
        img[mask > 0] = rng.integers(150, 230, 3)
        cv2.imwrite(str(root / "images" / f"s{i:02d}.png"), img[:, :, ::-1])
        cv2.imwrite(str(root / "masks" / f"s{i:02d}.png"), mask)
    return root


@pytest.fixture(scope="module")
def tiny_net_file(tmp_path_factory):
    from ritm_qgis.models import create_model, save_checkpoint
    from ritm_qgis.models.testing import randomize_

    path = tmp_path_factory.mktemp("net") / "tiny.pth"
    save_checkpoint(path, randomize_(create_model("hrnet_tiny"), seed=1), arch="hrnet_tiny")
    return path


def network_sessions(path):
    """Sessions on the tiny network; a small zoom-in target keeps the test fast on 2 cores."""
    from ritm_qgis.engine.interactive.predictor import NetworkBackend, Predictor
    from ritm_qgis.engine.interactive.zoom_in import ZoomInParams

    backend = NetworkBackend.from_checkpoint(str(path), device="cpu")
    zoom = ZoomInParams(target_size=96, min_crop_size=48)
    return lambda: Predictor(backend, zoom_in=zoom)


def test_same_ious_whatever_the_batch_size(tmp_path, tiny_net_file):
    ds = mask_folder(str(write_scene_folder(tmp_path / "scene")), "folder")
    make = network_sessions(tiny_net_file)
    one = evaluate(ds, make, max_clicks=4, batch_size=1)
    eight = evaluate(ds, make, max_clicks=4, batch_size=8)
    assert one.names == eight.names == ds.names
    a, b = one.iou_array, eight.iou_array
    assert np.isnan(a[3]).all() and np.isnan(b[3]).all()  # the empty sample
    np.testing.assert_allclose(a, b, atol=1e-6)  # stated tolerance: float noise of batched convolutions
    assert [len(c) for c in one.clicks] == [len(c) for c in eight.clicks]


def test_grabcut_backend_on_real_grabcut_images():
    from ritm_qgis.engine.interactive.grabcut_backend import GrabCutBackend
    from ritm_qgis.engine.interactive.predictor import Predictor

    ds = open_dataset(parse_dataset_spec(f"grabcut:{shared_path('grabcut')}"))
    assert len(ds) == 50
    backend = GrabCutBackend()
    r = evaluate(ds, lambda: Predictor(backend), "grabcut", max_clicks=5, indices=range(4))
    arr = r.iou_array
    assert arr.shape == (4, 5) and not np.isnan(arr).any()
    assert r.clicks[0][0].is_positive  # the first click of a missed object is positive
    assert np.nanmean(arr[:, -1]) > 0.5


def test_cancel_raises_after_handing_out_finished_batches(tmp_path, tiny_net_file):
    ds = mask_folder(str(write_scene_folder(tmp_path / "scene", n=6)), "folder")
    seen, polls = [], {"n": 0}

    def cancel():
        polls["n"] += 1
        return polls["n"] > 5  # lets the first batch of 2 finish its 3 clicks

    with pytest.raises(Cancelled):
        evaluate(ds, network_sessions(tiny_net_file), max_clicks=3, batch_size=2, cancel=cancel,
                 on_batch=lambda r: seen.append(len(r.names)))
    assert seen == [2]


def test_common_zoom_in_size_makes_each_click_step_one_forward_pass(tmp_path):
    from ritm_qgis.engine.interactive.predictor import NetworkBackend, Predictor
    from ritm_qgis.engine.interactive.zoom_in import ZoomInParams

    class CountingBackend(NetworkBackend):
        shapes: list = []

        def forward(self, images, points):
            self.shapes.append(tuple(images.shape))
            return super().forward(images, points)

    ds = mask_folder(str(write_scene_folder(tmp_path / "scene", n=9, size=120, seed=3)), "folder")
    backend = CountingBackend.from_checkpoint("natural-tiny", device="cpu")  # trained: its masks give zoom boxes
    runs = {}
    for size in (96, (96, 96)):
        zoom = ZoomInParams(target_size=size, min_crop_size=48)
        for bs in (1, 9):
            CountingBackend.shapes = []
            arr = evaluate(ds, lambda: Predictor(backend, zoom_in=zoom), max_clicks=3, batch_size=bs).iou_array
            runs[size, bs] = arr, list(CountingBackend.shapes)
    # RITM's zoom-in (longer side): crops of different shapes go through in several passes per step
    assert len(runs[96, 9][1]) > 6
    # one common size: after the whole-image first click, each step is one pass of the 8 non-empty
    # samples with their flipped copies
    assert runs[(96, 96), 9][1][1:] == [(16, 4, 96, 96)] * 2
    np.testing.assert_allclose(runs[(96, 96), 1][0], runs[(96, 96), 9][0], atol=1e-6)
    assert not np.allclose(np.nan_to_num(runs[96, 9][0]), np.nan_to_num(runs[(96, 96), 9][0]))


def test_zoom_in_size_option_is_parsed_and_checked():
    from ritm_qgis.commands.evaluate import parse_zoom_in_size

    assert parse_zoom_in_size("400") == 400 and parse_zoom_in_size("320x480") == (320, 480)
    for bad in ("big", "400x", "8", "1x2x3"):
        with pytest.raises(RitmError, match="zoom-in-size"):
            parse_zoom_in_size(bad)


def test_evaluate_command_outputs_agree_with_noc_report(tmp_path, tiny_net_file):
    data = write_scene_folder(tmp_path / "scene", n=5)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "ritm_qgis", "evaluate", "--model", str(tiny_net_file), "--model", "grabcut",
           "--dataset", f"folder:{data}", "--max-clicks", "2", "--out", str(out), "--batch-size", "4",
           "--zoom-in-size", "96x96"]
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    report = json.loads((out / "report.json").read_text())
    assert set(report["models"]) == {"tiny", "grabcut"} and report["zoom_in_size"] == [96, 96]
    # the arithmetic of interactive use by default: bf16 where the CPU has it in hardware, else fp32
    # (OpenVINO where it is installed, else oneDNN)
    assert report["models"]["tiny"]["optimize"] == auto_mode("cpu")
    for name, m in report["models"].items():
        arr = np.load(out / m["ious_file"])
        assert arr.shape == (5, 2) and np.isnan(arr[3]).all()
        again = noc_report(name, arr, (0.8, 0.85, 0.9))
        assert m["noc"]["0.85"] == pytest.approx(again.noc[0.85])
        assert m["avg_iou_last"] == pytest.approx(again.avg_iou_last)
        assert m["n_empty_dropped"] == 1 and m["seconds_per_click"] > 0
        csv_lines = (out / name / "samples.csv").read_text().splitlines()
        assert len(csv_lines) == 6 and csv_lines[0].startswith("sample,empty,n_clicks,noc@0.8")
        assert list((out / name).glob("best_*.png")) and list((out / name).glob("worst_*.png"))
    assert "| tiny |" in (out / "table.md").read_text()
    assert (out / "iou_vs_clicks.png").stat().st_size > 1000


def test_bad_dataset_specs_are_explained(tmp_path):
    with pytest.raises(RitmError, match="KIND:PATH"):
        open_dataset(parse_dataset_spec("nocolon"))
    with pytest.raises(RitmError, match="images/ and masks/"):
        open_dataset(parse_dataset_spec(f"grabcut:{tmp_path}"))
    with pytest.raises(RitmError, match="prepare-inria"):
        open_dataset(parse_dataset_spec(f"inria:{tmp_path}"))


def test_torchrun_with_two_cpu_processes_gives_the_single_process_arrays(tmp_path, tiny_net_file):
    import os
    import shutil

    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    if not os.path.exists(torchrun):
        torchrun = shutil.which("torchrun")
    data = write_scene_folder(tmp_path / "scene", n=5)
    common = ["evaluate", "--model", str(tiny_net_file), "--dataset", f"folder:{data}", "--max-clicks", "2",
              "--device", "cpu", "--no-figures", "--batch-size", "2"]
    single = subprocess.run([sys.executable, "-m", "ritm_qgis", *common, "--out", str(tmp_path / "one")],
                            capture_output=True, text=True, cwd=ROOT)
    assert single.returncode == 0, single.stderr
    env = dict(os.environ, OMP_NUM_THREADS="1")
    double = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "ritm_qgis", *common,
                             "--out", str(tmp_path / "two")], capture_output=True, text=True, cwd=ROOT, env=env,
                            timeout=300)
    assert double.returncode == 0, double.stdout + double.stderr
    a = np.load(tmp_path / "one" / "tiny" / "ious.npy")
    b = np.load(tmp_path / "two" / "tiny" / "ious.npy")
    assert a.shape == b.shape == (5, 2)
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert json.loads((tmp_path / "two" / "report.json").read_text())["processes"] == 2
    names = [line.split(",")[0] for line in (tmp_path / "two" / "tiny" / "samples.csv").read_text().splitlines()[1:]]
    assert names == sorted(names)  # merged back in dataset order
