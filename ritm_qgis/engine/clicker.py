"""The simulated user of RITM's evaluation protocol.

The next click goes to the error pixel farthest from any boundary: the Euclidean distance
transform of the false-negative mask and of the false-positive mask are taken (the image is
padded by one pixel first, so its edges count as boundary; ignored pixels count as boundary
too), pixels already clicked are zeroed, and the larger of the two maxima decides the sign:
positive when the missed foreground is deeper than the false foreground, negative otherwise
(ties go negative, as in RITM). Among equal maxima the first pixel in row-major order wins.

``next_clicks`` does this for a batch of tiles in a few OpenCV calls: the tiles are laid out
one under the other, each in its own zero frame, so one distance transform serves them all
with exactly the distances each tile would get alone (a zero frame is always nearer than any
pixel of a neighbouring tile).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Tiles per OpenCV call: bounds the mosaic's memory (2 maps x 32 x 500 x 500 float32 = 64 MB).
_CHUNK = 32


@dataclass(frozen=True)
class Click:
    row: int
    col: int
    is_positive: bool


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


def _padded_distance(mask2d: np.ndarray) -> np.ndarray:
    """Distance of each pixel to the nearest zero, image edges counting as zeros."""
    padded = np.pad(mask2d.astype(np.uint8), 1)
    return cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]


def _mosaic_distance(masks: np.ndarray) -> np.ndarray:
    """``_padded_distance`` of each (H, W) mask in a (B, H, W) stack, in one OpenCV call."""
    b, h, w = masks.shape
    framed = np.zeros((b, h + 2, w + 2), np.uint8)
    framed[:, 1:-1, 1:-1] = masks
    dist = cv2.distanceTransform(framed.reshape(b * (h + 2), w + 2), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return dist.reshape(b, h + 2, w + 2)[:, 1:-1, 1:-1]


def _choose(fn_dist, fp_dist, not_clicked):
    """Pick the click from the two distance maps of a (B, H, W) batch."""
    if not_clicked is not None:
        fn_dist = fn_dist * not_clicked
        fp_dist = fp_dist * not_clicked
    b = fn_dist.shape[0]
    fn_flat = fn_dist.reshape(b, -1)
    fp_flat = fp_dist.reshape(b, -1)
    fn_idx = fn_flat.argmax(axis=1)
    fp_idx = fp_flat.argmax(axis=1)
    fn_max = fn_flat[np.arange(b), fn_idx]
    fp_max = fp_flat[np.arange(b), fp_idx]
    positive = fn_max > fp_max
    idx = np.where(positive, fn_idx, fp_idx)
    rows, cols = np.divmod(idx, fn_dist.shape[2])
    return ClickBatch(rows, cols, positive, np.maximum(fn_max, fp_max) > 0)


def next_clicks(gt, pred, ignore=None, not_clicked=None) -> ClickBatch:
    """The simulated user's next click for each tile of a batch.

    gt, pred: (B, H, W) or (H, W) booleans; ignore: same shape, True where pixels count for
    nothing; not_clicked: same shape, False where a click was already made (those pixels are
    never chosen again, as in RITM).
    """
    fn, fp = error_masks(gt, pred, ignore)
    if fn.ndim == 2:
        fn, fp = fn[None], fp[None]
        not_clicked = None if not_clicked is None else np.asarray(not_clicked)[None]
    b = fn.shape[0]
    fn_dist = np.empty(fn.shape, np.float32)
    fp_dist = np.empty(fp.shape, np.float32)
    for start in range(0, b, _CHUNK):
        part = slice(start, start + _CHUNK)
        both = _mosaic_distance(np.concatenate([fn[part], fp[part]]))
        n = both.shape[0] // 2
        fn_dist[part], fp_dist[part] = both[:n], both[n:]
    return _choose(fn_dist, fp_dist, not_clicked)


def next_click(gt, pred, ignore=None, not_clicked=None) -> Click | None:
    """The next click for a single (H, W) tile, computed mask by mask (the reference path)."""
    fn, fp = error_masks(gt, pred, ignore)
    fn_dist = _padded_distance(fn)[None]
    fp_dist = _padded_distance(fp)[None]
    nc = None if not_clicked is None else np.asarray(not_clicked)[None]
    return _choose(fn_dist, fp_dist, nc)[0]


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
