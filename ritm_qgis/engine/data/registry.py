"""The dataset formats: one registration line each, a typed spec in, a ``Dataset`` out.

The one list of formats: ``evaluate --dataset``, ``train --data`` and the engine read it, and the
commands' help shows its ``usage()``. To add a format: write its module (its spec, a frozen
dataclass, and a function returning a ``Dataset``) and add one line to ``_FORMATS`` below (its CLI
keyword, spec type, text parser and opener), or call ``register_format`` from elsewhere. A
format's modules are imported when a dataset is opened, so the list itself is cheap to import.
"""

from __future__ import annotations

import re
from typing import Callable, NamedTuple

from ritm_qgis.core.errors import RitmError
from ritm_qgis.engine.data import datasets
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
    open: Callable[..., "datasets.Dataset"]  # spec -> Dataset (spec, stretch=StretchRule when takes_stretch)
    takes_stretch: bool = False  # the opener applies the stretch itself (else images are restretched after)


def _mask_folder(kind, parts):
    return MaskFolderSpec(":".join(parts), kind)


def _pair(kind, parts):
    return PairSpec(parts[0], parts[1], *(_int(t, "tile size of a pair: spec") for t in parts[2:3]))


def _raster(kind, parts):
    """IMAGE, FOOTPRINTS[, MODE]; a layer named as QGIS does ('f.gpkg|layername=a:b') may hold colons:
    the parts after the file are its name, but for a last part that is a sampling mode."""
    from ritm_qgis.engine.data.geo_dataset import MODES

    image, rest = parts[0], parts[1:]
    mode = None
    if len(rest) > 1 and rest[-1] in MODES:
        rest, mode = rest[:-1], rest[-1]
    if len(rest) > 1 and "|layername=" not in rest[0]:
        raise RitmError(f"a raster: dataset is raster:IMAGE.tif:FOOTPRINTS.gpkg[:tiles|buildings]; "
                        f"'{':'.join(rest[1:])}' is not a sampling mode (use tiles or buildings)")
    footprints = ":".join(rest)
    return RasterSpec(image, footprints) if mode is None else RasterSpec(image, footprints, mode)


def _open_mask_folder(spec):
    return datasets.mask_folder(spec.root, spec.convention)


def _open_raster(spec, stretch):
    from ritm_qgis.engine.data.geo_dataset import raster_footprint_dataset

    return raster_footprint_dataset(spec.raster, spec.footprints, mode=spec.mode, stretch=stretch)


def _open_pair(spec):
    from ritm_qgis.engine.data.pair_tiles import image_pair_tiles

    return image_pair_tiles(spec.image, spec.mask, spec.tile)


_FORMATS = {
    "grabcut": _Format(MaskFolderSpec, "grabcut:DIR", (1, 99), _mask_folder, _open_mask_folder),
    "davis": _Format(MaskFolderSpec, "davis:DIR", (1, 99), _mask_folder, _open_mask_folder),
    "folder": _Format(MaskFolderSpec, "folder:DIR", (1, 99), _mask_folder, _open_mask_folder),
    "inria": _Format(InriaSpec, "inria:DIR[:test|train]", (1, 2), lambda k, p: InriaSpec(*p),
                     lambda s: datasets.inria_crops(s.root, s.split)),
    "raster": _Format(RasterSpec, "raster:IMAGE.tif:FOOTPRINTS.gpkg[:tiles|buildings]", (2, 99), _raster,
                      _open_raster, takes_stretch=True),
    "pair": _Format(PairSpec, "pair:IMAGE:MASK[:TILE]", (2, 3), _pair, _open_pair),
}


def register_format(kind: str, spec_type: type, usage_text: str, n_parts: tuple, from_parts, open_spec,
                    takes_stretch: bool = False) -> None:
    """Add a format to the list (a plug-in's or a test's): ``kind`` is its CLI keyword; see ``_Format``."""
    kind = kind.lower()
    if kind in _FORMATS:
        raise ValueError(f"dataset kind {kind!r} is already registered")
    _FORMATS[kind] = _Format(spec_type, usage_text, tuple(n_parts), from_parts, open_spec, takes_stretch)


def unregister_format(kind: str) -> None:
    _FORMATS.pop(kind.lower(), None)

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
    for fmt in _FORMATS.values():
        if isinstance(spec, fmt.spec_type):
            if fmt.takes_stretch:
                return fmt.open(spec, stretch=rule)
            dataset = fmt.open(spec)
            return datasets.restretched(dataset, rule)
    raise RitmError(f"not a dataset spec: {spec!r}")
