"""Loads the plugin from an unzipped package in a bare QGIS (run with Debian's /usr/bin/python3).

Prints where ritm_qgis was imported from and every message the plugin pushed to a real
QgsMessageBar, one per line, prefixed MESSAGE: (title: text), with their buttons (BUTTON:).
"""

import os
import sys

from qgis.core import QgsApplication
from qgis.gui import QgsMessageBar
from qgis.PyQt.QtWidgets import QPushButton

app = QgsApplication([], True)
app.initQgis()


class Iface:
    """Just the part of QgisInterface the plugin touches at start-up."""

    def __init__(self):
        self.bar = QgsMessageBar()

    def messageBar(self):  # noqa: N802
        return self.bar


iface = Iface()
import ritm_qgis  # noqa: E402

plugin = ritm_qgis.classFactory(iface)
plugin.initGui()
print("IMPORTED_FROM:" + os.path.dirname(ritm_qgis.__file__))
print("PROVIDER:" + str(QgsApplication.processingRegistry().providerById("ritm_qgis") is not None))
for item in iface.bar.items():
    print("MESSAGE:" + item.title() + ": " + item.text())
    for button in item.findChildren(QPushButton):
        print("BUTTON:" + button.text())
print("LOG_TARGET:" + ritm_qgis.deps.active_target())
plugin.unload()
print("UNLOADED:" + str(QgsApplication.processingRegistry().providerById("ritm_qgis") is None))
sys.stdout.flush()
os._exit(0)  # skip QGIS's exit-time teardown, which can crash headless
