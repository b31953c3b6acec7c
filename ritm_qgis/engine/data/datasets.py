"""Evaluation samples: an image, its ground-truth mask and an optional ignore mask.

Sources (``registry.open_dataset`` opens a typed spec; the CLI's text forms are given here):

- ``grabcut:DIR``  images/ + masks/NAME.png, 255 object, 128 uncertain band (ignored), 0 background;
- ``davis:DIR``    images/ + masks/NAME.png, any value > 0 object (first channel), nothing ignored;
- ``folder:DIR``   images/ + masks/, grayscale > 128 object (the paper's demo rule), nothing ignored;
- ``inria:DIR``    crops written by ``prepare-inria`` (DIR/test/images + DIR/test/gt), the paper's
                   test split; ``inria:DIR:train`` for the training split;
- ``raster:IMG.tif:FOOTPRINTS.gpkg[:tiles|buildings]``  a georeferenced raster and a footprint
                   layer: 500x500 tiles with the union of buildings (paper mode, default) or one
                   window around each building with that building alone (instance mode).

Images are read lazily, one sample at a time, so a dataset never has to fit in memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from ritm_qgis.core.errors import RitmError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


@dataclass
class Sample:
    name: str
    image: np.ndarray  # (H, W, 3) uint8 RGB (or what image_norm accepts)
    gt: np.ndarray  # (H, W) bool
    ignore: np.ndarray | None = None  # (H, W) bool, True = counts for nothing
    meta: dict = field(default_factory=dict)  # e.g. georeference of the window
    invalid: np.ndarray | None = None  # (H, W) bool: nodata (or transparent) pixels of the image file


@dataclass
class Dataset:
    """A named, ordered list of sample loaders."""

    name: str
    names: list[str]
    loader: Callable[[int], Sample]
    repaired_footprints: tuple = ()  # ids of reference polygons that were invalid and repaired (raster datasets)

    def __len__(self):
        return len(self.names)

    def __getitem__(self, i) -> Sample:
        return self.loader(i)

    def __iter__(self) -> Iterator[Sample]:
        return (self.loader(i) for i in range(len(self)))

    def subset(self, indices) -> "Dataset":
        indices = list(indices)
        return Dataset(self.name, [self.names[i] for i in indices], lambda k: self.loader(indices[k]))


def read_image_raw(path: str) -> tuple[np.ndarray, np.ndarray | None]:
    """An image file (the engine's one reader, ``raster_io.read_image``) as (H, W, 3) RGB in its own
    type (8-bit, 16-bit...), and its nodata pixels (None when it has none)."""
    from ritm_qgis.engine.geo.raster_io import read_image

    image = read_image(path)
    data = image.data if len(image.data) == 3 else np.repeat(image.data, 3, axis=0)
    return np.ascontiguousarray(np.moveaxis(data, 0, -1)), (image.invalid if image.invalid.any() else None)


def read_image_rgb(path: str) -> np.ndarray:
    """An image file as (H, W, 3) RGB in its own type (``read_image_raw`` without the nodata)."""
    return read_image_raw(path)[0]


def read_image_gray(path: str) -> np.ndarray:
    import cv2

    m = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if m is None:
        raise RitmError(f"'{path}' could not be read as a mask image; is the file complete?")
    return m if m.ndim == 2 else m[:, :, 0] if m.shape[2] != 3 else cv2.cvtColor(m, cv2.COLOR_BGR2GRAY)


MASK_RULES = {
    # preset -> (gt from raw mask, ignore from raw mask or None)
    "grabcut": (lambda m: m == 255, lambda m: m == 128),
    "davis": (lambda m: m > 0, None),
    "folder": (lambda m: m > 128, None),
}


def _pair_images_and_masks(root: str):
    img_dir, mask_dir = os.path.join(root, "images"), os.path.join(root, "masks")
    for d in (img_dir, mask_dir):
        if not os.path.isdir(d):
            raise RitmError(f"'{root}' needs two sub-folders, images/ and masks/; '{d}' is missing")
    masks = {os.path.splitext(f)[0]: os.path.join(mask_dir, f) for f in os.listdir(mask_dir)
             if f.lower().endswith(IMAGE_EXTENSIONS)}
    pairs = []
    for f in sorted(os.listdir(img_dir)):
        stem, ext = os.path.splitext(f)
        if ext.lower() in IMAGE_EXTENSIONS and stem in masks:
            pairs.append((stem, os.path.join(img_dir, f), masks[stem]))
    if not pairs:
        raise RitmError(f"no image in '{img_dir}' has a mask of the same name in '{mask_dir}'")
    return pairs


def mask_folder(root: str, preset: str = "folder") -> Dataset:
    if preset not in MASK_RULES:
        raise RitmError(f"unknown mask convention '{preset}'; use one of {', '.join(MASK_RULES)}")
    to_gt, to_ignore = MASK_RULES[preset]
    pairs = _pair_images_and_masks(root)

    def load(i):
        name, img_path, mask_path = pairs[i]
        (image, invalid), raw = read_image_raw(img_path), read_image_gray(mask_path)
        if raw.shape != image.shape[:2]:
            raise RitmError(f"mask '{mask_path}' is {raw.shape[1]}x{raw.shape[0]} but its image is "
                            f"{image.shape[1]}x{image.shape[0]}; they must have the same size")
        return Sample(name, image, to_gt(raw), None if to_ignore is None else to_ignore(raw), invalid=invalid)

    return Dataset(f"{preset}:{os.path.basename(os.path.normpath(root))}", [p[0] for p in pairs], load)


def inria_crops(root: str, split: str = "test") -> Dataset:
    """Crops written by ``prepare-inria``: ROOT/SPLIT/images/NAME.png + ROOT/SPLIT/gt/NAME.png (0/255)."""
    base = os.path.join(root, split)
    if not os.path.isdir(os.path.join(base, "images")):
        raise RitmError(f"no prepared INRIA crops in '{base}'; run 'ritm-qgis prepare-inria' first")
    names = sorted(os.path.splitext(f)[0] for f in os.listdir(os.path.join(base, "images")) if f.endswith(".png"))
    if not names:
        raise RitmError(f"'{base}/images' holds no crops; run 'ritm-qgis prepare-inria' first")

    def load(i):
        image = read_image_rgb(os.path.join(base, "images", names[i] + ".png"))
        gt = read_image_gray(os.path.join(base, "gt", names[i] + ".png")) > 128
        return Sample(names[i], image, gt)

    return Dataset(f"inria:{split}", names, load)


def restretched(dataset: Dataset, rule) -> Dataset:
    """The dataset with each image made the model's 8-bit RGB by ``rule`` (``geo.stretch.StretchRule``),
    the sample's nodata pixels left out of the statistics, as on a raster."""
    from dataclasses import replace

    from ritm_qgis.engine.geo.stretch import stretch_image

    def load(i):
        sample = dataset.loader(i)
        return replace(sample, image=stretch_image(sample.image, rule, sample.invalid))

    return Dataset(dataset.name, dataset.names, load)
