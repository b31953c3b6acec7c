"""One rule for how a raster becomes the model's 8-bit RGB input: the stretch, chosen by the user.

The kinds (``percentile``, the default of the CLI and Processing; ``minmax``; ``fixed``, typed
``LOW,HIGH``; ``layer``, what QGIS draws, its numbers read by ``ritm_qgis/layer_stretch.py``) are
objects in ``stretch_kinds.py``, listed once in ``stretch_registry.py``; a user's choice is a
``StretchRule`` (its ``label`` is what outputs record).

Statistics come from the whole raster (a decimated read, nodata excluded), so every window of a
raster looks the same. Every input takes the same arithmetic (``band_stretch``: percentiles of the
valid pixels only) and the kind's own limits: a raster window (``resolve_stretch(...).read``), an
image file (``read_image_rgb``, what ``predict``, ``demo`` and the mask-folder datasets see) and an
array (``stretch_image``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ritm_qgis.engine.geo.band_stretch import Stretch, band_limits, to_rgb
from ritm_qgis.engine.geo.image_norm import rgb_bands_first
from ritm_qgis.engine.geo.raster_io import (RgbWindow, open_raster, raster_meta, raster_stretch, read_image,
                                            read_rgb, select_bands)
from ritm_qgis.engine.geo.stretch_registry import StretchRule, only_typed, parse_stretch, stretch_kind

__all__ = ["StretchRule", "parse_stretch", "RasterStretch", "resolve_stretch", "read_image_rgb", "stretch_image"]


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
    kind = stretch_kind(rule.kind)
    bands = kind.bands(rule)
    n_bands = len(bands) if bands else len(select_bands(meta))
    values = kind.limits(rule, n_bands, meta.dtype,
                         lambda p: raster_stretch(source, bands=bands, percentiles=p, pixel_space=pixel_space))
    return RasterStretch(rule, bands, values, pixel_space)


def read_image_rgb(path, rule: StretchRule | str | None = None) -> RgbWindow:
    """An image file (``raster_io.read_image``) as the model's input under the rule, with the raster
    path's numbers: a GeoTIFF gives what ``resolve_stretch(rule, path).read(path)`` gives."""
    rule = only_typed(parse_stretch(rule))
    image = read_image(path)
    values = stretch_kind(rule.kind).limits(
        rule, len(image.data), image.dtype, lambda p: raster_stretch(path, percentiles=p, pixel_space=True))
    rgb, invalid = to_rgb(image.data, image.invalid, values)
    return RgbWindow(rgb=rgb, invalid=invalid, window=image.window, grid=image.grid)


def stretch_image(image, rule: StretchRule | str | None, invalid: np.ndarray | None = None) -> np.ndarray:
    """An image array (H, W[, bands]) -> RGB uint8 under the rule; ``invalid`` (H, W) pixels are left
    out of the statistics and come out black."""
    rule = only_typed(parse_stretch(rule))
    data = rgb_bands_first(np.asarray(image))
    invalid = np.zeros(data.shape[1:], bool) if invalid is None else np.asarray(invalid, bool)
    values = stretch_kind(rule.kind).limits(
        rule, data.shape[0], str(data.dtype), lambda p: band_limits(data, invalid, p))  # non-finite left out too
    rgb, _ = to_rgb(data, invalid, values)
    return rgb
