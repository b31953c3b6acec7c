"""Sharpen a probability map along the image's edges before it becomes a polygon.

``guided_probability(prob, rgb, radius, eps)``: the guided filter (He, Sun and Tang, 2010) with
the image's grey levels as the guide: in every ``(2 radius + 1)``-pixel box the output is a linear
function of the guide fitted to the probabilities, averaged over the boxes that cover a pixel.
Where the image has an edge the probability steps with it; where it is flat the probability is
smoothed. ``eps`` (on grey levels in [0, 1]) sets how strong an edge must be to be followed.
Only pixels near the mask's border can change enough to cross the threshold, so the filter runs
on the mask's bounding box grown by a margin, not the whole window.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["guided_probability", "REFINE_MODES"]

REFINE_MODES = ("none", "guided")


def _box(x: np.ndarray, radius: int) -> np.ndarray:
    return cv2.boxFilter(x, ddepth=-1, ksize=(2 * radius + 1, 2 * radius + 1), borderType=cv2.BORDER_REFLECT)


def _guided(p: np.ndarray, guide: np.ndarray, radius: int, eps: float) -> np.ndarray:
    mean_i, mean_p = _box(guide, radius), _box(p, radius)
    cov_ip = _box(guide * p, radius) - mean_i * mean_p
    var_i = _box(guide * guide, radius) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return _box(a, radius) * guide + _box(b, radius)


def guided_probability(prob: np.ndarray, rgb: np.ndarray, radius: int = 2, eps: float = 0.01,
                       threshold: float = 0.5) -> np.ndarray:
    """``prob`` (h, w) float refined with ``rgb`` (h, w, 3) uint8 as the guide; same shape, in [0, 1]."""
    prob = np.asarray(prob, np.float32)
    rows = np.flatnonzero((prob > threshold).any(axis=1))
    if rows.size == 0 or radius < 1:
        return prob
    cols = np.flatnonzero((prob > threshold).any(axis=0))
    m = 4 * radius + 2
    r0, r1 = max(0, rows[0] - m), min(prob.shape[0], rows[-1] + m + 1)
    c0, c1 = max(0, cols[0] - m), min(prob.shape[1], cols[-1] + m + 1)
    grey = np.asarray(rgb[r0:r1, c0:c1], np.float32).mean(axis=2) / 255.0
    out = prob.copy()
    out[r0:r1, c0:c1] = np.clip(_guided(prob[r0:r1, c0:c1], grey, int(radius), float(eps)), 0.0, 1.0)
    return out
