"""The Processing provider ``ritm_qgis``: one algorithm per module of ritm_qgis.algorithms."""

from __future__ import annotations

from qgis.core import QgsProcessingProvider

from ritm_qgis import __version__
from ritm_qgis.algorithms import algorithm_classes


class RitmProvider(QgsProcessingProvider):
    def id(self):
        return "ritm_qgis"

    def name(self):
        return "RITM building segmentation"

    def longName(self):  # noqa: N802
        return f"RITM building segmentation {__version__}"

    def icon(self):
        from ritm_qgis.gui.icon import plugin_icon

        return plugin_icon()

    def versionInfo(self):  # noqa: N802
        return __version__

    def loadAlgorithms(self):  # noqa: N802
        for cls in algorithm_classes():
            self.addAlgorithm(cls())
