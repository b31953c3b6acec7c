"""The dependency installer where users' machines differ: a folder already there, another python3
first on PATH, PyTorch's index out of reach, no pip, Cancel and Ctrl+C, sizes and uninstall.

Real pip runs offline against folders of wheels made here (tests/wheel_builder.py), and a loopback
HTTP server stands in for the package registry where pip's own wheel is fetched.
"""

import functools
import hashlib
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import threading

import pytest

from conftest import ROOT
from test_deps import offline_pip  # noqa: F401 - the fixture
from ritm_qgis import deps, deps_network
from wheel_builder import make_wheel

SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.fixture
def wheels(offline_pip):
    """pip reads only this folder of wheels (no index, no network); torch's extra index is off."""
    return offline_pip


@pytest.fixture
def target(tmp_path):
    path = str(tmp_path / "profile" / "python" / "ritm_qgis_deps" / "py")
    yield path
    while path in sys.path:
        sys.path.remove(path)


def reqs(*texts):
    out = []
    for text in texts:
        name, _, version = text.partition("==")
        out.append(deps.Requirement(name, f"=={version}" if version else ""))
    return out


def test_installing_what_is_missing_keeps_the_rest_and_fetches_nothing_else(wheels, target):
    make_wheel(wheels, "ritmbase", "1.0")
    make_wheel(wheels, "ritmtop", "1.0", requires=("ritmbase",))
    make_wheel(wheels, "ritmother", "1.0")
    deps.install(deps.make_plan(target, requirements=reqs("ritmtop==1.0", "ritmother==1.0")), on_line=lambda _: None)
    assert {"ritmbase", "ritmtop", "ritmother"} <= set(os.listdir(target))
    # a plugin update adds a requirement, or the user deleted one package: only that one is missing
    shutil.rmtree(os.path.join(target, "ritmtop"))
    shutil.rmtree(os.path.join(target, "ritmtop-1.0.dist-info"))
    for wheel in wheels.iterdir():  # and nothing but ritmtop could be downloaded now
        if not wheel.name.startswith("ritmtop"):
            wheel.unlink()
    plan = deps.make_plan(target, requirements=reqs("ritmtop==1.0", "ritmother==1.0"))
    assert plan.missing == ["ritmtop==1.0"]
    lines = []
    deps.install(plan, on_line=lines.append)
    assert {"ritmbase", "ritmtop", "ritmother"} <= set(os.listdir(target))
    assert any("Requirement already satisfied: ritmbase" in line for line in lines)
    assert deps.make_plan(target, requirements=reqs("ritmtop==1.0", "ritmother==1.0")).missing == []


def test_the_interpreter_is_qgis_own_python_not_the_first_python3_on_path(monkeypatch):
    if not os.path.exists(SYSTEM_PYTHON) or os.path.realpath(sys.prefix) == "/usr":
        pytest.skip("needs a second Python installation beside this one")
    monkeypatch.setattr(sys, "executable", SYSTEM_PYTHON)  # what a shell's PATH hands QGIS
    mine = deps.python_executable()
    assert os.path.dirname(mine).startswith(sys.exec_prefix) and mine != SYSTEM_PYTHON
    deps.check_interpreter(mine)
    with pytest.raises(deps.InstallError, match="not QGIS's own Python") as caught:
        deps.check_interpreter(SYSTEM_PYTHON)
    assert "nothing was installed" in str(caught.value) and "\n" not in str(caught.value)


TORCH_PHASES = """
import json, os, sys, time
from ritm_qgis import deps
target, wheels = sys.argv[1], sys.argv[2]
def attempt(spec):
    try:
        deps.install(deps.make_plan(target, requirements=[deps.Requirement("torch", spec)]), on_line=lambda _: None)
        return "installed"
    except deps.InstallError as exc:
        return str(exc)
started = time.monotonic()
plan = deps.make_plan(target, requirements=[deps.Requirement("torch", "==2.13.0")])
report = {"seconds": time.monotonic() - started, "command": plan.command, "text": plan.text(),
          "exact": attempt("==2.13.0"), "loose": attempt(">=2"), "exists": os.path.exists(target)}
os.remove(os.path.join(wheels, "torch-2.13.0-py3-none-any.whl"))
sys.path.insert(0, sys.argv[3])
from wheel_builder import make_wheel
make_wheel(wheels, "torch", "2.13.0+cpu")
report["cpu"] = attempt("==2.13.0")
report["installed"] = sorted(os.listdir(target))
print(json.dumps(report))
"""


def test_an_unreachable_torch_index_is_said_and_only_the_cpu_build_can_be_installed(wheels, tmp_path):
    if not sys.platform.startswith("linux") or not os.path.exists(SYSTEM_PYTHON):
        pytest.skip("PyPI's torch is the CUDA build on Linux only; needs Debian's python3")
    if subprocess.run([SYSTEM_PYTHON, "-c", "import torch"], capture_output=True).returncode == 0:
        pytest.skip("Debian's python3 has torch already")
    make_wheel(wheels, "torch", "2.13.0")  # what PyPI has: not the CPU build
    target = tmp_path / "deps" / "py"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PYTHONPATH=str(ROOT), **{deps.TORCH_INDEX_ENV: "http://127.0.0.1:9/whl/cpu"})  # port 9: nobody
    out = subprocess.run([SYSTEM_PYTHON, "-c", TORCH_PHASES, str(target), str(wheels), str(ROOT / "tests")],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.splitlines()[-1])
    assert report["seconds"] < 10
    assert "--extra-index-url" not in report["command"] and report["command"][-1] == "torch==2.13.0+cpu"
    assert "cannot be reached" in report["text"]
    assert report["exact"].startswith("pip failed") and "CUDA" in report["exact"]
    assert "not the CPU build" in report["loose"]  # pip chose PyPI's torch: refused before the swap
    assert not report["exists"]
    assert report["cpu"] == "installed" and "torch-2.13.0+cpu.dist-info" in report["installed"]


class _Registry(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_without_pip_the_installer_fetches_pips_wheel_from_the_registry_and_installs(wheels, tmp_path):
    local = deps.local_pip_wheel()
    if local is None:
        pytest.skip("no pip wheel on this machine to serve as the registry's")
    served = tmp_path / "registry"
    served.mkdir()
    shutil.copy(local, served)
    name = os.path.basename(local)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(_Registry, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    digest = hashlib.sha256(open(local, "rb").read()).hexdigest()
    (served / "pip.json").write_text(json.dumps({"urls": [
        {"packagetype": "bdist_wheel", "filename": name, "url": f"{base}/{name}", "digests": {"sha256": digest}}]}))
    make_wheel(wheels, "ritmprobe", "1.0")
    no_pip = tmp_path / "nopip"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(no_pip)], check=True)
    target = tmp_path / "profile" / "python" / "ritm_qgis_deps" / "py"
    # this machine has pip wheels of its own (Debian's, ensurepip's): the script looks only in the
    # plugin's folder, as on a machine without them
    script = (
        "import sys\nfrom ritm_qgis import deps\n"
        "deps.pip_wheel_folders = lambda target=None: [deps.os.path.join(deps.os.path.dirname(target), 'pip')]\n"
        f"plan = deps.make_plan({str(target)!r}, requirements=[deps.Requirement('ritmprobe', '==1.0')])\n"
        "print('NEEDS_PIP', plan.needs_pip)\n"
        "deps.install(plan)\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT), RITM_QGIS_PIP_JSON=f"{base}/pip.json")
    env.pop("VIRTUAL_ENV", None)
    try:
        out = subprocess.run([str(no_pip / "bin" / "python"), "-c", script], capture_output=True, text=True, env=env,
                             timeout=300)
    finally:
        server.shutdown()
    assert out.returncode == 0, out.stdout + out.stderr
    assert "NEEDS_PIP True" in out.stdout and "fetching pip's own package" in out.stdout
    assert (target / "ritmprobe" / "__init__.py").exists()
    assert (target.parent / "pip" / name).exists()  # kept for the next install


def test_a_bad_pip_wheel_from_the_registry_is_refused(tmp_path, monkeypatch):
    served = tmp_path / "registry"
    served.mkdir()
    (served / "pip-99.0-py3-none-any.whl").write_bytes(b"not pip")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Registry, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    (served / "pip.json").write_text(json.dumps({"urls": [{"packagetype": "bdist_wheel",
                                     "filename": "pip-99.0-py3-none-any.whl", "url": f"{base}/pip-99.0-py3-none-any.whl",
                                     "digests": {"sha256": "0" * 64}}]}))
    monkeypatch.setenv(deps_network.PIP_JSON_ENV, f"{base}/pip.json")
    try:
        with pytest.raises(ValueError, match="not the file the registry published"):
            deps_network.fetch_pip_wheel(str(tmp_path / "pip"))
    finally:
        server.shutdown()
    assert os.listdir(tmp_path / "pip") == []


def big_wheel(folder, name="ritmbig"):
    """A wheel pip needs a few seconds for (a large, incompressible module)."""
    return make_wheel(folder, name, "1.0", body=f"BLOB = {os.urandom(40_000_000).hex()!r}\n")


def test_cancel_leaves_no_temporary_files_anywhere(wheels, target, tmp_path, monkeypatch):
    own_tmp = tmp_path / "process-tmp"
    own_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(own_tmp))  # where pip's temporary folders went before
    big_wheel(wheels)
    plan = deps.make_plan(target, requirements=reqs("ritmbig==1.0"))
    seen = []
    with pytest.raises(deps.InstallError, match="cancelled"):
        deps.install(plan, on_line=seen.append, should_stop=lambda: any("Processing" in s for s in seen))
    parent = os.path.dirname(target)
    assert sorted(os.listdir(parent)) == ["py-constraints.txt"]
    assert os.listdir(own_tmp) == []


def test_ctrl_c_stops_the_command_line_install_in_one_sentence_leaving_nothing(wheels, tmp_path):
    big_wheel(wheels)
    target = tmp_path / "deps" / "py"
    script = ("import sys\nfrom ritm_qgis import deps\n"
              "deps.read_requirements = lambda path=None: [deps.Requirement('ritmbig', '==1.0')]\n"
              f"sys.exit(deps.main(['--install', '--target', {str(target)!r}]))\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    for line in proc.stdout:
        if "Processing" in line:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    assert err.strip() == "Stopped (Ctrl+C); nothing was changed."
    assert sorted(os.listdir(target.parent)) == ["py-constraints.txt"]


def test_sizes_are_shown_before_install_and_uninstall_removes_the_folder(wheels, target, tmp_path):
    download, disk = deps.size_estimate(["torch==2.13.0", "rasterio>=1.4"], "cpu")
    assert download > 200 and disk > download
    assert deps.size_estimate(["torch==2.13.0", "ritmprobe"], "cpu") is None  # unknown: no figure invented
    plan = deps.Plan(target, ["torch==2.13.0"], [], ["pip"], sizes_mb=(download, disk))
    assert "MB to download and" in plan.text()
    make_wheel(wheels, "ritmprobe", "1.0")
    deps.install(deps.make_plan(target, requirements=reqs("ritmprobe==1.0")), on_line=lambda _: None)
    out = subprocess.run([sys.executable, "-m", "ritm_qgis.deps", "--uninstall", "--target", target],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.strip() == f"Removed {target}."
    assert not os.path.exists(target) and not os.path.exists(deps.constraints_path(target))
    again = subprocess.run([sys.executable, "-m", "ritm_qgis.deps", "--uninstall", "--target", target],
                           capture_output=True, text=True, cwd=ROOT)
    assert again.returncode == 0 and "Nothing to remove" in again.stdout


def test_a_folder_in_use_is_replaced_at_the_next_start(wheels, target):
    """Windows cannot rename a folder whose DLLs QGIS loaded: the new folder waits as <folder>.next and
    takes its place when the plugin activates it at the next start. (Linux renames such a folder, so
    the refusal is Windows's, given to the swap; the rest is the real code.)"""
    make_wheel(wheels, "ritmprobe", "1.0")
    make_wheel(wheels, "ritmprobe", "2.0")
    deps.install(deps.make_plan(target, requirements=reqs("ritmprobe==1.0")), on_line=lambda _: None)
    sys.path.remove(target)
    staging = target + ".partial"
    deps._copy_folder(target, staging)
    shutil.rmtree(os.path.join(staging, "ritmprobe"))
    os.makedirs(os.path.join(staging, "ritmprobe"))
    open(os.path.join(staging, "ritmprobe", "__init__.py"), "w").write("VERSION = '2.0'\n")

    def windows_rename(src, dst):
        if src == target:
            raise PermissionError(13, "The process cannot access the file because it is being used")
        os.replace(src, dst)

    assert deps._swap_in(staging, target, target + ".old", rename=windows_rename) is False
    assert open(os.path.join(target, "ritmprobe", "__init__.py")).read().startswith("VERSION = '1.0'")
    assert os.path.isdir(target + ".next") and not os.path.exists(staging)
    assert deps.activate(target)  # the next start
    assert open(os.path.join(target, "ritmprobe", "__init__.py")).read() == "VERSION = '2.0'\n"
    assert not os.path.exists(target + ".next") and not os.path.exists(target + ".old")
