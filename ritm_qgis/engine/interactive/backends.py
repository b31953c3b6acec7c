"""One place that turns a model spec (what users type) into a predictor backend.

- ``grabcut``: the weight-free GrabCut backend, one object per image (the GrabCut benchmark);
- ``grabcut-multi``: the same with the click prior, for many objects per image (the paper's
  tiles, where every building of the tile is the target);
- anything else: a checkpoint file, a shipped or downloaded model name (``load_model``).
"""

from __future__ import annotations

import os
import re

GRABCUT_SPECS = {"grabcut": "box", "grabcut-multi": "clicks"}


def build_backend(spec: str, device: str = "auto", precision: str = "fp32", optimize: str = "auto"):
    key = spec.strip().lower()
    if key in GRABCUT_SPECS:
        from ritm_qgis.engine.interactive.grabcut_backend import GrabCutBackend

        return GrabCutBackend(prior=GRABCUT_SPECS[key])
    from ritm_qgis.engine.interactive.predictor import NetworkBackend

    return NetworkBackend.from_checkpoint(spec, device=device, precision=precision, optimize=optimize)


def model_label(spec: str) -> str:
    """A model spec -> a short name safe in file names: a checkpoint file's stem, else the name itself."""
    is_file = os.path.sep in spec or spec.endswith((".pth", ".pt"))
    base = os.path.splitext(os.path.basename(spec))[0] if is_file else spec
    return re.sub(r"[^A-Za-z0-9._-]+", "_", base) or "model"
