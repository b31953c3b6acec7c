"""The numbers of a stretch and their arithmetic: raw bands -> the model's 8-bit RGB (numpy only).

One percentile rule for every input (a raster window, a whole raster read decimated, an image file
or an array handed to the predictor): ``band_limits`` takes each band's percentiles over its valid
pixels only (nodata, alpha 0, masked, NaN and infinite values excluded), and ``to_rgb`` maps each
band linearly from ``low`` to ``high`` onto 0..255, clipped, with invalid pixels black.
``stretch.py`` says which numbers a user's choice (percentile, minmax, LOW,HIGH, layer) gives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ritm_qgis.core.errors import RitmError

__all__ = ["Stretch", "PERCENTILES", "band_limits", "to_rgb"]

PERCENTILES = (2.0, 98.0)  # the display stretch usual for 16-bit aerial imagery


@dataclass(frozen=True)
class Stretch:
    """Per-band linear stretch: value ``low[i]`` -> 0, ``high[i]`` -> 255 (clipped).

    ``low > high`` inverts the band (white to black). ``floor``: truncate to the grey level below,
    as QGIS's contrast enhancement does, instead of rounding to the nearest.
    """

    low: tuple[float, ...]
    high: tuple[float, ...]
    floor: bool = False


def band_limits(data: np.ndarray, invalid: np.ndarray | None = None, percentiles=PERCENTILES) -> Stretch:
    """Each band's ``percentiles`` over its valid, finite pixels (``data``: bands, H, W)."""
    lows, highs = [], []
    valid = None if invalid is None else ~invalid
    for band in data:
        vals = band[valid] if valid is not None else band.ravel()
        vals = vals[np.isfinite(vals)] if np.issubdtype(vals.dtype, np.floating) else vals
        if vals.size == 0:
            lows.append(0.0)
            highs.append(0.0)
            continue
        lo, hi = np.percentile(vals, percentiles)
        lows.append(float(lo))
        highs.append(float(hi))
    return Stretch(tuple(lows), tuple(highs))


def to_rgb(data: np.ndarray, invalid: np.ndarray, stretch: Stretch | None = None,
           percentiles=PERCENTILES) -> tuple[np.ndarray, np.ndarray]:
    """Raw (bands, H, W) with 1 or 3 bands -> ((H, W, 3) uint8, invalid); invalid pixels are 0.

    uint8 passes through unchanged unless a ``stretch`` is given; other types use ``stretch``
    (``band_limits`` of ``data`` when None). Non-finite values count as invalid.
    """
    if data.ndim != 3 or data.shape[0] not in (1, 3):
        raise RitmError(f"Expected 1 or 3 bands to make an RGB image, got shape {data.shape}.")
    if np.issubdtype(data.dtype, np.floating):
        invalid = invalid | ~np.isfinite(data).all(axis=0)
    if data.dtype == np.uint8 and stretch is None:
        out = data
    else:
        if stretch is None:
            stretch = band_limits(data, invalid, percentiles)
        if len(stretch.low) != data.shape[0]:
            raise RitmError(f"The stretch has {len(stretch.low)} band(s) but the image has {data.shape[0]}.")
        out = np.empty(data.shape, dtype=np.uint8)
        for i, band in enumerate(data):
            lo, hi = stretch.low[i], stretch.high[i]
            b = band.astype("float64", copy=False)
            if hi != lo:
                scaled = (b - lo) * (255.0 / (hi - lo))
                np.clip(scaled, 0, 255, out=scaled)
                scaled[~np.isfinite(scaled)] = 0
                out[i] = (np.floor(scaled) if stretch.floor else np.rint(scaled)).astype(np.uint8)
            else:
                out[i] = np.where(b > lo, 255, 0).astype(np.uint8)
    if out.shape[0] == 1:
        out = np.repeat(out, 3, axis=0)
    rgb = np.moveaxis(out, 0, -1).copy(order="C")  # never a view of the caller's array
    rgb[invalid] = 0
    return rgb, invalid
