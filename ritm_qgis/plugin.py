"""The QGIS plugin object: registers the Processing provider and reports missing packages."""

from __future__ import annotations

from qgis.core import Qgis, QgsApplication, QgsMessageLog

from ritm_qgis.deps import missing_message, missing_packages

PLUGIN_NAME = "ritm_qgis"


class RitmQgisPlugin:
    def __init__(self, iface):
        self.iface = iface
        self.provider = None
        self.map_tool = None  # gui.controller.MapToolController: toolbar button, menu entry, dock

    def initProcessing(self):  # noqa: N802 (QGIS's name; qgis_process calls it without a GUI)
        from ritm_qgis.provider import RitmProvider

        if self.provider is None:
            provider = RitmProvider()
            if QgsApplication.processingRegistry().addProvider(provider):
                self.provider = provider

    def initGui(self):  # noqa: N802
        self.initProcessing()
        if self.iface is not None and hasattr(self.iface, "addToolBarIcon") and self.map_tool is None:
            from ritm_qgis.gui.controller import MapToolController

            self.map_tool = MapToolController(self.iface)
            self.map_tool.init_gui()
        missing = missing_packages()
        if missing:
            text = missing_message(missing)
            QgsMessageLog.logMessage(text, PLUGIN_NAME, Qgis.Warning)
            if self.iface is not None:
                self.iface.messageBar().pushMessage(PLUGIN_NAME, text, level=Qgis.Warning, duration=0)

    def unload(self):
        if self.map_tool is not None:
            self.map_tool.unload()
            self.map_tool = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
