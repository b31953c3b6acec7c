"""Typed dataset specs: what the engine and the algorithms pass around instead of ``KIND:PATH`` text.

Each spec is a small frozen value naming a data source; ``str(spec)`` gives the text form that
``ritm-qgis evaluate --dataset`` / ``train`` accept (for records such as a checkpoint's metadata),
and ``registry.parse_dataset_spec`` turns that text back into a spec (the CLI's job only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union


@dataclass(frozen=True)
class MaskFolderSpec:
    """ROOT/images + ROOT/masks with one of the mask conventions of ``datasets.MASK_RULES``."""

    root: str
    convention: str = "folder"  # grabcut | davis | folder

    def __str__(self):
        return f"{self.convention}:{self.root}"


@dataclass(frozen=True)
class InriaSpec:
    """Crops written by ``prepare-inria`` (the paper's test split by default)."""

    root: str
    split: str = "test"

    def __str__(self):
        return f"inria:{self.root}:{self.split}"


@dataclass(frozen=True)
class RasterSpec:
    """A georeferenced raster and a footprint layer: 500x500 tiles or one window per building."""

    raster: str
    footprints: str
    mode: str = "tiles"  # tiles | buildings

    def __str__(self):
        return f"raster:{self.raster}:{self.footprints}:{self.mode}"


@dataclass(frozen=True)
class PairSpec:
    """One large image with a same-size mask (> 127 object), cut into TILE x TILE tiles (training)."""

    image: str
    mask: str
    tile: int = 250

    def __str__(self):
        return f"pair:{self.image}:{self.mask}:{self.tile}"


DatasetSpec = Union[MaskFolderSpec, InriaSpec, RasterSpec, PairSpec]
