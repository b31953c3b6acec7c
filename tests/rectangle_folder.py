"""A ``folder:`` dataset of small images, each with one bright rectangle as the object.

Only NumPy and OpenCV, so tests that run where the geo stack is absent (the CUDA tests on a
GPU machine) can use it too; ``data_builders`` is the georeferenced counterpart.
"""

import os

import cv2
import numpy as np


def rectangle_folder(root, shape, boxes) -> str:
    """``ROOT/images/sI.png`` + ``ROOT/masks/sI.png`` for each box (row0, row1, col0, col1): dark
    noise of ``shape`` (H, W), the box bright yellow and 255 in the mask. Returns 'folder:ROOT'."""
    os.makedirs(os.path.join(root, "images"))
    os.makedirs(os.path.join(root, "masks"))
    rng = np.random.default_rng(0)
    for i, (r0, r1, c0, c1) in enumerate(boxes):
        img = rng.integers(0, 60, (*shape, 3), dtype=np.uint8)
        mask = np.zeros(shape, np.uint8)
        mask[r0:r1, c0:c1] = 255
        img[mask > 0] = (200, 180, 40)
        cv2.imwrite(os.path.join(root, "images", f"s{i}.png"), img)
        cv2.imwrite(os.path.join(root, "masks", f"s{i}.png"), mask)
    return f"folder:{root}"
