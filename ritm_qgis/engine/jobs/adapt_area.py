"""Adapt a model to an area: raster + building footprints (covering part of it) -> a named model.

One window per building (``geo_dataset``'s ``buildings`` mode: the building alone is the target),
``training.adapt.adapt`` for the time budget with its hold-out check, and, when the held-out
buildings got better, the adapted network saved into the model cache as a named model
(``models.adapted``: ``BASE+LAYER-YYYYMMDD``) with its provenance beside it. A model that did not
do better is not saved: the result says so, and the caller keeps the base model.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from ritm_qgis.core.errors import RitmError
from ritm_qgis.core.progress import Progress

__all__ = ["AreaAdaptation", "adapt_area"]


@dataclass
class AreaAdaptation:
    result: object  # training.adapt.AdaptResult
    name: Optional[str]  # the saved model's name; None when it was not saved (not better, or cancelled)
    path: Optional[Path]
    provenance: dict

    @property
    def improved(self) -> bool:
        return self.name is not None

    def message(self) -> str:
        r = self.result
        if r.cancelled and self.name is None:
            return "Adapting was cancelled; the model in use stays as it was."
        head = (f"Adapted model {self.name} saved and ready" if self.name else
                "Adapting did not make the held-out buildings better, so the model in use stays as it was")
        return (f"{head}: held-out {r.n_holdout} buildings, NoC10@85 "
                f"{r.before.noc10_85:.2f} -> {r.after.noc10_85:.2f}, IoU at click 1 {r.before.iou_at_1:.2f} -> "
                f"{r.after.iou_at_1:.2f}, at click 3 {r.before.iou_at_3:.2f} -> {r.after.iou_at_3:.2f} "
                f"({r.steps} steps on {r.n_train} buildings).")


def _label(text) -> str:
    s = str(text)
    return Path(s).stem if os.path.sep in s or s.endswith((".pth", ".pt", ".gpkg", ".shp", ".geojson")) else s


def adapt_area(raster: str | os.PathLike, footprints, base_model: str, minutes: float, *,
               layer_name: Optional[str] = None, layer_label: Optional[str] = None, name: Optional[str] = None,
               stretch=None, recipe=None, directory: Optional[os.PathLike] = None,
               progress: Progress | None = None, cancel: Callable[[], bool] | None = None,
               log: Callable[[str], None] | None = None, **adapt_options) -> AreaAdaptation:
    """Adapt ``base_model`` (a model name or checkpoint) to the buildings of ``footprints`` on ``raster``.

    footprints: a path or GeoDataFrame (``layer_name``: its layer in a GeoPackage); ``layer_label``
    names the layer in the model name and provenance (default: the file's stem or ``footprints``).
    ``directory``: the model cache (default: the user's). ``adapt_options`` go to ``adapt``
    (``every``, ``max_holdout``, ``checks``, ...).
    """
    from ritm_qgis.engine.data.geo_dataset import raster_footprint_dataset
    from ritm_qgis.engine.training.adapt import adapt
    from ritm_qgis.models import load_model, save_checkpoint
    from ritm_qgis.models.adapted import adapted_name, write_provenance
    from ritm_qgis.models.catalog import record_verified
    from ritm_qgis.models.weights import cache_dir

    if str(base_model).strip().lower() in ("grabcut", "grabcut-multi"):
        raise RitmError("GrabCut has no weights to adapt; choose a network model such as aerial-finetuned-h18s.")
    dataset = raster_footprint_dataset(str(raster), footprints, mode="buildings", layer_name=layer_name,
                                       stretch=stretch)
    model, info = load_model(base_model, device="cpu")
    result = adapt(model, dataset, minutes, recipe, progress=progress, cancel=cancel, log=log, **adapt_options)
    label = layer_label or layer_name or (_label(footprints) if isinstance(footprints, (str, os.PathLike))
                                          else "footprints")
    provenance = {
        "base_model": _label(base_model),
        "base_weights_sha256": info.weights_sha256,
        "arch": info.arch,
        "raster": str(raster),
        "layer": str(label),
        "buildings": len(dataset),
        "minutes": float(minutes),
        "holdout_before": result.before.as_dict(),
        "holdout_after": result.after.as_dict(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **{k: v for k, v in result.metadata().items() if k not in ("before", "after")},
    }
    if not result.improved:
        return AreaAdaptation(result, None, None, provenance)
    folder = Path(directory) if directory is not None else cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    name = name or adapted_name(provenance["base_model"], label, folder)
    path = folder / f"{name}.pth"
    if path.exists():
        raise RitmError(f"A model named {name!r} is already in the cache; choose another name.")
    save_checkpoint(path, result.model, arch=info.arch, metadata={"regime": "adapted", "adaptation": provenance})
    record_verified(path)
    write_provenance(name, provenance, folder)  # last: only a complete model is listed as adapted
    return AreaAdaptation(result, name, path, provenance)
