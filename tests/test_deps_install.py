"""Installing the plugin's packages into Debian's QGIS Python, without the venv, must not break QGIS.

The installer (``python3 -m ritm_qgis.deps --install`` from the unzipped plugin) puts the packages
into the profile's private folder; then a fresh Debian ``python3`` with only that folder added runs
the engine and a shipped model, and still imports GDAL's numpy bindings, matplotlib and the same
numpy as before; ``qgis_process`` runs an algorithm of the plugin with no path set by hand.

pip reaches PyPI (and, when reachable, PyTorch's CPU index). The wheels are kept in a wheelhouse,
``.cache/wheels`` (git-ignored; CI can keep that folder between runs), which pip reads first: pip's
own HTTP cache stays empty on machines whose network answers are not cacheable. Skipped only when
PyPI is unreachable or the machine has no Debian QGIS.
"""

import json
import os
import shutil
import socket
import subprocess
import urllib.parse
import urllib.request

import numpy as np
import pytest

from conftest import ROOT, unpacked_profile
from ritm_qgis import deps

SYSTEM_PYTHON = "/usr/bin/python3"
QGIS_PROCESS = "/usr/bin/qgis_process.bin"
WHEELHOUSE = ROOT / ".cache" / "wheels"

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not os.path.exists(SYSTEM_PYTHON), reason="Debian's python3 is absent")]


def reachable(host: str, timeout: float = 5.0) -> bool:
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def system_env(**extra) -> dict:
    """Debian's Python as QGIS runs it: no venv, no source tree; pip bounded in time, cached."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(PATH="/usr/bin:/bin", PIP_DEFAULT_TIMEOUT="30", PIP_RETRIES="2", MPLBACKEND="Agg",
               QT_QPA_PLATFORM="offscreen")
    env["PIP_FIND_LINKS"] = " ".join([str(WHEELHOUSE)] + os.environ.get("PIP_FIND_LINKS", "").split())
    if not reachable("download.pytorch.org", 3):
        env[deps.TORCH_INDEX_ENV] = ""  # its CPU index is out of reach here: pip's own sources only
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def profile(plugin_zip, tmp_path_factory):
    if not reachable("pypi.org"):
        pytest.skip("PyPI (pypi.org) is unreachable: the installer cannot download the packages")
    if subprocess.run([SYSTEM_PYTHON, "-c", "import torch"], capture_output=True).returncode == 0:
        pytest.skip("Debian's python3 already has torch: nothing for the installer to do")
    return unpacked_profile(plugin_zip, tmp_path_factory.mktemp("qgis-config-deps"))


def system_tag() -> str:
    return subprocess.run([SYSTEM_PYTHON, "-c", "import sys; print('python%d.%d' % sys.version_info[:2])"],
                          capture_output=True, text=True).stdout.strip()


def deps_json(plugins, env):
    out = subprocess.run([SYSTEM_PYTHON, "-m", "ritm_qgis.deps", "--json"], capture_output=True, text=True,
                         env=dict(env, PYTHONPATH=str(plugins)), cwd=plugins)
    assert out.returncode in (0, 1), out.stderr
    return out.returncode, json.loads(out.stdout)


@pytest.fixture(scope="module")
def resolution(profile, tmp_path_factory):
    """What the --json command resolves to (``pip install --dry-run --report``); the wheels it names
    that are not on this machine yet are then saved in the wheelhouse for the install."""
    config, plugins = profile
    env = system_env()
    code, report = deps_json(plugins, env)
    assert code == 1 and report["target"] == str(plugins.parent / "ritm_qgis_deps" / system_tag())
    resolved = tmp_path_factory.mktemp("resolution") / "report.json"
    out = subprocess.run(report["command"] + ["--dry-run", "--quiet", "--report", str(resolved)],
                         capture_output=True, text=True, env=env, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    items = json.loads(resolved.read_text())["install"]
    chosen = {deps.normalize(i["metadata"]["name"]): i["metadata"]["version"] for i in items}
    if any(name.startswith("nvidia-") for name in chosen):
        pytest.skip("no CPU build of torch is reachable here (neither PyTorch's CPU index nor a local wheel)")
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    for item in items:
        url = item["download_info"]["url"]
        name = urllib.parse.unquote(url.rsplit("/", 1)[-1].split("#", 1)[0])
        if not url.startswith("file:") and name.endswith(".whl") and not (WHEELHOUSE / name).exists():
            with urllib.request.urlopen(url, timeout=60) as answer, open(WHEELHOUSE / (name + ".part"), "wb") as f:
                shutil.copyfileobj(answer, f)
            os.replace(WHEELHOUSE / (name + ".part"), WHEELHOUSE / name)
    return chosen


def test_json_command_resolves_to_the_pinned_versions_without_touching_qgis_numpy(resolution):
    chosen = resolution
    qgis_numpy = subprocess.run([SYSTEM_PYTHON, "-c", "import numpy; print(numpy.__version__)"],
                                capture_output=True, text=True, env=system_env()).stdout.strip()
    if qgis_numpy:
        assert chosen.get("numpy", qgis_numpy) == qgis_numpy  # pinned to QGIS's own: never upgraded
    else:
        assert deps.satisfies(chosen["numpy"], "<2")
    assert chosen["torch"].split("+")[0] == "2.13.0"
    assert "opencv-python-headless" in chosen and "opencv-python" not in chosen
    assert deps.satisfies(chosen["affine"], "<3")


PROBE = r"""
import json, sys
before = {}
import numpy
before = {"numpy": numpy.__version__, "numpy_file": numpy.__file__}
sys.path.append(sys.argv[1])
import cv2, rasterio, shapely, torch
from ritm_qgis.cli import main
code = main(["predict", "--checkpoint", "aerial-finetuned-tiles-tiny", "--image", sys.argv[2],
             "--click", "32,32,+", "--out-mask", sys.argv[3]])
from osgeo import gdal_array
import matplotlib.pyplot as plt
plt.plot([0, 1])
print(json.dumps(dict(before, code=code, numpy_after=numpy.__version__, torch=torch.__version__,
                      cuda=torch.version.cuda, torch_file=torch.__file__, cv2=cv2.__file__,
                      gdal_array=gdal_array.__file__)))
"""


@pytest.fixture(scope="module")
def installed(profile, resolution):
    config, plugins = profile
    env = system_env(PYTHONPATH=str(plugins))
    out = subprocess.run([SYSTEM_PYTHON, "-m", "ritm_qgis.deps", "--install"], capture_output=True, text=True,
                         env=env, cwd=plugins, timeout=1500)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    assert "Nothing is missing." in out.stdout
    target = plugins.parent / "ritm_qgis_deps" / system_tag()
    yield config, plugins, target
    shutil.rmtree(target, ignore_errors=True)  # 1 GB: not kept with pytest's temporary folders


def test_installed_packages_run_the_engine_in_a_fresh_debian_python_and_leave_qgis_imports_alone(installed, tmp_path):
    import cv2

    config, plugins, target = installed
    assert not (target / "numpy").exists()  # QGIS's own numpy is the one used: no copy in the folder
    image = tmp_path / "roof.png"
    img = np.full((64, 64, 3), 90, np.uint8)
    img[16:48, 16:48] = (200, 120, 60)
    cv2.imwrite(str(image), img)
    mask = tmp_path / "mask.png"
    env = {k: v for k, v in system_env().items() if not k.startswith("PIP_")}
    env["PYTHONPATH"] = str(plugins)
    out = subprocess.run([SYSTEM_PYTHON, "-c", PROBE, str(target), str(image), str(mask)],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["code"] == 0 and got["torch"].startswith("2.13.0") and got["cuda"] is None
    assert got["numpy_after"] == got["numpy"] and got["numpy_file"].startswith("/usr/lib/python3/")
    assert got["torch_file"].startswith(str(target)) and got["cv2"].startswith(str(target))
    assert got["gdal_array"].startswith("/usr/lib/python3/")
    predicted = cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE)
    assert predicted.shape == (64, 64) and set(np.unique(predicted)) <= {0, 255}
    code, report = deps_json(plugins, system_env())
    assert code == 0 and report["missing"] == [] and report["command"] == []


@pytest.mark.skipif(not os.path.exists(QGIS_PROCESS), reason="QGIS (qgis_process) is not installed")
def test_qgis_process_runs_the_plugin_on_the_installed_packages_with_no_path_set_by_hand(installed, tmp_path):
    import geopandas as gpd

    from data_builders import scene_arrays, write_raster

    config, plugins, _ = installed
    _, mask = scene_arrays()
    mask_path = write_raster(tmp_path / "mask.tif", mask.astype(np.uint8) * 255)
    env = system_env(QGIS_CUSTOM_CONFIG_PATH=str(config))
    run = [QGIS_PROCESS, "plugins", "enable", "ritm_qgis"]
    assert subprocess.run(run, capture_output=True, text=True, env=env, cwd=config, timeout=300).returncode == 0
    out = subprocess.run([QGIS_PROCESS, "run", "ritm_qgis:vectorize_mask", "--", f"INPUT={mask_path}",
                          "SIMPLIFY=0.25", f"OUTPUT={tmp_path / 'b.gpkg'}"],
                         capture_output=True, text=True, env=env, cwd=config, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert len(gpd.read_file(tmp_path / "b.gpkg")) == 5
    # what QGIS shows in its log at every start: no warning traceback from the installed packages
    # (QGIS's own "setapi() is deprecated" is not ours)
    ours = [line for line in out.stderr.splitlines() if "Warning" in line and "setapi() is deprecated" not in line]
    assert ours == [], out.stderr
