"""Which Python packages the plugin needs, which are missing, and how to install them.

Used by the QGIS plugin at start-up: it must load, and say what is missing, inside a QGIS
whose Python lacks torch or the geo stack. Nothing here imports those packages or QGIS.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import sysconfig

# importable module -> the pip requirement that provides it
REQUIRED = {
    "numpy": "numpy<2",
    "torch": "torch",
    "cv2": "opencv-python-headless",
    "rasterio": "rasterio>=1.4",
    "shapely": "shapely>=2",
    "pyproj": "pyproj>=3.6",
    "geopandas": "geopandas>=1",
    "matplotlib": "matplotlib",
}


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _shapely_too_old() -> bool:
    try:
        from importlib.metadata import version

        return int(version("shapely").split(".")[0]) < 2
    except Exception:  # metadata missing or unreadable: let the import decide later
        return False


def missing_packages(required=REQUIRED) -> list[str]:
    """pip requirements whose modules this Python cannot import (or whose version is too old)."""
    missing = [req for module, req in required.items() if not _importable(module)]
    if "shapely" in required and required["shapely"] not in missing and _importable("shapely") and _shapely_too_old():
        missing.append(required["shapely"])
    return missing


def python_executable() -> str:
    """The Python interpreter behind this process (inside QGIS, sys.executable may be QGIS itself)."""
    exe = sys.executable or ""
    if os.path.basename(exe).lower().startswith("python"):
        return exe
    names = ["python.exe", "python3.exe"] if os.name == "nt" else ["python3", "python"]
    folders = [sys.exec_prefix, os.path.join(sys.exec_prefix, "bin")]
    for folder in folders:
        for name in names:
            candidate = os.path.join(folder, name)
            if os.path.isfile(candidate):
                return candidate
    return "python3"


def _externally_managed() -> bool:
    """PEP 668: Debian's system Python refuses plain pip installs."""
    stdlib = sysconfig.get_paths().get("stdlib", "")
    return bool(stdlib) and os.path.exists(os.path.join(stdlib, "EXTERNALLY-MANAGED")) and sys.prefix == sys.base_prefix


def install_command(missing: list[str]) -> str:
    quoted = " ".join(f'"{req}"' if any(c in req for c in "<>=") else req for req in missing)
    flags = "--user --break-system-packages " if _externally_managed() else ""
    return f'"{python_executable()}" -m pip install {flags}{quoted}'


def missing_message(missing: list[str]) -> str:
    return (
        "ritm_qgis needs Python packages that this QGIS's Python cannot import: "
        + ", ".join(missing)
        + ". Install them into that Python with: "
        + install_command(missing)
        + " (then restart QGIS), or start QGIS from the project's environment "
        "(make setup; . .venv/bin/activate; qgis)."
    )
