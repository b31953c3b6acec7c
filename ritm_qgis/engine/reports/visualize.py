"""The paper's qualitative figures as RGB arrays: overlay with clicks, and the error map."""

from __future__ import annotations

import numpy as np

GREEN = (0, 200, 0)
RED = (230, 0, 0)
BLUE = (0, 0, 255)


def overlay(image_rgb: np.ndarray, mask: np.ndarray, clicks=(), alpha: float = 0.45, radius: int | None = None):
    """Image with the predicted mask in red, positive clicks as green circles, negative as red."""
    import cv2

    out = np.ascontiguousarray(image_rgb[:, :, :3]).astype(np.float32)
    m = np.asarray(mask, bool)
    out[m] = (1 - alpha) * out[m] + alpha * np.array(RED, np.float32)
    out = out.clip(0, 255).astype(np.uint8)
    contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, RED, 1)
    r = radius or max(3, round(min(m.shape) / 80))
    for c in clicks:
        color = GREEN if c.is_positive else RED
        cv2.circle(out, (int(c.col), int(c.row)), r, color, -1, lineType=cv2.LINE_AA)
        cv2.circle(out, (int(c.col), int(c.row)), r, (255, 255, 255), 1, lineType=cv2.LINE_AA)
    return out


def error_map(gt: np.ndarray, pred: np.ndarray, ignore: np.ndarray | None = None):
    """True positives white, true negatives black, false positives blue, false negatives red;
    ignored pixels grey."""
    gt = np.asarray(gt, bool)
    pred = np.asarray(pred, bool)
    out = np.zeros(gt.shape + (3,), np.uint8)
    out[gt & pred] = (255, 255, 255)
    out[~gt & pred] = BLUE
    out[gt & ~pred] = RED
    if ignore is not None:
        out[np.asarray(ignore, bool)] = (128, 128, 128)
    return out


def save_rgb_png(path: str, rgb: np.ndarray):
    import cv2

    from ritm_qgis.core.atomic import atomic_path

    with atomic_path(path, suffix=".png") as tmp:
        if not cv2.imwrite(tmp, np.ascontiguousarray(rgb[:, :, ::-1])):
            raise OSError(f"could not write {path}")
    return path
