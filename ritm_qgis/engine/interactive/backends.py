"""One place that turns a model spec (what users type) into a predictor backend.

A spec is a name of the model list (``ritm_qgis/models/catalog.py``) or a checkpoint file. A listed
model is built by its entry's builder (``models/builders.py``): the RITM network loader for weights
(shipped, downloaded), OpenCV GrabCut for ``grabcut`` (one object per image, the GrabCut benchmark)
and ``grabcut-multi`` (the click prior, for many objects per image: the paper's tiles). Anything
else is a checkpoint file for the network loader (``load_model``). A new backend is its module plus
one entry in the list, with no case of its own here.
"""

from __future__ import annotations

import os
import re


def build_backend(spec: str, device: str = "auto", precision: str = "fp32", optimize: str = "auto",
                  progress=None):
    """``progress(done, total, message)`` hears of a speed-up path's one-off build (a network's
    conversion; backends without weights build nothing)."""
    from ritm_qgis.models.builders import NETWORK, load_builder
    from ritm_qgis.models.catalog import entry

    listed = entry(spec.strip().lower())
    builder = listed.builder if listed is not None else NETWORK
    key = listed.name if listed is not None and not listed.weights else spec
    extra = {"progress": progress} if progress is not None and builder.weights else {}
    return load_builder(builder)(key, device=device, precision=precision, optimize=optimize,
                                 **dict(builder.options), **extra)


def model_label(spec: str) -> str:
    """A model spec -> a short name safe in file names: a checkpoint file's stem, else the name itself."""
    is_file = os.path.sep in spec or spec.endswith((".pth", ".pt"))
    base = os.path.splitext(os.path.basename(spec))[0] if is_file else spec
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", base) or "model"
