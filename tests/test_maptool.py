"""The map tool in a real QgsMapCanvas, driven by real mouse and key events (pytest-qgis).

Backend: the weight-free GrabCut backend. IoU thresholds were measured first (scene building:
0.81 with one click; spacenet chip building: 0.83 after 6 clicks of RITM's simulated user, GrabCut
reaching only 0.1-0.6 with one click there) and are asserted a little below.
"""

import os
import sqlite3
import time

import cv2
import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from qgis.core import (Qgis, QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsPointXY, QgsProject,
                       QgsRasterLayer, QgsVectorLayer)
from qgis.PyQt.QtCore import QObject, QPoint, Qt
from qgis.PyQt.QtTest import QTest

from conftest import shared_path
from ritm_qgis.engine.geo.synthetic_scene import make_scene, write_scene
from ritm_qgis.engine.geo.vectorize import vectorize_mask
from ritm_qgis.engine.geo.raster_io import raster_meta
from ritm_qgis.gui.maptool import RitmMapTool
from ritm_qgis.gui.settings import ToolSettings
from ritm_qgis.gui.worker import InferenceWorker, Job

pytestmark = pytest.mark.qgis

SCENE_IOU = 0.75  # measured 0.81 (building 4 of make_scene(768, 9, seed=3))
NETWORK_SCENE_IOU = 0.25  # measured 0.35 for the default network after one click (issue 22: weak first clicks)
CHIP_IOU = 0.75  # measured 0.83 (2nd largest building of spacenet_rio img50, 6 clicks)
SPACENET = ("aerial", "spacenet_rio")
CHIP = "3band_013022223130_Public_img50.tif"


# ---------------------------------------------------------------------------------------------
# helpers


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    d = tmp_path_factory.mktemp("scene")
    sc = make_scene(size=768, n_buildings=9, seed=3)
    write_scene(sc, str(d / "scene.tif"), footprints_path=str(d / "truth.gpkg"))
    truth = gpd.read_file(d / "truth.gpkg", layer="buildings")
    return sc, d / "scene.tif", truth


def deepest_pixel(mask: np.ndarray) -> tuple[float, float]:
    """(col, row) centre of the pixel farthest inside ``mask``."""
    dist = cv2.distanceTransform(np.pad(mask.astype(np.uint8), 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    r, c = np.unravel_index(np.argmax(dist), dist.shape)
    return c + 0.5, r + 0.5


def building_mask(sc, k) -> np.ndarray:
    m = np.zeros(sc.mask.shape, np.uint8)
    cv2.fillPoly(m, [sc.polygons_px[k].round().astype(np.int32)], 1)
    return m.astype(bool)


def building_point(sc, k):
    c, r = deepest_pixel(building_mask(sc, k))
    return QgsPointXY(*(sc.transform * (c, r)))


def second_inside_point(sc, k, depth_px: float = 8.0):
    """A point of building ``k`` at least ``depth_px`` inside its edge and as far as possible from
    ``building_point(sc, k)``: where a negative click is a well-posed request (not on the positive
    click's own pixel)."""
    m = building_mask(sc, k)
    dist = cv2.distanceTransform(np.pad(m.astype(np.uint8), 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    c0, r0 = deepest_pixel(m)
    rows, cols = np.nonzero(dist >= depth_px)
    i = int(np.argmax((cols + 0.5 - c0) ** 2 + (rows + 0.5 - r0) ** 2))
    return QgsPointXY(*(sc.transform * (cols[i] + 0.5, rows[i] + 0.5)))


def show(canvas, layer, crs=None):
    canvas.window().resize(700, 700)
    canvas.window().show()
    canvas.show()
    canvas.resize(640, 640)
    assert canvas.isVisible()
    crs = crs or layer.crs()
    canvas.setDestinationCrs(crs)
    canvas.setLayers([layer])
    extent = QgsCoordinateTransform(layer.crs(), crs, QgsProject.instance()).transformBoundingBox(layer.extent())
    canvas.setExtent(extent)
    canvas.refresh()
    canvas.waitWhileRendering()


def make_tool(canvas, iface, layer, tmp_path, **settings):
    settings.setdefault("model", "grabcut")  # the IoU thresholds here were measured with GrabCut
    settings.setdefault("output_path", str(tmp_path / "out.gpkg"))
    settings.setdefault("simplify_px", 0.0)
    settings.setdefault("min_area_m2", 2.0)
    tool = RitmMapTool(canvas, iface.messageBar(), ToolSettings(**settings))
    assert tool.set_layer(layer)
    canvas.setMapTool(tool)
    tool.wait_idle()
    return tool


def click(canvas, point_layer_crs: QgsPointXY, layer, button=Qt.LeftButton):
    """A real mouse click on the canvas viewport at a point given in the layer's CRS."""
    ct = QgsCoordinateTransform(layer.crs(), canvas.mapSettings().destinationCrs(), QgsProject.instance())
    p = canvas.getCoordinateTransform().transform(ct.transform(point_layer_crs))
    QTest.mouseClick(canvas.viewport(), button, Qt.NoModifier, QPoint(round(p.x()), round(p.y())))


def key(canvas, k, modifier=Qt.NoModifier):
    QTest.keyClick(canvas, k, modifier)


def read_back(path):
    assert os.path.exists(path)
    return gpd.read_file(path, layer="footprints")


def rows_on_disk(path) -> int:
    with sqlite3.connect(str(path)) as con:
        return con.execute("SELECT COUNT(*) FROM footprints").fetchone()[0]


def iou(a, b) -> float:
    return float(shapely.area(shapely.intersection(a, b)) / shapely.area(shapely.union(a, b)))


@pytest.fixture
def canvas_tool(qgis_iface, qgis_canvas, qgis_new_project):
    tools = []
    yield tools
    for t in tools:
        qgis_canvas.unsetMapTool(t)
        t.shutdown()


# ---------------------------------------------------------------------------------------------
# the worker's hand-back


class _Receiver(QObject):
    """A GUI-thread receiver of ``jobFinished``, like the map tool."""

    def __init__(self):
        super().__init__()
        self.jobs = []

    def on_job(self, job):
        self.jobs.append(job)


def test_wait_idle_returns_only_after_the_receivers_have_handled_every_job(qgis_app):
    """``wait_idle`` must not return before the GUI-thread receivers (the map tool) ran for every job.

    Regression: ``pending`` used to drop in a queued receiver of its own, connected before the map
    tool's; each receiver of a cross-thread signal gets its own event, posted one after the other,
    so ``wait_idle`` could return with the map tool's event not yet posted (an outline not yet
    drawn: the intermittent canvas-test failures). A slow receiver connected in between makes that
    gap wide enough to fail every time."""
    worker = InferenceWorker()
    worker.jobFinished.connect(lambda job: time.sleep(0.05), Qt.DirectConnection)  # runs on the emitting thread
    receiver = _Receiver()
    worker.jobFinished.connect(receiver.on_job)
    try:
        for n in range(1, 4):
            job = worker.submit(Job("discard"))
            worker.wait_idle(10)
            assert len(receiver.jobs) == n and receiver.jobs[-1] is job
        jobs = [worker.submit(Job("discard")) for _ in range(3)]  # queued behind each other
        worker.wait_idle(10)
        assert receiver.jobs[-3:] == jobs and worker.pending == 0
    finally:
        worker.stop()


# ---------------------------------------------------------------------------------------------
# the synthetic scene


def test_click_accept_writes_the_building_to_the_geopackage(scene, qgis_iface, qgis_canvas, canvas_tool, tmp_path):
    sc, raster, truth = scene
    layer = QgsRasterLayer(str(raster), "scene")
    QgsProject.instance().addMapLayer(layer)
    show(qgis_canvas, layer)
    tool = make_tool(qgis_canvas, qgis_iface, layer, tmp_path)
    canvas_tool.append(tool)
    click(qgis_canvas, building_point(sc, 4), layer)
    tool.wait_idle()
    assert len(tool.markers) == 1 and tool.markers[0][1] is True
    assert len(tool.overlay.geometries) == 1 and tool.overlay.paints > 0
    assert tool.last_latency_ms is not None and tool.last_latency_ms >= tool.last_predict_ms > 0
    assert not os.path.exists(tmp_path / "out.gpkg")  # nothing written before accepting
    key(qgis_canvas, Qt.Key_Return)
    tool.wait_idle()
    assert tool.overlay.is_empty() and tool.markers == []
    gdf = read_back(tmp_path / "out.gpkg")
    assert len(gdf) == 1 and gdf.crs.to_epsg() == 32618
    row = gdf.iloc[0]
    assert row.n_clicks == 1 and row.model == "grabcut" and row.created is not None
    assert abs(row.area_m2 - row.geometry.area) < 1e-6 * row.geometry.area
    score = iou(row.geometry, truth.geometry.iloc[4])
    print("scene IoU", score)
    assert score > SCENE_IOU, score
    # the tool is ready for the next building: the output layer is in the project
    assert any(isinstance(l, QgsVectorLayer) and l.name() == "footprints" for l in QgsProject.instance().mapLayers().values())


def test_a_network_runs_through_the_worker_and_its_outline_is_saved(scene, qgis_iface, qgis_canvas, canvas_tool,
                                                                   tmp_path):
    """The worker thread loads a shipped RITM network (not GrabCut), predicts from a real click on
    the canvas, and the accepted outline is that building, recorded with the model's name."""
    sc, raster, truth = scene
    layer = QgsRasterLayer(str(raster), "scene")
    QgsProject.instance().addMapLayer(layer)
    show(qgis_canvas, layer)
    tool = make_tool(qgis_canvas, qgis_iface, layer, tmp_path, model="aerial-finetuned-h18s", device="cpu")
    canvas_tool.append(tool)
    assert tool.backend_name.startswith("aerial-finetuned-h18s")  # "name (architecture)"
    click(qgis_canvas, building_point(sc, 4), layer)
    tool.wait_idle()
    assert len(tool.overlay.geometries) == 1 and tool.last_predict_ms > 0
    key(qgis_canvas, Qt.Key_Return)
    tool.wait_idle()
    row = read_back(tmp_path / "out.gpkg").iloc[0]
    assert row.model.startswith("aerial-finetuned-h18s") and row.n_clicks == 1
    scores = [iou(row.geometry, building) for building in truth.geometry]
    print("network scene IoU", scores[4])
    assert scores[4] > NETWORK_SCENE_IOU and scores[4] == max(scores), scores


def test_undo_restores_the_previous_outline_exactly_and_esc_leaves_nothing(scene, qgis_iface, qgis_canvas,
                                                                           canvas_tool, tmp_path):
    sc, raster, truth = scene
    layer = QgsRasterLayer(str(raster), "scene")
    QgsProject.instance().addMapLayer(layer)
    show(qgis_canvas, layer)
    tool = make_tool(qgis_canvas, qgis_iface, layer, tmp_path)
    canvas_tool.append(tool)
    inside = building_point(sc, 4)
    click(qgis_canvas, inside, layer)
    tool.wait_idle()
    first = list(tool.outline_wkb)
    first_overlay = [g.asWkb() for g in tool.overlay.geometries]
    assert len(first) == 1
    first_shape = shapely.from_wkb(first[0])
    # a negative click elsewhere inside the first outline: its disk is background whatever GrabCut
    # says, so the outline must change (a hole or a cut-off part), and the click's point leaves it
    negative = second_inside_point(sc, 4)
    assert first_shape.contains(shapely.Point(negative.x(), negative.y()))
    click(qgis_canvas, negative, layer, Qt.RightButton)
    tool.wait_idle()
    assert [m[1] for m in tool.markers] == [True, False]
    assert tool.outline_wkb != first
    second_shape = shapely.union_all(shapely.from_wkb(tool.outline_wkb))
    assert not second_shape.contains(shapely.Point(negative.x(), negative.y()))
    key(qgis_canvas, Qt.Key_Backspace)
    tool.wait_idle()
    assert tool.outline_wkb == first and [g.asWkb() for g in tool.overlay.geometries] == first_overlay
    assert len(tool.markers) == 1
    # Ctrl+Z does the same
    click(qgis_canvas, negative, layer, Qt.RightButton)
    tool.wait_idle()
    assert tool.outline_wkb != first
    key(qgis_canvas, Qt.Key_Z, Qt.ControlModifier)
    tool.wait_idle()
    assert tool.outline_wkb == first
    key(qgis_canvas, Qt.Key_Escape)
    tool.wait_idle()
    assert tool.overlay.is_empty() and tool.outline_wkb == [] and tool.markers == []
    key(qgis_canvas, Qt.Key_Return)  # accepting nothing does nothing
    tool.wait_idle()
    assert not os.path.exists(tmp_path / "out.gpkg")
    assert tool.worker.state.session.clicks == []


def test_second_building_appends_and_the_first_is_untouched(scene, qgis_iface, qgis_canvas, canvas_tool, tmp_path):
    sc, raster, truth = scene
    layer = QgsRasterLayer(str(raster), "scene")
    QgsProject.instance().addMapLayer(layer)
    show(qgis_canvas, layer)
    tool = make_tool(qgis_canvas, qgis_iface, layer, tmp_path)
    canvas_tool.append(tool)
    click(qgis_canvas, building_point(sc, 4), layer)
    key(qgis_canvas, Qt.Key_Enter)  # queued behind the click: accepted once its outline exists
    tool.wait_idle()
    one = read_back(tmp_path / "out.gpkg")
    assert len(one) == 1
    # three quick clicks on the next building, without waiting: queued and applied in order
    p = building_point(sc, 0)
    click(qgis_canvas, p, layer)
    click(qgis_canvas, QgsPointXY(p.x() + 1.0, p.y()), layer)
    click(qgis_canvas, QgsPointXY(p.x(), p.y() - 1.0), layer)
    assert tool.worker.pending >= 1  # the GUI did not wait for the model
    tool.wait_idle()
    clicks = tool.worker.state.session.clicks
    assert len(clicks) == 3 and clicks[1][0] > clicks[0][0] and clicks[2][1] < clicks[0][1]
    key(qgis_canvas, Qt.Key_Enter)
    tool.wait_idle()
    two = read_back(tmp_path / "out.gpkg")
    assert len(two) == 2
    assert shapely.equals_exact(two.geometry.iloc[0], one.geometry.iloc[0], 0)
    assert two.iloc[0].created == one.iloc[0].created and two.iloc[1].n_clicks == 3
    assert iou(two.geometry.iloc[1], truth.geometry.iloc[0]) > SCENE_IOU - 0.1


def test_append_goes_through_the_edit_buffer_when_the_layer_is_being_edited(scene, qgis_iface, qgis_canvas,
                                                                           canvas_tool, tmp_path):
    from ritm_qgis.gui.output import open_output_layer

    sc, raster, _ = scene
    layer = QgsRasterLayer(str(raster), "scene")
    QgsProject.instance().addMapLayer(layer)
    show(qgis_canvas, layer)
    out = open_output_layer(str(tmp_path / "out.gpkg"), layer.crs())
    assert out.startEditing()
    tool = make_tool(qgis_canvas, qgis_iface, layer, tmp_path)
    canvas_tool.append(tool)
    click(qgis_canvas, building_point(sc, 4), layer)
    key(qgis_canvas, Qt.Key_Return)
    tool.wait_idle()
    assert out.isEditable() and out.featureCount() == 1  # in the buffer, layer still in edit mode
    assert rows_on_disk(tmp_path / "out.gpkg") == 0  # not on disk until the user saves
    out.undoStack().undo()  # QGIS's own undo removes it
    assert out.featureCount() == 0
    out.undoStack().redo()
    assert out.commitChanges()
    assert rows_on_disk(tmp_path / "out.gpkg") == 1


def test_project_crs_differs_and_raster_is_one_band_16_bit(scene, qgis_iface, qgis_canvas, canvas_tool, tmp_path):
    sc, raster, truth = scene
    grey = tmp_path / "grey16.tif"
    with rasterio.open(raster) as src:
        profile = src.profile | dict(count=1, dtype="uint16")
        data = (src.read().astype(np.uint16).sum(axis=0) * 40).astype(np.uint16)
    with rasterio.open(grey, "w", **profile) as dst:
        dst.write(data[None])
    layer = QgsRasterLayer(str(grey), "grey16")
    QgsProject.instance().addMapLayer(layer)
    show(qgis_canvas, layer, QgsCoordinateReferenceSystem("EPSG:3857"))
    tool = make_tool(qgis_canvas, qgis_iface, layer, tmp_path)
    canvas_tool.append(tool)
    target = building_point(sc, 4)
    click(qgis_canvas, target, layer)
    tool.wait_idle()
    session = tool.worker.state.session
    x, y, _ = session.clicks[0]
    assert abs(x - target.x()) < 1.0 and abs(y - target.y()) < 1.0  # reprojected back within a pixel or two
    key(qgis_canvas, Qt.Key_Return)
    tool.wait_idle()
    gdf = read_back(tmp_path / "out.gpkg")
    assert gdf.crs.to_epsg() == 32618 and len(gdf) >= 1
    score = iou(shapely.union_all(gdf.geometry.values), truth.geometry.iloc[4])
    print("grey16 IoU", score)
    assert score > SCENE_IOU - 0.15, score


def test_broken_checkpoint_is_a_message_and_grabcut_keeps_working(scene, qgis_iface, qgis_canvas, canvas_tool,
                                                                  tmp_path):
    sc, raster, _ = scene
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"not a checkpoint")
    layer = QgsRasterLayer(str(raster), "scene")
    QgsProject.instance().addMapLayer(layer)
    show(qgis_canvas, layer)
    qgis_iface.messageBar().clear_messages()
    tool = make_tool(qgis_canvas, qgis_iface, layer, tmp_path, model=str(broken))
    canvas_tool.append(tool)
    warnings = qgis_iface.messageBar().get_messages(Qgis.Warning)
    assert any("broken.pth" in m and "GrabCut" in m for m in warnings), warnings
    assert tool.backend_name == "grabcut"
    click(qgis_canvas, building_point(sc, 4), layer)
    tool.wait_idle()
    assert len(tool.overlay.geometries) == 1


def test_switching_layers_mid_building_keeps_it_on_its_raster(scene, qgis_iface, qgis_canvas, canvas_tool, tmp_path):
    sc, raster, _ = scene
    layer = QgsRasterLayer(str(raster), "scene")
    other = QgsRasterLayer(str(raster), "other")
    QgsProject.instance().addMapLayers([layer, other])
    show(qgis_canvas, layer)
    tool = make_tool(qgis_canvas, qgis_iface, layer, tmp_path)
    canvas_tool.append(tool)
    click(qgis_canvas, building_point(sc, 4), layer)
    tool.wait_idle()
    assert not tool.set_layer(other)  # deferred: the building has clicks
    assert tool.layer is layer and tool.pending_layer is other and len(tool.markers) == 1
    key(qgis_canvas, Qt.Key_Return)
    tool.wait_idle()
    assert tool.layer is other and len(read_back(tmp_path / "out.gpkg")) == 1


# ---------------------------------------------------------------------------------------------
# a real chip


def test_real_spacenet_chip_with_a_web_mercator_canvas(qgis_iface, qgis_canvas, canvas_tool, tmp_path):
    """Click inside a building of the real chip, then let RITM's simulated user place the next
    clicks (on the error the overlay shows), through real canvas clicks; accept after 6 clicks."""
    from ritm_qgis.engine.protocol.clicker import next_click

    image = shared_path(*SPACENET, "images", CHIP)
    mask_path = shared_path(*SPACENET, "masks", CHIP)
    with rasterio.open(mask_path) as ds:
        mask = ds.read(1) > 0
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=4)
    k = 1 + int(np.argsort(-stats[1:, cv2.CC_STAT_AREA])[1])  # the second largest building
    building = labels == k
    grid = raster_meta(str(image)).grid
    truth = vectorize_mask(building, grid).geometry.iloc[0]
    c, r = deepest_pixel(building)

    layer = QgsRasterLayer(str(image), "rio")
    QgsProject.instance().addMapLayer(layer)
    show(qgis_canvas, layer, QgsCoordinateReferenceSystem("EPSG:3857"))
    tool = make_tool(qgis_canvas, qgis_iface, layer, tmp_path)
    canvas_tool.append(tool)
    click(qgis_canvas, QgsPointXY(*(grid.transform * (c, r))), layer)
    tool.wait_idle()
    for _ in range(5):
        step = tool.worker.state.session.current
        w = step.window
        pred = np.zeros(mask.shape, bool)
        pred[w.row_off:w.row_off + w.height, w.col_off:w.col_off + w.width] = step.prob > 0.49
        nxt = next_click(building, pred)
        button = Qt.LeftButton if nxt.is_positive else Qt.RightButton
        click(qgis_canvas, QgsPointXY(*(grid.transform * (nxt.col + 0.5, nxt.row + 0.5))), layer, button)
        tool.wait_idle()
    assert len(tool.worker.state.session.clicks) == 6
    key(qgis_canvas, Qt.Key_Return)
    tool.wait_idle()
    gdf = read_back(tmp_path / "out.gpkg")
    assert len(gdf) >= 1 and gdf.crs.to_epsg() == 4326
    assert set(gdf.n_clicks) == {6} and set(gdf.model) == {"grabcut"}
    outline = shapely.union_all(gdf.geometry.values)
    true_m2 = stats[k, cv2.CC_STAT_AREA] * 0.25  # about 0.5 m pixels
    assert 0.6 * true_m2 < gdf.area_m2.sum() < 1.5 * true_m2
    score = iou(outline, truth)
    print("chip IoU", score, "area", gdf.area_m2.sum(), true_m2)
    assert score > CHIP_IOU, score
