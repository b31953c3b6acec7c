"""The dataset formats: one registration line each, a typed spec in, a ``Dataset`` out.

To add a format: write its module (a spec in ``specs.py`` and a function returning a ``Dataset``)
and add one line to ``_FORMATS`` below (its CLI keyword, spec type and text parser).
"""

from __future__ import annotations

import re
from typing import Callable, NamedTuple

from ritm_qgis.core.errors import RitmError
from ritm_qgis.engine.data import datasets, geo_dataset, pair_tiles
from ritm_qgis.engine.data.specs import DatasetSpec, InriaSpec, MaskFolderSpec, PairSpec, RasterSpec


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise RitmError(f"the {what} must be a whole number, not '{text}'") from None


class _Format(NamedTuple):
    spec_type: type
    usage: str
    n_parts: tuple  # (fewest, most) colon-separated parts after the keyword
    from_parts: Callable[[str, list], DatasetSpec]  # (keyword, parts after the keyword) -> spec
    open: Callable[[DatasetSpec], "datasets.Dataset"]


def _mask_folder(kind, parts):
    return MaskFolderSpec(":".join(parts), kind)


def _pair(kind, parts):
    return PairSpec(parts[0], parts[1], *(_int(t, "tile size of a pair: spec") for t in parts[2:3]))


def _raster(kind, parts):
    """IMAGE, FOOTPRINTS[, MODE]; a layer named as QGIS does ('f.gpkg|layername=a:b') may hold colons:
    the parts after the file are its name, but for a last part that is a sampling mode."""
    image, rest = parts[0], parts[1:]
    mode = None
    if len(rest) > 1 and rest[-1] in geo_dataset.MODES:
        rest, mode = rest[:-1], rest[-1]
    if len(rest) > 1 and "|layername=" not in rest[0]:
        raise RitmError(f"a raster: dataset is raster:IMAGE.tif:FOOTPRINTS.gpkg[:tiles|buildings]; "
                        f"'{':'.join(rest[1:])}' is not a sampling mode (use tiles or buildings)")
    footprints = ":".join(rest)
    return RasterSpec(image, footprints) if mode is None else RasterSpec(image, footprints, mode)


def _open_mask_folder(spec):
    return datasets.mask_folder(spec.root, spec.convention)


_FORMATS = {
    "grabcut": _Format(MaskFolderSpec, "grabcut:DIR", (1, 99), _mask_folder, _open_mask_folder),
    "davis": _Format(MaskFolderSpec, "davis:DIR", (1, 99), _mask_folder, _open_mask_folder),
    "folder": _Format(MaskFolderSpec, "folder:DIR", (1, 99), _mask_folder, _open_mask_folder),
    "inria": _Format(InriaSpec, "inria:DIR[:test|train]", (1, 2), lambda k, p: InriaSpec(*p),
                     lambda s: datasets.inria_crops(s.root, s.split)),
    "raster": _Format(RasterSpec, "raster:IMAGE.tif:FOOTPRINTS.gpkg[:tiles|buildings]", (2, 99), _raster,
                      lambda s: geo_dataset.raster_footprint_dataset(s.raster, s.footprints, mode=s.mode)),
    "pair": _Format(PairSpec, "pair:IMAGE:MASK[:TILE]", (2, 3), _pair,
                    lambda s: pair_tiles.image_pair_tiles(s.image, s.mask, s.tile)),
}

_DRIVE = re.compile(r"^[A-Za-z]$")


def split_spec(text: str) -> list[str]:
    """``KIND:PATH:...`` split on colons, keeping Windows drive letters (``C:\\data``) inside their path."""
    parts = text.split(":")
    out: list[str] = []
    i = 0
    while i < len(parts):
        if i > 0 and _DRIVE.match(parts[i]) and i + 1 < len(parts) and parts[i + 1][:1] in ("\\", "/"):
            out.append(parts[i] + ":" + parts[i + 1])
            i += 2
        else:
            out.append(parts[i])
            i += 1
    return out


def usage(kinds=None) -> str:
    return ", ".join(f.usage for k, f in _FORMATS.items() if kinds is None or k in kinds)


def parse_dataset_spec(text: str, kinds=None, flag: str = "--dataset") -> DatasetSpec:
    """The CLI's ``KIND:PATH[:...]`` text -> a typed spec (``kinds`` limits the accepted keywords)."""
    parts = split_spec(text)
    kind = parts[0].lower()
    allowed = [k for k in _FORMATS if kinds is None or k in kinds]
    if kind not in allowed:
        raise RitmError(f"{flag} takes KIND:PATH, one of {usage(allowed)}; '{text}' names no such kind")
    lo, hi = _FORMATS[kind].n_parts
    args = parts[1:]
    if not (lo <= len(args) <= hi) or not all(args[:lo]):
        raise RitmError(f"{flag} {kind}: takes {_FORMATS[kind].usage}, not '{text}'")
    return _FORMATS[kind].from_parts(kind, args)


def open_dataset(spec: DatasetSpec, stretch=None) -> "datasets.Dataset":
    """The samples a spec names (read lazily). ``stretch``: how images that are not 8-bit become the
    model's input (``geo.stretch.StretchRule`` or its CLI text; default percentile)."""
    from ritm_qgis.engine.geo.stretch import parse_stretch

    rule = parse_stretch(stretch)
    if isinstance(spec, RasterSpec):
        return geo_dataset.raster_footprint_dataset(spec.raster, spec.footprints, mode=spec.mode, stretch=rule)
    for fmt in _FORMATS.values():
        if isinstance(spec, fmt.spec_type):
            dataset = fmt.open(spec)
            return datasets.restretched(dataset, rule)
    raise RitmError(f"not a dataset spec: {spec!r}")
