"""The input stretch rule (ritm_qgis.engine.geo.stretch): one rule for the CLI, Processing and the map tool."""

import json

import numpy as np
import pytest
import rasterio

from data_builders import uint16_scene, write_raster
from ritm_qgis.cli import main
from ritm_qgis.core.errors import RitmError
from ritm_qgis.engine.geo.stretch import StretchRule, parse_stretch, resolve_stretch, stretch_image


@pytest.fixture(scope="module")
def u16(tmp_path_factory):
    return uint16_scene(tmp_path_factory.mktemp("u16") / "city_u16.tif")


def test_parse_the_cli_values():
    assert parse_stretch("percentile") == StretchRule("percentile")
    assert parse_stretch(" MinMax ") == StretchRule("minmax")
    assert parse_stretch("100,2000") == StretchRule("fixed", (100.0,), (2000.0,))
    assert parse_stretch("100,2000").label == "100,2000"
    for bad in ("2000,100", "a,b", "1,2,3", "layer", "gamma"):
        with pytest.raises(RitmError):
            parse_stretch(bad)


def test_minmax_and_percentile_differ_on_a_uint16_raster_with_nodata(u16):
    pct = resolve_stretch("percentile", u16).values
    mm = resolve_stretch("minmax", u16).values
    assert mm.low == (59.0,) and mm.high == (5982.0,)  # nodata (0) is not the minimum
    assert 150 <= pct.low[0] < 400 and 800 < pct.high[0] <= 1100
    a = resolve_stretch("percentile", u16).read(u16).rgb
    b = resolve_stretch("minmax", u16).read(u16).rgb
    assert a[..., 0].mean() > 2 * b[..., 0].mean()  # min/max is the much darker image


def test_fixed_range_maps_low_to_0_and_high_to_255_and_applies_to_8_bit(tmp_path, u16):
    win = resolve_stretch("150,1100", u16).read(u16)
    with rasterio.open(u16) as ds:
        raw = ds.read(1).astype(float)
    valid = ~win.invalid
    expected = np.rint(np.clip((raw - 150) * 255 / 950, 0, 255))
    assert np.array_equal(win.rgb[..., 1][valid], expected[valid])
    byte = write_raster(tmp_path / "b.tif", np.full((3, 20, 20), 100, np.uint8))
    assert resolve_stretch("percentile", byte).read(byte).rgb.max() == 100  # 8-bit unchanged
    assert resolve_stretch("0,250", byte).read(byte).rgb.max() == 102  # an explicit range applies


def test_layer_rule_reads_its_bands_and_truncates_like_qgis(u16):
    rule = StretchRule("layer", (59.0,), (5982.0,), bands=(1,))
    win = resolve_stretch(rule, u16).read(u16)
    with rasterio.open(u16) as ds:
        raw = ds.read(1).astype(float)
    expected = np.clip(np.floor((raw - 59) / 5923 * 255), 0, 255)
    valid = ~win.invalid
    assert np.array_equal(win.rgb[..., 2][valid], expected[valid])
    assert rule.label == "layer:59-5982"
    inverted = resolve_stretch(StretchRule("layer", (5982.0,), (59.0,), bands=(1,)), u16).read(u16)
    assert inverted.rgb[6, 300, 0] == 0 and inverted.rgb[5, 50, 0] == 255  # white-to-black gradient


def test_stretch_image_for_plain_images():
    img = np.array([[[0, 500], [1000, 65535]]], np.uint16)[0]
    assert stretch_image(img, "minmax")[..., 0].tolist() == [[0, 2], [4, 255]]
    assert stretch_image(img, "0,1000")[..., 0].tolist() == [[0, 128], [255, 255]]
    with pytest.raises(RitmError):
        stretch_image(img, StretchRule("layer", (0.0,), (1.0,)))


def test_predict_and_demo_take_the_flag_and_record_it(tmp_path, capsys):
    import cv2

    img = np.full((64, 64), 300, np.uint16)
    img[20:44, 20:44] = 1000
    img[0, 0] = 60000  # a hot pixel: min/max would leave the roof almost black
    cv2.imwrite(str(tmp_path / "u16.png"), img)
    assert main(["predict", "--checkpoint", "grabcut", "--image", str(tmp_path / "u16.png"), "--click", "30,30,+",
                 "--stretch", "200,1100", "--out-mask", str(tmp_path / "m.png")]) == 0
    assert "stretch 200,1100" in capsys.readouterr().out
    cv2.imwrite(str(tmp_path / "t.png"), ((img == 1000) * 255).astype(np.uint8))
    assert main(["demo", "--image", str(tmp_path / "u16.png"), "--target", str(tmp_path / "t.png"),
                 "--max-clicks", "2", "--stretch", "minmax", "--out", str(tmp_path / "demo")]) == 0
    assert json.loads((tmp_path / "demo" / "demo.json").read_text())["stretch"] == "minmax"
    assert main(["predict", "--checkpoint", "grabcut", "--image", str(tmp_path / "u16.png"), "--click", "30,30,+",
                 "--stretch", "9,1", "--out-mask", str(tmp_path / "m.png")]) == 1
    assert "LOW below HIGH" in capsys.readouterr().err


def test_evaluate_records_the_stretch_in_report_json(tmp_path, u16):
    from data_builders import footprints
    from ritm_qgis.engine.geo.vector_io import write_gpkg

    gpkg = str(tmp_path / "fp.gpkg")
    write_gpkg(footprints(), gpkg, layer="buildings")
    assert main(["evaluate", "--model", "grabcut", "--dataset", f"raster:{u16}:{gpkg}:buildings", "--limit", "1",
                 "--max-clicks", "1", "--no-figures", "--stretch", "minmax", "--out", str(tmp_path / "ev")]) == 0
    assert json.loads((tmp_path / "ev" / "report.json").read_text())["stretch"] == "minmax"


def test_layer_rule_on_bytes_drawn_as_stored_is_the_identity(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (3, 30, 40), dtype=np.uint8)
    path = write_raster(tmp_path / "rgb.tif", data)
    rule = StretchRule("layer", (0.0, 0.0, 0.0), (255.0, 255.0, 255.0), bands=(3, 2, 1))
    resolved = resolve_stretch(rule, path)
    assert resolved.values is None
    assert np.array_equal(resolved.read(path).rgb, np.moveaxis(data[::-1], 0, -1))  # bands as the renderer maps them
    stretched = resolve_stretch(StretchRule("layer", (0.0,) * 3, (127.5,) * 3, bands=(1, 2, 3)), path).read(path).rgb
    assert np.array_equal(stretched, np.moveaxis(np.minimum(data.astype(int) * 2, 255), 0, -1))
