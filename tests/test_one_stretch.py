"""One percentile stretch (issue 26): ``predict``, the mask-folder datasets, arrays handed to the
predictor and the raster path (the map tool, Processing, ``segment``, raster datasets) give the
model the same pixels, nodata left out of the percentiles, on a uint16 raster with nodata."""

import os

import cv2
import numpy as np
import pytest

from data_builders import BUILDINGS, uint16_scene
from ritm_qgis.cli import main
from ritm_qgis.engine.geo.band_stretch import band_limits
from ritm_qgis.engine.geo.raster_io import read_image, read_window
from ritm_qgis.engine.geo.stretch import read_image_rgb, resolve_stretch, stretch_image


@pytest.fixture
def u16(tmp_path):
    return uint16_scene(str(tmp_path / "u16.tif"))


def raster_path_rgb(path, rule="percentile"):
    """What the map tool's session reads for the whole raster."""
    return resolve_stretch(rule, path).read(path)


def test_nodata_counts_for_nothing_in_the_percentiles(u16):
    raw = read_window(u16)
    with_nodata, without = band_limits(raw.data), band_limits(raw.data, raw.invalid)
    assert raw.invalid.any() and with_nodata.low[0] == 0 and without.low[0] > 100  # the twins differed here


@pytest.mark.parametrize("rule", ["percentile", "minmax", "200,1100"])
def test_an_image_file_is_read_as_the_raster_path_reads_it(u16, rule):
    window = raster_path_rgb(u16, rule)
    image = read_image_rgb(u16, rule)
    assert window.invalid.any() and (image.invalid == window.invalid).all()
    assert (image.rgb == window.rgb).all()
    assert (image.rgb[window.invalid] == 0).all()


def test_predict_gives_the_model_the_raster_paths_pixels(u16, tmp_path):
    """The same GrabCut session on the raster path's pixels gives predict's probabilities exactly."""
    from ritm_qgis.engine.interactive.backends import build_backend
    from ritm_qgis.engine.interactive.interactive_settings import interactive_predictor

    r, c, h, w = BUILDINGS[1]
    x, y = c + w // 2, r + h // 2
    assert main(["predict", "--checkpoint", "grabcut", "--image", u16, "--click", f"{x},{y},+", "--stretch",
                 "percentile", "--out-mask", str(tmp_path / "m.png"), "--out-prob", str(tmp_path / "p.npy")]) == 0
    session = interactive_predictor(build_backend("grabcut"))
    session.set_image(raster_path_rgb(u16).rgb)
    expected = session.add_click(y, x, True).prob
    got = np.load(tmp_path / "p.npy")
    assert got.shape == expected.shape and np.array_equal(got, expected)
    assert 0.5 * h * w < (got > 0.49).sum() < 2 * h * w  # the building


def test_a_mask_folder_sample_is_stretched_as_the_raster_is(u16, tmp_path):
    from ritm_qgis.engine.data.registry import open_dataset
    from ritm_qgis.engine.data.specs import MaskFolderSpec

    for sub in ("images", "masks"):
        os.makedirs(tmp_path / "folder" / sub)
    os.replace(u16, tmp_path / "folder" / "images" / "scene.tif")
    image = str(tmp_path / "folder" / "images" / "scene.tif")
    mask = np.zeros(read_image(image).invalid.shape, np.uint8)
    r, c, h, w = BUILDINGS[0]
    mask[r:r + h, c:c + w] = 255
    cv2.imwrite(str(tmp_path / "folder" / "masks" / "scene.png"), mask)
    for rule in ("percentile", "minmax"):
        sample = open_dataset(MaskFolderSpec(str(tmp_path / "folder")), stretch=rule)[0]
        assert sample.image.dtype == np.uint8 and (sample.image == raster_path_rgb(image, rule).rgb).all()


def test_an_array_takes_the_same_arithmetic():
    """An array without nodata, through the predictor's own normalisation and ``stretch_image``."""
    from ritm_qgis.engine.geo.image_norm import to_rgb_float, to_rgb_uint8

    rng = np.random.default_rng(0)
    band = rng.integers(150, 4000, (40, 50)).astype(np.uint16)
    u8 = stretch_image(band, "percentile")
    assert (to_rgb_uint8(band) == u8).all() and np.allclose(to_rgb_float(band) * 255, u8)
    invalid = np.zeros(band.shape, bool)
    invalid[:, :10] = True
    band[:, :10] = 0
    left_out = stretch_image(band, "percentile", invalid)
    assert (left_out[:, :10] == 0).all() and not (left_out[:, 10:] == stretch_image(band, "percentile")[:, 10:]).all()
