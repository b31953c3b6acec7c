"""One large image with a mask of the same size and no georeference, cut into square tiles."""

from __future__ import annotations

import os

import numpy as np

from ritm_qgis.core.errors import RitmError
from ritm_qgis.engine.data.datasets import Dataset, Sample, read_image_gray, read_image_rgb
from ritm_qgis.engine.geo.tiling import tile_grid


def image_pair_tiles(image_path: str, mask_path: str, tile: int = 250) -> Dataset:
    """One large image + same-size mask (> 127 object) as TILE x TILE tiles; edge remainders dropped."""
    for p in (image_path, mask_path):
        if not os.path.isfile(p):
            raise RitmError(f"no file at '{p}'")
    image, mask = read_image_rgb(image_path), read_image_gray(mask_path)
    if image.shape[:2] != mask.shape:
        raise RitmError(f"'{mask_path}' is {mask.shape[1]}x{mask.shape[0]} but '{image_path}' is "
                        f"{image.shape[1]}x{image.shape[0]}; they must have the same size")
    stem = os.path.splitext(os.path.basename(image_path))[0].replace("_rgb", "")
    if tile < 16:
        raise RitmError("the tile size of a pair: spec must be at least 16 pixels")
    tiles = tile_grid(mask.shape[1], mask.shape[0], size=tile, edge="drop", stem=stem)
    if not tiles:
        raise RitmError(f"'{image_path}' is smaller than one {tile}x{tile} tile")

    def load(i):
        win = tiles[i].window.toslices()
        return Sample(tiles[i].name, np.ascontiguousarray(image[win]), mask[win] > 127)

    return Dataset(f"pair:{stem}", [t.name for t in tiles], load)
