"""The plugin's toolbar button / menu entry start the map tool on the active raster; the dock's
settings are persisted in QgsSettings and reach the tool."""

import pytest
from qgis.core import QgsProject, QgsRasterLayer, QgsSettings, QgsVectorLayer
from qgis.PyQt.QtWidgets import QAction

from ritm_qgis.engine.geo.synthetic_scene import make_scene, write_scene
from ritm_qgis.gui.dock import RitmDock
from ritm_qgis.gui.maptool import RitmMapTool
from ritm_qgis.gui.output import default_output_path
from ritm_qgis.gui.settings import PREFIX, ToolSettings, load_settings
from ritm_qgis.plugin import RitmQgisPlugin

pytestmark = pytest.mark.qgis


@pytest.fixture
def saved_settings():
    """Keep the user's own RITM settings as they were."""
    s = QgsSettings()
    keys = [k for k in s.allKeys() if k.startswith(PREFIX)]
    old = {k: s.value(k) for k in keys}
    for k in keys:
        s.remove(k)
    yield s
    for k in [k for k in s.allKeys() if k.startswith(PREFIX)]:
        s.remove(k)
    for k, v in old.items():
        s.setValue(k, v)


@pytest.fixture
def raster(tmp_path):
    path = tmp_path / "scene.tif"
    write_scene(make_scene(size=256, n_buildings=4, seed=1), str(path))
    return path


def test_button_starts_the_tool_on_the_active_raster_and_dock_settings_persist(
        qgis_iface, qgis_canvas, qgis_new_project, saved_settings, raster, tmp_path):
    layer = QgsRasterLayer(str(raster), "scene")
    vector = QgsVectorLayer("Point?crs=EPSG:32618", "points", "memory")
    QgsProject.instance().addMapLayers([layer, vector])
    qgis_iface.setActiveLayer(layer)
    plugin = RitmQgisPlugin(qgis_iface)
    plugin.initGui()
    try:
        action = plugin.map_tool.action
        assert isinstance(action, QAction) and action.text() == "Outline buildings with RITM"
        action.trigger()
        tool = qgis_canvas.mapTool()
        assert isinstance(tool, RitmMapTool) and tool.layer is layer and action.isChecked()
        tool.wait_idle()
        dock = plugin.map_tool.dock
        assert dock.in_use.text() == "in use: grabcut on cpu"
        # a vector layer becoming active does not take the tool away from the raster
        tool.set_layer(vector)
        assert tool.layer is layer
        # dock edits: saved in QgsSettings at once and given to the tool
        dock.threshold.setValue(0.7)
        dock.simplify.setValue(2.0)
        dock.regularize.setChecked(True)
        dock.min_area.setValue(12.5)
        dock.output.setFilePath(str(tmp_path / "mine.gpkg"))
        tool.wait_idle()  # the model reload the new threshold queued: handled here, not during a later test
        assert tool.settings.threshold == pytest.approx(0.7) and tool.settings.regularize
        assert tool.settings.output_path == str(tmp_path / "mine.gpkg")
        assert float(QgsSettings().value(PREFIX + "threshold")) == pytest.approx(0.7)
        again = RitmDock()
        assert again.settings() == ToolSettings(model="grabcut", device="auto", threshold=0.7, simplify_px=2.0,
                                                regularize=True, min_area_m2=12.5,
                                                output_path=str(tmp_path / "mine.gpkg"))
        assert load_settings() == again.settings()
    finally:
        plugin.unload()
    assert plugin.map_tool is None and qgis_canvas.mapTool() is not tool


def test_default_output_is_beside_the_saved_project_else_a_temporary_layer(qgis_new_project, tmp_path):
    project = QgsProject.instance()
    project.setFileName("")
    assert default_output_path(project) == ""  # the tool then writes to a temporary layer (test_maptool_habits)
    project.setFileName(str(tmp_path / "work.qgz"))
    assert default_output_path(project) == str(tmp_path / "footprints.gpkg")


def test_stored_settings_come_back_typed_and_bad_values_fall_back(saved_settings):
    saved_settings.setValue(PREFIX + "regularize", "true")  # how an INI file stores a bool
    saved_settings.setValue(PREFIX + "simplify_px", "2.5")
    saved_settings.setValue(PREFIX + "threshold", "not a number")
    got = load_settings()
    assert got.regularize is True and got.simplify_px == 2.5
    assert got.threshold == ToolSettings().threshold
