"""Make shapely aware of the GEOS library its calls really reach inside QGIS.

Inside ``qgis_process`` and the QGIS desktop, the executable links Debian's ``libgeos_c`` (3.11), so
its symbols sit in the process's global namespace and the dynamic linker resolves shapely's GEOS
calls to it instead of the newer GEOS bundled in the shapely wheel (3.14). Most of the C API is
the same, but shapely picks some defaults from the version it was *built* with: ``to_wkb`` asks
for 4-dimensional WKB on GEOS >= 3.12, which 3.11 refuses ("WKB output dimension must be 2 or 3"),
so every GeoPackage write failed there. ``align_with_runtime_geos`` reads the version of the GEOS
found in the global namespace (none in a plain Python process: then nothing changes) and, when
it is older, tells ``shapely.io`` so, which makes it choose what that GEOS supports.
"""

from __future__ import annotations

import ctypes

__all__ = ["runtime_geos_version", "align_with_runtime_geos"]


def runtime_geos_version() -> tuple[int, int, int] | None:
    """The version of a GEOS C library already in the process's global namespace, or None."""
    try:
        fn = ctypes.CDLL(None).GEOSversion
    except (AttributeError, OSError):
        return None
    fn.restype = ctypes.c_char_p
    text = fn().decode("ascii", "replace").split("-", 1)[0]
    try:
        parts = [int(p) for p in text.split(".")[:3]]
    except ValueError:
        return None
    return tuple(parts + [0] * (3 - len(parts)))  # type: ignore[return-value]


def align_with_runtime_geos() -> tuple[int, int, int] | None:
    """Lower ``shapely.io``'s notion of the GEOS version to the runtime one when it is older."""
    runtime = runtime_geos_version()
    if runtime is None:
        return None
    import shapely.io

    if tuple(shapely.io.geos_version) > runtime:
        shapely.io.geos_version = runtime
    return runtime
