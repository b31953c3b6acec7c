"""Training data: the engine's datasets turned into (image, label, clicks) batches.

Sources are any dataset of ``ritm_qgis.engine.data`` (typed specs, ``registry.open_dataset``),
``PairSpec`` included (one large image with a same-size mask, cut into tiles).

``select(dataset, include, exclude)`` keeps the samples whose name matches a regular expression
(``re.search``), which is how a fixed part is held out (e.g. ``--exclude 'img5[0-4]$'``).
"""

from __future__ import annotations

import os
import re

import numpy as np

from ritm_qgis.core.errors import RitmError
from ritm_qgis.engine.data.datasets import Dataset, Sample

from .augment import Augment
from .sampler import IGNORE, MultiPointSampler

__all__ = ["select", "to_label", "ClickDataset", "export_folder"]


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
