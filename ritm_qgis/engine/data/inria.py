"""INRIA Aerial Image Labeling: cut the official tiles into the paper's 500x500 crops.

Input, the official layout::

    SRC/train/images/{city}{n}.tif     RGB GeoTIFF (5000x5000 in the real data set)
    SRC/train/gt/{city}{n}.tif         0/255 building mask on the same grid

(``SRC`` may also be the ``train`` folder itself.) Output, what ``inria_crops`` /
``--dataset inria:OUT[:train]`` read::

    OUT/test/images/{city}{n}_{row}_{col}.png    RGB, n in 1..5 for every city (the paper's test split)
    OUT/test/gt/{city}{n}_{row}_{col}.png        0/255, gt > 128 is building
    OUT/train/...                                 every other n
    OUT/manifest.csv                              name, split, city, n, row, col, foreground, empty

``row``/``col`` are crop indices (``chicago1_0_1`` is the second crop of the first row).
Crops are non-overlapping; a remainder narrower than a crop at the right/bottom edge is dropped
(there is none at 5000x5000). The work is resumable: a crop whose two PNGs exist is not written
again, and every file is written to a temporary name and renamed, so an interrupted run leaves
no half-written crop behind.
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from ritm_qgis.core.atomic import atomic_path, write_text_atomically
from ritm_qgis.core.errors import RitmError
from ritm_qgis.core.progress import Progress
from ritm_qgis.engine.geo.raster_io import open_raster
from ritm_qgis.engine.geo.tiling import tile_grid

__all__ = ["InriaTile", "PrepareResult", "find_tiles", "prepare_inria", "TEST_IDS", "MANIFEST_FIELDS"]

TEST_IDS = (1, 2, 3, 4, 5)
MANIFEST_FIELDS = ["name", "split", "city", "n", "row", "col", "foreground", "empty"]
_NAME = re.compile(r"^(?P<city>[A-Za-z][A-Za-z_-]*?)(?P<n>\d+)$")
_TIF = (".tif", ".tiff")


@dataclass(frozen=True)
class InriaTile:
    city: str
    n: int
    image: str
    gt: str

    @property
    def stem(self) -> str:
        return f"{self.city}{self.n}"


@dataclass
class PrepareResult:
    out: str
    written: int = 0
    skipped: int = 0
    crops: int = 0
    empty: int = 0
    manifest: str = ""
    cancelled: bool = False


def _tif_stems(folder: str) -> dict:
    return {os.path.splitext(f)[0]: os.path.join(folder, f) for f in sorted(os.listdir(folder))
            if f.lower().endswith(_TIF) and not f.startswith(".")}


def find_tiles(src: str) -> list[InriaTile]:
    """The (image, gt) pairs of an official INRIA folder, checked, sorted by city then number."""
    base = src
    if not os.path.isdir(os.path.join(base, "images")) and os.path.isdir(os.path.join(base, "train", "images")):
        base = os.path.join(base, "train")
    img_dir, gt_dir = os.path.join(base, "images"), os.path.join(base, "gt")
    if not os.path.isdir(img_dir):
        raise RitmError(f"'{src}' is not the INRIA layout: expected '{os.path.join(src, 'train', 'images')}' "
                        "holding {city}{n}.tif; point --src at AerialImageDataset (or its train folder).")
    if not os.path.isdir(gt_dir):
        raise RitmError(f"'{img_dir}' has no sibling 'gt' folder with the ground truth; INRIA's test "
                        "images have no labels, so use the train folder.")
    images, gts = _tif_stems(img_dir), _tif_stems(gt_dir)
    if not images:
        raise RitmError(f"no .tif images in '{img_dir}'.")
    no_gt = sorted(set(images) - set(gts))
    if no_gt:
        raise RitmError(f"{len(no_gt)} image(s) have no ground truth of the same name in '{gt_dir}': "
                        f"{', '.join(no_gt[:5])}; restore the missing gt files or remove those images.")
    no_img = sorted(set(gts) - set(images))
    if no_img:
        raise RitmError(f"{len(no_img)} ground-truth file(s) have no image of the same name in '{img_dir}': "
                        f"{', '.join(no_img[:5])}; restore the missing images or remove those gt files.")
    tiles = []
    for stem in images:
        m = _NAME.match(stem)
        if not m:
            raise RitmError(f"'{images[stem]}' is not named {{city}}{{n}}.tif (e.g. austin1.tif), so its "
                            "test/train split cannot be decided; rename it.")
        tiles.append(InriaTile(m["city"], int(m["n"]), images[stem], gts[stem]))
    return sorted(tiles, key=lambda t: (t.city, t.n))


def _read(ds, window, bands):
    return ds.read(bands, window=window)


def _write_png(path: str, array: np.ndarray) -> None:
    import cv2

    with atomic_path(path, suffix=".png") as tmp:
        if not cv2.imwrite(tmp, array):
            raise RitmError(f"could not write '{path}'; is the disk full or the folder read-only?")


def prepare_inria(src: str, out: str, crop_size: int = 500, test_ids=TEST_IDS,
                  progress: Optional[Progress] = None,
                  cancel: Optional[Callable[[], bool]] = None) -> PrepareResult:
    """Cut every tile of ``src`` into ``crop_size`` crops under ``out`` (see the module doc).

    progress(tiles done, tiles, message) is called after each tile; cancel() is polled between crops
    (finished crops stay; run again to resume). Returns counts and the manifest path.
    """
    if crop_size < 1:
        raise RitmError("--crop-size must be a positive number of pixels.")
    tiles = find_tiles(src)
    test_ids = set(int(i) for i in test_ids)
    result = PrepareResult(out=out, manifest=os.path.join(out, "manifest.csv"))
    rows = []
    for k, tile in enumerate(tiles):
        split = "test" if tile.n in test_ids else "train"
        img_out, gt_out = os.path.join(out, split, "images"), os.path.join(out, split, "gt")
        os.makedirs(img_out, exist_ok=True)
        os.makedirs(gt_out, exist_ok=True)
        with open_raster(tile.image) as ids, open_raster(tile.gt) as gds:
            if (ids.width, ids.height) != (gds.width, gds.height):
                raise RitmError(f"'{tile.image}' is {ids.width}x{ids.height} but its ground truth "
                                f"'{tile.gt}' is {gds.width}x{gds.height}; they must cover the same grid.")
            if ids.count < 3:
                raise RitmError(f"'{tile.image}' has {ids.count} band(s); INRIA images are RGB (3 bands).")
            crops = tile_grid(ids.width, ids.height, size=crop_size, edge="drop", stem=tile.stem)
            if not crops:
                raise RitmError(f"'{tile.image}' ({ids.width}x{ids.height}) is smaller than one "
                                f"{crop_size}x{crop_size} crop; use a smaller --crop-size.")
            for crop in crops:
                if cancel is not None and cancel():
                    result.cancelled = True
                    return result
                name, r, c, window = crop.name, crop.row, crop.col, crop.window
                gt = _read(gds, window, 1) > 128
                img_path, gt_path = os.path.join(img_out, name + ".png"), os.path.join(gt_out, name + ".png")
                if os.path.exists(img_path) and os.path.exists(gt_path):
                    result.skipped += 1
                else:
                    rgb = np.moveaxis(_read(ids, window, [1, 2, 3]), 0, -1)
                    if rgb.dtype != np.uint8:
                        raise RitmError(f"'{tile.image}' stores {rgb.dtype} pixels; INRIA images are "
                                        "8-bit RGB.")
                    _write_png(img_path, np.ascontiguousarray(rgb[:, :, ::-1]))
                    _write_png(gt_path, gt.astype(np.uint8) * 255)
                    result.written += 1
                fg = float(gt.mean())
                result.crops += 1
                result.empty += fg == 0.0
                rows.append([name, split, tile.city, tile.n, r, c, f"{fg:.6f}", int(fg == 0.0)])
        if progress is not None:
            progress(k + 1, len(tiles), f"{tile.stem}: {len(crops)} crops ({split})")
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(MANIFEST_FIELDS)
    w.writerows(rows)
    write_text_atomically(result.manifest, buf.getvalue())
    return result
