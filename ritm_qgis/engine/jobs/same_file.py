"""Refuse an output that is one of the run's inputs, before anything is read or written.

Paths are compared as files (``os.path.samefile`` when both exist, so links and other spellings of
one file match; else their real paths). Two layers of one GeoPackage are different outputs, so a
GeoPackage output replaces an input only when it names the same layer (an input given without a
layer name is the file's only layer).
"""

from __future__ import annotations

import os
from typing import NamedTuple

from ritm_qgis.core.errors import RitmError


class Place(NamedTuple):
    """A file (and a layer of it, for a GeoPackage) that a run reads or writes; ``name`` is how the
    interface calls it (a CLI flag, a Processing parameter)."""

    name: str
    path: str
    layer: str | None = None


def same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def _only_layer(path: str) -> str | None:
    try:
        import pyogrio

        layers = [str(name) for name, _ in pyogrio.list_layers(path)]
    except Exception:  # noqa: BLE001 - not a vector file: compared as a whole file
        return None
    return layers[0] if len(layers) == 1 else None


def _same_place(output: Place, source: Place) -> bool:
    if not output.path or not source.path or not same_file(output.path, source.path):
        return False
    if output.layer is None or not output.path.lower().endswith(".gpkg"):
        return True  # the whole file is replaced
    layer = source.layer or _only_layer(source.path)
    return layer is None or layer.lower() == output.layer.lower()


def refuse_outputs_among_inputs(outputs, inputs) -> None:
    """A RitmError when one of ``outputs`` (Places) would replace one of ``inputs`` (Places)."""
    for out in outputs:
        for source in inputs:
            if out is not None and source is not None and _same_place(out, source):
                layer = f" (layer '{out.layer}')" if out.layer and out.path.lower().endswith(".gpkg") else ""
                raise RitmError(f"{out.name} '{out.path}'{layer} is the input {source.name}; writing it would "
                                f"replace the input, so choose another file{' or layer name' if layer else ''} "
                                f"for {out.name}.")
