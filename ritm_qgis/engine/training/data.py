"""Training data: the engine's datasets turned into (image, label, clicks) batches.

Sources are the evaluation specs of ``ritm_qgis.engine.data.datasets.parse_dataset_spec``
(``inria:DIR:train``, ``davis:DIR``, ``grabcut:DIR``, ``folder:DIR``,
``raster:IMAGE.tif:FOOTPRINTS.gpkg[:tiles|buildings]``) plus one for a single large image with a
mask of the same size and no georeference:

``pair:IMAGE:MASK[:TILE]``  the image cut into TILE x TILE tiles (default 250) named
``{stem}_{row}_{col}``, mask > 127 is object.

``select(dataset, include, exclude)`` keeps the samples whose name matches a regular expression
(``re.search``), which is how a fixed part is held out (e.g. ``--exclude 'img5[0-4]$'``).
"""

from __future__ import annotations

import os
import re

import numpy as np

from ritm_qgis.engine.data.datasets import Dataset, Sample, parse_dataset_spec, read_gray, read_rgb
from ritm_qgis.core.errors import RitmError

from .augment import Augment
from .sampler import IGNORE, MultiPointSampler

__all__ = ["parse_training_spec", "image_pair_tiles", "select", "to_label", "ClickDataset", "export_folder"]


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


def parse_training_spec(spec: str) -> Dataset:
    kind, _, rest = spec.partition(":")
    if kind.lower() != "pair":
        return parse_dataset_spec(spec)
    parts = rest.split(":")
    if len(parts) not in (2, 3):
        raise RitmError(f"pair: takes pair:IMAGE:MASK[:TILE], not '{spec}'")
    try:
        tile = int(parts[2]) if len(parts) == 3 else 250
    except ValueError:
        raise RitmError(f"the tile size in '{spec}' must be a number of pixels") from None
    return image_pair_tiles(parts[0], parts[1], tile)


def select(dataset: Dataset, include: str | None = None, exclude: str | None = None) -> Dataset:
    keep = [i for i, n in enumerate(dataset.names)
            if (not include or re.search(include, n)) and not (exclude and re.search(exclude, n))]
    if not keep:
        raise RitmError(f"no sample of {dataset.name} is left after --include {include!r} / "
                        f"--exclude {exclude!r}")
    return dataset.subset(keep) if len(keep) != len(dataset) else dataset


def to_label(sample: Sample) -> np.ndarray:
    """int8 label map: 1 object, 0 background, -1 ignored."""
    label = np.asarray(sample.gt, bool).astype(np.int8)
    if sample.ignore is not None:
        label[np.asarray(sample.ignore, bool)] = IGNORE
    return label


def export_folder(dataset: Dataset, out: str) -> int:
    """Write a dataset as a ``folder:OUT`` evaluation set (images/NAME.png RGB, masks/NAME.png 0/255)."""
    import cv2

    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    os.makedirs(os.path.join(out, "masks"), exist_ok=True)
    for s in dataset:
        cv2.imwrite(os.path.join(out, "images", s.name + ".png"), np.ascontiguousarray(s.image[:, :, ::-1]))
        cv2.imwrite(os.path.join(out, "masks", s.name + ".png"), s.gt.astype(np.uint8) * 255)
    return len(dataset)


class ClickDataset:
    """A map-style (torch-compatible) dataset of augmented training items.

    Item i of epoch e is ``samples[i % n]`` augmented with a generator seeded by (seed, e, i), so a
    run is reproducible and every DDP rank draws different, non-overlapping items. ``cache``
    keeps the decoded samples in memory (the small sets used here) and then drops samples
    without any object pixel; without it, samples are read from disk for each item.
    """

    def __init__(self, datasets, augment: Augment | None = None, sampler: MultiPointSampler | None = None,
                 epoch_len: int | None = None, seed: int = 0, cache: bool = True):
        self.datasets = list(datasets)
        self.augment = augment or Augment()
        self.sampler = sampler or MultiPointSampler()
        self.seed = int(seed)
        self.epoch = 0
        self.index = [(d, i) for d in range(len(self.datasets)) for i in range(len(self.datasets[d]))]
        self.cache = None
        if cache:
            items = [(self.datasets[d][i]) for d, i in self.index]
            items = [(s.name, np.ascontiguousarray(s.image[:, :, :3]).astype(np.uint8), to_label(s))
                     for s in items]
            self.cache = [it for it in items if (it[2] == 1).any()]
            if not self.cache:
                raise RitmError("no training sample holds any object pixel; check the data and its masks")
        self.n_samples = len(self.cache) if self.cache is not None else len(self.index)
        if not self.n_samples:
            raise RitmError("the training data is empty")
        self.epoch_len = int(epoch_len) if epoch_len else self.n_samples

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self):
        return self.epoch_len

    def raw(self, k: int):
        if self.cache is not None:
            return self.cache[k]
        d, i = self.index[k]
        s = self.datasets[d][i]
        return s.name, np.ascontiguousarray(s.image[:, :, :3]).astype(np.uint8), to_label(s)

    def __getitem__(self, i: int):
        import torch

        rng = np.random.default_rng([self.seed, self.epoch, int(i)])
        _, image, label = self.raw(int(i) % self.n_samples)
        image, label = self.augment(image, label, rng)
        points = self.sampler.sample(label, rng)
        return {
            "image": torch.from_numpy(image.transpose(2, 0, 1).copy()).float().div_(255.0),
            "label": torch.from_numpy(label[None].astype(np.float32)),
            "points": torch.from_numpy(points),
        }
