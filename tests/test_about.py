"""The plugin's name and version are metadata.txt's, wherever the code shows them."""

import configparser
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _metadata():
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / "metadata.txt", encoding="utf-8")
    return parser["general"]


def test_version_and_name_are_read_from_metadata_txt():
    import ritm_qgis
    from ritm_qgis import about, deps

    meta = _metadata()
    assert ritm_qgis.__version__ == about.VERSION == meta["version"]
    assert about.PLUGIN_NAME == deps.PLUGIN_TITLE == meta["name"]
    out = subprocess.run([sys.executable, "-m", "ritm_qgis", "--version"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == f"ritm-qgis {meta['version']}"


def test_another_metadata_file_gives_its_own_name_and_version(tmp_path):
    from ritm_qgis.about import read_metadata

    other = tmp_path / "metadata.txt"
    other.write_text("[general]\nname=Another name\nversion=9.8.7\n", encoding="utf-8")
    assert read_metadata(str(other))["version"] == "9.8.7"
    assert read_metadata(str(other))["name"] == "Another name"
    assert read_metadata(str(tmp_path / "absent.txt")) == {}


def test_the_packaging_version_is_metadata_txts():
    # in a fresh interpreter: setuptools refuses to load once another module imported the stdlib's distutils
    code = ("from setuptools.config.pyprojecttoml import read_configuration; "
            "print(read_configuration('pyproject.toml')['project']['version'])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == _metadata()["version"]
