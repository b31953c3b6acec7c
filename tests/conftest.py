import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# What speed-up paths build (OpenVINO's converted networks) goes to a folder of this session, not the
# user's model cache; subprocesses inherit it, so a network converted once is reused by every test.
if "RITM_QGIS_BUILD_CACHE" not in os.environ:
    os.environ["RITM_QGIS_BUILD_CACHE"] = tempfile.mkdtemp(prefix="ritm-built-")
    atexit.register(shutil.rmtree, os.environ["RITM_QGIS_BUILD_CACHE"], True)

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("RITM_SHARED_DATA", ROOT.parent / "shared" / "data"))


def shared_path(*parts) -> Path:
    """A file of ../shared/data, or skip the test with a clear reason when that folder is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"reference data not found at {path} (../shared/data is absent on this machine)")
    return path


@pytest.fixture(scope="session")
def plugin_zip(tmp_path_factory):
    """The plugin zip built by `make zip` (scripts/package_plugin.sh), once per test session."""
    if shutil.which("git") is None:
        pytest.skip("git is needed to build the plugin zip")
    out = subprocess.run(["bash", str(ROOT / "scripts" / "package_plugin.sh")], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    version = next(line.split("=", 1)[1].strip() for line in (ROOT / "metadata.txt").read_text().splitlines()
                   if line.startswith("version="))
    zip_path = ROOT / "dist" / f"ritm_qgis.{version}.zip"
    assert zip_path.is_file()
    return zip_path


def unpacked_profile(plugin_zip, config: Path) -> tuple:
    """A fresh QGIS settings folder ``config`` with the plugin zip unpacked into its default
    profile's plugins folder; returns ``(config, plugins)``."""
    plugins = config / "profiles" / "default" / "python" / "plugins"
    plugins.mkdir(parents=True)
    with zipfile.ZipFile(plugin_zip) as zf:
        zf.extractall(plugins)
    return config, plugins


def venv_python() -> str:
    return sys.executable


@pytest.fixture(autouse=True, scope="session")
def no_qgis_task_left_running(qgis_app, request):
    """End of the session, before QGIS exits: cancel QGIS tasks a failed test left running and let
    them finish. ``exitQgis`` waits for every task without processing events, so one blocked on the
    network would hang the run for good; past 60 s the process exits with an error instead."""
    yield
    if qgis_app is None:
        return
    import time

    from qgis.core import QgsApplication
    from qgis.PyQt.QtCore import QCoreApplication

    manager = QgsApplication.taskManager()
    if not manager.activeTasks():
        return
    manager.cancelAll()
    deadline = time.monotonic() + 60
    while manager.activeTasks() and time.monotonic() < deadline:
        QCoreApplication.processEvents()
        time.sleep(0.05)
    if manager.activeTasks():
        names = ", ".join(t.description() for t in manager.activeTasks())
        request.config.pluginmanager.getplugin("capturemanager").suspend_global_capture(in_=False)
        _report_failures_so_far(request.config)
        sys.stderr.write(f"\nconftest: QGIS task(s) still running after cancel: {names}; exiting with an error "
                         "instead of waiting for them forever.\n")
        sys.stderr.flush()
        os._exit(1)


def _report_failures_so_far(config) -> None:
    """pytest's failure report and short summary, printed now: an exit from here skips pytest's own."""
    reporter = config.pluginmanager.getplugin("terminalreporter")
    if reporter is None:
        return
    for part in ("summary_failures", "summary_errors", "short_test_summary"):
        getattr(reporter, part, lambda: None)()
    reporter._tw.flush()
