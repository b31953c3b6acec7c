"""A 16-bit raster in QGIS's default style is drawn dark: the dock says so, and one click stretches it.

A one-band uint16 GeoTIFF with a nodata strip and a few saturated pixels, loaded as QGIS loads it
(min/max of the data), through the plugin's own button and dock in headless QGIS.
"""

import numpy as np
import pytest
import rasterio
from qgis.core import QgsContrastEnhancement, QgsProject, QgsRasterLayer, QgsRasterMinMaxOrigin
from rasterio.transform import from_origin

from ritm_qgis.gui.settings import PREFIX
from ritm_qgis.layer_stretch import DARK_GREY, dark_grey, layer_stretch
from ritm_qgis.plugin import RitmQgisPlugin

pytestmark = pytest.mark.qgis


def write_uint16(path, bands=1):
    rng = np.random.default_rng(0)
    data = rng.normal(300, 80, (bands, 300, 300)).clip(1, None).astype(np.uint16)
    data[:, :4, :4] = 65000  # a few saturated pixels set QGIS's min/max style
    data[:, -30:, :] = 0  # nodata strip
    with rasterio.open(path, "w", driver="GTiff", width=300, height=300, count=bands, dtype="uint16", nodata=0,
                       crs="EPSG:32618", transform=from_origin(500000, 4000000, 0.5, 0.5)) as dst:
        dst.write(data)
    return str(path)


@pytest.fixture
def no_saved_settings():
    from qgis.core import QgsSettings

    s = QgsSettings()
    old = {k: s.value(k) for k in s.allKeys() if k.startswith(PREFIX)}
    for k in old:
        s.remove(k)
    yield
    for k in [k for k in s.allKeys() if k.startswith(PREFIX)]:
        s.remove(k)
    for k, v in old.items():
        s.setValue(k, v)


def test_a_dark_16_bit_layer_gets_a_hint_and_one_click_stretches_it_for_the_user_and_the_model(
        qgis_iface, qgis_canvas, qgis_new_project, no_saved_settings, tmp_path, monkeypatch):
    monkeypatch.setenv("RITM_QGIS_CACHE", str(tmp_path / "cache"))
    layer = QgsRasterLayer(write_uint16(tmp_path / "city.tif"), "city")
    assert layer.isValid()
    QgsProject.instance().addMapLayer(layer)
    grey = dark_grey(layer)
    assert grey is not None and grey < DARK_GREY  # QGIS's default style: nearly black
    qgis_iface.setActiveLayer(layer)
    plugin = RitmQgisPlugin(qgis_iface)
    plugin.initGui()
    try:
        plugin.map_tool.action.trigger()
        tool, dock = plugin.map_tool.tool, plugin.map_tool.dock
        tool.wait_idle()
        hint = dock.dark_hint
        assert hint.isVisibleTo(dock) and "'city' is drawn dark (mean grey" in hint.text.text()
        before = tool.stretch_label
        hint.button.click()
        tool.wait_idle()
        enhancement = layer.renderer().contrastEnhancement()
        assert enhancement.contrastEnhancementAlgorithm() == QgsContrastEnhancement.StretchToMinimumMaximum
        assert layer.renderer().minMaxOrigin().limits() == QgsRasterMinMaxOrigin.CumulativeCut
        low, high = enhancement.minimumValue(), enhancement.maximumValue()
        assert 100 < low < 300 < high < 600  # the 2nd and 98th percentiles, nodata and outliers left out
        assert dark_grey(layer) is None and not hint.isVisibleTo(dock)
        rule, _ = layer_stretch(layer)
        assert tool.stretch_label == rule.label != before  # the model follows the new style
    finally:
        plugin.unload()


def test_an_8_bit_or_bright_layer_gets_no_hint(qgis_new_project, tmp_path):
    bright = QgsRasterLayer(write_uint16(tmp_path / "rgb.tif", bands=3), "rgb")  # QGIS cuts 2-98 % for RGB
    assert bright.isValid() and dark_grey(bright) is None
    data = (np.random.default_rng(1).random((1, 64, 64)) * 20).astype(np.uint8)
    with rasterio.open(tmp_path / "byte.tif", "w", driver="GTiff", width=64, height=64, count=1, dtype="uint8",
                       crs="EPSG:32618", transform=from_origin(0, 64, 1, 1)) as dst:
        dst.write(data)
    dark_bytes = QgsRasterLayer(str(tmp_path / "byte.tif"), "bytes")
    assert dark_bytes.isValid() and dark_grey(dark_bytes) is None  # 8-bit data is drawn as it is: not ours to fix
