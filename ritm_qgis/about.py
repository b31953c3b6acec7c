"""The plugin's name and version, read from its metadata.txt (the one place they are written).

QGIS reads the same file. It lies in the plugin folder in the zip (``ritm_qgis/metadata.txt``) and at
the repository root in a source checkout; an installed wheel has neither and asks the installed
distribution for its version. Standard library only: the installer (``deps.py``) imports it too.
"""

from __future__ import annotations

import configparser
import os

_HERE = os.path.dirname(os.path.abspath(__file__))
METADATA_FILES = (os.path.join(_HERE, "metadata.txt"), os.path.join(os.path.dirname(_HERE), "metadata.txt"))


def read_metadata(path: str | None = None) -> dict[str, str]:
    """The [general] section of metadata.txt ({} when there is none to read)."""
    parser = configparser.ConfigParser(interpolation=None)
    for candidate in (path,) if path else METADATA_FILES:
        try:
            if parser.read(candidate, encoding="utf-8") and parser.has_section("general"):
                return dict(parser.items("general"))
        except configparser.Error:
            return {}
    return {}


def _installed_version() -> str:
    try:
        from importlib.metadata import version

        return version("ritm-qgis")
    except Exception:  # noqa: BLE001 - not installed either: say so rather than invent a number
        return "unknown"


_METADATA = read_metadata()
PLUGIN_NAME: str = _METADATA.get("name", "RITM buildings").strip()
VERSION: str = _METADATA.get("version", "").strip() or _installed_version()
