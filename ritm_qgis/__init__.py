"""ritm_qgis: interactive building segmentation (RITM) for aerial imagery.

This package is at once the engine (importable without QGIS: ``ritm_qgis.engine``,
``ritm_qgis.models``, the CLI) and the QGIS plugin (``classFactory`` below). Importing it
imports neither QGIS nor torch.
"""

__version__ = "0.1.0"


def classFactory(iface):  # noqa: N802 (QGIS's name)
    """Entry point QGIS calls when it loads the plugin."""
    from .plugin import RitmQgisPlugin

    return RitmQgisPlugin(iface)
