"""The plugin's icon (ritm_qgis/icon.svg): Plugin Manager, toolbar button and Processing provider."""

from __future__ import annotations

import os

ICON_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "icon.svg")


def plugin_icon():
    from qgis.PyQt.QtGui import QIcon

    return QIcon(ICON_PATH)
