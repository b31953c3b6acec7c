"""Training clicks: RITM's random initial clicks and the iterative clicks on the model's errors.

``MultiPointSampler`` follows the facts of RITM's sampler of the same name (written anew):

* the number of positive clicks is ``1 + k`` and of negative clicks ``k'`` with ``k`` drawn from
  ``{0, .., N-1}`` and ``k'`` from ``{0, .., N}`` with probability proportional to ``gamma ** k``
  (N = ``max_num_points``, 24; gamma 0.8: one or two clicks are the common case);
* positive clicks fall inside the object, eroded (3x3, 3 iterations) with probability 0.9 when
  that leaves more than 10 pixels;
* each negative click first draws a strategy: anywhere in the background (0.1), on another
  object (0.4; the background when the sample has no other objects), or in a band around the
  object as wide as 10 % of the square root of its area (0.5);
* ignored pixels (label -1) are never clicked.

Points are ``(2N, 3)`` float32 rows ``(y, x, index)``: positives first, then negatives, unused
rows ``-1`` (the network's contract). Initial clicks get index 100 as in RITM.

``next_points`` adds one iterative click per sample on the current prediction, as RITM's
trainer does: the larger of the false-negative and false-positive regions (by the depth of its
distance transform) decides the sign, and the click is drawn uniformly among the pixels deeper
than half that maximum. It is written into the slots from the end of each half, so it never
overwrites the sampler's clicks as long as fewer than N - extra clicks were drawn (the same
convention as RITM).
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from ritm_qgis.core.defaults import MASK_THRESHOLD
from ritm_qgis.core.threads import map_samples
from ritm_qgis.engine.protocol.clicker import error_depths

__all__ = ["MultiPointSampler", "click_count_probs", "next_points", "IGNORE"]

IGNORE = -1


@lru_cache(maxsize=None)
def click_count_probs(n: int, gamma: float) -> np.ndarray:
    """Probabilities of 0..n-1 proportional to gamma ** k."""
    p = gamma ** np.arange(n, dtype=np.float64)
    return p / p.sum()


class MultiPointSampler:
    def __init__(self, max_num_points: int = 24, prob_gamma: float = 0.8, positive_erode_prob: float = 0.9,
                 positive_erode_iters: int = 3, negative_probs=(0.1, 0.4, 0.5), expand_ratio: float = 0.1):
        if max_num_points < 1:
            raise ValueError("max_num_points must be at least 1")
        if not np.isclose(sum(negative_probs), 1.0):
            raise ValueError("negative_probs (bg, other, border) must sum to 1")
        self.max_num_points = int(max_num_points)
        self.prob_gamma = float(prob_gamma)
        self.positive_erode_prob = positive_erode_prob
        self.positive_erode_iters = positive_erode_iters
        self.negative_probs = np.asarray(negative_probs, np.float64)
        self.expand_ratio = expand_ratio

    # ------------------------------------------------------------------ regions
    def _positive_region(self, obj: np.ndarray, rng) -> np.ndarray:
        if rng.random() < self.positive_erode_prob:
            eroded = cv2.erode(obj.astype(np.uint8), np.ones((3, 3), np.uint8),
                               iterations=self.positive_erode_iters).astype(bool)
            if eroded.sum() > 10:
                return eroded
        return obj

    def border_region(self, obj: np.ndarray) -> np.ndarray:
        radius = int(np.ceil(self.expand_ratio * np.sqrt(obj.sum())))
        grown = cv2.dilate(obj.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=max(radius, 1))
        return grown.astype(bool) & ~obj

    # ------------------------------------------------------------------ sampling
    def sample(self, label: np.ndarray, rng: np.random.Generator, others: np.ndarray | None = None) -> np.ndarray:
        """Initial clicks for one sample.

        label: (H, W) with 1 object, 0 background, -1 ignored. others: optional (H, W) bool,
        pixels of objects other than the target (for the 'other' negative strategy).
        """
        label = np.asarray(label)
        valid = label != IGNORE
        obj = (label > 0.5) & valid
        bg = ~obj & valid
        n = self.max_num_points
        points = np.full((2 * n, 3), -1.0, np.float32)

        n_pos = 1 + rng.choice(n, p=click_count_probs(n, self.prob_gamma))
        pos = np.argwhere(self._positive_region(obj, rng)) if obj.any() else np.zeros((0, 2), np.int64)
        if len(pos):
            picks = pos[rng.integers(0, len(pos), size=n_pos)]
            points[:n_pos, :2] = picks
            points[:n_pos, 2] = 100

        n_neg = rng.choice(n + 1, p=click_count_probs(n + 1, self.prob_gamma))
        if n_neg:
            other = bg if others is None or not (others & bg).any() else (others & bg)
            regions = [np.argwhere(bg), np.argwhere(other), np.argwhere(self.border_region(obj) & valid)]
            probs = np.array([p if len(r) else 0.0 for p, r in zip(self.negative_probs, regions)])
            if probs.sum() > 0:
                probs /= probs.sum()
                strategies = rng.choice(3, size=n_neg, p=probs)
                for j, s in enumerate(strategies):
                    r = regions[s]
                    points[n + j, :2] = r[rng.integers(0, len(r))]
                    points[n + j, 2] = 100
        return points


def _error_candidates(prob: np.ndarray, label: np.ndarray, threshold: float):
    """(positive?, pixels deeper than half the deepest error) for one sample, or None without errors.

    The errors' depths are the simulated user's (``protocol/clicker.error_depths``), with RITM's
    trainer's 5 x 5 approximate distance mask."""
    fn_dt, fp_dt = error_depths(label > 0.5, prob > threshold, label == IGNORE, mask_size=5)
    fn_max, fp_max = float(fn_dt.max()), float(fp_dt.max())
    if max(fn_max, fp_max) <= 0:
        return None
    positive = fn_max > fp_max
    inner = np.argwhere((fn_dt if positive else fp_dt) > max(fn_max, fp_max) / 2.0)
    return (positive, inner) if len(inner) else None


def next_points(prob: np.ndarray, label: np.ndarray, points: np.ndarray, click_index: int,
                rng: np.random.Generator, threshold: float = MASK_THRESHOLD, parallel: bool = True) -> np.ndarray:
    """One more click per sample on the errors of ``prob`` (see the module doc).

    prob: (B, H, W) probabilities; label: (B, H, W) in {1, 0, -1 ignored}; points: (B, 2N, 3).
    click_index counts from 1; the click goes to row N - click_index (positive) or
    2N - click_index (negative). Returns a new array; samples without errors are unchanged.
    parallel: the distance transforms of the samples run on a thread pool (OpenCV and NumPy
    release the GIL; on a GPU this CPU work is otherwise a large part of a training step); the
    random draws stay in sample order, so the clicks are the same either way.
    """
    points = np.array(points, dtype=np.float32, copy=True)
    n = points.shape[1] // 2
    if not 1 <= click_index <= n:
        raise ValueError(f"click_index must be in 1..{n}")
    found = map_samples(lambda b: _error_candidates(prob[b], label[b], threshold), range(prob.shape[0]), parallel)
    for b, cand in enumerate(found):
        if cand is None:
            continue
        positive, inner = cand
        y, x = inner[rng.integers(0, len(inner))]
        row = n - click_index if positive else 2 * n - click_index
        points[b, row] = (y, x, click_index)
    return points
