"""Raster windows and normalisation to RGB uint8 (ritm_qgis.engine.geo.raster_io)."""

import warnings

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.enums import ColorInterp
from rasterio.windows import Window

from conftest import shared_path
from ritm_qgis.core.errors import RitmError
from ritm_qgis.engine.geo.raster_io import (
    Stretch,
    map_to_pixel,
    pixel_to_map,
    raster_meta,
    raster_stretch,
    read_rgb,
    read_window,
    to_rgb,
)

UTM = "EPSG:32633"
T = Affine(0.5, 0, 400000, 0, -0.5, 5000000)


def write_tif(path, data, *, crs=UTM, transform=T, nodata=None, colorinterp=None):
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    kw = dict(driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
              dtype=data.dtype, nodata=nodata)
    if crs is not None:
        kw["crs"] = crs
    if transform is not None:
        kw["transform"] = transform
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(path, "w", **kw) as dst:
            dst.write(data)
            if colorinterp:
                dst.colorinterp = colorinterp
    return path


def test_uint16_single_band_with_nodata(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.integers(100, 4000, size=(60, 80)).astype("uint16")
    a[:10, :] = 0  # nodata rows
    a[30, 40] = 65000  # an outlier the 2-98 stretch must clip
    p = write_tif(tmp_path / "g.tif", a, nodata=0)
    w = read_rgb(p, Window(0, 0, 80, 60), stretch="window")
    assert w.rgb.shape == (60, 80, 3) and w.rgb.dtype == np.uint8
    assert w.invalid[:10].all() and not w.invalid[10:].any()
    assert (w.rgb[:10] == 0).all()
    # grey replicated into the three channels
    assert (w.rgb[..., 0] == w.rgb[..., 1]).all() and (w.rgb[..., 1] == w.rgb[..., 2]).all()
    valid = a[10:]
    lo, hi = np.percentile(valid, [2, 98])
    expected = np.clip(np.rint((valid.astype(float) - lo) * 255 / (hi - lo)), 0, 255)
    assert np.array_equal(w.rgb[10:, :, 0], expected.astype(np.uint8))
    assert w.rgb[30, 40, 0] == 255
    # roughly 2 % of the valid pixels saturate at each end
    frac_low = (w.rgb[10:, :, 0] == 0).mean()
    assert 0.01 < frac_low < 0.04


def test_raster_stretch_is_shared_by_windows(tmp_path):
    a = np.tile(np.arange(200, dtype="uint16") * 10, (100, 1))
    p = write_tif(tmp_path / "ramp.tif", a)
    st = raster_stretch(p)
    left = read_rgb(p, Window(0, 0, 50, 50), stretch=st)
    right = read_rgb(p, Window(150, 0, 50, 50), stretch=st)
    # with the raster-wide stretch the left window is dark and the right one bright
    assert left.rgb.mean() < 60 and right.rgb.mean() > 190
    # a per-window stretch would make both span the full range
    own = read_rgb(p, Window(0, 0, 50, 50), stretch="window")
    assert own.rgb.max() == 255
    # decimated stats for a larger raster agree with the full ones within a few counts
    st_dec = raster_stretch(p, max_size=50)
    assert abs(st_dec.low[0] - st.low[0]) <= 50 and abs(st_dec.high[0] - st.high[0]) <= 50


def test_rgba_alpha_is_dropped_and_marks_invalid(tmp_path):
    rgba = np.zeros((4, 20, 30), dtype="uint8")
    rgba[0], rgba[1], rgba[2] = 10, 20, 30
    rgba[3] = 255
    rgba[3, :, :5] = 0
    p = write_tif(tmp_path / "rgba.tif", rgba, colorinterp=[
        ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha])
    meta = raster_meta(p)
    assert meta.alpha_band == 4
    w = read_rgb(p, Window(0, 0, 30, 20))
    assert w.rgb.shape == (20, 30, 3)
    assert w.invalid[:, :5].all() and not w.invalid[:, 5:].any()
    # uint8 passes through unchanged
    assert (w.rgb[:, 5:] == [10, 20, 30]).all()
    assert (w.rgb[:, :5] == 0).all()


def test_float_with_nan_and_window_past_the_edge(tmp_path):
    a = np.linspace(-1, 1, 3 * 40 * 50, dtype="float32").reshape(3, 40, 50)
    a[:, 5, 5] = np.nan
    p = write_tif(tmp_path / "f.tif", a)
    w = read_rgb(p, Window(30, 20, 40, 40), stretch="window")  # extends 20 px past both edges
    assert w.rgb.shape == (40, 40, 3)
    assert w.invalid[20:, :].all() and w.invalid[:, 20:].all()
    assert not w.invalid[:20, :20].any()
    assert (w.rgb[w.invalid] == 0).all()
    full = read_rgb(p, stretch="window")
    assert full.invalid[5, 5] and full.invalid.sum() == 1
    assert full.rgb[..., 0].min() == 0 and full.rgb[..., 0].max() == 255
    # the window's transform is the raster's shifted by the window offset
    assert w.grid.transform.c == pytest.approx(T.c + 30 * 0.5)
    assert w.grid.transform.f == pytest.approx(T.f - 20 * 0.5)


def test_multiband_rgb_nodata_needs_all_bands(tmp_path):
    a = np.full((3, 10, 10), 50, dtype="uint8")
    a[:, 0, 0] = 0  # all bands nodata -> invalid
    a[0, 1, 1] = 0  # one band 0 -> still valid (dark red channel)
    p = write_tif(tmp_path / "rgb.tif", a, nodata=0)
    w = read_window(p)
    assert w.invalid[0, 0] and not w.invalid[1, 1] and w.invalid.sum() == 1


def test_band_choice(tmp_path):
    a = np.stack([np.full((8, 8), v, dtype="uint8") for v in (1, 2, 3, 4, 5)])
    p = write_tif(tmp_path / "five.tif", a)
    assert read_window(p).bands == (1, 2, 3)
    w = read_rgb(p, bands=[5, 3, 1])
    assert (w.rgb[0, 0] == [5, 3, 1]).all()
    with pytest.raises(RitmError, match="do not exist"):
        read_rgb(p, bands=[1, 2, 9])
    with pytest.raises(RitmError, match="1 band"):
        read_rgb(p, bands=[1, 2])


def test_to_rgb_flat_band_and_explicit_stretch():
    data = np.full((1, 4, 4), 7.0)
    rgb, inv = to_rgb(data, np.zeros((4, 4), bool))
    assert (rgb == 0).all()
    rgb, _ = to_rgb(np.array([[[0.0, 5.0, 10.0]]]), np.zeros((1, 3), bool), Stretch((0.0,), (10.0,)))
    assert rgb[0, :, 0].tolist() == [0, 128, 255]


def test_refuses_missing_crs_and_rotation(tmp_path):
    a = np.zeros((10, 10), dtype="uint8")
    no_crs = write_tif(tmp_path / "nocrs.tif", a, crs=None)
    with pytest.raises(RitmError, match="coordinate reference system"):
        read_rgb(no_crs)
    rotated = write_tif(tmp_path / "rot.tif", a, transform=Affine(0.5, 0.1, 400000, 0.1, -0.5, 5000000))
    with pytest.raises(RitmError, match="rotated or sheared"):
        raster_meta(rotated)
    bare = write_tif(tmp_path / "bare.tif", a, crs=None, transform=None)
    with pytest.raises(RitmError, match="no georeference"):
        raster_meta(bare)
    # the explicit opt-in works in pixel coordinates
    for p in (no_crs, rotated, bare):
        meta = raster_meta(p, pixel_space=True)
        assert meta.grid.crs is None and meta.grid.transform == Affine.identity()
        assert read_rgb(p, pixel_space=True).rgb.shape == (10, 10, 3)
    with pytest.raises(RitmError, match="Could not open"):
        raster_meta(tmp_path / "missing.tif")


def test_pixel_map_round_trip():
    x, y = pixel_to_map(T, [0, 10.5], [0, 20.5])
    assert x.tolist() == [400000, 400005.25] and y.tolist() == [5000000, 4999989.75]
    c, r = map_to_pixel(T, x, y)
    assert np.allclose(c, [0, 10.5]) and np.allclose(r, [0, 20.5])


def test_spacenet_chip():
    img = shared_path("aerial", "spacenet_rio", "images", "3band_013022223130_Public_img50.tif")
    meta = raster_meta(img)
    assert meta.grid.crs.to_epsg() == 4326 and meta.count == 3
    w = read_rgb(img, Window(100, 100, 64, 64))
    with rasterio.open(img) as ds:
        raw = ds.read(window=Window(100, 100, 64, 64))
    assert np.array_equal(w.rgb, np.moveaxis(raw, 0, -1))  # uint8 unchanged
    # pixel centre -> map -> pixel lands in the same pixel
    x, y = pixel_to_map(meta.grid.transform, 123.5, 45.5)
    c, r = map_to_pixel(meta.grid.transform, x, y)
    assert (int(np.floor(c)), int(np.floor(r))) == (123, 45)
    # the mask's nodata (0) becomes invalid
    mask = shared_path("aerial", "spacenet_rio", "masks", "3band_013022223130_Public_img50.tif")
    mw = read_window(mask)
    with rasterio.open(mask) as ds:
        assert np.array_equal(mw.invalid, ds.read(1) == 0)


def test_internal_mask_band_marks_invalid(tmp_path):
    p = tmp_path / "masked.tif"
    with rasterio.open(p, "w", driver="GTiff", width=20, height=10, count=3, dtype="uint8",
                       crs=UTM, transform=T) as dst:
        dst.write(np.full((3, 10, 20), 90, dtype="uint8"))
        m = np.full((10, 20), 255, dtype="uint8")
        m[:, 15:] = 0
        dst.write_mask(m)
    assert raster_meta(p).has_dataset_mask
    w = read_rgb(p)
    assert w.invalid[:, 15:].all() and not w.invalid[:, :15].any()


def test_inria_png_needs_pixel_space():
    png = shared_path("aerial", "inria_kitsap11_1.5m", "kitsap11_rgb.png")
    with pytest.raises(RitmError, match="no georeference"):
        read_rgb(png, Window(0, 0, 10, 10))
    w = read_rgb(png, Window(990, 990, 20, 20), pixel_space=True)
    assert w.rgb.shape == (20, 20, 3) and w.invalid[10:, :].all() and not w.invalid[:10, :10].any()
    assert w.grid.crs is None and w.grid.transform.c == 990


def test_to_rgb_does_not_touch_the_input():
    data = np.full((3, 4, 4), 200, dtype="uint8")
    invalid = np.zeros((4, 4), bool)
    invalid[0, 0] = True
    rgb, _ = to_rgb(data, invalid)
    assert (rgb[0, 0] == 0).all() and (rgb[1, 1] == 200).all()
    assert (data == 200).all()
