"""Per-click segmentation metrics on boolean masks, vectorised over batches.

Every function takes arrays of shape (..., H, W); the leading axes are a batch. ``ignore``
marks pixels that count for nothing (GrabCut's uncertain band, nodata): they are neither
TP, FP, FN nor TN.

Undefined ratios: IoU and Dice are 1.0 when both masks are empty (perfect agreement);
precision (no predicted foreground) and recall (no true foreground) are NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Confusion:
    """Pixel counts, each an integer array of the batch shape."""

    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    tn: np.ndarray


def confusion(gt, pred, ignore=None) -> Confusion:
    gt = np.asarray(gt, dtype=bool)
    pred = np.asarray(pred, dtype=bool)
    if gt.shape != pred.shape:
        raise ValueError(f"ground truth {gt.shape} and prediction {pred.shape} differ in shape")
    valid = np.ones_like(gt) if ignore is None else ~np.broadcast_to(np.asarray(ignore, bool), gt.shape)
    axes = (-2, -1)
    tp = np.count_nonzero(gt & pred & valid, axis=axes)
    fp = np.count_nonzero(~gt & pred & valid, axis=axes)
    fn = np.count_nonzero(gt & ~pred & valid, axis=axes)
    tn = np.count_nonzero(valid, axis=axes) - tp - fp - fn
    return Confusion(tp, fp, fn, tn)


def _ratio(num, den, when_zero: float):
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), when_zero)


def accuracy(c: Confusion):
    return _ratio(c.tp + c.tn, c.tp + c.tn + c.fp + c.fn, np.nan)


def precision(c: Confusion):
    return _ratio(c.tp, c.tp + c.fp, np.nan)


def recall(c: Confusion):
    return _ratio(c.tp, c.tp + c.fn, np.nan)


def dice(c: Confusion):
    return _ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn, 1.0)


def iou(c: Confusion):
    return _ratio(c.tp, c.tp + c.fp + c.fn, 1.0)


METRICS = {"accuracy": accuracy, "precision": precision, "recall": recall, "dice": dice, "iou": iou}


def all_metrics(gt, pred, ignore=None) -> dict[str, np.ndarray]:
    """Confusion counts and the paper's five metrics for a batch of mask pairs."""
    c = confusion(gt, pred, ignore)
    out = {"tp": c.tp, "fp": c.fp, "fn": c.fn, "tn": c.tn}
    out.update({name: fn(c) for name, fn in METRICS.items()})
    return out


def mask_iou(gt, pred, ignore=None):
    """IoU of each mask pair (shortcut for the metric the NoC protocol follows)."""
    return iou(confusion(gt, pred, ignore))


def _boundary(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with a 4-neighbour outside it (the image border counts as outside)."""
    padded = np.pad(mask, 1, constant_values=False)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inner


def boundary_f(gt, pred, tolerance_px: float, ignore=None) -> float:
    """Boundary F-score of one mask pair: the outlines' precision and recall within ``tolerance_px``.

    A boundary pixel of one mask counts as matched when a boundary pixel of the other lies within
    ``tolerance_px`` (Euclidean); ignored pixels are left out of both boundaries. 1.0 when neither
    mask has a boundary, 0.0 when only one has.
    """
    import cv2

    gt = np.asarray(gt, bool)
    pred = np.asarray(pred, bool)
    bg, bp = _boundary(gt), _boundary(pred)
    if ignore is not None:
        valid = ~np.asarray(ignore, bool)
        bg, bp = bg & valid, bp & valid
    n_g, n_p = int(bg.sum()), int(bp.sum())
    if n_g == 0 and n_p == 0:
        return 1.0
    if n_g == 0 or n_p == 0:
        return 0.0
    dist_to_g = cv2.distanceTransform((~bg).view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    dist_to_p = cv2.distanceTransform((~bp).view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    precision_ = float((dist_to_g[bp] <= tolerance_px).mean())
    recall_ = float((dist_to_p[bg] <= tolerance_px).mean())
    if precision_ + recall_ == 0:
        return 0.0
    return 2 * precision_ * recall_ / (precision_ + recall_)
