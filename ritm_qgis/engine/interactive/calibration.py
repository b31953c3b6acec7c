"""Calibration inputs for int8 quantization (``runtime.quantize``): what a network sees on clicks.

A few synthetic aerial scenes (``geo.synthetic_scene``: roofs, roads, trees, shadows), each
as the network's input at the focus crop's size: the RGB image, a previous mask (one building's
footprint, softened) as the 4th channel when the network takes one, a positive click inside that
building and a negative one on the ground. Fixed seeds: the same calibration every time.
"""

from __future__ import annotations

import numpy as np


def calibration_inputs(channels: int = 4, count: int = 4, size: int = 400) -> list:
    """[(image (1, channels, size, size) float32, points (1, 4, 3)), ...] on the CPU."""
    import cv2
    import torch

    from ritm_qgis.engine.geo.synthetic_scene import make_scene

    out = []
    for seed in range(count):
        scene = make_scene(size, 6, seed=100 + seed)
        rgb = scene.rgb.astype(np.float32) / 255.0
        n, labels = cv2.connectedComponents(scene.mask.astype(np.uint8))
        building = labels == (1 + seed % max(1, n - 1)) if n > 1 else scene.mask
        rows, cols = np.nonzero(building) if building.any() else (np.array([size // 2]), np.array([size // 2]))
        pos = (float(np.median(rows)), float(np.median(cols)))
        ground_r, ground_c = np.nonzero(~scene.mask)
        neg = (float(ground_r[len(ground_r) // 3]), float(ground_c[len(ground_c) // 3])) if len(ground_r) else (-1.0, -1.0)
        planes = [rgb.transpose(2, 0, 1)]
        if channels == 4:
            prev = cv2.GaussianBlur(building.astype(np.float32), (0, 0), 3.0)
            planes.append(prev[None])
        image = torch.from_numpy(np.ascontiguousarray(np.concatenate(planes, axis=0)))[None]
        points = torch.tensor([[[pos[0], pos[1], 0.0], [-1.0, -1.0, -1.0], [neg[0], neg[1], 1.0], [-1.0, -1.0, -1.0]]])
        out.append((image, points))
    return out
