"""The QGIS plugin object: registers the Processing provider, the map tool and the dependency installer."""

from __future__ import annotations

from qgis.core import Qgis, QgsApplication, QgsMessageLog

from ritm_qgis import deps
from ritm_qgis.gui.icon import plugin_icon

PLUGIN_NAME = deps.PLUGIN_TITLE


def activate_installed_packages() -> bool:
    """Put the packages the installer placed in this QGIS profile on sys.path, after QGIS's own."""
    return deps.activate(deps.target_folder(QgsApplication.qgisSettingsDirPath()))


class RitmQgisPlugin:
    def __init__(self, iface):
        self.iface = iface
        self.provider = None
        self.map_tool = None  # gui.controller.MapToolController: toolbar button, menu entry, dock
        self.deps_action = None  # Plugins > RITM buildings > Install dependencies...
        self.deps_dialog = None

    def initProcessing(self):  # noqa: N802 (QGIS's name; qgis_process calls it without a GUI)
        from ritm_qgis.provider import RitmProvider

        if self.provider is None:
            provider = RitmProvider()
            if QgsApplication.processingRegistry().addProvider(provider):
                self.provider = provider

    def initGui(self):  # noqa: N802
        self.initProcessing()
        if self.iface is not None and hasattr(self.iface, "addToolBarIcon") and self.map_tool is None:
            from ritm_qgis.gui.controller import MENU, MapToolController
            from qgis.PyQt.QtWidgets import QAction

            self.map_tool = MapToolController(self.iface)
            self.map_tool.init_gui()
            if getattr(self.map_tool, "action", None) is not None:
                self.map_tool.action.setIcon(plugin_icon())
            self.deps_action = QAction("Install dependencies...", self.iface.mainWindow())
            self.deps_action.setObjectName("ritmQgisInstallDependencies")
            self.deps_action.triggered.connect(self.show_deps_dialog)
            self.iface.addPluginToMenu(MENU, self.deps_action)
        self._report_missing()

    def _report_missing(self):
        needs = deps.check(deps.active_target())
        unmet = [n for n in needs if not n.ok]
        if not unmet:
            return
        QgsMessageLog.logMessage(PLUGIN_NAME + " " + deps.missing_message([n.requirement.text for n in unmet]) + " Missing: "
                                 + ", ".join(n.requirement.text for n in unmet), PLUGIN_NAME, Qgis.Warning)
        if self.iface is None:
            return
        from qgis.gui import QgsMessageBar
        from qgis.PyQt.QtWidgets import QPushButton

        text = ("needs newer Python packages than QGIS's Python has." if all(n.conflict for n in unmet)
                else "needs Python packages that are not installed yet.")
        item = QgsMessageBar.createMessage(PLUGIN_NAME, text)
        button = QPushButton("Install dependencies...", item)
        button.setObjectName("ritmQgisInstallDependencies")
        button.clicked.connect(self.show_deps_dialog)
        item.layout().addWidget(button)
        self.iface.messageBar().pushWidget(item, Qgis.Warning)

    def show_deps_dialog(self, *_):
        from ritm_qgis.gui.deps_dialog import DepsDialog

        if self.deps_dialog is None:
            parent = self.iface.mainWindow() if hasattr(self.iface, "mainWindow") else None
            self.deps_dialog = DepsDialog(deps.active_target(), parent)
        self.deps_dialog.show()
        self.deps_dialog.raise_()
        return self.deps_dialog

    def unload(self):
        if self.deps_dialog is not None:
            self.deps_dialog.close()
            self.deps_dialog.deleteLater()
            self.deps_dialog = None
        if self.deps_action is not None:
            from ritm_qgis.gui.controller import MENU

            self.iface.removePluginMenu(MENU, self.deps_action)
            self.deps_action.deleteLater()
            self.deps_action = None
        if self.map_tool is not None:
            self.map_tool.unload()
            self.map_tool = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
