"""Issue 14 on a real QgsMapCanvas with real mouse and key events: the model sees what the user sees
(``layer`` stretch), the canvas keeps its habits (drag pans, Space pans), the tool says when it is
busy, only existing devices are offered, and accepted buildings carry source, label and stretch."""

import geopandas as gpd
import numpy as np
import pytest
from qgis.core import QgsProject, QgsRasterLayer, QgsRectangle, QgsSingleBandGrayRenderer, QgsVectorLayer
from qgis.PyQt.QtCore import QEvent, QPoint, Qt
from qgis.PyQt.QtGui import QImage, QMouseEvent
from qgis.PyQt.QtTest import QTest
from qgis.PyQt.QtWidgets import QApplication

from data_builders import BUILDINGS, transform, uint16_scene
from ritm_qgis.engine.geo.stretch import resolve_stretch
from ritm_qgis.engine.runtime.device import device_choices as available_devices, usable_device
from ritm_qgis.gui.dock import RitmDock
from ritm_qgis.layer_stretch import layer_stretch
from ritm_qgis.gui.maptool import RitmMapTool
from ritm_qgis.gui.settings import ToolSettings
from test_maptool import canvas_tool, show  # noqa: F401 - fixture and helper shared with the other canvas tests

pytestmark = pytest.mark.qgis

TR = transform()


@pytest.fixture(scope="module")
def u16(tmp_path_factory):
    return uint16_scene(tmp_path_factory.mktemp("u16") / "city_u16.tif")


def building_centre(k):
    r, c, h, w = BUILDINGS[k]
    x, y = TR * (c + w / 2, r + h / 2)
    return x, y


def to_view(canvas, x, y) -> QPoint:
    p = canvas.getCoordinateTransform().transform(x, y)
    return QPoint(round(p.x()), round(p.y()))


def start(canvas, iface, layer, tmp_path, tools, **settings):
    settings.setdefault("model", "grabcut")  # what these tests were measured with, not the default model
    settings.setdefault("output_path", str(tmp_path / "out.gpkg"))
    settings.setdefault("simplify_px", 0.0)
    tool = RitmMapTool(canvas, iface.messageBar(), ToolSettings(**settings))
    tools.append(tool)
    assert tool.set_layer(layer)
    canvas.setMapTool(tool)
    tool.wait_idle()
    return tool


def rendered_rgb(layer, grid) -> np.ndarray:
    """What QGIS draws for ``grid``'s extent at the raster's own resolution, as (H, W, 4) RGBA."""
    minx, miny, maxx, maxy = grid.bounds
    block = layer.renderer().block(1, QgsRectangle(minx, miny, maxx, maxy), grid.width, grid.height)
    img = block.image().convertToFormat(QImage.Format_RGBA8888)
    ptr = img.constBits()
    ptr.setsize(img.byteCount())
    return np.frombuffer(ptr, np.uint8).reshape(img.height(), img.bytesPerLine() // 4, 4)[:, :grid.width].copy()


def test_layer_stretch_the_model_input_is_the_image_qgis_draws(u16, qgis_iface, qgis_canvas, canvas_tool, tmp_path):
    layer = QgsRasterLayer(str(u16), "city_u16")
    QgsProject.instance().addMapLayer(layer)
    assert isinstance(layer.renderer(), QgsSingleBandGrayRenderer)
    rule, note = layer_stretch(layer)
    assert note is None and rule.kind == "layer" and rule.bands == (1,)
    show(qgis_canvas, layer)
    tool = start(qgis_canvas, qgis_iface, layer, tmp_path, canvas_tool)
    QTest.mouseClick(qgis_canvas.viewport(), Qt.LeftButton, Qt.NoModifier, to_view(qgis_canvas, *building_centre(1)))
    tool.wait_idle()
    step = tool.worker.state.session.current
    assert step is not None and tool.markers
    seen = step.image.rgb  # exactly what went into the predictor
    drawn = rendered_rgb(layer, step.image.grid)
    valid = ~step.image.invalid
    assert (drawn[..., 3][~valid] == 0).all() and (drawn[..., 3][valid] == 255).all()  # nodata is not drawn
    for ch in range(3):
        assert np.array_equal(seen[..., ch][valid], drawn[..., ch][valid])
    # the test can fail: the percentile stretch of the same raster is a different (brighter) image
    pct = resolve_stretch("percentile", str(u16)).read(str(u16), step.image.window).rgb
    assert np.abs(pct[..., 0][valid].astype(int) - drawn[..., 0][valid]).mean() > 20
    # the user changes the layer's contrast: the next building sees the new one
    QTest.keyClick(qgis_canvas, Qt.Key_Escape)
    ce = layer.renderer().contrastEnhancement()
    ce.setMinimumValue(150)
    ce.setMaximumValue(1100)
    layer.rendererChanged.emit()
    tool.wait_idle()
    assert tool.worker.state.session.stretch.rule.low == (150.0,)
    assert tool.stretch_label == "layer:150-1100"


def test_a_drag_pans_and_adds_no_click_and_space_does_not_accept(u16, qgis_iface, qgis_canvas, canvas_tool, tmp_path):
    layer = QgsRasterLayer(str(u16), "city_u16")
    QgsProject.instance().addMapLayer(layer)
    show(qgis_canvas, layer)
    tool = start(qgis_canvas, qgis_iface, layer, tmp_path, canvas_tool)
    before = qgis_canvas.extent().center()
    a = to_view(qgis_canvas, *building_centre(0))
    b = a + QPoint(60, 40)
    vp = qgis_canvas.viewport()
    QTest.mousePress(vp, Qt.LeftButton, Qt.NoModifier, a)
    for k in range(1, 7):  # a real drag: moves with the left button held
        QApplication.sendEvent(vp, QMouseEvent(QEvent.MouseMove, a + (b - a) * k / 6, Qt.NoButton, Qt.LeftButton,
                                               Qt.NoModifier))
    QTest.mouseRelease(vp, Qt.LeftButton, Qt.NoModifier, b)
    tool.wait_idle()
    after = qgis_canvas.extent().center()
    upp = qgis_canvas.mapUnitsPerPixel()
    assert tool.markers == [] and tool.worker.state.session.current is None  # no click
    assert abs((before.x() - after.x()) / upp - 60) < 2 and abs((after.y() - before.y()) / upp - 40) < 2
    # a click that wobbles by a pixel is still a click
    c = to_view(qgis_canvas, *building_centre(0))
    QTest.mousePress(vp, Qt.LeftButton, Qt.NoModifier, c)
    QApplication.sendEvent(vp, QMouseEvent(QEvent.MouseMove, c + QPoint(1, 0), Qt.NoButton, Qt.LeftButton,
                                           Qt.NoModifier))
    QTest.mouseRelease(vp, Qt.LeftButton, Qt.NoModifier, c + QPoint(1, 0))
    tool.wait_idle()
    assert len(tool.markers) == 1
    # Space is QGIS's space-to-pan: hold it, move the mouse, let go; the map moves, nothing is accepted
    start_pan = qgis_canvas.extent().center()
    QApplication.sendEvent(vp, QMouseEvent(QEvent.MouseMove, c, Qt.NoButton, Qt.NoButton, Qt.NoModifier))
    QTest.keyPress(qgis_canvas, Qt.Key_Space)
    for k in range(1, 5):
        QApplication.sendEvent(vp, QMouseEvent(QEvent.MouseMove, c + QPoint(-10 * k, 0), Qt.NoButton, Qt.NoButton,
                                               Qt.NoModifier))
    QTest.keyRelease(qgis_canvas, Qt.Key_Space)
    tool.wait_idle()
    assert len(tool.markers) == 1 and not (tmp_path / "out.gpkg").exists()
    assert abs((qgis_canvas.extent().center().x() - start_pan.x()) / upp - 40) < 2
    QTest.keyClick(qgis_canvas, Qt.Key_Return)
    tool.wait_idle()
    assert tool.markers == [] and (tmp_path / "out.gpkg").exists()


def test_accepted_buildings_carry_source_label_and_stretch_and_are_styled(u16, qgis_iface, qgis_canvas,
                                                                          canvas_tool, tmp_path):
    layer = QgsRasterLayer(str(u16), "city_u16")
    QgsProject.instance().addMapLayer(layer)
    show(qgis_canvas, layer)
    tool = start(qgis_canvas, qgis_iface, layer, tmp_path, canvas_tool, label="house")
    QTest.mouseClick(qgis_canvas.viewport(), Qt.LeftButton, Qt.NoModifier, to_view(qgis_canvas, *building_centre(1)))
    QTest.keyClick(qgis_canvas, Qt.Key_Return)
    tool.wait_idle()
    gdf = gpd.read_file(tmp_path / "out.gpkg", layer="footprints")
    assert len(gdf) >= 1
    row = gdf.iloc[0]
    assert row.source == str(u16) and row.label == "house" and row.stretch == tool.stretch_label
    assert row.stretch.startswith("layer:")
    symbol = tool.output_layer.renderer().symbol()
    assert symbol.color().alpha() < 64 and symbol.symbolLayer(0).strokeColor().alpha() == 255  # roofs stay visible


def test_an_unsaved_project_gets_a_temporary_layer(u16, qgis_iface, qgis_canvas, canvas_tool, tmp_path,
                                                   qgis_new_project):
    QgsProject.instance().setFileName("")
    layer = QgsRasterLayer(str(u16), "city_u16")
    QgsProject.instance().addMapLayer(layer)
    show(qgis_canvas, layer)
    tool = start(qgis_canvas, qgis_iface, layer, tmp_path, canvas_tool, output_path="")
    QTest.mouseClick(qgis_canvas.viewport(), Qt.LeftButton, Qt.NoModifier, to_view(qgis_canvas, *building_centre(1)))
    QTest.keyClick(qgis_canvas, Qt.Key_Return)
    tool.wait_idle()
    out = tool.output_layer
    assert isinstance(out, QgsVectorLayer) and out.providerType() == "memory" and out.featureCount() >= 1
    assert QgsProject.instance().mapLayer(out.id()) is out and out.crs() == layer.crs()
    assert next(out.getFeatures())["source"] == str(u16)
    assert not (tmp_path / "footprints.gpkg").exists()


def test_saving_the_project_moves_the_temporary_buildings_into_one_footprints_layer_kept_on_top(
        u16, qgis_iface, qgis_canvas, canvas_tool, tmp_path, qgis_new_project):
    project = QgsProject.instance()
    project.setFileName("")
    layer = QgsRasterLayer(str(u16), "city_u16")
    project.addMapLayer(layer)
    show(qgis_canvas, layer)
    tool = start(qgis_canvas, qgis_iface, layer, tmp_path, canvas_tool, output_path="")
    dock = RitmDock(settings=tool.settings)
    assert dock.output.lineEdit().placeholderText() == "temporary layer (project not saved)"
    for k in (0, 1):
        QTest.mouseClick(qgis_canvas.viewport(), Qt.LeftButton, Qt.NoModifier, to_view(qgis_canvas, *building_centre(k)))
        tool.wait_idle()
        QTest.keyClick(qgis_canvas, Qt.Key_Return)
        tool.wait_idle()
    temporary = tool.output_layer
    assert temporary.providerType() == "memory" and temporary.featureCount() == 2
    later = QgsRasterLayer(str(u16), "added later")  # a raster added after the outlines
    project.addMapLayer(later)
    order = [node.layer() for node in project.layerTreeRoot().findLayers()]
    assert order.index(temporary) < order.index(later)  # the outlines stay visible above it

    assert project.write(str(tmp_path / "city.qgz"))  # the user saves the project
    assert dock.output.lineEdit().placeholderText() == str(tmp_path / "footprints.gpkg")
    QTest.mouseClick(qgis_canvas.viewport(), Qt.LeftButton, Qt.NoModifier, to_view(qgis_canvas, *building_centre(1)))
    tool.wait_idle()  # (the scene has two buildings: the second one once more)
    QTest.keyClick(qgis_canvas, Qt.Key_Return)
    tool.wait_idle()
    outputs = [l for l in project.mapLayers().values() if l.name() == "footprints"]
    assert len(outputs) == 1 and outputs[0].providerType() == "ogr"  # one layer: the temporary one is gone
    assert len(gpd.read_file(tmp_path / "footprints.gpkg", layer="footprints")) == 3  # nothing lost
    order = [node.layer() for node in project.layerTreeRoot().findLayers()]
    assert order[0] is outputs[0]


def test_busy_state_cursor_and_in_use_label_follow_a_model_change(u16, qgis_iface, qgis_canvas, canvas_tool,
                                                                   tmp_path):
    layer = QgsRasterLayer(str(u16), "city_u16")
    QgsProject.instance().addMapLayer(layer)
    show(qgis_canvas, layer)
    tool = start(qgis_canvas, qgis_iface, layer, tmp_path, canvas_tool)
    dock = RitmDock(settings=tool.settings)
    tool.busyChanged.connect(dock.show_busy)
    dock.settingsChanged.connect(tool.set_settings)
    states = []
    tool.busyChanged.connect(lambda busy, what: states.append((busy, what, qgis_canvas.cursor().shape())))
    assert not tool.busy and dock.busy_label.text() == "ready"
    dock.threshold.setValue(0.6)  # reloads the model, in the background
    assert tool.busy and qgis_canvas.cursor().shape() == Qt.BusyCursor
    assert dock.busy_label.text().startswith("busy: loading the model") and not dock.busy_bar.isHidden()
    dock.model.choose_file("no-such-model.pth")  # the dock's "…" button
    assert dock.in_use.text().startswith("in use: loading no-such-model.pth")  # at once, before the load
    tool.wait_idle()
    assert not tool.busy and dock.busy_label.text() == "ready" and dock.busy_bar.isHidden()
    assert qgis_canvas.cursor().shape() == Qt.CrossCursor
    assert states[0][0] and states[-1] == (False, "", Qt.CrossCursor)


def test_only_devices_that_exist_are_offered(qgis_app):
    import torch

    values = [v for v, _ in available_devices()]
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    assert values == ["auto", "cpu"] + [f"cuda:{i}" for i in range(n)]
    dock = RitmDock(settings=ToolSettings(device="cuda"))
    assert [dock.device.itemData(i) for i in range(dock.device.count())] == values
    if n == 0:
        assert dock.settings().device == "auto"  # a saved 'cuda' that does not exist here is not kept
        device, note = usable_device("cuda:0")
        assert device == "cpu" and "processor (CPU)" in note and "--device" not in note
    else:
        assert usable_device("cuda:0") == ("cuda:0", None)


def test_layer_stretch_of_an_rgb_raster_with_a_user_contrast_is_what_qgis_draws(qgis_app, tmp_path):
    from qgis.core import QgsContrastEnhancement, QgsMultiBandColorRenderer

    from data_builders import scene_arrays, write_raster

    img, _ = scene_arrays(height=120, width=160)
    path = write_raster(tmp_path / "rgb.tif", img)
    layer = QgsRasterLayer(path, "rgb")
    renderer = layer.renderer()
    assert isinstance(renderer, QgsMultiBandColorRenderer)
    renderer.setRedBand(3)
    renderer.setBlueBand(1)  # the user swapped red and blue, and stretched each band
    for band, setter in ((3, renderer.setRedContrastEnhancement), (2, renderer.setGreenContrastEnhancement),
                         (1, renderer.setBlueContrastEnhancement)):
        ce = QgsContrastEnhancement(layer.dataProvider().dataType(band))
        ce.setContrastEnhancementAlgorithm(QgsContrastEnhancement.StretchToMinimumMaximum)
        ce.setMinimumValue(30 + band)
        ce.setMaximumValue(180 - band)
        setter(ce)
    rule, note = layer_stretch(layer)
    assert note is None and rule.bands == (3, 2, 1)
    win = resolve_stretch(rule, path).read(path)
    drawn = rendered_rgb(layer, win.grid)
    assert np.array_equal(win.rgb, drawn[..., :3])
