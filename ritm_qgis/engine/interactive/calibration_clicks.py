"""Calibration inputs for an int8 network: real aerial crops, clicks simulated with the fp32 network.

The crops (``calibration_crops/``: seven 256 x 256 windows of SpaceNet Rio *training* chips,
img55-57, img63, img64, never the held-out img50-54; CC BY-SA 4.0, see the README there) ship with
the plugin, so any user's machine calibrates any weights offline, the same way every time. Each
crop is shown to the network as a map-tool session shows a building: once at its own scale (the
first click's window) and once as the building's box with a margin, enlarged to a longer side of
400 px (what RITM's zoom-in feeds from the second click on). On each view the clicks follow the
usual simulated user, driven by the fp32 network itself: the first click deep inside the
building, then each next one deep inside the larger error region (positive on a missed part,
negative on a false one), the previous probability map as the 4th channel. What is recorded is
every network input of those sessions: the activations int8 must cover are the ones the user's
clicks produce.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ritm_qgis.core.defaults import MASK_THRESHOLD
from ritm_qgis.engine.interactive.click_encoding import Click, points_array

CROPS_DIR = Path(__file__).with_name("calibration_crops")
ZOOM_SIDE = 400
ZOOM_MARGIN = 0.4  # per side, of the building's box (the zoom-in's expansion)


def crop_names() -> list[str]:
    return sorted(p.stem for p in CROPS_DIR.glob("*.jpg"))


def _read_crop(name: str):
    import cv2

    bgr = cv2.imread(str(CROPS_DIR / f"{name}.jpg"), cv2.IMREAD_COLOR)
    mask = cv2.imread(str(CROPS_DIR / f"{name}_mask.png"), cv2.IMREAD_GRAYSCALE)
    if bgr is None or mask is None:
        raise RuntimeError(f"the calibration crop {name} cannot be read")
    return np.ascontiguousarray(bgr[:, :, ::-1]), mask > 127


def _zoomed(rgb, mask):
    """The building's box plus a margin, enlarged to a longer side of ZOOM_SIDE."""
    import cv2

    rows, cols = np.nonzero(mask)
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    mr, mc = int((r1 - r0) * ZOOM_MARGIN) + 8, int((c1 - c0) * ZOOM_MARGIN) + 8
    r0, r1 = max(0, r0 - mr), min(mask.shape[0], r1 + mr)
    c0, c1 = max(0, c0 - mc), min(mask.shape[1], c1 + mc)
    scale = ZOOM_SIDE / max(r1 - r0, c1 - c0)
    size = (max(1, round((c1 - c0) * scale)), max(1, round((r1 - r0) * scale)))
    return (cv2.resize(rgb[r0:r1, c0:c1], size, interpolation=cv2.INTER_LINEAR),
            cv2.resize(mask[r0:r1, c0:c1].astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0)


def _deepest(region: np.ndarray) -> tuple[int, int, float]:
    """The pixel of ``region`` farthest from its border, and that distance."""
    import cv2

    dist = cv2.distanceTransform(np.pad(region, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    r, c = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return int(r), int(c), float(dist[r, c])


def _next_click(gt: np.ndarray, pred: np.ndarray) -> Click:
    r_fn, c_fn, d_fn = _deepest(gt & ~pred)
    r_fp, c_fp, d_fp = _deepest(~gt & pred)
    return Click(r_fn, c_fn, True) if d_fn >= d_fp else Click(r_fp, c_fp, False)


def session_inputs(forward, rgb: np.ndarray, gt: np.ndarray, channels: int, clicks: int) -> list:
    """The network inputs of one simulated session on one view: [(image, points), ...] as
    float32 arrays (1, channels, H, W) and (1, 2N, 3). ``forward(image, points)`` -> logits
    (1, 1, h, w) is the fp32 network."""
    import cv2

    h, w = gt.shape
    planes = rgb.astype(np.float32).transpose(2, 0, 1) / 255.0
    prev = np.zeros((h, w), np.float32)
    pred = np.zeros((h, w), bool)
    history: list[Click] = []
    out = []
    for _ in range(clicks):
        history.append(_next_click(gt, pred))
        image = planes if channels == 3 else np.concatenate([planes, prev[None]], axis=0)
        image = np.ascontiguousarray(image[None], dtype=np.float32)
        points = points_array([history])
        out.append((image, points))
        logits = np.asarray(forward(image, points), dtype=np.float32)[0, 0]
        if logits.shape != (h, w):
            logits = cv2.resize(logits, (w, h), interpolation=cv2.INTER_LINEAR)
        prev = 1.0 / (1.0 + np.exp(-logits))
        pred = prev > MASK_THRESHOLD
    return out


def calibration_inputs(forward, channels: int, clicks: int = 3, progress=None) -> list:
    """Every crop's two views, ``clicks`` simulated clicks each: [(image, points), ...]."""
    names = crop_names()
    if not names:
        raise RuntimeError(f"no calibration crops in {CROPS_DIR}")
    out = []
    for i, name in enumerate(names):
        rgb, gt = _read_crop(name)
        for view in ((rgb, gt), _zoomed(rgb, gt)):
            out.extend(session_inputs(forward, *view, channels, clicks))
        if progress is not None:
            progress(i + 1, len(names))
    return out


def check_input(channels: int) -> tuple:
    """A small real input (one crop at 128 x 128, its first click) for comparing a network
    with its fp32 reference quickly: (image, points) float32 arrays."""
    import cv2

    rgb, gt = _read_crop(crop_names()[0])
    rgb = cv2.resize(rgb, (128, 128), interpolation=cv2.INTER_AREA)
    gt = cv2.resize(gt.astype(np.uint8), (128, 128), interpolation=cv2.INTER_NEAREST) > 0
    r, c, _ = _deepest(gt)
    planes = rgb.astype(np.float32).transpose(2, 0, 1) / 255.0
    if channels == 4:
        planes = np.concatenate([planes, np.zeros((1, 128, 128), np.float32)], axis=0)
    return np.ascontiguousarray(planes[None]), points_array([[Click(r, c, True)]])
