"""What builds a model of the list, and what it takes as input: one record per model kind.

As torchgeo's weights carry their transforms and band metadata, each entry of the model list
(``catalog.ModelEntry``) carries a ``Builder``: the callable that turns the entry into a predictor
backend, whether it loads a weights file, and the input it expects (``Inputs``: bands, stretch).
The catalogue, the backends (``engine/interactive/backends.build_backend``) and the model
information command read these fields, so a weight-free backend such as GrabCut needs no special
case anywhere: adding one is its module plus one entry in the list.

A builder is named by reference, ``"package.module:callable"`` (as packaging's entry points do),
and imported only when a backend is built: listing the models at QGIS start imports neither the
engine nor torch. The callable is called as ``build(spec, device=, precision=, optimize=, **options)``
with ``spec`` the name or checkpoint file the user gave.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable, Tuple

__all__ = ["Inputs", "Builder", "NETWORK", "load_builder"]


@dataclass(frozen=True)
class Inputs:
    """The image a model takes: ``bands`` channels of 8-bit RGB, made from a raster by default with
    the ``stretch`` rule (a name registered in ``engine/geo/stretch_registry.py``)."""

    bands: int = 3
    stretch: str = "percentile"

    def as_dict(self) -> dict:
        return {"bands": self.bands, "stretch": self.stretch}


@dataclass(frozen=True)
class Builder:
    """``target``: "module:callable" building the backend; ``weights``: whether it loads a .pth file
    (shipped, downloaded or given); ``options``: keyword arguments passed to the callable."""

    target: str
    weights: bool = True
    inputs: Inputs = field(default_factory=Inputs)
    options: Tuple[Tuple[str, object], ...] = ()


# the RITM networks (HRNet + OCR): a checkpoint file or a listed model's file, architecture in models/registry.py
NETWORK = Builder("ritm_qgis.engine.interactive.predictor:NetworkBackend.from_checkpoint")


def load_builder(builder: Builder) -> Callable:
    """The callable ``builder.target`` names, imported now."""
    module, _, attribute = builder.target.partition(":")
    found = importlib.import_module(module)
    for part in attribute.split("."):
        found = getattr(found, part)
    return found
