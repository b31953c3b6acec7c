"""Models adapted to the user's area: named checkpoints in the model cache with their provenance.

An adapted model is ``NAME.pth`` in the cache (with the ``NAME.pth.sha256`` note every cached
file has, so it loads by name like any other) and ``NAME.adapted.json`` beside it: the base
model, the footprint layer, the number of buildings, the time budget and the hold-out result
before and after. ``catalog.model_statuses`` lists these files as their own group (status
``adapted``); ``remove_adapted`` deletes the three files.

Names read ``BASE+LAYER-YYYYMMDD`` (``aerial-finetuned-h18s+footprints-20261207``), with ``-2``,
``-3``... when that name is taken.
"""

from __future__ import annotations

import datetime
import json
import os
import re
from pathlib import Path
from typing import Optional

from ritm_qgis.core.errors import RitmError

from .cache_files import discard
from .weights import cache_dir

__all__ = ["PROVENANCE_SUFFIX", "adapted_name", "provenance_path", "read_provenance", "write_provenance",
           "entry_fields", "remove_adapted", "adapted_names"]

PROVENANCE_SUFFIX = ".adapted.json"


def _folder(directory) -> Path:
    return Path(directory) if directory is not None else cache_dir()


def provenance_path(name: str, directory: Optional[os.PathLike] = None) -> Path:
    return _folder(directory) / f"{name}{PROVENANCE_SUFFIX}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", str(text)).strip("-")[:40] or "area"


def adapted_name(base: str, layer: str, directory: Optional[os.PathLike] = None,
                 today: Optional[datetime.date] = None) -> str:
    """A free name ``BASE+LAYER-YYYYMMDD`` (``-2``, ``-3``... appended when taken)."""
    base_stem = _slug(Path(str(base)).stem if str(base).endswith((".pth", ".pt")) else base)
    stem = f"{base_stem}+{_slug(layer)}-{(today or datetime.date.today()):%Y%m%d}"
    folder = _folder(directory)
    name, k = stem, 1
    while (folder / f"{name}.pth").exists() or (folder / f"{name}{PROVENANCE_SUFFIX}").exists():
        k += 1
        name = f"{stem}-{k}"
    return name


def write_provenance(name: str, provenance: dict, directory: Optional[os.PathLike] = None) -> Path:
    from ritm_qgis.core.atomic import write_text_atomically

    path = provenance_path(name, directory)
    write_text_atomically(str(path), json.dumps(provenance, indent=1, default=str))
    return path


def read_provenance(name: str, directory: Optional[os.PathLike] = None) -> Optional[dict]:
    """The provenance of an adapted model, or None when ``name`` is not one."""
    path = provenance_path(name, directory)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def entry_fields(pth: Path) -> Optional[dict]:
    """For ``catalog``: the list fields of a cached ``NAME.pth`` that is an adapted model, else None."""
    p = read_provenance(pth.stem, pth.parent)
    if p is None:
        return None
    before, after = p.get("holdout_before") or {}, p.get("holdout_after") or {}
    minutes = p.get("minutes")
    data = (f"{p.get('base_model', '?')} adapted to {p.get('buildings', '?')} buildings of "
            f"{p.get('layer', 'a footprint layer')} ({minutes:g} min)" if isinstance(minutes, (int, float)) else
            f"{p.get('base_model', '?')} adapted to {p.get('buildings', '?')} buildings of {p.get('layer', '?')}")
    good = (f"adapted to your area: hold-out NoC10@85 {before.get('noc10@85', '?')} -> {after.get('noc10@85', '?')}, "
            f"IoU at click 3 {before.get('mean_iou_click3', '?')} -> {after.get('mean_iou_click3', '?')}")
    return {"arch": str(p.get("arch", "unknown")), "training_data": data, "good_for": good}


def adapted_names(directory: Optional[os.PathLike] = None) -> list:
    folder = _folder(directory)
    if not folder.is_dir():
        return []
    return sorted(p.name[:-len(PROVENANCE_SUFFIX)] for p in folder.glob(f"*{PROVENANCE_SUFFIX}")
                  if (folder / (p.name[:-len(PROVENANCE_SUFFIX)] + ".pth")).is_file())


def remove_adapted(name: str, directory: Optional[os.PathLike] = None) -> None:
    """Delete an adapted model (its checkpoint, checksum note and provenance)."""
    folder = _folder(directory)
    if not name or any(c in name for c in "/\\") or read_provenance(name, folder) is None:
        known = ", ".join(adapted_names(folder)) or "none"
        raise RitmError(f"{name!r} is not an adapted model in {folder}; adapted models: {known}.")
    for path in (folder / f"{name}.pth", folder / f"{name}.pth.sha256"):
        discard(path)
    discard(provenance_path(name, folder))
