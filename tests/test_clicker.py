import numpy as np
import pytest

from ritm_qgis.engine.interactive.click_encoding import Click
from ritm_qgis.engine.protocol.clicker import ClickHistory, next_click, next_clicks


def blank(h=41, w=41):
    return np.zeros((h, w), bool)


def test_missed_square_is_clicked_at_its_centre():
    gt = blank()
    gt[10:31, 10:31] = True  # 21x21 square centred on (20, 20)
    assert next_click(gt, blank()) == Click(20, 20, True)


def brute_force_depth(mask):
    """Distance of each pixel to the nearest background pixel, outside the image counting as background."""
    padded = np.pad(mask, 1)
    bg = np.argwhere(~padded)
    fg = np.argwhere(padded)
    d = np.sqrt(((fg[:, None, :] - bg[None, :, :]) ** 2).sum(-1)).min(1)
    depth = np.zeros(padded.shape)
    depth[fg[:, 0], fg[:, 1]] = d
    return depth[1:-1, 1:-1]


def test_l_shape_click_is_the_deepest_pixel():
    gt = blank(60, 60)
    gt[5:55, 5:25] = True  # vertical arm, 20 wide
    gt[35:55, 5:55] = True  # horizontal arm, 20 high
    depth = brute_force_depth(gt)
    click = next_click(gt, blank(60, 60))
    assert click.is_positive and gt[click.row, click.col]
    assert depth[click.row, click.col] == pytest.approx(depth.max(), abs=1e-4)
    # the first deepest pixel in row-major order, as RITM's np.where picks it
    first = np.argwhere(np.isclose(depth, depth.max(), atol=1e-4))[0]
    assert (click.row, click.col) == tuple(first)
    # near the inner corner, deeper than the 10 px half-width of either arm
    assert depth.max() > 10


def test_hole_predicted_as_building_gets_a_negative_click():
    gt = blank()
    gt[5:36, 5:36] = True
    gt[15:26, 15:26] = False  # courtyard of 11x11 centred at (20, 20)
    pred = blank()
    pred[5:36, 5:36] = True  # prediction fills the courtyard
    assert next_click(gt, pred) == Click(20, 20, False)


def test_image_edge_counts_as_boundary():
    gt = blank(20, 40)
    gt[:, :20] = True  # foreground touching the top, bottom and left edges
    click = next_click(gt, blank(20, 40))
    assert click.is_positive
    assert click.row in (9, 10) and click.col in (9, 10)


def test_ignore_region_is_never_clicked():
    gt = blank()
    gt[5:36, 5:36] = True
    ignore = blank()
    ignore[10:31, 10:31] = True  # the deep middle of the building is ignored
    click = next_click(gt, blank(), ignore)
    assert not ignore[click.row, click.col]
    assert click.is_positive and gt[click.row, click.col]


def test_perfect_prediction_gives_no_click():
    gt = blank()
    gt[3:9, 3:9] = True
    assert next_click(gt, gt.copy()) is None
    batch = next_clicks(np.stack([gt, gt]), np.stack([gt, blank()]))
    assert list(batch.valid) == [False, True]
    assert batch[0] is None


def test_clicked_pixels_are_not_chosen_again():
    gt = blank()
    gt[10:31, 10:31] = True
    history = ClickHistory(gt.shape)
    history.add(next_click(gt, blank()))
    second = next_click(gt, blank(), not_clicked=history.not_clicked)
    assert (second.row, second.col) != (20, 20)
    history.undo()
    assert history.not_clicked.all()


def test_ties_go_negative_as_in_ritm():
    gt = blank(20, 40)
    gt[5:10, 5:10] = True  # 5x5 missed square
    pred = gt.copy()
    pred[5:10, 5:10] = False
    pred[5:10, 25:30] = True  # 5x5 false square: same depth
    assert next_click(gt, pred).is_positive is False


def _full_size_reference(gt, pred, ignore, not_clicked):
    """The rule written out on the whole tile: two full-size framed distance transforms, exact distances,
    clicked pixels zeroed, the deeper error wins (ties negative), row-major order among equals."""
    import cv2

    keep = ~ignore
    depths = []
    for mask in (gt & ~pred & keep, ~gt & pred & keep):
        d = cv2.distanceTransform(np.pad(mask.astype(np.uint8), 1), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
        d = np.sqrt(np.rint(d.astype(np.float64) ** 2)) * not_clicked
        depths.append(d)
    fn, fp = depths
    if max(fn.max(), fp.max()) <= 0:
        return None
    positive = fn.max() > fp.max()
    row, col = np.unravel_index(int((fn if positive else fp).argmax()), gt.shape)
    return Click(int(row), int(col), bool(positive))


def test_batch_and_single_tiles_follow_the_full_size_rule_exactly():
    import cv2

    rng = np.random.default_rng(7)
    n, h, w = 70, 50, 64  # more than one internal chunk
    gt = np.stack([cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 3) > 0.5 for _ in range(n)])
    pred = np.stack([cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 3) > 0.5 for _ in range(n)])
    ignore = rng.random((n, h, w)) > 0.97
    not_clicked = rng.random((n, h, w)) > 0.01
    batch = next_clicks(gt, pred, ignore, not_clicked)
    for i in range(n):
        expected = _full_size_reference(gt[i], pred[i], ignore[i], not_clicked[i])
        assert batch[i] == expected, i
        assert next_click(gt[i], pred[i], ignore[i], not_clicked[i]) == expected, i


def test_error_depths_on_the_crop_equal_the_whole_tile():
    """The training clicks' 5 x 5 mask and the protocol's precise one give, on the errors' bounding box,
    the distances a full-size transform gives."""
    import cv2

    from ritm_qgis.engine.protocol.clicker import error_depths

    rng = np.random.default_rng(3)
    for _ in range(20):
        gt = cv2.GaussianBlur(rng.random((40, 56)).astype(np.float32), (0, 0), 3) > 0.55
        pred = np.zeros_like(gt)
        pred[8:30, 10:40] = rng.random() > 0.3
        for mask_size in (cv2.DIST_MASK_PRECISE, 5):
            fn, fp = error_depths(gt, pred, mask_size=mask_size)
            for got, mask in ((fn, gt & ~pred), (fp, ~gt & pred)):
                full = cv2.distanceTransform(np.pad(mask.astype(np.uint8), 1), cv2.DIST_L2, mask_size)[1:-1, 1:-1]
                np.testing.assert_allclose(got, full, atol=1e-5)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError):
        next_click(blank(5, 5), blank(5, 6))
