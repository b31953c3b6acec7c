"""Wires the map tool into QGIS: toolbar button, menu entry, dock, active-layer tracking.

Created by ``RitmQgisPlugin.initGui``; the dock and the tool are made on first use, so loading
the plugin costs nothing and works when torch or the geo stack is missing (then the button
says what to install instead of starting the tool).
"""

from __future__ import annotations

from qgis.core import Qgis, QgsApplication
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import QAction

from ritm_qgis.about import PLUGIN_NAME

MENU = "&RITM buildings"


class MapToolController:
    def __init__(self, iface):
        self.iface = iface
        self.action = None
        self.dock = None
        self.tool = None

    # ------------------------------------------------------------------ plugin life
    def init_gui(self) -> None:
        icon = QgsApplication.getThemeIcon("/mActionAddPolygon.svg")
        self.action = QAction(icon, "Outline buildings with RITM", self.iface.mainWindow())
        self.action.setObjectName("ritmQgisMapTool")
        self.action.setCheckable(True)
        self.action.setToolTip("Click buildings on the active raster layer: left = building, right = background, "
                               "Enter = accept, Backspace = undo, Esc = discard, drag or Space = pan")
        self.action.triggered.connect(self.activate)
        self.iface.addToolBarIcon(self.action)
        self.iface.addPluginToMenu(MENU, self.action)

    def unload(self) -> None:
        if self.tool is not None:
            canvas = self.iface.mapCanvas()
            if canvas.mapTool() is self.tool:
                canvas.unsetMapTool(self.tool)
            self.tool.shutdown()
            self.tool = None
        if self.dock is not None:
            self.iface.removeDockWidget(self.dock)
            self.dock.deleteLater()
            self.dock = None
        if self.action is not None:
            self.iface.removeToolBarIcon(self.action)
            self.iface.removePluginMenu(MENU, self.action)
            self.action.deleteLater()
            self.action = None
        try:
            self.iface.currentLayerChanged.disconnect(self._layer_changed)
        except (TypeError, RuntimeError, AttributeError):
            pass

    # ------------------------------------------------------------------ the tool
    def activate(self, *_):
        """Start the map tool on the active raster layer (building the dock and tool the first time)."""
        from ritm_qgis.deps import missing_message, missing_packages

        missing = missing_packages()
        if missing:
            self.iface.messageBar().pushMessage(PLUGIN_NAME, missing_message(missing), level=Qgis.Warning, duration=0)
            if self.action is not None:
                self.action.setChecked(False)
            return None
        self._ensure_tool()
        canvas = self.iface.mapCanvas()
        layer = self.iface.activeLayer()
        if not self.tool.set_layer(layer) and self.tool.layer is None:
            self.iface.messageBar().pushMessage(
                PLUGIN_NAME, "Select a raster layer (a GeoTIFF or other GDAL raster) in the Layers panel, "
                "then start the RITM tool.", level=Qgis.Info, duration=6)
        self.dock.dark_hint.watch(self.tool.layer)
        canvas.setMapTool(self.tool)
        self.dock.show()
        return self.tool

    def _ensure_tool(self) -> None:
        if self.tool is not None:
            return
        from .dock import RitmDock
        from .maptool import RitmMapTool

        self.dock = RitmDock(self.iface.mainWindow())
        self.iface.addDockWidget(Qt.RightDockWidgetArea, self.dock)
        self.tool = RitmMapTool(self.iface.mapCanvas(), self.iface.messageBar(), self.dock.settings())
        if self.action is not None:
            self.tool.setAction(self.action)
        self.dock.settingsChanged.connect(self.tool.set_settings)
        self.dock.activateRequested.connect(self.activate)
        self.dock.acceptRequested.connect(self.tool.accept)
        self.tool.busyChanged.connect(self.dock.show_busy)
        self.dock.show_busy(self.tool.busy, self.tool.busy_text)  # the model started loading with the tool
        if self.tool.busy:
            self.dock.show_loading()  # not "in use: -" while the first model loads
        self.tool.modelChanged.connect(self.dock.show_model)
        self.tool.latencyMeasured.connect(self.dock.show_latency)
        self.tool.statusChanged.connect(self.dock.show_status)
        self.tool.statusChanged.connect(self._status_bar)
        self.dock.model.downloadError.connect(self._download_error)
        self.iface.currentLayerChanged.connect(self._layer_changed)
        from .learn import connect_learning

        connect_learning(self.dock, self.tool, self.iface.messageBar())

    def _layer_changed(self, layer):
        if self.tool is not None and layer is not None:
            self.tool.set_layer(layer)
            self.dock.dark_hint.watch(self.tool.layer)

    def _download_error(self, text: str):
        self.iface.messageBar().pushMessage(PLUGIN_NAME, text, level=Qgis.Warning, duration=15)

    def _status_bar(self, text: str):
        try:
            self.iface.mainWindow().statusBar().showMessage(text, 8000)
        except (AttributeError, RuntimeError):
            pass
