"""The weight-free GrabCut backend behind the interactive session, on the GrabCut data set."""

from __future__ import annotations

import glob
import os

import cv2
import numpy as np
import pytest

from ritm_qgis.engine.protocol.clicker import ClickHistory, next_click
from ritm_qgis.engine.interactive.grabcut_backend import GrabCutBackend
from ritm_qgis.engine.protocol.metrics import mask_iou
from ritm_qgis.engine.interactive.predictor import Predictor

DATA = "/work/shared/data/grabcut"
# every 16th image of the sorted data set
QUALITY_IMAGES = ["106024.jpg", "388016.jpg", "grave.jpg", "teddy.jpg"]

needs_data = pytest.mark.skipif(not os.path.isdir(DATA), reason="GrabCut data set not present")


def load_sample(name):
    img = cv2.cvtColor(cv2.imread(os.path.join(DATA, "images", name)), cv2.COLOR_BGR2RGB)
    stem = os.path.splitext(name)[0]
    mask = cv2.imread(glob.glob(os.path.join(DATA, "masks", stem + ".*"))[0], cv2.IMREAD_GRAYSCALE)
    return img, mask == 255, mask == 128


def run_clicks(session, gt, ignore, n_clicks=20):
    hist = ClickHistory(gt.shape)
    pred = np.zeros_like(gt)
    ious, preds = [], []
    for _ in range(n_clicks):
        click = next_click(gt, pred, ignore, hist.not_clicked)
        if click is None:
            break
        hist.add(click)
        p = session.add_click(click.row, click.col, click.is_positive)
        pred = p.mask
        preds.append(p)
        ious.append(float(mask_iou(gt, pred, ignore)))
    return np.array(ious), preds


@needs_data
def test_grabcut_quality_20_clicks():
    # Measured with OpenCV's generator reseeded before every cut (deterministic, OpenCV 4.11):
    # final IoU 0.948 / 0.795 / 0.982 / 0.952, mean 0.919; mean IoU over the 20 clicks 0.915.
    # (Unseeded, the same images gave 0.95 / 0.98 / 0.98 / 0.96 on one run: 388016 depends on the draw.)
    finals, means = [], []
    for name in QUALITY_IMAGES:
        img, gt, ignore = load_sample(name)
        session = Predictor(GrabCutBackend())
        session.set_image(img)
        ious, _ = run_clicks(session, gt, ignore)
        assert len(ious) == 20
        finals.append(ious[-1])
        means.append(ious.mean())
    assert np.mean(finals) >= 0.9, finals
    assert np.mean(means) >= 0.88, means
    assert min(finals) >= 0.75, finals


@needs_data
def test_grabcut_session_shapes_and_undo():
    img, gt, ignore = load_sample("teddy.jpg")
    session = Predictor(GrabCutBackend())
    session.set_image(img)
    _, preds = run_clicks(session, gt, ignore, n_clicks=6)
    h, w = gt.shape
    for p in preds:
        assert p.prob.shape == (h, w) and p.prob.dtype == np.float32
        assert p.mask.shape == (h, w) and p.mask.dtype == bool
        assert np.array_equal(p.mask, p.prob > 0.49)
        assert 0.0 <= p.prob.min() and p.prob.max() <= 1.0
    assert len(session.clicks) == 6
    for k in range(5, 0, -1):
        back = session.undo()
        assert np.array_equal(back.prob, preds[k - 1].prob)
        assert np.array_equal(back.mask, preds[k - 1].mask)
        assert len(session.clicks) == k


def test_grabcut_clicks_are_honoured_and_negative_only_is_empty():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 40, (120, 160, 3), dtype=np.uint8)
    # a bright object smaller than the first click's box (half the shorter side, 60 px)
    img[40:80, 55:105] = rng.integers(200, 255, (40, 50, 3), dtype=np.uint8)
    session = Predictor(GrabCutBackend())
    session.set_image(img)
    p = session.add_click(10, 10, False)
    assert not p.mask.any() and p.prob.max() == 0.0
    p = session.add_click(60, 80, True)
    gt = np.zeros((120, 160), bool)
    gt[40:80, 55:105] = True
    assert p.mask[60, 80]
    assert not p.mask[10, 10]
    assert float(mask_iou(gt, p.mask)) > 0.9
    # the prob map is soft across the edge, hard labels inside
    assert 0.5 < p.prob[60, 80] <= 1.0 and p.prob[5, 5] < 0.01


def test_grabcut_seed_labels():
    backend = GrabCutBackend(radius=3)
    from ritm_qgis.engine.interactive.click_encoding import Click

    lab = backend.labels((100, 100), [Click(50, 50, True), Click(52, 50, False)], np.zeros((100, 100), np.float32))
    assert lab[52, 50] == cv2.GC_BGD  # the later negative click wins where disks overlap
    assert lab[47, 50] == cv2.GC_FGD
    assert lab[0, 0] == cv2.GC_BGD  # outside the box
    assert lab[50, 30] == cv2.GC_PR_FGD  # inside the box (half the shorter side: rows/cols 25..75)


def test_grabcut_is_deterministic_and_the_click_prior_handles_many_buildings():
    from ritm_qgis.engine.data.datasets import Sample
    from ritm_qgis.engine.protocol.evaluation import annotate
    from ritm_qgis.engine.geo.synthetic_scene import make_scene

    import cv2

    scene = make_scene(512, 9, seed=0)
    sample = Sample("tile", scene.rgb, scene.mask)
    box = annotate(sample, Predictor(GrabCutBackend()), target_iou=1.0, max_clicks=20)
    cv2.setRNGSeed(123)  # whatever state OpenCV's generator is in, the same clicks give the same masks
    again = annotate(sample, Predictor(GrabCutBackend()), target_iou=1.0, max_clicks=20)
    assert again.ious == box.ious
    multi = annotate(sample, Predictor(GrabCutBackend(prior="clicks")), target_iou=1.0, max_clicks=20)
    # measured: box prior 0.205, click prior 0.919 after 20 clicks on this 9-building tile
    assert multi.ious[-1] > 0.85
