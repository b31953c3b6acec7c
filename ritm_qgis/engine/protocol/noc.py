"""The NoC protocol: from per-sample IoU-after-each-click arrays to Table 1 of the paper.

An IoU array has shape (N samples, C clicks); row i, column k is the IoU after click k+1.
A row containing NaN is a sample without any foreground (the paper's 560 empty INRIA tiles):
IoU is 0/0 only when neither the ground truth nor the prediction has a foreground pixel, so a
NaN anywhere means the ground truth is empty. Such rows are dropped from every metric and
counted. (In the authors' ``all_ious_scratch.npy`` one empty tile, row 548, reads 0 for the
clicks where the model predicted a false building and NaN after; dropping only all-NaN rows
would keep it and give 1941 samples instead of the paper's 1940.)

Definitions (C = max clicks):
- NoC_C@t: the 1-based index of the first click whose IoU >= t, or C when none reaches t.
- >=C@t (``ge_max``): fraction of samples whose NoC_C@t equals C, i.e. t not reached before
  the last click. This is what the paper printed (0.648 / 0.333 / 0.135).
- ``never_reached``: fraction of samples that never reach t within C clicks (0.635 / 0.323 /
  0.131 on the paper's arrays): reported too, under this different name.
- Avg_C IoU, two definitions: ``avg_iou_best`` (mean over samples of the best IoU over the C
  clicks) and ``avg_iou_last`` (mean IoU at click C), each with its population standard
  deviation. The paper printed the best-IoU mean for its first two models and the
  last-click mean for the fine-tuned one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from ritm_qgis.core.errors import RitmError

DEFAULT_THRESHOLDS = (0.80, 0.85, 0.90)


def parse_thresholds(text: str, what: str = "--thresholds") -> tuple[float, ...]:
    """'0.8,0.85,0.9' -> (0.8, 0.85, 0.9), each in (0, 1]; ``what`` names the parameter in the
    words of the interface that received it (a CLI flag, a Processing parameter)."""
    example = "such as 0.8,0.85,0.9"
    try:
        values = tuple(float(v) for v in str(text).split(",") if v.strip())
    except ValueError:
        raise RitmError(f"{what} takes comma-separated IoU values {example}, not '{text}'.") from None
    if not values:
        raise RitmError(f"{what} needs at least one IoU value, {example}.")
    bad = [v for v in values if not 0 < v <= 1]
    if bad:
        raise RitmError(f"{what} takes IoU values above 0 and at most 1 ({example}), not {bad[0]:g}.")
    return values


def load_iou_array(path: str) -> np.ndarray:
    """A per-sample IoU array (.npy, samples x clicks), read without pickles."""
    if not os.path.isfile(path):
        raise RitmError(f"no IoU array at '{path}'; give the path of a .npy file written by 'evaluate' or by RITM")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise RitmError(f"'{path}' is not a readable .npy array ({exc})") from None


@dataclass
class NocReport:
    name: str
    max_clicks: int
    thresholds: tuple[float, ...]
    n_samples: int
    n_empty_dropped: int
    noc: dict[float, float]
    ge_max: dict[float, float]
    never_reached: dict[float, float]
    avg_iou_best: float
    avg_iou_best_std: float
    avg_iou_last: float
    avg_iou_last_std: float
    mean_iou_per_click: list[float]
    std_iou_per_click: list[float] = field(default_factory=list)

    def to_json(self) -> dict:
        key = threshold_key
        return {
            "name": self.name,
            "max_clicks": self.max_clicks,
            "n_samples": self.n_samples,
            "n_empty_dropped": self.n_empty_dropped,
            "noc": {key(t): v for t, v in self.noc.items()},
            "ge_max": {key(t): v for t, v in self.ge_max.items()},
            "never_reached": {key(t): v for t, v in self.never_reached.items()},
            "avg_iou_best": self.avg_iou_best,
            "avg_iou_best_std": self.avg_iou_best_std,
            "avg_iou_last": self.avg_iou_last,
            "avg_iou_last_std": self.avg_iou_last_std,
            "mean_iou_per_click": self.mean_iou_per_click,
            "std_iou_per_click": self.std_iou_per_click,
        }


def threshold_key(t: float) -> str:
    """'0.85' for 0.85: the JSON key of a threshold."""
    return f"{t:.2f}".rstrip("0").rstrip(".") if t != int(t) else f"{t:.1f}"


def clean_ious(ious, max_clicks: int | None = None):
    """Validate an IoU array; return (rows without NaN, number of rows dropped as empty)."""
    arr = np.asarray(ious, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise RitmError(f"an IoU array must have shape (samples, clicks); this one has shape {arr.shape}")
    if max_clicks is not None:
        if max_clicks < 1:
            raise RitmError(f"--max-clicks must be at least 1, not {max_clicks}")
        if max_clicks > arr.shape[1]:
            raise RitmError(
                f"asked for {max_clicks} clicks but the array holds only {arr.shape[1]} clicks per sample"
            )
        arr = arr[:, :max_clicks]
    empty = np.isnan(arr).any(axis=1)
    kept = arr[~empty]
    if kept.size and (kept.min() < -1e-6 or kept.max() > 1 + 1e-6):
        raise RitmError("IoU values must lie between 0 and 1; is this really an IoU array?")
    return kept, int(empty.sum())


def noc_per_sample(ious: np.ndarray, threshold: float) -> np.ndarray:
    """NoC_C@t for each row of a clean (N, C) IoU array."""
    reached = ious >= threshold
    first = reached.argmax(axis=1) + 1
    return np.where(reached.any(axis=1), first, ious.shape[1])


def noc_report(name: str, ious, thresholds=DEFAULT_THRESHOLDS, max_clicks: int | None = None) -> NocReport:
    kept, n_empty = clean_ious(ious, max_clicks)
    if len(kept) == 0:
        raise RitmError(f"'{name}': every sample is empty (all-NaN rows); there is nothing to evaluate")
    c = kept.shape[1]
    thresholds = tuple(float(t) for t in thresholds)
    for t in thresholds:
        if not 0 < t <= 1:
            raise RitmError(f"IoU thresholds must lie in (0, 1]; got {t}")
    nocs = {t: noc_per_sample(kept, t) for t in thresholds}
    best = kept.max(axis=1)
    last = kept[:, -1]
    return NocReport(
        name=name,
        max_clicks=c,
        thresholds=thresholds,
        n_samples=len(kept),
        n_empty_dropped=n_empty,
        noc={t: float(n.mean()) for t, n in nocs.items()},
        ge_max={t: float((n == c).mean()) for t, n in nocs.items()},
        never_reached={t: float((~(kept >= t).any(axis=1)).mean()) for t in thresholds},
        avg_iou_best=float(best.mean()),
        avg_iou_best_std=float(best.std()),
        avg_iou_last=float(last.mean()),
        avg_iou_last_std=float(last.std()),
        mean_iou_per_click=[float(v) for v in kept.mean(axis=0)],
        std_iou_per_click=[float(v) for v in kept.std(axis=0)],
    )

