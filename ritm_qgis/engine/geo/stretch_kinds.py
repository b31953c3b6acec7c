"""The kinds of stretch (how a raster becomes the model's 8-bit RGB), each an object the registry lists.

A kind says what it is called (``name``; ``usage``: how it is typed, ``LOW,HIGH`` for ``fixed``),
one line for the dock and the help (``description``), how it reads its text (``parse``: the rule's
``low`` and ``high`` numbers, or None when the text is not this kind's), what outputs record
(``label``) and its per-band limits (``limits``) for any input: it is handed the number of bands,
their type and ``percentiles(p)``, the source's per-band percentiles over its valid pixels (the
whole raster read decimated, an image file or an array, ``band_stretch.band_limits`` underneath),
and returns a ``band_stretch.Stretch``, or None to pass bytes through unchanged.

A new kind is a module with a ``StretchKind`` subclass and one line in ``stretch_registry._KINDS``.
``from_glue`` kinds are never typed: their numbers come from QGIS (``layer``: what the layer is
drawn with, read by ``ritm_qgis/layer_stretch.py``), so they exist only inside QGIS.
"""

from __future__ import annotations

import math
from typing import Callable

from ritm_qgis.core.errors import RitmError
from ritm_qgis.engine.geo.band_stretch import PERCENTILES, Stretch

Percentiles = Callable[[tuple[float, float]], Stretch]


class StretchKind:
    name = ""
    description = ""  # one line, lower case, no full stop: the dock's tooltip and the help texts
    usage = ""  # how it is typed (default: its name)
    from_glue = False

    def typed_as(self) -> str:
        return self.usage or self.name

    def parse(self, text: str) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        """(low, high) of the rule ``text`` (stripped, lower case) names, or None if it is not this kind."""
        return ((), ()) if text == self.name else None

    def check(self, rule) -> None:
        """RitmError when ``rule``'s numbers do not suit this kind."""

    def label(self, rule) -> str:
        return self.name

    def bands(self, rule) -> tuple[int, ...] | None:
        """The 1-based bands to read (None: the raster's grey or first three bands)."""
        return None

    def limits(self, rule, n_bands: int, dtype: str, percentiles: Percentiles) -> Stretch | None:
        raise NotImplementedError


class PercentileKind(StretchKind):
    """Each band from one percentile of its valid pixels to another; 8-bit images pass unchanged."""

    def __init__(self, name: str, description: str, percentiles: tuple[float, float]):
        self.name, self.description, self.percentiles = name, description, percentiles

    def limits(self, rule, n_bands, dtype, percentiles):
        return None if dtype == "uint8" else percentiles(self.percentiles)


class FixedKind(StretchKind):
    """Every band from ``low[0]`` to ``high[0]``, whatever its type (8-bit images included)."""

    name = "fixed"
    usage = "LOW,HIGH"
    description = "a fixed range for every band, 8-bit images included, e.g. 100,2000"

    def parse(self, text):
        try:
            low, high = (float(p) for p in text.split(","))
        except ValueError:
            return None
        if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
            raise RitmError(f"--stretch LOW,HIGH needs two numbers with LOW below HIGH, not '{text}'.")
        return (low,), (high,)

    def check(self, rule):
        _one_range_per_band(rule)

    def label(self, rule):
        return f"{rule.low[0]:g},{rule.high[0]:g}"

    def limits(self, rule, n_bands, dtype, percentiles):
        return Stretch(rule.low[:1] * n_bands, rule.high[:1] * n_bands)


class LayerKind(StretchKind):
    """What QGIS draws: the layer's bands (1 or 3) each from ``low[i]`` to ``high[i]``, truncated to
    the grey level below as QGIS does; built by the glue from the layer's renderer."""

    name = "layer"
    description = "as the layer is drawn in QGIS: its bands and contrast"
    from_glue = True

    def parse(self, text):
        return None

    def check(self, rule):
        _one_range_per_band(rule)

    def label(self, rule):
        return "layer:" + ";".join(f"{lo:g}-{hi:g}" for lo, hi in zip(rule.low, rule.high))

    def bands(self, rule):
        return tuple(rule.bands) if rule.bands else None

    def limits(self, rule, n_bands, dtype, percentiles):
        n = len(rule.bands) if rule.bands else 1
        low = rule.low if len(rule.low) == n else rule.low[:1] * n
        high = rule.high if len(rule.high) == n else rule.high[:1] * n
        if dtype == "uint8" and set(low) == {0.0} and set(high) == {255.0}:
            return None  # drawn as stored: the bytes as they are
        return Stretch(tuple(low), tuple(high), floor=True)


def _one_range_per_band(rule) -> None:
    if not rule.low or len(rule.low) != len(rule.high):
        raise RitmError(f"The '{rule.kind}' stretch needs one low and one high value per band.")


PERCENTILE = PercentileKind("percentile", "each band from its 2nd to 98th percentile", PERCENTILES)
MINMAX = PercentileKind("minmax", "each band from its minimum to maximum", (0.0, 100.0))
FIXED = FixedKind()
LAYER = LayerKind()
