"""Turning whatever raster the user has into the RGB image the predictors expect.

The networks were trained on 8-bit RGB photographs, so every input becomes an (H, W, 3)
RGB image, as float32 in [0, 1] (``to_rgb_float``) or uint8 (``to_rgb_uint8``). The rules,
applied in this order:

* Layout: (H, W) and (H, W, C) are taken as they are. A 3-D array whose first axis is small
  (at most 16) while its last axis is not (more than 16) is band-first, as GDAL and rasterio
  return it, and is transposed to (H, W, C).
* Bands: one band (or two: grey + alpha) is grey and repeated into R, G and B; three or more
  bands give R, G, B from the first three (an alpha or near-infrared fourth band is dropped).
  Pick or reorder bands before calling when your raster is not RGB-first.
* Values: uint8 is divided by 255; bool becomes 0/1; floats already within [0, 1] are kept.
  Everything else (uint16, other integers, floats outside [0, 1]) takes the engine's one
  percentile stretch (``band_stretch``: each band from its 2nd to its 98th percentile onto the
  256 grey levels, clipped, as a raster window gets it). NaN and infinite values become 0 and
  are left out of the percentiles. An array carries no nodata: read files with
  ``raster_io.read_image`` / ``stretch.read_image_rgb``, which leave nodata out as well.
"""

from __future__ import annotations

import numpy as np

from ritm_qgis.core.errors import RitmError
from ritm_qgis.engine.geo.band_stretch import to_rgb

_MAX_BANDS_FIRST = 16


def _to_hwc(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image[:, :, None]
    if image.ndim != 3:
        raise RitmError(
            f"The image has {image.ndim} dimensions; give an (H, W) grey image or an (H, W, bands) "
            "(or bands-first) colour image."
        )
    if image.shape[0] <= _MAX_BANDS_FIRST < image.shape[2]:
        image = np.moveaxis(image, 0, -1)
    return image


def _select_rgb(image: np.ndarray) -> np.ndarray:
    bands = image.shape[2]
    if bands == 0:
        raise RitmError("The image has no bands; give an image with 1 (grey) or 3 or more (RGB) bands.")
    if bands <= 2:
        return np.repeat(image[:, :, :1], 3, axis=2)
    return image[:, :, :3]


def to_rgb_float(image) -> np.ndarray:
    """The image as a C-contiguous (H, W, 3) float32 RGB array in [0, 1] (rules above)."""
    image = np.asarray(image)
    image = _select_rgb(_to_hwc(image))
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise RitmError(f"The image is empty ({image.shape[0]} x {image.shape[1]} pixels).")
    if image.dtype == np.uint8:
        out = image.astype(np.float32) / 255.0
    elif image.dtype == bool:
        out = image.astype(np.float32)
    elif image.dtype.kind in "fc" or image.dtype.kind in "iu":
        if image.dtype.kind == "c":
            raise RitmError("The image has complex values; give a real-valued image.")
        data = image.astype(np.float64)
        if image.dtype.kind == "f" and np.isfinite(data).all() and data.min() >= 0.0 and data.max() <= 1.0:
            out = data.astype(np.float32)
        else:
            bands = np.moveaxis(data, -1, 0)
            rgb, _ = to_rgb(bands, np.zeros(bands.shape[1:], bool))
            out = rgb.astype(np.float32) / 255.0
    else:
        raise RitmError(f"Images of type {image.dtype} are not supported; give a numeric image.")
    return np.ascontiguousarray(out, dtype=np.float32)


def to_rgb_uint8(image) -> np.ndarray:
    """The image as a C-contiguous (H, W, 3) uint8 RGB array (uint8 RGB input is kept as is)."""
    arr = np.asarray(image)
    if arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3:
        return np.ascontiguousarray(arr)
    return np.ascontiguousarray(np.round(to_rgb_float(arr) * 255.0).astype(np.uint8))


def rgb_bands_first(image) -> np.ndarray:
    """The image's grey or R, G, B bands (layout and band rules above) as (3, H, W), values untouched."""
    return np.ascontiguousarray(np.moveaxis(_select_rgb(_to_hwc(np.asarray(image))), -1, 0))
