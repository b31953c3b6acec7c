"""Keep the pip geo stack on its own GDAL / PROJ / GEOS inside QGIS processes.

Inside ``qgis_process`` and the QGIS desktop, the executable links Debian's ``libgdal``,
``libproj.so.25`` and ``libgeos_c``, so their symbols sit in the process's global namespace. The
extension modules of the pip wheels (rasterio, pyproj, pyogrio, shapely) link their own bundled
copies, but by default the dynamic linker resolves their calls to the global copies first. Two
failures were measured with ``qgis_process run``: shapely asked Debian's GEOS 3.11 for 4-D WKB
(chosen for the GEOS 3.14 it was built with) and every GeoPackage write failed ("WKB output
dimension must be 2 or 3"); and the process aborted at exit ("double free or corruption" in
``libproj.so.25``'s destructors), because both PROJ copies had registered destructors for the
same (interposed) C++ globals.

``load_geo_stack_isolated`` imports every extension module of those packages with
``RTLD_DEEPBIND``, so each resolves symbols in its own bundled libraries first. It must run before
anything else imports them (the algorithms call it first); in a plain Python process (no GDAL in
the global namespace) it does nothing. If they were already imported, ``align_with_runtime_geos``
at least makes shapely choose WKB that the runtime GEOS accepts.
"""

from __future__ import annotations

import ctypes
import importlib
import os
import sys
import warnings

__all__ = ["runtime_geos_version", "align_with_runtime_geos", "load_geo_stack_isolated"]

GEO_PACKAGES = ("shapely", "pyproj", "rasterio", "pyogrio")


def _global_symbol(name: str):
    try:
        return getattr(ctypes.CDLL(None), name)
    except (AttributeError, OSError):
        return None


def runtime_geos_version() -> tuple[int, int, int] | None:
    """The version of a GEOS C library already in the process's global namespace, or None."""
    fn = _global_symbol("GEOSversion")
    if fn is None:
        return None
    fn.restype = ctypes.c_char_p
    text = fn().decode("ascii", "replace").split("-", 1)[0]
    try:
        parts = [int(p) for p in text.split(".")[:3]]
    except ValueError:
        return None
    return tuple(parts + [0] * (3 - len(parts)))  # type: ignore[return-value]


def align_with_runtime_geos() -> tuple[int, int, int] | None:
    """Lower ``shapely.io``'s notion of the GEOS version to the global one when it is older."""
    runtime = runtime_geos_version()
    if runtime is None:
        return None
    import shapely.io

    if tuple(shapely.io.geos_version) > runtime:
        shapely.io.geos_version = runtime
    return runtime


def _extension_modules(package: str) -> list[str]:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return []
    names = []
    for root in spec.submodule_search_locations:
        for folder, _, files in os.walk(root):
            rel = os.path.relpath(folder, root)
            prefix = package if rel == "." else package + "." + rel.replace(os.sep, ".")
            for f in files:
                if f.endswith(".so") and "." in f:
                    names.append(prefix + "." + f.split(".", 1)[0])
    return sorted(set(names))


def load_geo_stack_isolated() -> bool:
    """Import the geo wheels' extension modules with RTLD_DEEPBIND when GDAL/PROJ/GEOS are global.

    Returns True when the isolation was applied, False when not needed or too late (then the
    GEOS version is aligned instead).
    """
    # geopandas 1.0 (what QGIS 3.22's pyproj allows) imports shapely.geos, which shapely 2 deprecates;
    # QGIS shows that warning as a traceback in its log at every start
    warnings.filterwarnings("ignore", message="The 'shapely.geos' module is deprecated", category=DeprecationWarning)
    if not hasattr(os, "RTLD_DEEPBIND"):
        return False
    if all(_global_symbol(s) is None for s in ("GDALAllRegister", "proj_context_create", "GEOSversion")):
        return False
    if any(p in sys.modules for p in GEO_PACKAGES):
        if "shapely" in sys.modules:
            align_with_runtime_geos()
        return False
    flags = sys.getdlopenflags()
    sys.setdlopenflags(flags | os.RTLD_DEEPBIND)
    try:
        for package in GEO_PACKAGES:
            for name in _extension_modules(package):
                try:
                    importlib.import_module(name)
                except Exception:  # noqa: BLE001 - optional parts (e.g. tests) may not import alone
                    pass
            try:
                importlib.import_module(package)
            except ImportError:
                pass
    finally:
        sys.setdlopenflags(flags)
    return True



