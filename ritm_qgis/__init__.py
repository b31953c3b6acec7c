"""ritm_qgis: interactive building segmentation (RITM) for aerial imagery.

This package is at once the engine (importable without QGIS: ``ritm_qgis.engine``,
``ritm_qgis.models``, the CLI) and the QGIS plugin (``classFactory`` below). Importing it
imports neither QGIS nor torch.
"""

from .about import VERSION as __version__  # metadata.txt's version


def classFactory(iface):  # noqa: N802 (QGIS's name)
    """Entry point QGIS calls when it loads the plugin."""
    from .plugin import RitmQgisPlugin, activate_installed_packages

    # The packages the installer put in the profile (deps.py), after everything QGIS imports itself;
    # then, before anything imports rasterio/shapely/pyproj inside QGIS: bind the pip wheels to their
    # own GDAL/PROJ/GEOS rather than QGIS's (see core/geos_compat.py). A no-op where they are missing.
    activate_installed_packages()
    from .core.geos_compat import load_geo_stack_isolated

    load_geo_stack_isolated()
    return RitmQgisPlugin(iface)
