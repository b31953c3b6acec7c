"""One rule for how a raster becomes the model's 8-bit RGB input: the stretch, chosen by the user.

``StretchRule(kind, low, high, bands)``, one of

* ``percentile``: each band from its 2nd to its 98th percentile (the default of the CLI and
  Processing; 8-bit rasters pass through unchanged);
* ``minmax``: each band from its minimum to its maximum (8-bit rasters pass through unchanged);
* ``fixed``: every band from ``low[0]`` to ``high[0]``, whatever its type (``--stretch LOW,HIGH``);
* ``layer``: what QGIS draws: the layer's bands (``bands``, 1-based, 1 or 3) each from
  ``low[i]`` to ``high[i]``, truncated to the grey level below as QGIS does. It is built by the
  QGIS glue from the layer's renderer (``ritm_qgis/layer_stretch.py``); the engine only
  applies the numbers.

Statistics of ``percentile`` and ``minmax`` come from the whole raster (a decimated read, nodata
excluded), so every window of a raster looks the same. ``label`` is what outputs record.

Every input takes the same arithmetic (``band_stretch``: percentiles of the valid pixels only):
a raster window (``resolve_stretch(...).read``), an image file (``read_image_rgb``, what
``predict``, ``demo`` and the mask-folder datasets see) and an array (``stretch_image``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ritm_qgis.core.errors import RitmError
from ritm_qgis.engine.geo.band_stretch import PERCENTILES, Stretch, band_limits, to_rgb
from ritm_qgis.engine.geo.image_norm import rgb_bands_first
from ritm_qgis.engine.geo.raster_io import (RgbWindow, open_raster, raster_meta, raster_stretch, read_image,
                                            read_rgb, select_bands)

KINDS = ("percentile", "minmax", "fixed", "layer")
CLI_CHOICES = "percentile, minmax or LOW,HIGH"
STRETCH_METAVAR = "{percentile,minmax,LOW,HIGH}"
STRETCH_HELP = ("how an image that is not 8-bit becomes the model's 8-bit input: percentile (default: each band "
                "from its 2nd to 98th percentile), minmax (from its minimum to maximum), or LOW,HIGH (a fixed "
                "range for every band, 8-bit images included); recorded with the outputs")
_PERCENTILES = {"percentile": PERCENTILES, "minmax": (0.0, 100.0)}


@dataclass(frozen=True)
class StretchRule:
    kind: str = "percentile"
    low: tuple[float, ...] = ()
    high: tuple[float, ...] = ()
    bands: tuple[int, ...] | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise RitmError(f"Unknown stretch '{self.kind}'; use {CLI_CHOICES}.")
        if self.kind in ("fixed", "layer") and (not self.low or len(self.low) != len(self.high)):
            raise RitmError(f"The '{self.kind}' stretch needs one low and one high value per band.")

    @property
    def label(self) -> str:
        """The rule as recorded in outputs: 'percentile', 'minmax', '100,2000', 'layer:59-5982'."""
        if self.kind == "fixed":
            return f"{self.low[0]:g},{self.high[0]:g}"
        if self.kind == "layer":
            ranges = ";".join(f"{lo:g}-{hi:g}" for lo, hi in zip(self.low, self.high))
            return f"layer:{ranges}"
        return self.kind


def parse_stretch(text: str | StretchRule | None) -> StretchRule:
    """'percentile' | 'minmax' | 'LOW,HIGH' -> a rule (a rule is returned as it is)."""
    if isinstance(text, StretchRule):
        return text
    value = (text or "percentile").strip().lower()
    if value in ("percentile", "minmax"):
        return StretchRule(value)
    parts = value.split(",")
    try:
        low, high = (float(p) for p in parts)
    except ValueError:
        raise RitmError(f"--stretch takes {CLI_CHOICES} (e.g. 100,2000), not '{text}'.") from None
    if not (np.isfinite(low) and np.isfinite(high)) or high <= low:
        raise RitmError(f"--stretch LOW,HIGH needs two numbers with LOW below HIGH, not '{text}'.")
    return StretchRule("fixed", (low,), (high,))


@dataclass(frozen=True)
class RasterStretch:
    """A rule resolved on one raster: the bands to read and the numbers to apply (None: unchanged)."""

    rule: StretchRule
    bands: tuple[int, ...] | None
    values: Stretch | None
    pixel_space: bool = False

    def read(self, source, window=None) -> RgbWindow:
        """The window as the model's input."""
        return read_rgb(source, window, bands=self.bands, pixel_space=self.pixel_space,
                        stretch=self.values if self.values is not None else "raster")


def resolve_stretch(rule: StretchRule | str | None, source, *, pixel_space: bool = False) -> RasterStretch:
    """Compute the rule's numbers for a raster (a path or an open rasterio dataset); ``pixel_space``:
    an image without georeference."""
    rule = parse_stretch(rule)
    if isinstance(source, str) or hasattr(source, "__fspath__"):
        with open_raster(source) as ds:
            return resolve_stretch(rule, ds, pixel_space=pixel_space)
    meta = raster_meta(source, pixel_space=pixel_space)
    if rule.kind == "layer":
        bands = tuple(rule.bands) if rule.bands else None
        n = 1 if bands is None else len(bands)
        low = rule.low if len(rule.low) == n else rule.low[:1] * n
        high = rule.high if len(rule.high) == n else rule.high[:1] * n
        if meta.dtype == "uint8" and set(low) == {0.0} and set(high) == {255.0}:
            return RasterStretch(rule, bands, None, pixel_space)  # drawn as stored: the bytes as they are
        return RasterStretch(rule, bands, Stretch(tuple(low), tuple(high), floor=True), pixel_space)
    if rule.kind == "fixed":
        n = len(select_bands(meta))
        return RasterStretch(rule, None, Stretch(rule.low[:1] * n, rule.high[:1] * n), pixel_space)
    if meta.dtype == "uint8":
        return RasterStretch(rule, None, None, pixel_space)
    values = raster_stretch(source, percentiles=_PERCENTILES[rule.kind], pixel_space=pixel_space)
    return RasterStretch(rule, None, values, pixel_space)


def _no_layer_outside_qgis(rule: StretchRule) -> None:
    if rule.kind == "layer":
        raise RitmError("The 'layer' stretch exists only inside QGIS; use percentile, minmax or LOW,HIGH.")


def read_image_rgb(path, rule: StretchRule | str | None = None) -> RgbWindow:
    """An image file (``raster_io.read_image``) as the model's input under the rule, with the raster
    path's numbers: a GeoTIFF gives what ``resolve_stretch(rule, path).read(path)`` gives."""
    rule = parse_stretch(rule)
    _no_layer_outside_qgis(rule)
    image = read_image(path)
    if rule.kind == "fixed":
        values = Stretch(rule.low[:1] * len(image.data), rule.high[:1] * len(image.data))
    elif image.dtype == "uint8":
        values = None
    else:
        values = resolve_stretch(rule, path, pixel_space=True).values
    rgb, invalid = to_rgb(image.data, image.invalid, values)
    return RgbWindow(rgb=rgb, invalid=invalid, window=image.window, grid=image.grid)


def stretch_image(image, rule: StretchRule | str | None, invalid: np.ndarray | None = None) -> np.ndarray:
    """An image array (H, W[, bands]) -> RGB uint8 under the rule; ``invalid`` (H, W) pixels are left
    out of the statistics and come out black."""
    rule = parse_stretch(rule)
    _no_layer_outside_qgis(rule)
    data = rgb_bands_first(np.asarray(image))
    invalid = np.zeros(data.shape[1:], bool) if invalid is None else np.asarray(invalid, bool)
    if rule.kind == "fixed":
        values = Stretch(rule.low[:1] * 3, rule.high[:1] * 3)
    elif data.dtype == np.uint8:
        values = None
    else:
        values = band_limits(data, invalid, _PERCENTILES[rule.kind])  # non-finite values left out too
    rgb, _ = to_rgb(data, invalid, values)
    return rgb
