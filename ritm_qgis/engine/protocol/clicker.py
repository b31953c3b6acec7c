"""The simulated user of RITM's evaluation protocol.

The next click goes to the error pixel farthest from any boundary: the Euclidean distance
transform of the false-negative mask and of the false-positive mask are taken (the image is
padded by one pixel first, so its edges count as boundary; ignored pixels count as boundary
too), pixels already clicked are zeroed, and the larger of the two maxima decides the sign:
positive when the missed foreground is deeper than the false foreground, negative otherwise
(ties go negative, as in RITM). Among equal maxima the first pixel in row-major order wins.

The rule is written once: ``next_clicks`` applies it to a batch of tiles with one OpenCV call per
tile, and ``next_click`` is ``next_clicks`` on a batch of one. A tile's two error masks are cropped
to the bounding box of its errors and stacked, each in its own zero frame, so one distance
transform serves both with exactly the distances each would get alone (a zero frame is always
nearer than anything beyond it; ``error_depths``, which the training clicks share).
OpenCV's float results can differ in the last bit between the crop and the full size, and from
one thread to another, so they are snapped to the exact distances (``_exact``) before choosing:
ties then break by row-major order alone, and the same masks give the same click whatever ran
before. tests/test_clicker.py checks the rule against full-size distance transforms.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ritm_qgis.engine.interactive.click_encoding import Click


@dataclass(frozen=True)
class ClickBatch:
    """One proposed click per tile. ``valid`` is False where the prediction has no error left."""

    rows: np.ndarray
    cols: np.ndarray
    is_positive: np.ndarray
    valid: np.ndarray

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i) -> Click | None:
        if not self.valid[i]:
            return None
        return Click(int(self.rows[i]), int(self.cols[i]), bool(self.is_positive[i]))


def error_masks(gt, pred, ignore=None):
    """False-negative and false-positive masks, ignored pixels excluded."""
    gt = np.asarray(gt, dtype=bool)
    pred = np.asarray(pred, dtype=bool)
    if gt.shape != pred.shape:
        raise ValueError(f"ground truth {gt.shape} and prediction {pred.shape} differ in shape")
    keep = np.ones_like(gt) if ignore is None else ~np.broadcast_to(np.asarray(ignore, bool), gt.shape)
    return gt & ~pred & keep, ~gt & pred & keep


def _exact(dist: np.ndarray) -> np.ndarray:
    """OpenCV's float32 Euclidean distances snapped to the exact sqrt of their integer squares.

    The precise distance transform is exact up to float32 rounding, but that rounding is not
    reproducible: the same mask gives values differing in the last bit depending on the thread
    that computes it (measured: 30.000002 or 30.0 for one pixel of a 60 x 80 rectangle, so the
    first click moved by two pixels from run to run). Every true distance is the square root of an
    integer, so rounding the square restores it (exactly while distances stay below ~1400 px) and
    ties then break by row-major order alone, in any thread.
    """
    d = dist.astype(np.float64)
    return np.sqrt(np.rint(d * d))


def _choose(fn_dist, fp_dist, not_clicked):
    """Pick the click from the framed (B, H+2, W+2) distance maps of a batch.

    The frame holds zeros, so it can only hold the maximum when a tile has no error left (then
    the click is invalid); row-major order of the framed map is row-major order of the tile.
    """
    fn_dist, fp_dist = _exact(fn_dist), _exact(fp_dist)
    b, _, wf = fn_dist.shape
    if not_clicked is not None:
        for dist in (fn_dist, fp_dist):
            inner = dist[:, 1:-1, 1:-1]
            np.multiply(inner, not_clicked, out=inner)
    fn_flat = fn_dist.reshape(b, -1)
    fp_flat = fp_dist.reshape(b, -1)
    fn_idx = fn_flat.argmax(axis=1)
    fp_idx = fp_flat.argmax(axis=1)
    fn_max = fn_flat[np.arange(b), fn_idx]
    fp_max = fp_flat[np.arange(b), fp_idx]
    positive = fn_max > fp_max
    rows, cols = np.divmod(np.where(positive, fn_idx, fp_idx), wf)
    return ClickBatch(rows - 1, cols - 1, positive, np.maximum(fn_max, fp_max) > 0)


def _error_box(fn, fp):
    """(r0, r1, c0, c1): the bounding box of both error masks, or None when there is no error."""
    rows = np.flatnonzero(fn.any(axis=1) | fp.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(fn.any(axis=0) | fp.any(axis=0))
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def _framed_depths(fn, fp, box, mask_size):
    """Distance maps of the two error masks cropped to ``box``, each in its own one-pixel zero frame:
    shape (2, h + 2, w + 2). Both masks go through OpenCV in one call, stacked in their frames."""
    r0, r1, c0, c1 = box
    h, w = r1 - r0, c1 - c0
    framed = np.zeros((2, h + 2, w + 2), np.uint8)
    framed[0, 1:-1, 1:-1] = fn[r0:r1, c0:c1]
    framed[1, 1:-1, 1:-1] = fp[r0:r1, c0:c1]
    dist = cv2.distanceTransform(framed.reshape(2 * (h + 2), w + 2), cv2.DIST_L2, mask_size)
    return dist.reshape(2, h + 2, w + 2)


def error_depths(gt, pred, ignore=None, mask_size=cv2.DIST_MASK_PRECISE) -> tuple[np.ndarray, np.ndarray]:
    """How deep each pixel lies inside the false-negative and inside the false-positive mask: its
    distance to the nearest pixel outside that mask, the image's edges and ignored pixels counting
    as outside. Two (H, W) float32 maps, zero off the errors.

    The one measure of errors the simulated user (``next_clicks``) and the training clicks
    (``engine/training/sampler.next_points``, with RITM's 5 x 5 approximate mask) share.
    Computed on the bounding box of the errors only, exactly as on the whole tile (see the module doc).
    """
    fn, fp = error_masks(gt, pred, ignore)
    depths = np.zeros((2,) + fn.shape, np.float32)
    box = _error_box(fn, fp)
    if box is not None:
        r0, r1, c0, c1 = box
        depths[:, r0:r1, c0:c1] = _framed_depths(fn, fp, box, mask_size)[:, 1:-1, 1:-1]
    return depths[0], depths[1]


def _tile_click(gt, pred, ignore, not_clicked):
    """Click for one tile, computed on the bounding box of its errors only."""
    fn, fp = error_masks(gt, pred, ignore)
    box = _error_box(fn, fp)
    if box is None:
        return 0, 0, False, False
    r0, r1, c0, c1 = box
    dist = _framed_depths(fn, fp, box, cv2.DIST_MASK_PRECISE)[:, None]
    nc = None if not_clicked is None else not_clicked[None, r0:r1, c0:c1]
    click = _choose(dist[0], dist[1], nc)
    return click.rows[0] + r0, click.cols[0] + c0, click.is_positive[0], click.valid[0]


def next_clicks(gt, pred, ignore=None, not_clicked=None) -> ClickBatch:
    """The simulated user's next click for each tile of a batch.

    gt, pred: (B, H, W) or (H, W) booleans; ignore: same shape, True where pixels count for
    nothing; not_clicked: same shape, False where a click was already made (those pixels are
    never chosen again, as in RITM).
    """
    gt = np.asarray(gt, dtype=bool)
    pred = np.asarray(pred, dtype=bool)
    if gt.shape != pred.shape:
        raise ValueError(f"ground truth {gt.shape} and prediction {pred.shape} differ in shape")
    if gt.ndim == 2:
        gt, pred = gt[None], pred[None]
    ignore = None if ignore is None else np.broadcast_to(np.asarray(ignore, bool), gt.shape)
    if not_clicked is not None:
        not_clicked = np.asarray(not_clicked, bool).reshape(gt.shape)
    # tile by tile: each tile's temporaries stay in cache, and each is cropped to its own errors
    out = [_tile_click(gt[i], pred[i], None if ignore is None else ignore[i],
                       None if not_clicked is None else not_clicked[i]) for i in range(gt.shape[0])]
    if not out:
        return ClickBatch(*(np.zeros(0, t) for t in (np.int64, np.int64, bool, bool)))
    rows, cols, positive, valid = (np.array(v) for v in zip(*out))
    return ClickBatch(rows.astype(np.int64), cols.astype(np.int64), positive.astype(bool), valid.astype(bool))


def next_click(gt, pred, ignore=None, not_clicked=None) -> Click | None:
    """The next click for a single (H, W) tile: ``next_clicks`` on a batch of one."""
    gt = np.asarray(gt, dtype=bool)
    if gt.ndim != 2:
        raise ValueError(f"next_click takes one (H, W) tile, not {gt.shape}; use next_clicks for a batch")
    return next_clicks(gt, pred, ignore, not_clicked)[0]


class ClickHistory:
    """Clicks made so far on one tile, with the map of pixels not yet clicked."""

    def __init__(self, shape):
        self.clicks: list[Click] = []
        self.not_clicked = np.ones(shape, dtype=bool)

    def add(self, click: Click):
        self.clicks.append(click)
        self.not_clicked[click.row, click.col] = False

    def undo(self) -> Click:
        click = self.clicks.pop()
        if not any((c.row, c.col) == (click.row, click.col) for c in self.clicks):
            self.not_clicked[click.row, click.col] = True
        return click

    def __len__(self):
        return len(self.clicks)
