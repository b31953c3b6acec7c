"""Raster windows: open any GDAL raster, read a window, normalise it to the model's RGB uint8.

Value types
-----------
``RasterGrid``  the pixel grid of a raster (CRS, affine transform, size); pure, no I/O.
``RasterMeta``  a grid plus the band description needed to read it (dtype, nodata, alpha band).
``Stretch``     per-band (low, high) values for the linear stretch to uint8 (``band_stretch``).
``RgbWindow``   what the model gets: ``rgb`` (H, W, 3) uint8 plus ``invalid`` (H, W) bool.

Normalisation to RGB uint8 (``band_stretch.to_rgb``), documented once here
--------------------------------------------------------------
* Band choice (``select_bands``): an explicit ``bands`` list (1-based, 1 or 3 entries) wins.
  Otherwise: 1 band -> replicated grey; 2 bands whose 2nd is alpha -> replicated grey;
  3 bands -> as is; 4+ bands -> the first 3 (an alpha band is never used as a colour).
* Invalid pixels (returned as a boolean mask next to the image; a click must never land there):
  pixels outside the raster (a window may extend past the edges), pixels where *every* chosen
  band equals the band's nodata value, NaN in float rasters, alpha == 0 when the raster has an
  alpha band, and pixels masked by an internal per-dataset mask band (GDAL ``.msk``).
  Invalid pixels are set to 0 in the RGB output.
* Stretch: uint8 bands pass through unchanged. Any other type is stretched linearly per band so
  that the ``percentiles`` (2, 98 by default) of the valid pixels map to 0 and 255, clipped.
  The percentiles are taken from a decimated read of the whole raster (``raster_stretch``),
  so neighbouring windows and tiles look the same; pass ``stretch="window"`` to use the window's
  own pixels instead. A flat band (low == high) maps to 0 (below or equal) / 255 (above).

Georeferencing: pixel <-> map coordinates go through the affine geotransform
(``pixel_to_map``/``map_to_pixel``; pixel (col, row) = (0.0, 0.0) is the upper-left corner of
the upper-left pixel, so a pixel's centre is at +0.5). Rotated or sheared transforms and rasters
without a CRS are refused with a ``RitmError`` unless ``pixel_space=True`` is passed, in which
case coordinates are pixel coordinates (identity transform, no CRS).

``read_image`` is the one reader of image files (PNG, JPEG, BMP, TIFF, GeoTIFF): the whole file
in pixel space, raw, with its invalid pixels, a palette expanded to RGB. ``predict``, ``demo`` and
the mask-folder datasets read through it, so their pixels are the raster path's.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np
import rasterio
import rasterio.transform
from affine import Affine
from rasterio import windows
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, MaskFlags
from rasterio.errors import NotGeoreferencedWarning, RasterioError, RasterioIOError
from rasterio.windows import Window

from ritm_qgis.core.errors import RitmError
from ritm_qgis.engine.geo.band_stretch import PERCENTILES, Stretch, band_limits, to_rgb

__all__ = [
    "RasterGrid",
    "RasterMeta",
    "RasterWindow",
    "RgbWindow",
    "open_raster",
    "raster_meta",
    "check_georeferencing",
    "pixel_to_map",
    "map_to_pixel",
    "select_bands",
    "read_window",
    "raster_stretch",
    "read_rgb",
    "read_image",
    "clip_window",
    "Window",
]

Source = Union[str, os.PathLike, "rasterio.io.DatasetReader"]


@dataclass(frozen=True)
class RasterGrid:
    """A north-up pixel grid: ``crs`` (None only in pixel space), ``transform``, ``width``, ``height``."""

    crs: CRS | None
    transform: Affine
    width: int
    height: int

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(minx, miny, maxx, maxy) in map units."""
        return rasterio.transform.array_bounds(self.height, self.width, self.transform)

    @property
    def res(self) -> tuple[float, float]:
        """Pixel size (x, y) in map units, both positive."""
        return (abs(self.transform.a), abs(self.transform.e))

    def window_grid(self, window: Window) -> "RasterGrid":
        """The grid of ``window`` (which may extend past the raster's edges)."""
        return RasterGrid(self.crs, windows.transform(window, self.transform), int(window.width), int(window.height))


@dataclass(frozen=True)
class RasterMeta:
    """What ``read_window`` needs to know about a raster, read once by ``raster_meta``."""

    path: str
    grid: RasterGrid
    count: int
    dtype: str
    nodata: tuple[float | None, ...]
    alpha_band: int | None  # 1-based index of an alpha band, if any
    has_dataset_mask: bool  # an internal/external per-dataset mask band (not nodata/alpha)
    pixel_space: bool

    @property
    def width(self) -> int:
        return self.grid.width

    @property
    def height(self) -> int:
        return self.grid.height


@dataclass(frozen=True)
class RasterWindow:
    """Raw pixels of a window: ``data`` (bands, H, W) in the raster's dtype, ``invalid`` (H, W)."""

    data: np.ndarray
    invalid: np.ndarray
    window: Window
    grid: RasterGrid  # the window's own grid (transform of its upper-left corner)
    bands: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class RgbWindow:
    """The model's input: ``rgb`` (H, W, 3) uint8 and ``invalid`` (H, W) bool, with its grid."""

    rgb: np.ndarray
    invalid: np.ndarray
    window: Window
    grid: RasterGrid


# ---------------------------------------------------------------------------------------------
# Opening and georeferencing


def open_raster(path: str | os.PathLike) -> "rasterio.io.DatasetReader":
    """Open a raster read-only, turning GDAL's failure into a ``RitmError`` the user can act on."""
    try:
        with warnings.catch_warnings():
            # a missing georeference is reported by check_georeferencing, in words
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return rasterio.open(path)
    except RasterioIOError as exc:
        raise RitmError(
            f"Could not open the raster '{path}' ({exc}); check the path and that GDAL can read "
            "the format."
        ) from None


def check_georeferencing(
    crs: CRS | None, transform: Affine, *, pixel_space: bool = False, name: str = "The raster"
) -> None:
    """Raise ``RitmError`` for a rotated/sheared transform or a missing CRS (unless pixel space)."""
    if pixel_space:
        return
    if transform.b != 0 or transform.d != 0:
        raise RitmError(
            f"{name} has a rotated or sheared geotransform, which is not supported; warp it to a "
            "north-up grid first (e.g. gdalwarp) or run in pixel space."
        )
    if transform == Affine.identity() and crs is None:
        raise RitmError(
            f"{name} has no georeference (no CRS and no geotransform); assign one (e.g. "
            "gdal_edit.py -a_srs/-a_ullr) or run in pixel space."
        )
    if crs is None:
        raise RitmError(
            f"{name} has no coordinate reference system; assign one (e.g. gdal_edit.py -a_srs "
            "EPSG:xxxx) or run in pixel space."
        )


def _meta_from_dataset(ds, *, pixel_space: bool) -> RasterMeta:
    name = f"The raster '{ds.name}'"
    check_georeferencing(ds.crs, ds.transform, pixel_space=pixel_space, name=name)
    if ds.count < 1:
        raise RitmError(f"{name} has no bands; choose an image raster.")
    dtypes = set(ds.dtypes)
    if len(dtypes) > 1:
        raise RitmError(f"{name} mixes band data types {sorted(dtypes)}; convert it to one type.")
    alpha = None
    for i, ci in enumerate(ds.colorinterp, start=1):
        if ci == ColorInterp.alpha:
            alpha = i
            break
    flags = ds.mask_flag_enums[0] if ds.count else []
    has_dataset_mask = MaskFlags.per_dataset in flags and MaskFlags.alpha not in flags and (
        MaskFlags.nodata not in flags
    )
    if pixel_space:
        grid = RasterGrid(None, Affine.identity(), ds.width, ds.height)
    else:
        grid = RasterGrid(ds.crs, ds.transform, ds.width, ds.height)
    return RasterMeta(
        path=ds.name,
        grid=grid,
        count=ds.count,
        dtype=ds.dtypes[0],
        nodata=tuple(ds.nodatavals),
        alpha_band=alpha,
        has_dataset_mask=has_dataset_mask,
        pixel_space=pixel_space,
    )


def raster_meta(source: Source, *, pixel_space: bool = False) -> RasterMeta:
    """Read a raster's grid and band description; refuses unsupported georeferencing."""
    if isinstance(source, (str, os.PathLike)):
        with open_raster(source) as ds:
            return _meta_from_dataset(ds, pixel_space=pixel_space)
    return _meta_from_dataset(source, pixel_space=pixel_space)


def pixel_to_map(transform: Affine, col, row):
    """Pixel (col, row) -> map (x, y). Use col + 0.5, row + 0.5 for a pixel's centre. Vectorised."""
    col = np.asarray(col, dtype="float64")
    row = np.asarray(row, dtype="float64")
    x = transform.a * col + transform.b * row + transform.c
    y = transform.d * col + transform.e * row + transform.f
    return x, y


def map_to_pixel(transform: Affine, x, y):
    """Map (x, y) -> fractional pixel (col, row); ``np.floor`` gives the pixel index. Vectorised."""
    inv = ~transform
    x = np.asarray(x, dtype="float64")
    y = np.asarray(y, dtype="float64")
    col = inv.a * x + inv.b * y + inv.c
    row = inv.d * x + inv.e * y + inv.f
    return col, row


# ---------------------------------------------------------------------------------------------
# Reading


def select_bands(meta: RasterMeta, bands: Sequence[int] | None = None) -> tuple[int, ...]:
    """The 1-based bands to read for RGB: 3 bands, or 1 band that is replicated (see module doc)."""
    if bands is not None:
        bands = tuple(int(b) for b in bands)
        if len(bands) not in (1, 3):
            raise RitmError(
                f"Choose 1 band (grey) or 3 bands (red, green, blue), not {len(bands)}: {bands}."
            )
        bad = [b for b in bands if not 1 <= b <= meta.count]
        if bad:
            raise RitmError(
                f"Band(s) {bad} do not exist in '{meta.path}', which has {meta.count} band(s)."
            )
        return bands
    colour = [b for b in range(1, meta.count + 1) if b != meta.alpha_band]
    if len(colour) >= 3:
        return tuple(colour[:3])
    return (colour[0],)


def clip_window(window: Window, width: int, height: int) -> Window | None:
    """The part of ``window`` inside a width x height raster, or None when they do not overlap."""
    whole = Window(0, 0, width, height)
    window = Window(int(window.col_off), int(window.row_off), int(window.width), int(window.height))
    if window.width <= 0 or window.height <= 0 or not windows.intersect([window, whole]):
        return None
    return window.intersection(whole)


def _read(ds, meta: RasterMeta, window: Window, bands: tuple[int, ...]) -> RasterWindow:
    window = Window(int(window.col_off), int(window.row_off), int(window.width), int(window.height))
    h, w = int(window.height), int(window.width)
    dtype = meta.dtype
    data = np.zeros((len(bands), h, w), dtype=dtype)
    invalid = np.ones((h, w), dtype=bool)
    inner = clip_window(window, meta.width, meta.height)
    if inner is not None:
        rs = slice(inner.row_off - window.row_off, inner.row_off - window.row_off + inner.height)
        cs = slice(inner.col_off - window.col_off, inner.col_off - window.col_off + inner.width)
        block = ds.read(list(bands), window=inner)
        data[:, rs, cs] = block
        inv = np.zeros(block.shape[1:], dtype=bool)
        nodata = [meta.nodata[b - 1] for b in bands]
        if all(v is not None for v in nodata):
            all_nd = np.ones(block.shape[1:], dtype=bool)
            for i, v in enumerate(nodata):
                if np.isnan(v):
                    all_nd &= np.isnan(block[i])
                else:
                    all_nd &= block[i] == v
            inv |= all_nd
        if np.issubdtype(block.dtype, np.floating):
            inv |= np.isnan(block).any(axis=0)
        if meta.alpha_band is not None:
            inv |= ds.read(meta.alpha_band, window=inner) == 0
        if meta.has_dataset_mask:
            inv |= ds.read_masks(1, window=inner) == 0
        invalid[rs, cs] = inv
        if np.issubdtype(data.dtype, np.floating):
            data[:, np.isnan(data).any(axis=0)] = 0
    return RasterWindow(
        data=data,
        invalid=invalid,
        window=window,
        grid=meta.grid.window_grid(window),
        bands=bands,
        dtype=dtype,
    )


def read_window(
    source: Source,
    window: Window | None = None,
    *,
    bands: Sequence[int] | None = None,
    all_bands: bool = False,
    pixel_space: bool = False,
) -> RasterWindow:
    """Read ``window`` (default: the whole raster) of the chosen bands, raw, with its invalid mask.

    The window may extend past the raster; outside pixels are 0 and invalid. ``all_bands=True``
    reads every band (e.g. for tiling) instead of the RGB band choice.
    """
    if isinstance(source, (str, os.PathLike)):
        with open_raster(source) as ds:
            return read_window(ds, window, bands=bands, all_bands=all_bands, pixel_space=pixel_space)
    meta = _meta_from_dataset(source, pixel_space=pixel_space)
    if window is None:
        window = Window(0, 0, meta.width, meta.height)
    chosen = tuple(range(1, meta.count + 1)) if all_bands else select_bands(meta, bands)
    return _read(source, meta, window, chosen)


# ---------------------------------------------------------------------------------------------
# Normalisation


def raster_stretch(
    source: Source,
    *,
    bands: Sequence[int] | None = None,
    percentiles=PERCENTILES,
    max_size: int = 1024,
    pixel_space: bool = False,
) -> Stretch:
    """Percentile stretch of the chosen bands over the whole raster, from a decimated read.

    The read is at most ``max_size`` pixels on its longer side (GDAL uses overviews when present),
    so memory stays bounded for any raster size.
    """
    if isinstance(source, (str, os.PathLike)):
        with open_raster(source) as ds:
            return raster_stretch(
                ds, bands=bands, percentiles=percentiles, max_size=max_size, pixel_space=pixel_space
            )
    ds = source
    meta = _meta_from_dataset(ds, pixel_space=pixel_space)
    chosen = select_bands(meta, bands)
    scale = max(meta.width, meta.height) / max_size
    if scale > 1:
        out_h = max(1, int(round(meta.height / scale)))
        out_w = max(1, int(round(meta.width / scale)))
        data = ds.read(list(chosen), out_shape=(len(chosen), out_h, out_w))
        invalid = np.zeros((out_h, out_w), dtype=bool)
        nodata = [meta.nodata[b - 1] for b in chosen]
        if all(v is not None for v in nodata):
            nd = np.ones_like(invalid)
            for i, v in enumerate(nodata):
                nd &= np.isnan(data[i]) if np.isnan(v) else data[i] == v
            invalid |= nd
        if meta.alpha_band is not None:
            invalid |= ds.read(meta.alpha_band, out_shape=(out_h, out_w)) == 0
        if meta.has_dataset_mask:
            invalid |= ds.read_masks(1, out_shape=(out_h, out_w)) == 0
    else:
        rw = _read(ds, meta, Window(0, 0, meta.width, meta.height), chosen)
        data, invalid = rw.data, rw.invalid
    return band_limits(data, invalid, percentiles)


def read_rgb(
    source: Source,
    window: Window | None = None,
    *,
    bands: Sequence[int] | None = None,
    stretch: Stretch | str = "raster",
    percentiles=PERCENTILES,
    pixel_space: bool = False,
) -> RgbWindow:
    """Read a window as the model's RGB uint8 plus its invalid mask (module doc: the rules).

    ``stretch``: a ``Stretch`` (reuse one from ``raster_stretch`` across many windows), or
    ``"raster"`` (compute from the whole raster, decimated) or ``"window"`` (from this window).
    uint8 rasters pass through unchanged unless a ``Stretch`` is given.
    """
    if isinstance(source, (str, os.PathLike)):
        with open_raster(source) as ds:
            return read_rgb(
                ds, window, bands=bands, stretch=stretch, percentiles=percentiles,
                pixel_space=pixel_space,
            )
    rw = read_window(source, window, bands=bands, pixel_space=pixel_space)
    st: Stretch | None
    if isinstance(stretch, Stretch):
        st = stretch
    elif rw.data.dtype == np.uint8:
        st = None
    elif stretch == "raster":
        st = raster_stretch(source, bands=rw.bands, percentiles=percentiles, pixel_space=pixel_space)
    elif stretch == "window":
        st = band_limits(rw.data, rw.invalid, percentiles)
    else:
        raise RitmError(f"Unknown stretch '{stretch}'; use 'raster', 'window' or a Stretch.")
    rgb, invalid = to_rgb(rw.data, rw.invalid, st, percentiles)
    return RgbWindow(rgb=rgb, invalid=invalid, window=rw.window, grid=rw.grid)



def read_image(path: str | os.PathLike) -> RasterWindow:
    """An image file whole, raw, in pixel space (module doc): 1 (grey) or 3 bands, invalid pixels
    (nodata, alpha 0, masked) marked; a one-band palette image becomes its RGB colours."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise RitmError(f"No image at '{path}'; give the path of a PNG, JPEG or TIFF file.")
    unreadable = (f"'{path}' could not be read as an image (truncated or corrupt, or not PNG, JPEG or TIFF); "
                  "check the file or convert it.")
    try:
        ds = open_raster(path)
    except RitmError:
        raise RitmError(unreadable) from None
    with ds:
        try:
            image = read_window(ds, pixel_space=True)
            palette = ds.count == 1 and ds.colorinterp[0] == ColorInterp.palette
            colours = ds.colormap(1) if palette else None
        except (RasterioError, ValueError):
            raise RitmError(unreadable) from None
    if colours:
        lut = np.zeros((3, max(256, max(colours) + 1)), np.uint8)
        for index, rgba in colours.items():
            lut[:, index] = rgba[:3]
        data = lut[:, image.data[0].astype(np.int64)]
        image = RasterWindow(data, image.invalid, image.window, image.grid, (1, 1, 1), "uint8")
    return image
