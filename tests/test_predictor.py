"""The interactive session with a RITM network: zoom-in, flip, prev-mask feedback, undo, CLI.

The network is the registry's ``hrnet_tiny`` (the real HRNet+OCR architecture, width 4) with
deterministic random weights: the tests check the plumbing, not the quality (GrabCut's
quality is in test_grabcut.py).
"""

from __future__ import annotations

import glob
import os

import cv2
import numpy as np
import pytest
import torch

from ritm_qgis.engine.interactive import zoom_in as zi
from ritm_qgis.engine.interactive.click_encoding import flip_clicks, points_array
from ritm_qgis.engine.interactive.click_encoding import Click
from ritm_qgis.engine.protocol.clicker import ClickHistory, next_click
from ritm_qgis.engine.runtime.device import autocast, resolve_device
from ritm_qgis.core.errors import RitmError
from ritm_qgis.engine.geo.image_norm import to_rgb_float, to_rgb_uint8
from ritm_qgis.engine.interactive.predictor import NetworkBackend, Predictor, predict_batch
from tiny_model import one_torch_thread, tiny_net  # noqa: F401 (module fixtures)

DATA = "/work/shared/data/grabcut"


class DiskNet(torch.nn.Module):
    """A small network with RITM's forward contract whose object is predictable: a disk of
    ``radius`` input pixels around each positive click, minus the negative disks, plus a
    bias from the previous mask (so the 4th channel matters)."""

    with_prev_mask = True

    def __init__(self, radius=30.0):
        super().__init__()
        self.radius = radius
        self.weights = torch.nn.Parameter(torch.tensor([6.0, -6.0, 2.0, -4.0]), requires_grad=False)

    def forward(self, image, points):
        from ritm_qgis.models import disk_maps

        disks = disk_maps(points, image.shape[2], image.shape[3], self.radius)
        w = self.weights
        logits = w[0] * disks[:, :1] + w[1] * disks[:, 1:] + w[2] * image[:, 3:4] + w[3] + 0.01 * image[:, :1]
        return {"instances": logits, "instances_aux": logits}


class InputRecorder:
    """Keeps every (image, points) pair the network receives (a forward pre-hook)."""

    def __init__(self, module):
        self.calls = []
        self.handle = module.register_forward_pre_hook(self._hook)

    def _hook(self, module, args):
        self.calls.append((args[0].detach().clone(), args[1].detach().clone()))

    def close(self):
        self.handle.remove()


def grabcut_sample(name="teddy.jpg"):
    img = cv2.cvtColor(cv2.imread(os.path.join(DATA, "images", name)), cv2.COLOR_BGR2RGB)
    stem = os.path.splitext(name)[0]
    mask = cv2.imread(glob.glob(os.path.join(DATA, "masks", stem + ".*"))[0], cv2.IMREAD_GRAYSCALE)
    return img, mask == 255, mask == 128


# ----------------------------------------------------------------------- click encoding
def test_points_layout():
    clicks = [Click(5, 6, True), Click(7, 8, False), Click(9, 10, True)]
    pts = points_array([clicks, [Click(1, 2, False)]])
    assert pts.shape == (2, 4, 3)  # N = 2 (two positives in the first list)
    assert pts[0].tolist() == [[5, 6, 0], [9, 10, 2], [7, 8, 1], [-1, -1, -1]]
    assert pts[1].tolist() == [[-1, -1, -1], [-1, -1, -1], [1, 2, 0], [-1, -1, -1]]
    assert points_array([[]]).shape == (1, 2, 3)  # at least one slot each
    assert points_array([clicks], limit=1)[0].tolist() == [[5, 6, 0], [-1, -1, -1]]
    assert flip_clicks([Click(3, 0, True)], 10)[0] == (3, 9, True)


# ----------------------------------------------------------------------- zoom-in geometry
def test_zoom_in_roi_constructed_case():
    params = zi.ZoomInParams()
    prev = np.zeros((300, 400), np.float32)
    prev[100:150, 200:260] = 0.9  # object: rows 100..149, cols 200..259
    clicks = [Click(120, 230, True), Click(140, 210, True)]
    roi, changed = zi.choose_roi(params, clicks, prev, None, (300, 400))
    # centre (124.5, 229.5); 1.4 * 50 and 1.4 * 60 are below 200 -> 200 x 200 around it,
    # rounded half to even: 24.5 -> 24, 224.5 -> 224, 129.5 -> 130, 329.5 -> 330
    assert roi == (24, 224, 130, 330) and changed
    assert zi.crop_size(roi, 400) == (400, 400)
    t = zi.transform_clicks(clicks, roi, (400, 400))
    assert t[0].row == pytest.approx(400 * (120 - 24) / 201)
    assert t[0].col == pytest.approx(400 * (230 - 130) / 201)
    # one click only: skipped; an empty previous mask: whole image
    assert zi.choose_roi(params, clicks[:1], prev, None, (300, 400)) == (None, False)
    assert zi.choose_roi(params, clicks, np.zeros_like(prev), None, (300, 400)) == (None, False)
    # a similar box keeps the old one; a positive click outside it forces the new one
    kept, changed = zi.choose_roi(params, clicks, prev, (20, 220, 128, 330), (300, 400))
    assert kept == (20, 220, 128, 330) and not changed
    moved = clicks + [Click(280, 390, True)]
    new, changed = zi.choose_roi(params, moved, prev, (20, 220, 128, 330), (300, 400))
    assert changed and new[1] == 299 and new[3] == 399  # clamped to the image
    # a large object: the box is 1.4 x its size, clamped; crop keeps the aspect ratio
    big = np.zeros((300, 400), np.float32)
    big[50:250, 100:200] = 1.0
    inside = [Click(150, 150, True), Click(200, 120, True)]
    roi2, _ = zi.choose_roi(params, inside, big, None, (300, 400))
    # rows: 1.4 * 200 = 280 about 149.5 -> 9.5..289.5 -> 10..290 (half to even);
    # cols: 1.4 * 100 = 140 < 200 -> 200 about 149.5 -> 49.5..249.5 -> 50..250
    assert roi2 == (10, 290, 50, 250)
    assert zi.crop_size(roi2, 400) == (400, round(201 * 400 / 281))


def test_zoom_in_in_session_feeds_crop_and_previous_prob():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 255, (300, 500, 3), dtype=np.uint8)
    backend = NetworkBackend(DiskNet(radius=30.0), device="cpu", optimize="none")
    params = zi.ZoomInParams()
    session = Predictor(backend, zoom_in=True, flip=False)
    session.set_image(img)
    rec = InputRecorder(backend.model)
    try:
        p1 = session.add_click(150, 250, True)
        p2 = session.add_click(100, 200, True)
    finally:
        rec.close()
    (x1, pts1), (x2, pts2) = rec.calls
    assert tuple(x1.shape) == (1, 4, 300, 500)  # first click: whole image, zeros as prev mask
    assert torch.count_nonzero(x1[0, 3]) == 0
    assert pts1[0].tolist() == [[150, 250, 0], [-1, -1, -1]]
    assert zi.bbox_from_mask(p1.mask) == (120, 180, 220, 280)  # the disk of radius 30
    expected_roi, _ = zi.choose_roi(params, session.clicks, p1.prob, None, (300, 500))
    # object + clicks: rows 100..180, cols 200..280 -> 200 x 200 about (140, 240)
    assert expected_roi == (40, 240, 140, 340)
    assert session.roi == expected_roi == p2.roi
    hw = zi.crop_size(expected_roi, 400)
    assert tuple(x2.shape) == (1, 4, *hw) and max(hw) == 400
    # the 4th channel is the previous probability map, cropped and resized like the image
    full = torch.cat([torch.from_numpy(to_rgb_float(img)).permute(2, 0, 1)[None],
                      torch.from_numpy(p1.prob)[None, None]], dim=1)
    expected_input = zi.crop_resize(full, expected_roi, hw)
    assert torch.allclose(x2, expected_input, atol=1e-6)
    assert p2.mask[100, 200] and p2.mask[150, 250]  # both clicks' disks, mapped back from the crop
    t = zi.transform_clicks(session.clicks, expected_roi, hw)
    assert pts2[0, :2, :2].numpy() == pytest.approx(np.array([[t[0].row, t[0].col], [t[1].row, t[1].col]]))
    # outside the box the probability is 0 (RITM pastes the crop into zeros)
    r0, r1, c0, c1 = expected_roi
    outside = np.ones((300, 500), bool)
    outside[r0:r1 + 1, c0:c1 + 1] = False
    if outside.any():
        assert p2.prob[outside].max() == 0.0


# ----------------------------------------------------------------------- flip averaging
def test_flip_average_is_mean_of_both_passes(tiny_net):
    rng = np.random.default_rng(2)
    img = rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)
    clicks = [Click(30, 20, True)]
    backend = NetworkBackend(tiny_net, device="cpu", optimize="none")
    flipped = Predictor(backend, zoom_in=False, flip=True)
    plain = Predictor(backend, zoom_in=False, flip=False)
    for s in (flipped, plain):
        s.set_image(img)
    pf = flipped.add_click(30, 20, True)
    pp = plain.add_click(30, 20, True)
    x = torch.cat([torch.from_numpy(to_rgb_float(img)).permute(2, 0, 1)[None], torch.zeros(1, 1, 64, 96)], 1)
    with torch.inference_mode():
        a = tiny_net(x, torch.from_numpy(points_array([clicks])))["instances"]
        b = tiny_net(torch.flip(x, dims=[3]), torch.from_numpy(points_array([flip_clicks(clicks, 96)])))["instances"]
    # RITM averages the two passes' logits (b mirrored back), then applies the sigmoid
    expected = torch.sigmoid(0.5 * (a + torch.flip(b, dims=[3])))[0, 0].numpy()
    assert np.allclose(pf.prob, expected, atol=1e-5)
    assert np.allclose(pp.prob, torch.sigmoid(a)[0, 0].numpy(), atol=1e-5)
    assert not np.allclose(pf.prob, pp.prob, atol=1e-4)  # the mirrored pass does change it


# ----------------------------------------------------------------------- whole sessions
@pytest.mark.skipif(not os.path.isdir(DATA), reason="GrabCut data set not present")
def test_twenty_simulated_clicks_with_undo(tiny_net):
    img, gt, ignore = grabcut_sample("teddy.jpg")
    h, w = gt.shape
    backend = NetworkBackend(tiny_net, device="cpu", optimize="none")  # hooks need an nn.Module
    session = Predictor(backend, zoom_in=True, flip=True)
    session.set_image(img)
    hist = ClickHistory(gt.shape)
    pred = np.zeros_like(gt)
    preds = []
    rec = InputRecorder(backend.model)
    try:
        for _ in range(20):
            click = next_click(gt, pred, ignore, hist.not_clicked)
            assert click is not None
            hist.add(click)
            p = session.add_click(click.row, click.col, click.is_positive)
            assert p.prob.shape == (h, w) and p.prob.dtype == np.float32
            assert p.mask.shape == (h, w) and p.mask.dtype == bool
            assert np.array_equal(p.mask, p.prob > 0.49)
            assert 0.0 <= p.prob.min() and p.prob.max() <= 1.0
            pred = p.mask
            preds.append(p)
    finally:
        rec.close()
    assert len(rec.calls) >= 20  # one forward per click (two if RITM's recompute fires)
    assert all(x.shape[0] == 2 for x, _ in rec.calls)  # flip: the mirrored copy in the batch
    assert [ (c.row, c.col, c.is_positive) for c in session.clicks] == [
        (c.row, c.col, c.is_positive) for c in hist.clicks]
    # the click index of the last click is 19 in the points the network got
    assert rec.calls[-1][1][0, :, 2].max().item() == 19
    # undo restores each previous prediction exactly, down to the first click
    for k in range(19, 0, -1):
        back = session.undo()
        assert np.array_equal(back.prob, preds[k - 1].prob) and np.array_equal(back.mask, preds[k - 1].mask)
        assert np.array_equal(session.prob, preds[k - 1].prob)
        assert len(session.clicks) == k
    assert session.undo() is not None and len(session.clicks) == 0 and not session.mask.any()
    assert session.undo() is None
    # replaying after undo gives the same answer (the session state was restored, zoom box too)
    again = session.add_click(hist.clicks[0].row, hist.clicks[0].col, hist.clicks[0].is_positive)
    assert np.allclose(again.prob, preds[0].prob, atol=1e-6)
    session.reset()
    assert session.clicks == [] and not session.mask.any()


def test_optimised_backends_agree_with_the_plain_network(tiny_net):
    rng = np.random.default_rng(5)
    img = rng.integers(0, 255, (150, 230, 3), dtype=np.uint8)
    clicks = [Click(70, 100, True), Click(20, 30, False), Click(100, 150, True)]
    results = {}
    for mode in ("none", "fold", "onednn"):
        backend = NetworkBackend(tiny_net, device="cpu", optimize=mode)
        assert backend.optimize == mode
        # zoom-in with a low object threshold so that later clicks run on crops of other sizes
        session = Predictor(backend, zoom_in=zi.ZoomInParams(prob_thresh=0.2, min_crop_size=60), flip=True)
        session.set_image(img)
        results[mode] = [session.add_click(c.row, c.col, c.is_positive) for c in clicks]
        if mode != "none":
            assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in backend.model.modules())
        if mode == "onednn":  # every convolution now runs as a fused oneDNN kernel
            assert not any(isinstance(m, torch.nn.Conv2d) for m in backend.model.modules())
    assert any(p.roi is not None for p in results["none"])  # the crops were exercised
    for mode in ("fold", "onednn"):
        for a, b in zip(results["none"], results[mode]):
            assert a.roi == b.roi
            assert np.abs(a.prob - b.prob).max() < 1e-4
    from ritm_qgis.engine.runtime.modes import auto_mode

    assert NetworkBackend(tiny_net, device="cpu").optimize == auto_mode("cpu")  # 'auto'
    with pytest.raises(RitmError, match="optimisation"):
        NetworkBackend(tiny_net, device="cpu", optimize="fast")


def test_max_size_and_three_channel_networks():
    from ritm_qgis.models import create_model
    from ritm_qgis.models.testing import randomize_

    net = randomize_(create_model("hrnet_tiny", with_prev_mask=False), seed=1)
    backend = NetworkBackend(net, device="cpu", optimize="none")
    assert backend.with_prev_mask is False
    session = Predictor(backend, zoom_in=False, flip=False, max_size=100)
    session.set_image(np.random.default_rng(0).integers(0, 255, (150, 200, 3), dtype=np.uint8))
    rec = InputRecorder(backend.model)
    try:
        p = session.add_click(75, 100, True)
    finally:
        rec.close()
    x, pts = rec.calls[0]
    assert tuple(x.shape) == (1, 3, 75, 100)  # longer side limited to 100, RGB only
    assert pts[0, 0, :2].tolist() == pytest.approx([75 * 75 / 150, 100 * 100 / 200])
    assert p.prob.shape == (150, 200) and p.roi == (0, 149, 0, 199)


def test_click_outside_image_is_a_clear_error(tiny_net):
    session = Predictor(NetworkBackend(tiny_net, device="cpu"))
    with pytest.raises(RitmError, match="set_image"):
        session.add_click(0, 0, True)
    session.set_image(np.zeros((40, 50, 3), np.uint8))
    for row, col in [(40, 0), (0, 50), (-1, 3), (5, -2)]:
        with pytest.raises(RitmError, match="outside the image"):
            session.add_click(row, col, True)
    with pytest.raises(RitmError, match="whole pixels"):
        session.add_click(2.5, 3, True)
    assert session.clicks == []


def test_predict_batch_matches_single_sessions(tiny_net):
    rng = np.random.default_rng(3)
    imgs = [rng.integers(0, 255, (80, 120, 3), dtype=np.uint8) for _ in range(3)]
    clicks = [Click(40, 60, True), Click(10, 10, True), Click(70, 100, True)]
    backend = NetworkBackend(tiny_net, device="cpu", optimize="onednn")  # weights prepacked for batch 1
    singles, batched = [], []
    for img in imgs:
        a, b = Predictor(backend), Predictor(backend)
        a.set_image(img)
        b.set_image(img)
        singles.append(a)
        batched.append(b)
    expected = [s.add_click(c.row, c.col, c.is_positive) for s, c in zip(singles, clicks)]
    got = predict_batch(list(zip(batched, clicks)))
    for e, g in zip(expected, got):
        assert np.allclose(e.prob, g.prob, atol=1e-4)
    assert len(batched[0].clicks) == 1


# ----------------------------------------------------------------------- inputs, device
def test_image_normalisation():
    rgb = np.array([[[0, 128, 255]]], np.uint8)
    assert to_rgb_float(rgb)[0, 0].tolist() == pytest.approx([0.0, 128 / 255, 1.0])
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert to_rgb_float(grey).shape == (3, 4, 3)
    # 4-band uint16, bands first (as GDAL reads it): first three bands, stretched to [0, 1]
    rng = np.random.default_rng(0)
    bands = rng.integers(0, 4000, (4, 30, 40)).astype(np.uint16)
    out = to_rgb_float(bands)
    assert out.shape == (30, 40, 3) and out.dtype == np.float32
    assert out.min() == 0.0 and out.max() == 1.0
    assert np.corrcoef(out[:, :, 1].ravel(), bands[1].ravel().astype(float))[0, 1] > 0.95
    assert to_rgb_uint8(bands).dtype == np.uint8
    with pytest.raises(RitmError):
        to_rgb_float(np.zeros((2, 3, 4, 5)))


def test_device_choice():
    dev = resolve_device("auto")
    assert dev.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(RitmError, match="CUDA"):
            resolve_device("cuda")
    with pytest.raises(RitmError, match="Unknown device"):
        resolve_device("tpu")
    with autocast(torch.device("cpu"), "fp16"):  # no-op off CUDA
        assert torch.ones(2).dtype == torch.float32


# ----------------------------------------------------------------------- CLI
def test_cli_predict_with_checkpoint_and_grabcut(tiny_net, tmp_path):
    from ritm_qgis.cli import main
    from ritm_qgis.models.checkpoint import save_checkpoint

    rng = np.random.default_rng(4)
    img = rng.integers(0, 60, (90, 130, 3), dtype=np.uint8)
    img[35:55, 47:83] = 230  # fits in GrabCut's first box (half the shorter side)
    img_path = tmp_path / "img.png"
    cv2.imwrite(str(img_path), img)
    ckpt = tmp_path / "tiny.pth"
    save_checkpoint(ckpt, tiny_net)
    mask_path, prob_path = tmp_path / "mask.png", tmp_path / "prob.npy"
    rc = main(["predict", "--checkpoint", str(ckpt), "--image", str(img_path), "--click", "60,45,+",
               "--click", "5,5,-", "--device", "cpu", "--out-mask", str(mask_path), "--out-prob", str(prob_path),
               "--optimize", "none", "--protocol-zoom"])
    assert rc == 0
    mask = cv2.imread(str(mask_path), cv2.IMREAD_UNCHANGED)
    prob = np.load(prob_path)
    assert mask.shape == (90, 130) and set(np.unique(mask)) <= {0, 255}
    assert prob.shape == (90, 130) and prob.dtype == np.float32
    assert np.array_equal(mask == 255, prob > 0.49)
    # the same clicks through the Python API give the same map (x = column, y = row)
    session = Predictor(NetworkBackend(tiny_net, device="cpu", optimize="none"))
    session.set_image(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    session.add_click(45, 60, True)
    assert np.allclose(session.add_click(5, 5, False).prob, prob, atol=1e-5)

    rc = main(["predict", "--checkpoint", "grabcut", "--image", str(img_path), "--click", "65,45,+",
               "--out-mask", str(mask_path)])
    assert rc == 0
    gc = cv2.imread(str(mask_path), cv2.IMREAD_UNCHANGED) == 255
    truth = np.zeros((90, 130), bool)
    truth[35:55, 47:83] = True
    assert (gc & truth).sum() / (gc | truth).sum() > 0.9

    # a click outside the image is reported, not raised
    assert main(["predict", "--checkpoint", "grabcut", "--image", str(img_path), "--click", "130,10,+",
                 "--out-mask", str(mask_path)]) == 1


def test_padded_click_rows_change_nothing(tiny_net):
    from ritm_qgis.engine.runtime.cuda_graphs import pad_points

    pts = torch.tensor([[[10.0, 12.0, 0], [30.0, 5.0, 1], [-1, -1, -1], [20.0, 40.0, 2], [-1, -1, -1], [-1, -1, -1]]])
    padded = pad_points(pts, bucket=8)
    assert padded.shape == (1, 16, 3)
    assert torch.equal(padded[0, :3], pts[0, :3]) and torch.equal(padded[0, 8:11], pts[0, 3:])
    assert (padded[0, 3:8] == -1).all() and (padded[0, 11:] == -1).all()
    assert pad_points(padded, bucket=8) is padded
    x = torch.rand(1, 4, 48, 64)
    with torch.no_grad():
        a = tiny_net(x, pts)["instances"]
        b = tiny_net(x, padded)["instances"]
    assert torch.equal(a, b)
