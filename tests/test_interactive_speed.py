"""Interactive settings (RITM's demo), the bf16 CPU mode and ``predict --timings``."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from ritm_qgis.engine.interactive.interactive_settings import (FOCUS_CROP, MAX_SIZE, interactive_predictor,
                                                               load_interactive_backend, warm_up)
from ritm_qgis.engine.interactive.predictor import NetworkBackend, Predictor
from ritm_qgis.engine.runtime import cpu_bf16
from tiny_model import one_torch_thread, tiny_net  # noqa: F401 (module fixtures)


class Shapes:
    """The input shapes a backend's network receives (a forward pre-hook)."""

    def __init__(self, module):
        self.seen = []
        self.handle = module.register_forward_pre_hook(lambda m, args: self.seen.append(tuple(args[0].shape)))

    def close(self):
        self.handle.remove()


def scene(h, w):
    rng = np.random.default_rng(1)
    img = rng.integers(0, 80, (h, w, 3), dtype=np.uint8)
    img[h // 3:h // 2, w // 3:w // 2] = 220
    return img


def test_interactive_sessions_use_the_focus_crop_from_the_first_click():
    from test_predictor import DiskNet  # its object is a disk around the positive clicks

    backend = NetworkBackend(DiskNet(radius=12.0), device="cpu", optimize="none")
    img = scene(300, 520)
    clicks = [(120, 200, True), (110, 190, True), (20, 20, False)]
    rec = Shapes(backend.model)
    try:
        session = interactive_predictor(backend)
        session.set_image(img)
        preds = [session.add_click(*c) for c in clicks]
        interactive = list(rec.seen)
        rec.seen.clear()
        protocol = Predictor(backend)  # evaluate's settings: first click on the whole image, full size
        protocol.set_image(img)
        protocol.add_click(*clicks[0])
        rec.seen.clear()
        whole = interactive_predictor(backend, zoom_in=False, flip=False)  # longest side limited
        whole.set_image(scene(600, 1000))
        whole.add_click(300, 500, True)
    finally:
        rec.close()
    assert interactive == [(2, 4, *FOCUS_CROP)] * len(clicks)  # one input size, flip on: batch 2
    # the first click's crop: 200 m around it at the assumed 0.5 m (400 px), shifted inside the image, cut by its
    # height (issue 22; before, the whole image)
    assert preds[0].roi == (0, 299, 0, 399) and preds[0].prob.shape == (300, 520)
    assert preds[1].roi[1] - preds[1].roi[0] < 300  # later clicks follow the object
    assert preds[0].mask[120, 200] and preds[2].mask[110, 190] and not preds[2].mask[20, 20]
    assert rec.seen == [(1, 4, 480, MAX_SIZE)]
    assert preds[0].prob.shape == (300, 520)
    assert isinstance(interactive_predictor(load_interactive_backend("grabcut")), Predictor)


def test_warm_up_runs_the_focus_crop_once(tiny_net):
    backend = NetworkBackend(tiny_net, device="cpu", optimize="none")
    rec = Shapes(backend.model)
    try:
        warm_up(backend)
        warm_up(backend, flip=False)
    finally:
        rec.close()
    assert rec.seen == [(2, 4, *FOCUS_CROP), (1, 4, *FOCUS_CROP)]


def test_bf16_mode_stays_near_the_fp32_network(tiny_net, monkeypatch):
    monkeypatch.setenv(cpu_bf16.NATIVE_BF16_ENV, "1")  # the bf16 arithmetic, emulated where the CPU lacks it
    img = scene(200, 260)
    clicks = [(80, 100, True), (10, 10, False), (85, 120, True)]
    probs = {}
    for mode in ("none", "bf16"):
        backend = NetworkBackend(tiny_net, device="cpu", optimize=mode)
        assert backend.optimize == mode
        session = interactive_predictor(backend)
        session.set_image(img)
        probs[mode] = [session.add_click(*c).prob for c in clicks]
        if mode == "bf16":
            dtypes = {name: t.dtype for name, t in [*backend.model.named_parameters(),
                                                     *backend.model.named_buffers()] if t.is_floating_point()}
            fp32 = {n for n, d in dtypes.items() if d == torch.float32}
            # the input side stays fp32 (normalisation, click encoder, first convolution), the rest is bf16
            assert {"mean", "std"} <= fp32 and any(n.startswith("maps_transform.") for n in fp32)
            assert all(dtypes[n] == torch.bfloat16 for n in set(dtypes) - fp32)
            assert len(dtypes) > 4 * len(fp32)
    gaps = [float(np.abs(a - b).max()) for a, b in zip(probs["none"], probs["bf16"])]
    assert 0 < max(gaps) < cpu_bf16.PROB_TOLERANCE  # changed (bf16), but not much
    assert NetworkBackend(tiny_net, device="cpu").optimize == "bf16"  # 'auto' on a CPU with bf16


def test_predict_writes_per_click_timings(tiny_net, tmp_path, capsys):
    from ritm_qgis.cli import main
    from ritm_qgis.models.checkpoint import save_checkpoint

    img_path, ckpt = tmp_path / "img.png", tmp_path / "tiny.pth"
    cv2.imwrite(str(img_path), scene(240, 330))
    save_checkpoint(ckpt, tiny_net)
    timings, mask = tmp_path / "t.json", tmp_path / "mask.png"
    args = ["predict", "--checkpoint", str(ckpt), "--image", str(img_path), "--device", "cpu",
            "--click", "130,90,+", "--click", "140,100,+", "--click", "5,5,-", "--out-mask", str(mask),
            "--threads", "1", "--timings", str(timings)]
    try:
        assert main(args + ["--optimize", "none"]) == 0
        data = json.loads(timings.read_text())
        assert set(data) == {"clicks", "optimize", "threads", "paths", "ready_s", "loaded_in_background"}
        assert data["optimize"] == "none" and data["threads"] == 1 and set(data["paths"]) == {"none"}
        assert data["loaded_in_background"] is False
        assert data["ready_s"] > 0
        assert len(data["clicks"]) == 3 and all(set(c) == {"ms"} and c["ms"] > 0 for c in data["clicks"])
        assert "first / later" in capsys.readouterr().out
        assert main(args) == 0
        assert json.loads(timings.read_text())["optimize"] == NetworkBackend(tiny_net, device="cpu").optimize
        # a --timings path in a missing folder is refused before anything is written
        mask.unlink()
        assert main(args[:-1] + [str(tmp_path / "no" / "t.json")]) == 1
        assert not mask.exists()
        assert "--timings" in capsys.readouterr().err
    finally:
        torch.set_num_threads(1)


def test_int8_mode_quantizes_the_hrnet_and_stays_near_fp32(tiny_net):
    from ritm_qgis.engine.interactive.calibration import calibration_inputs
    from ritm_qgis.engine.runtime.quantize import backend_engine

    calib = calibration_inputs(4, count=2, size=96)
    assert [tuple(x.shape) for x, _ in calib] == [(1, 4, 96, 96)] * 2
    assert all(0 <= float(x.min()) and float(x.max()) <= 1 and float(x[0, 3].max()) > 0.5 for x, _ in calib)
    if backend_engine() is None:
        pytest.skip("this PyTorch build has no quantized CPU engine")
    backend = NetworkBackend(tiny_net, device="cpu", optimize="int8")
    assert backend.optimize == "int8"
    kinds = {type(m).__module__ for m in backend.model.feature_extractor.modules()}
    assert any("quantized" in k for k in kinds)  # convolutions now run in int8
    plain = NetworkBackend(tiny_net, device="cpu", optimize="none")
    img = scene(200, 260)
    a, b = interactive_predictor(plain), interactive_predictor(backend)
    for s in (a, b):
        s.set_image(img)
    gap = max(float(np.abs(a.add_click(*c).prob - b.add_click(*c).prob).max())
              for c in [(80, 100, True), (10, 10, False)])
    assert 0 < gap < cpu_bf16.PROB_TOLERANCE
