"""ritm_qgis.deps: the pins, the checks, the command, and real offline pip installs into a private folder."""

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from ritm_qgis import deps
from wheel_builder import make_wheel

SYSTEM_PYTHON = "/usr/bin/python3"


def by_name(reqs):
    return {deps.normalize(r.name): r.spec for r in reqs}


def test_the_plugin_carries_the_pins_and_the_dev_requirements_include_them():
    pins = by_name(deps.read_requirements())
    assert pins["torch"] == "==2.13.0"
    assert pins["numpy"].endswith("<2") and pins["affine"] == "<3"
    assert "opencv-python-headless" in pins and "opencv-python" not in pins
    top = (ROOT / "requirements.txt").read_text().splitlines()
    assert "-r ritm_qgis/requirements.txt" in top
    # the dev list adds tools (and two stricter floors), but never a second pin of torch, numpy or OpenCV
    dev = by_name(deps.read_requirements(str(ROOT / "requirements.txt")))
    assert not {"torch", "numpy", "opencv-python-headless", "opencv-python"} & set(dev)


@pytest.mark.parametrize("version, spec, lower_only, ok", [
    ("1.24.2", ">=1.24,<2", False, True),
    ("2.1.0", ">=1.24,<2", False, False),
    ("2.1.0", ">=1.24,<2", True, True),  # QGIS's own numpy 2: used as it is
    ("1.23.5", ">=1.24,<2", True, False),
    ("2.13.0+cpu", "==2.13.0", False, True),
    ("2.14.1", "==2.13.0", True, True),
    ("2.5.0", "==2.13.0", True, False),
    ("3.0.1", "<3", False, False),
    ("4.11.0.86", ">=4.8,<4.12", False, True),
    ("4.12.0.88", ">=4.8,<4.12", False, False),
])
def test_version_specifiers(version, spec, lower_only, ok):
    assert deps.satisfies(version, spec, lower_bounds_only=lower_only) is ok


def test_check_tells_missing_from_too_old_in_qgis_and_ignores_upper_bounds_there(tmp_path):
    reqs = [deps.Requirement("ritm-qgis-no-such-package", ""), deps.Requirement("pip", ">=1,<2"),
            deps.Requirement("pip", ">=9999")]
    absent, present, too_old = deps.check(str(tmp_path), reqs)
    assert absent.version is None and not absent.ok and not absent.conflict
    assert present.ok  # pip 2x: only the lower bound is checked for what this Python already has
    assert not too_old.ok and too_old.conflict


def test_constraints_pin_real_releases_and_leave_out_placeholders_and_torchs_build_tools():
    present = {"numpy": ("numpy", "1.24.2"), "kiwisolver": ("kiwisolver", "0.0.0"), "lz4": ("lz4", "4.0.2+dfsg"),
               "sympy": ("sympy", "1.11.1"), "setuptools": ("setuptools", "66.1.1"), "odd": ("odd", "unknown")}
    assert deps.constraint_lines(present) == ["lz4==4.0.2", "numpy==1.24.2"]


def test_command_targets_the_folder_under_constraints_and_takes_torch_from_the_cpu_index(tmp_path, monkeypatch):
    monkeypatch.delenv(deps.TORCH_INDEX_ENV, raising=False)
    target = str(tmp_path / "deps")
    argv = deps.install_command(["torch==2.13.0", "affine<3"], target)
    cpu_torch = "torch==2.13.0" if sys.platform == "darwin" else "torch==2.13.0+cpu"  # only the CPU build fits
    assert argv[:3] == [sys.executable, "-m", "pip"] and argv[-2:] == [cpu_torch, "affine<3"]
    assert argv[argv.index("--target") + 1] == target
    assert argv[argv.index("--constraint") + 1] == target + "-constraints.txt"
    assert argv[argv.index("--extra-index-url") + 1] == "https://download.pytorch.org/whl/cpu"
    assert "--extra-index-url" not in deps.install_command(["affine<3"], target)  # only torch needs it
    if os.name != "nt":
        assert "--extra-index-url" not in deps.install_command(["torch==2.13.0"], target, build="cuda")
    monkeypatch.setenv(deps.TORCH_INDEX_ENV, "")
    assert "--extra-index-url" not in deps.install_command(["torch==2.13.0"], target)
    monkeypatch.setenv(deps.TORCH_INDEX_ENV, "file:///mirror/torch")
    assert "file:///mirror/torch" in deps.install_command(["torch==2.13.0"], target)


def test_default_target_is_inside_the_profile_holding_the_plugin(tmp_path):
    plugin = tmp_path / "profiles" / "work" / "python" / "plugins" / "ritm_qgis"
    plugin.mkdir(parents=True)
    (plugin / "deps.py").write_text((ROOT / "ritm_qgis" / "deps.py").read_text())
    (plugin / "about.py").write_text((ROOT / "ritm_qgis" / "about.py").read_text())
    (plugin / "metadata.txt").write_text((ROOT / "metadata.txt").read_text())
    (plugin / "requirements.txt").write_text("")
    code = "import deps, sys; print(deps.target_folder())"
    out = subprocess.run([sys.executable, "-c", code], cwd=plugin, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    tag = "python%d.%d" % sys.version_info[:2]
    assert out.stdout.strip() == str(tmp_path / "profiles" / "work" / "python" / "ritm_qgis_deps" / tag)


STDLIB_ONLY = """
import sys
at_start = {m.split(".")[0] for m in sys.modules}  # what site's .pth files loaded before us
from ritm_qgis import deps
code = deps.main(sys.argv[1:])
loaded = {m.split(".")[0] for m in sys.modules} - at_start
third_party = sorted(loaded - set(sys.stdlib_module_names) - {"ritm_qgis"})
print(third_party, file=sys.stderr)
sys.exit(code)
"""


@pytest.mark.skipif(sys.version_info < (3, 10), reason="needs sys.stdlib_module_names")
def test_json_on_a_python_without_the_packages_imports_only_the_standard_library(tmp_path):
    python = SYSTEM_PYTHON if os.path.exists(SYSTEM_PYTHON) else sys.executable
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PYTHONPATH"] = str(ROOT)
    target = tmp_path / "deps"
    out = subprocess.run([python, "-c", STDLIB_ONLY, "--json", "--target", str(target)],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    report = json.loads(out.stdout)
    assert out.stderr.strip().splitlines()[-1] == "[]"  # no module outside the standard library was imported
    assert set(report) == {"missing", "command", "target", "download_mb", "disk_mb", "notes"}
    assert report["target"] == str(target)
    if subprocess.run([python, "-c", "import torch"], capture_output=True).returncode == 0:
        pytest.skip(f"{python} has torch: nothing to report missing")
    assert out.returncode == 1
    assert "torch==2.13.0" in report["missing"] and "torch==2.13.0+cpu" in report["command"]
    assert report["download_mb"] > 100 and report["disk_mb"] > report["download_mb"]
    constraints = (tmp_path / "deps-constraints.txt").read_text().splitlines()
    numpy_pin = [c for c in constraints if c.startswith("numpy==")]
    if subprocess.run([python, "-c", "import numpy"], capture_output=True).returncode == 0:
        have = subprocess.run([python, "-c", "import numpy; print(numpy.__version__)"],
                              capture_output=True, text=True).stdout.strip()
        assert numpy_pin == [f"numpy=={have.split('+')[0]}"]
        assert not any(m.startswith("numpy") for m in report["missing"])
    else:
        assert any(m.startswith("numpy") and m.endswith("<2") for m in report["missing"])


def test_nothing_missing_exits_0_with_an_empty_command(tmp_path):
    out = subprocess.run([sys.executable, "-m", "ritm_qgis.deps", "--json", "--target", str(tmp_path / "d")],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout) == {"missing": [], "command": [], "target": str(tmp_path / "d"), "download_mb": None,
                                      "disk_mb": None, "notes": []}


# ---------------------------------------------------------------- real pip, offline
@pytest.fixture
def offline_pip(tmp_path, monkeypatch):
    """pip reads only a folder of wheels made here (no index, no network)."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    monkeypatch.setenv(deps.TORCH_INDEX_ENV, "")
    return wheels


def test_install_puts_the_packages_in_the_folder_and_a_failed_or_cancelled_one_changes_nothing(tmp_path, offline_pip):
    make_wheel(offline_pip, "ritmprobe", "1.0")
    make_wheel(offline_pip, "ritmprobe", "2.0")
    target = str(tmp_path / "profile" / "python" / "ritm_qgis_deps" / "py")
    plan = deps.make_plan(target, requirements=[deps.Requirement("ritmprobe", "==1.0")])
    assert plan.missing == ["ritmprobe==1.0"] and os.path.isfile(target + "-constraints.txt")
    lines = []
    deps.install(plan, on_line=lines.append)
    assert open(os.path.join(target, "ritmprobe", "__init__.py")).read().startswith("VERSION = '1.0'")
    assert any("Successfully installed ritmprobe-1.0" in line for line in lines)
    assert target in sys.path  # activated: the plugin can import it without a restart
    assert deps.make_plan(target, requirements=[deps.Requirement("ritmprobe", "==1.0")]).missing == []

    def unchanged():
        return open(os.path.join(target, "ritmprobe", "__init__.py")).read().startswith("VERSION = '1.0'")

    bad = deps.Plan(target, ["ritm-no-such-package"], [], deps.install_command(["ritm-no-such-package"], target))
    with pytest.raises(deps.InstallError, match="nothing was changed"):
        deps.install(bad, on_line=lines.append)
    assert unchanged() and not os.path.exists(target + ".partial")

    upgrade = deps.Plan(target, ["ritmprobe==2.0"], [], deps.install_command(["ritmprobe==2.0"], target))
    with pytest.raises(deps.InstallError, match="cancelled"):
        deps.install(upgrade, on_line=lines.append, should_stop=lambda: True)
    assert unchanged() and not os.path.exists(target + ".partial")
    deps.install(upgrade, on_line=lines.append)
    assert open(os.path.join(target, "ritmprobe", "__init__.py")).read().startswith("VERSION = '2.0'")
    sys.path.remove(target)


def test_packages_the_python_already_has_are_dropped_from_the_folder(tmp_path, offline_pip):
    make_wheel(offline_pip, "ritmdup", "1.0")
    make_wheel(offline_pip, "ritmnew", "1.0")
    folder = tmp_path / "f"
    out = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--target", str(folder), "ritmdup", "ritmnew"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert (folder / "bin" / "ritmdup-hello").exists()
    removed = deps.prune_shadowed(str(folder), {"ritmdup": ("ritmdup", "1.0")})
    assert removed == ["ritmdup"]
    assert not (folder / "ritmdup").exists() and not (folder / "bin" / "ritmdup-hello").exists()
    assert not list(folder.glob("ritmdup-*.dist-info"))
    assert (folder / "ritmnew" / "__init__.py").exists() and (folder / "bin" / "ritmnew-hello").exists()


def test_cuda_without_a_gpu_is_refused_in_one_sentence(tmp_path):
    if deps.gpu_present():
        pytest.skip("this machine has an NVIDIA driver")
    out = subprocess.run([sys.executable, "-m", "ritm_qgis.deps", "--torch", "cuda", "--target", str(tmp_path / "d")],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 1
    assert out.stderr.strip() == "No NVIDIA GPU was found on this machine: keep the default --torch cpu."


def test_the_map_tools_message_is_one_short_sentence_pointing_to_the_installer():
    text = deps.missing_message(["torch==2.13.0", "rasterio>=1.4", "shapely>=2"])
    assert text.startswith("needs 3 Python packages") and text.endswith("then restart QGIS.")  # the title names us
    assert "> Install dependencies, then" in text and len(text) < 140 and "pip" not in text and "..." not in text


def test_releases_an_older_qgis_python_cannot_take_are_capped_at_once():
    debian12 = {"numpy": ("numpy", "1.24.2"), "pyproj": ("pyproj", "3.4.1")}
    assert deps.companion_caps(debian12) == ["pandas<3", "shapely<2.2", "geopandas<1.1"]
    assert deps.companion_caps({"numpy": ("numpy", "1.26.4"), "pyproj": ("pyproj", "3.7.1")}) == []
    assert deps.companion_caps({}) == []  # no numpy in QGIS's Python: pip chooses freely
