"""--optimize openvino-int8: int8 convolutions in OpenVINO, close to fp32 on a real crop, cached once."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from ritm_qgis.engine.interactive import calibration_clicks
from ritm_qgis.engine.interactive.interactive_settings import interactive_predictor
from ritm_qgis.engine.interactive.predictor import NetworkBackend
from ritm_qgis.engine.runtime import build_cache, openvino_cpu, openvino_int8
from tiny_model import one_torch_thread  # noqa: F401 (module fixture)

pytestmark = pytest.mark.skipif(not openvino_cpu.available(),
                                reason="the optional openvino package is not installed (pip install openvino)")

# A held-out SpaceNet Rio chip (never a calibration crop), read in place from the shared data.
HELD_OUT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "aerial" / "spacenet_rio"
CHIP = "3band_013022223130_Public_img51.tif"


@pytest.fixture(scope="module")
def real_tiny():
    """The project's shipped tiny aerial network (real weights, hrnet_tiny widths)."""
    from ritm_qgis.models.checkpoint import load_model

    import torch

    net, info = load_model("aerial-finetuned-tiny", torch.device("cpu"))
    return net.eval(), info.weights_sha256


@pytest.fixture(scope="module")
def held_out_crop():
    import rasterio

    path = HELD_OUT / "images" / CHIP
    if not path.exists():
        pytest.skip(f"the shared data is absent ({path})")
    with rasterio.open(path) as src:
        rgb = src.read([1, 2, 3]).transpose(1, 2, 0)
    with rasterio.open(HELD_OUT / "masks" / CHIP) as src:
        mask = src.read(1) > 127
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=4)
    big = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    rows, cols = np.nonzero(labels == big)
    r, c = int(np.median(rows)), int(np.median(cols))
    r0, c0 = max(0, r - 100), max(0, c - 100)
    return np.ascontiguousarray(rgb[r0:r0 + 200, c0:c0 + 200]), (r - r0, c - c0)


def probs(backend, img, click):
    session = interactive_predictor(backend)
    session.set_image(img)
    first = session.add_click(*click, True).prob
    return [first, session.add_click(5, 5, False).prob]


@pytest.fixture(scope="module")
def first_build(real_tiny, tmp_path_factory):
    """The first int8 build of the tiny network into a cache of this module's own:
    (cache root, backend, progress heard, quantizations and conversions before)."""
    net, digest = real_tiny
    root = tmp_path_factory.mktemp("built")
    old = os.environ.get(build_cache.ROOT_ENV)
    os.environ[build_cache.ROOT_ENV] = str(root)
    heard = []
    counts = openvino_int8.quantizations, openvino_cpu.conversions
    try:
        backend = NetworkBackend(net, device="cpu", optimize="openvino-int8", weights_digest=digest,
                                 progress=lambda done, total, message=None: heard.append((done, total, message)))
    finally:
        if old is None:
            del os.environ[build_cache.ROOT_ENV]
        else:
            os.environ[build_cache.ROOT_ENV] = old
    return root, backend, heard, counts


def entry_of(root, path):
    (entry,) = [p for p in root.iterdir() if p.name.startswith(path + "-")]
    return entry


def test_conv_groups_keep_the_input_side_and_the_classifiers(first_build):
    import openvino as ov

    model = ov.Core().read_model(str(entry_of(first_build[0], openvino_cpu.PATH) / "model.xml"))
    groups = openvino_int8.conv_groups(model)
    assert len(groups["input"]) >= 2 and groups["input"][-1].input_value(0).get_node().get_type_name() == "Add"
    assert [c.input_value(1).get_partial_shape()[0].get_length() for c in groups["classifier"]] == [1, 1]
    assert len(groups["head"]) == 3 and {c.input_value(0).get_node().get_type_name() for c in groups["head"]} == {
        "Concat"}  # OCR: the 3x3 on HRNet's joined branches, the soft-region classifier, context + features
    assert groups["attention"] and all(c.input_value(1).get_partial_shape()[2].get_length() == 1
                                       for c in groups["attention"])
    assert len(groups["body"]) > 10
    chosen = openvino_int8.chosen_convs(model)
    assert len(chosen) == len(groups["body"]) + len(groups["head"])
    kept = groups["input"] + groups["attention"] + groups["classifier"]
    assert not {id(c) for c in chosen} & {id(c) for c in kept}


def test_int8_network_runs_int8_convolutions_close_to_fp32_and_is_built_once(real_tiny, first_build, held_out_crop,
                                                                             monkeypatch):
    import openvino as ov

    net, digest = real_tiny
    root, backend, heard, (quantized, converted) = first_build
    monkeypatch.setenv(build_cache.ROOT_ENV, str(root))
    assert backend.optimize == "openvino-int8" and backend._openvino.source == "converted"
    assert openvino_int8.quantizations == quantized + 1 and openvino_cpu.conversions == converted + 1
    assert heard[0][0] == 0 and heard[-1][:2] == (3, 3) and "int8" in heard[0][2]

    # the stored network has FakeQuantize nodes, and OpenVINO runs those convolutions in int8
    entry = entry_of(root, openvino_int8.PATH)
    key = json.loads((entry / build_cache.KEY_FILE).read_text())
    assert key["path"] == "openvino-int8" and key["weights_sha256"] == digest and key["runtime"].startswith("openvino ")
    assert any((entry / "compiled").iterdir())  # the compiled blob is kept at the build: the next load is quick
    compiled = ov.Core().compile_model(str(entry / "model.xml"), "CPU", {"PERF_COUNT": True, "INFERENCE_NUM_THREADS": 1})
    request = compiled.create_infer_request()
    request.infer(list(calibration_clicks.check_input(4)))
    kinds = [p.exec_type for p in request.profiling_info if p.node_type == "Convolution"]
    int8 = [k for k in kinds if "I8" in k.upper()]
    assert len(int8) >= 0.8 * len(kinds) and len(kinds) - len(int8) >= 2, kinds  # input side, attention, classifiers fp32

    # close to RITM's arithmetic on a held-out aerial building
    img, click = held_out_crop
    ref = probs(NetworkBackend(net, device="cpu", optimize="none"), img, click)
    got = probs(backend, img, click)
    for a, b in zip(ref, got):
        ma, mb = a > 0.49, b > 0.49
        iou = (ma & mb).sum() / (ma | mb).sum()
        assert iou > 0.9 and np.abs(a - b).mean() < 0.03 and ma.sum() > 50, (iou, np.abs(a - b).mean())
    assert set(backend.paths_run) == {"openvino-int8"}

    stamp = (entry / "model.bin").stat().st_mtime_ns
    passes = []
    hook = net.register_forward_hook(lambda *_: passes.append(1))
    try:  # a cached network is checked against the logits stored at its build: no PyTorch pass
        again = NetworkBackend(net, device="cpu", optimize="openvino-int8", weights_digest=digest)
    finally:
        hook.remove()
    assert again._openvino.source == "cache" and openvino_int8.quantizations == quantized + 1 and not passes
    assert (entry / openvino_cpu.CHECK_FILE).is_file()
    assert (entry / "model.bin").stat().st_mtime_ns == stamp

    with open(entry / "model.bin", "r+b") as f:  # a damaged entry is built again (not converted again), not fatal
        f.truncate(100)
    rebuilt = NetworkBackend(net, device="cpu", optimize="openvino-int8", weights_digest=digest)
    assert rebuilt.optimize == "openvino-int8" and rebuilt._openvino.source == "converted"
    assert openvino_int8.quantizations == quantized + 2 and openvino_cpu.conversions == converted + 1
    np.testing.assert_allclose(probs(rebuilt, img, click)[-1], got[-1], atol=1e-4)  # deterministic calibration


def test_an_int8_network_that_fails_its_check_runs_as_openvino_fp32(real_tiny, first_build, monkeypatch):
    net, digest = real_tiny
    root = first_build[0]
    monkeypatch.setenv(build_cache.ROOT_ENV, str(root))
    monkeypatch.setattr(openvino_int8, "CHECK_IOU", 1.01)  # no int8 network can pass: the cached one neither
    with pytest.warns(RuntimeWarning, match="openvino-int8 failed.*too far from fp32.*running it as --optimize openvino"):
        backend = NetworkBackend(net, device="cpu", optimize="openvino-int8", weights_digest=digest)
    assert backend.optimize == "openvino" and backend._openvino is not None
    probs(backend, np.full((64, 64, 3), 120, np.uint8), (32, 32))
    assert set(backend.paths_run) == {"openvino"}
    (entry,) = [p for p in root.iterdir() if p.name.startswith(openvino_int8.PATH + "-")]
    assert not (entry / "model.xml").exists() and "too far from fp32" in (entry / openvino_int8.REFUSED_FILE).read_text()

    # remembered: the next load runs fp32 at once, without quantizing again
    quantized = openvino_int8.quantizations
    with pytest.warns(RuntimeWarning, match="too far from fp32.*remembered in the build cache"):
        again = NetworkBackend(net, device="cpu", optimize="openvino-int8", weights_digest=digest)
    assert again.optimize == "openvino" and openvino_int8.quantizations == quantized
    build_cache.discard(entry)  # the other tests build the int8 network again


def test_calibration_inputs_are_real_sessions_and_deterministic():
    calls = []

    def forward(image, points):  # a stand-in network that finds a centred square: clicks come from its errors
        calls.append(image.shape)
        h, w = image.shape[2:]
        out = np.full((1, 1, h, w), -5.0, np.float32)
        out[..., h // 4:3 * h // 4, w // 4:3 * w // 4] = 5.0
        return out

    first = calibration_clicks.calibration_inputs(forward, 4, clicks=3)
    assert len(first) == 2 * 3 * len(calibration_clicks.crop_names()) >= 12
    assert {s[2:] for s in calls} >= {(256, 256)} and any(max(s[2:]) == 400 for s in calls)
    image, points = first[1]
    assert image.shape[1] == 4 and image[0, 3].max() > 0.9  # the previous probabilities as the 4th channel
    assert points.shape[0] == 1 and (points[0, :, 2] >= 0).sum() == 2
    again = calibration_clicks.calibration_inputs(forward, 4, clicks=3)
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(first, again))
    total = sum(os.path.getsize(p) for p in calibration_clicks.CROPS_DIR.iterdir())
    assert total < 1_000_000


def test_a_model_used_before_is_ready_from_the_cache_without_reading_its_weights(first_build, monkeypatch):
    root = first_build[0]
    monkeypatch.setenv(build_cache.ROOT_ENV, str(root))
    first = NetworkBackend.from_checkpoint("aerial-finetuned-tiny", device="cpu", optimize="openvino-int8")
    assert first.info is not None and first.optimize == "openvino-int8"  # read in full once: its facts kept
    quantized = openvino_int8.quantizations
    quick = NetworkBackend.from_checkpoint("aerial-finetuned-tiny", device="cpu", optimize="openvino-int8")
    assert quick.optimize == "openvino-int8" and quick._openvino.source == "cache" and quick._model is None
    assert openvino_int8.quantizations == quantized
    img = np.full((96, 96, 3), 110, np.uint8)
    img[30:66, 30:66] = 200
    assert probs(quick, img, (48, 48))[0].shape == (96, 96) and quick._model is None  # clicks need no PyTorch
    assert quick.model is not None and quick.info.weights_sha256 == first.info.weights_sha256  # read when asked


def test_a_cached_network_loads_in_the_background_and_gives_the_same_probabilities(first_build, monkeypatch):
    import locale

    import torch

    from ritm_qgis.engine.runtime import openvino_prefetch

    monkeypatch.setenv(build_cache.ROOT_ENV, str(first_build[0]))
    ctype = locale.setlocale(locale.LC_CTYPE)
    normal = NetworkBackend.from_checkpoint("aerial-finetuned-tiny", device="cpu", optimize="openvino-int8")
    assert normal.optimize == "openvino-int8" and not normal.loaded_in_background
    threads = torch.get_num_threads()
    assert openvino_prefetch.start("aerial-finetuned-tiny", "openvino-int8", threads, (2, 96, 96))
    quick = NetworkBackend.from_checkpoint("aerial-finetuned-tiny", device="cpu", optimize="openvino-int8")
    assert quick.optimize == "openvino-int8" and quick.loaded_in_background and quick._model is None
    img = np.full((96, 96, 3), 110, np.uint8)
    img[30:66, 30:66] = 200
    for a, b in zip(probs(quick, img, (48, 48)), probs(normal, img, (48, 48))):
        assert np.allclose(a, b, atol=1e-6)
    again = NetworkBackend.from_checkpoint("aerial-finetuned-tiny", device="cpu", optimize="openvino-int8")
    assert again._openvino.source == "cache"  # handed over once
    # a guess that does not match the load is not taken: another thread count
    assert openvino_prefetch.start("aerial-finetuned-tiny", "openvino-int8", threads + 1, None)
    assert not NetworkBackend.from_checkpoint("aerial-finetuned-tiny", device="cpu",
                                              optimize="openvino-int8").loaded_in_background
    assert not openvino_cpu._pending  # waited for, not left compiling beside the load
    assert locale.setlocale(locale.LC_CTYPE) == ctype  # two readers at once would leave it "C" (ASCII)


def test_the_background_load_finds_only_a_model_used_before(first_build, monkeypatch, tmp_path):
    from ritm_qgis.engine.runtime import openvino_prefetch

    monkeypatch.setenv(build_cache.ROOT_ENV, str(first_build[0]))
    assert not openvino_prefetch.start("aerial-finetuned-tiny", "none", 1) and not openvino_cpu._pending
    assert openvino_prefetch.start(str(tmp_path / "missing.pth"), "auto", 1)
    assert openvino_cpu._pending.pop()[1]() is None  # the thread found nothing to load
    monkeypatch.setenv(build_cache.ROOT_ENV, str(tmp_path / "empty"))
    assert openvino_prefetch.start("aerial-finetuned-tiny", "openvino-int8", 1)
    assert openvino_cpu._pending.pop()[1]() is None
    monkeypatch.setenv(build_cache.ROOT_ENV, str(first_build[0]))
    NetworkBackend.from_checkpoint("aerial-finetuned-tiny", device="cpu", optimize="openvino-int8")  # used before
    assert openvino_prefetch.start("aerial-finetuned-tiny", "openvino-int8", 1)
    entry, compiled = openvino_cpu._pending.pop()[1]()  # a model used before: loaded, checked
    assert entry.name.startswith("openvino-int8-") and compiled is not None


def test_predict_loads_a_model_used_before_in_the_background(first_build, monkeypatch, tmp_path, capsys):
    import cv2

    from ritm_qgis.cli import main

    monkeypatch.setenv(build_cache.ROOT_ENV, str(first_build[0]))
    NetworkBackend.from_checkpoint("aerial-finetuned-tiny", device="cpu", optimize="openvino-int8")  # used before
    img = np.full((120, 120, 3), 110, np.uint8)
    img[40:80, 40:80] = 200
    cv2.imwrite(str(tmp_path / "img.png"), img)
    timings = tmp_path / "t.json"
    args = ["predict", "--checkpoint", "aerial-finetuned-tiny", "--image", str(tmp_path / "img.png"), "--device",
            "cpu", "--click", "60,60,+", "--click", "45,45,+", "--out-mask", str(tmp_path / "m.png"), "--threads",
            "1", "--optimize", "openvino-int8", "--timings", str(timings)]
    assert main(args) == 0
    data = json.loads(timings.read_text())
    assert data["optimize"] == "openvino-int8" and data["loaded_in_background"] is True
    assert "(loaded in the background while starting)" in capsys.readouterr().out
    assert main(args[:-1] + [str(timings), "--no-zoom-in"]) == 0  # no warm-up pass then, still taken
    assert json.loads(timings.read_text())["loaded_in_background"] is True


def test_the_network_code_digest_is_taken_without_importing_the_network():
    import subprocess
    import sys

    modules = ["ritm_qgis.models.hrnet", "ritm_qgis.models.network"]
    code = ("import sys; from ritm_qgis.engine.runtime.openvino_cpu import code_digest; "
            f"print(code_digest({modules!r}), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1]).stdout.split()
    assert out == [openvino_cpu.code_digest(modules), "False"]


def test_a_command_that_fails_after_the_background_load_started_exits_cleanly(first_build, tmp_path, monkeypatch):
    import subprocess
    import sys

    monkeypatch.setenv(build_cache.ROOT_ENV, str(first_build[0]))
    NetworkBackend.from_checkpoint("aerial-finetuned-tiny", device="cpu", optimize="openvino-int8")  # used before
    env = dict(os.environ)
    done = subprocess.run([sys.executable, "-m", "ritm_qgis", "predict", "--checkpoint", "aerial-finetuned-tiny",
                           "--image", str(tmp_path / "missing.png"), "--click", "10,10,+", "--device", "cpu",
                           "--optimize", "openvino-int8", "--out-mask", str(tmp_path / "m.png")],
                          capture_output=True, text=True, env=env, cwd=Path(__file__).resolve().parents[1], timeout=300)
    assert done.returncode == 1 and "Traceback" not in done.stderr and "missing.png" in done.stderr
    assert not (tmp_path / "m.png").exists()
