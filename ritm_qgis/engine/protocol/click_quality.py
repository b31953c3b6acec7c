"""What a person sees click by click: mean IoU and boundary F at given clicks, clicks that hurt.

``worsening_share``: among the clicks after the first that were made (both IoUs known), the
share that lowered the IoU by more than ``drop`` (0.1): a click the user regrets.
Rows that are all NaN (samples without foreground) count for nothing.
"""

from __future__ import annotations

import numpy as np

__all__ = ["mean_at_clicks", "worsening_share", "click_quality"]

REPORT_CLICKS = (1, 3, 5)


def _valid_rows(arr: np.ndarray) -> np.ndarray:
    arr = np.asarray(arr, np.float64)
    if arr.ndim != 2 or not len(arr):
        return np.zeros((0, arr.shape[-1] if arr.ndim == 2 else 0))
    return arr[~np.isnan(arr).all(axis=1)]


def mean_at_clicks(arr, clicks=REPORT_CLICKS) -> dict:
    """{click: mean over samples} for the clicks within the array's budget (NaN entries left out)."""
    rows = _valid_rows(arr)
    out = {}
    for k in clicks:
        if 1 <= k <= rows.shape[1] and len(rows):
            col = rows[:, k - 1]
            col = col[~np.isnan(col)]
            out[k] = float(col.mean()) if len(col) else float("nan")
    return out


def worsening_share(ious, drop: float = 0.1) -> float:
    """Share of the clicks after the first that lowered the IoU by more than ``drop``."""
    rows = _valid_rows(ious)
    if rows.shape[1] < 2 or not len(rows):
        return float("nan")
    before, after = rows[:, :-1], rows[:, 1:]
    made = ~np.isnan(before) & ~np.isnan(after)
    if not made.any():
        return float("nan")
    return float(((before - after) > drop)[made].mean())


def click_quality(ious, bf1=None, bf2=None, clicks=REPORT_CLICKS) -> dict:
    """The figures ``evaluate`` writes to report.json beside NoC (JSON-ready)."""
    out = {"mean_iou_at": {str(k): v for k, v in mean_at_clicks(ious, clicks).items()},
           "worsening_clicks_share": worsening_share(ious)}
    for name, arr in (("boundary_f1px_at", bf1), ("boundary_f2px_at", bf2)):
        if arr is not None and len(arr):
            out[name] = {str(k): v for k, v in mean_at_clicks(arr, clicks).items()}
    return out


def click_quality_beside(ious_path: str) -> dict:
    """``click_quality`` of an ``ious.npy`` with the boundary arrays ``evaluate`` wrote beside it, if any."""
    import os

    folder = os.path.dirname(os.path.abspath(ious_path))
    arrays = {}
    for px in (1, 2):
        path = os.path.join(folder, f"boundary_f{px}px.npy")
        arrays[px] = np.load(path) if os.path.exists(path) else None
    return click_quality(np.load(ious_path), arrays[1], arrays[2])
