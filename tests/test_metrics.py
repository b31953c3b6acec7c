import numpy as np
import pytest

from ritm_qgis.engine.protocol.metrics import all_metrics, confusion, mask_iou


def square(h, w, r0, r1, c0, c1):
    m = np.zeros((h, w), bool)
    m[r0:r1, c0:c1] = True
    return m


def test_counts_and_metrics_on_known_masks():
    gt = square(10, 10, 0, 4, 0, 5)  # 20 px
    pred = square(10, 10, 2, 6, 0, 5)  # 20 px, overlap 10
    m = all_metrics(gt, pred)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (10, 10, 10, 70)
    assert m["iou"] == pytest.approx(10 / 30)
    assert m["dice"] == pytest.approx(20 / 40)
    assert m["precision"] == pytest.approx(0.5)
    assert m["recall"] == pytest.approx(0.5)
    assert m["accuracy"] == pytest.approx(0.8)


def test_ignore_pixels_count_for_nothing():
    gt = square(10, 10, 0, 4, 0, 5)
    pred = square(10, 10, 2, 6, 0, 5)
    ignore = square(10, 10, 4, 6, 0, 10)  # hides the 10 false positives and 10 true negatives
    c = confusion(gt, pred, ignore)
    assert (c.tp, c.fp, c.fn, c.tn) == (10, 0, 10, 60)
    assert mask_iou(gt, pred, ignore) == pytest.approx(0.5)


def test_batched_equals_one_by_one():
    rng = np.random.default_rng(3)
    gt = rng.random((7, 12, 9)) > 0.6
    pred = rng.random((7, 12, 9)) > 0.5
    ignore = rng.random((7, 12, 9)) > 0.9
    batch = all_metrics(gt, pred, ignore)
    for i in range(7):
        single = all_metrics(gt[i], pred[i], ignore[i])
        for key, value in single.items():
            np.testing.assert_allclose(batch[key][i], value)


def test_undefined_ratios():
    empty = np.zeros((4, 4), bool)
    full = np.ones((4, 4), bool)
    m = all_metrics(empty, empty)
    assert m["iou"] == 1.0 and m["dice"] == 1.0
    assert np.isnan(m["precision"]) and np.isnan(m["recall"])
    assert all_metrics(full, empty)["iou"] == 0.0


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="differ in shape"):
        confusion(np.zeros((3, 3)), np.zeros((3, 4)))
