"""`make zip` gives a zip that installs into a fresh QGIS profile and runs from qgis_process."""

import os
import subprocess
import zipfile

import pytest

from conftest import ROOT, shared_path, unpacked_profile

QGIS_PROCESS = "/usr/bin/qgis_process.bin"  # Debian's wrapper passes a flag 3.22 rejects
SYSTEM_PYTHON = "/usr/bin/python3"

pytestmark = pytest.mark.skipif(not os.path.exists(QGIS_PROCESS), reason="QGIS (qgis_process) is not installed")


@pytest.fixture(scope="module")
def profile(plugin_zip, tmp_path_factory):
    """A fresh QGIS settings folder with the zip unpacked into its default profile's plugins."""
    return unpacked_profile(plugin_zip, tmp_path_factory.mktemp("qgis-config"))


def qgis_process(config, *args):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QGIS_CUSTOM_CONFIG_PATH=str(config))
    # the venv's python3 first on PATH makes its packages (torch, rasterio...) visible to the embedded Python
    env["PATH"] = os.path.dirname(os.path.abspath(os.sys.executable)) + os.pathsep + env.get("PATH", "")
    return subprocess.run([QGIS_PROCESS, *args], capture_output=True, text=True, env=env, cwd=config, timeout=300)


def test_zip_has_one_plugin_folder_with_engine_models_and_algorithms(plugin_zip):
    names = zipfile.ZipFile(plugin_zip).namelist()
    assert all(n.startswith("ritm_qgis/") for n in names)
    for required in ("ritm_qgis/metadata.txt", "ritm_qgis/__init__.py", "ritm_qgis/engine/protocol/noc.py",
                     "ritm_qgis/models/__init__.py", "ritm_qgis/algorithms/noc_report.py", "ritm_qgis/LICENSE",
                     "ritm_qgis/NOTICE",
                     "ritm_qgis/deps.py", "ritm_qgis/requirements.txt", "ritm_qgis/gui/deps_dialog.py"):
        assert required in names
    assert not any("__pycache__" in n or n.startswith("ritm_qgis/tests") for n in names)


def test_zip_presents_the_plugin_with_its_name_icon_about_changelog_and_pins(plugin_zip):
    import configparser

    zf = zipfile.ZipFile(plugin_zip)
    meta = configparser.ConfigParser(interpolation=None)
    meta.read_string(zf.read("ritm_qgis/metadata.txt").decode("utf-8"))
    general = meta["general"]
    assert general["name"] == "RITM buildings"
    assert general["icon"] == "icon.svg" and zf.read("ritm_qgis/icon.svg").lstrip().startswith(b"<svg")
    assert general["about"].startswith("A map tool that outlines a building")
    assert general["changelog"].strip().startswith(general["version"])
    assert not {"homepage", "tracker", "repository"} & set(general)  # this project has none to name
    pins = zf.read("ritm_qgis/requirements.txt").decode("utf-8")
    assert pins == (ROOT / "ritm_qgis" / "requirements.txt").read_text()


def test_qgis_process_enables_the_plugin_and_lists_the_provider(profile):
    config, _ = profile
    enable = qgis_process(config, "plugins", "enable", "ritm_qgis")
    assert enable.returncode == 0, enable.stdout + enable.stderr
    listing = qgis_process(config, "list")
    assert listing.returncode == 0, listing.stderr
    assert "RITM building segmentation" in listing.stdout
    assert "ritm_qgis:noc_report" in listing.stdout


def test_qgis_process_runs_an_algorithm_of_the_installed_plugin(profile, tmp_path):
    config, _ = profile
    qgis_process(config, "plugins", "enable", "ritm_qgis")
    ious = shared_path("paper_ious", "all_ious_finetune.npy")
    html = tmp_path / "report.html"
    out = qgis_process(config, "run", "ritm_qgis:noc_report", "--", f"IOUS={ious}", f"OUTPUT_HTML={html}")
    assert out.returncode == 0, out.stdout + out.stderr
    page = html.read_text()
    assert "5.66" in page and "14.58" in page and "data:image/png;base64," in page


@pytest.mark.skipif(not os.path.exists(SYSTEM_PYTHON), reason="Debian's python3 is absent")
def test_plugin_loads_without_torch_and_says_what_to_install(profile):
    """Debian's own Python has PyQGIS but no torch: the plugin must load and name what is missing."""
    _, plugins = profile
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import torch"], capture_output=True)
    if probe.returncode == 0:
        pytest.skip("this machine's system Python has torch, so it cannot show the missing-package path")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(plugins), PATH="/usr/bin:/bin",
               QGIS_CUSTOM_CONFIG_PATH=str(profile[0]))
    out = subprocess.run([SYSTEM_PYTHON, str(ROOT / "tests" / "qgis_scripts" / "load_plugin.py")],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert f"IMPORTED_FROM:{plugins / 'ritm_qgis'}" in lines  # the packaged copy, not the source tree
    assert "PROVIDER:True" in lines and "UNLOADED:True" in lines
    messages = [line for line in lines if line.startswith("MESSAGE:")]
    assert messages == ["MESSAGE:RITM buildings: needs Python packages that are not installed yet."], out.stdout
    assert "BUTTON:Install dependencies..." in lines
    # the packages' folder is the one inside this profile (where the installer puts them)
    assert f"LOG_TARGET:{plugins.parent / 'ritm_qgis_deps' / 'python3.'}" in "\n".join(lines)


def test_an_algorithm_run_without_the_packages_says_so_in_one_sentence(profile, tmp_path):
    """Debian's QGIS Python without the plugin's packages: qgis_process runs an algorithm and gets a
    sentence that points to the installer, not a ModuleNotFoundError traceback."""
    if subprocess.run([SYSTEM_PYTHON, "-c", "import cv2"], capture_output=True).returncode == 0:
        pytest.skip("this machine's system Python has OpenCV, so it cannot show the missing-package path")
    config, _ = profile
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(QT_QPA_PLATFORM="offscreen", PATH="/usr/bin:/bin", QGIS_CUSTOM_CONFIG_PATH=str(config))
    run = dict(capture_output=True, text=True, env=env, cwd=config, timeout=300)
    enabled = subprocess.run([QGIS_PROCESS, "plugins", "enable", "ritm_qgis"], **run)
    assert enabled.returncode == 0 or "already enabled" in enabled.stdout + enabled.stderr
    mask = shared_path("aerial", "spacenet_rio", "masks")
    first = sorted(p for p in os.listdir(mask) if p.endswith(".tif"))[0]
    out = subprocess.run([QGIS_PROCESS, "run", "ritm_qgis:vectorize_mask", "--", f"INPUT={mask / first}",
                          f"OUTPUT={tmp_path / 'b.gpkg'}"], **run)
    assert out.returncode != 0 and not (tmp_path / "b.gpkg").exists()
    said = out.stdout + out.stderr
    assert "Traceback" not in said and "ModuleNotFoundError" not in said, said
    assert "Plugins > RITM buildings > Install dependencies, then restart QGIS." in said, said


def test_the_help_link_is_the_release_settings_homepage_or_none(tmp_path):
    from ritm_qgis.algorithms.base import help_url

    metadata = tmp_path / "metadata.txt"
    metadata.write_text("[general]\nname=RITM buildings\n")
    assert help_url(str(metadata)) == ""  # no public address yet: no invented link
    metadata.write_text("[general]\nname=RITM buildings\nhomepage=https://example.org/ritm\n")
    assert help_url(str(metadata)) == "https://example.org/ritm"
