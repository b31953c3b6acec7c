"""One large image with a mask of the same size and no georeference, cut into square tiles."""

from __future__ import annotations

import os

import numpy as np

from ritm_qgis.core.errors import RitmError
from ritm_qgis.engine.data.datasets import Dataset, Sample, read_gray, read_rgb


def image_pair_tiles(image_path: str, mask_path: str, tile: int = 250) -> Dataset:
    """One large image + same-size mask (> 127 object) as TILE x TILE tiles; edge remainders dropped."""
    for p in (image_path, mask_path):
        if not os.path.isfile(p):
            raise RitmError(f"no file at '{p}'")
    image, mask = read_rgb(image_path), read_gray(mask_path)
    if image.shape[:2] != mask.shape:
        raise RitmError(f"'{mask_path}' is {mask.shape[1]}x{mask.shape[0]} but '{image_path}' is "
                        f"{image.shape[1]}x{image.shape[0]}; they must have the same size")
    if tile < 16:
        raise RitmError("the tile size of a pair: spec must be at least 16 pixels")
    stem = os.path.splitext(os.path.basename(image_path))[0].replace("_rgb", "")
    rows, cols = mask.shape[0] // tile, mask.shape[1] // tile
    if not rows or not cols:
        raise RitmError(f"'{image_path}' is smaller than one {tile}x{tile} tile")
    items = [(f"{stem}_{r}_{c}", r, c) for r in range(rows) for c in range(cols)]

    def load(i):
        name, r, c = items[i]
        win = (slice(r * tile, (r + 1) * tile), slice(c * tile, (c + 1) * tile))
        return Sample(name, np.ascontiguousarray(image[win]), mask[win] > 127)

    return Dataset(f"pair:{stem}", [it[0] for it in items], load)
