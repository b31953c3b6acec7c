"""The plugin's message when packages are missing, and the install dialog running real pip in a QgsTask."""

import os
import sys
import time
from functools import partial

import pytest
from qgis.PyQt.QtGui import QGuiApplication
from qgis.PyQt.QtWidgets import QPushButton

from conftest import ROOT
from ritm_qgis import deps
from ritm_qgis.gui.deps_dialog import DepsDialog
from ritm_qgis.plugin import RitmQgisPlugin
import qgis_events
from wheel_builder import make_wheel

pytestmark = pytest.mark.qgis


wait_for = partial(qgis_events.wait_for, timeout=120.0)


@pytest.fixture
def one_missing(tmp_path, monkeypatch):
    """The plugin's requirements plus one package this Python lacks, which pip finds in a local folder."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    make_wheel(wheels, "ritmprobe", "1.0")
    reqs = tmp_path / "requirements.txt"
    reqs.write_text((ROOT / "ritm_qgis" / "requirements.txt").read_text() + "ritmprobe==1.0\n")
    monkeypatch.setattr(deps, "REQUIREMENTS_FILE", str(reqs))
    monkeypatch.setattr(deps, "_active_target", str(tmp_path / "profile" / "python" / "ritm_qgis_deps" / "py"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    yield deps.active_target()
    if deps.active_target() in sys.path:
        sys.path.remove(deps.active_target())


def test_message_is_one_sentence_with_a_button_that_opens_the_installer(qgis_iface, one_missing, tmp_path):
    bar = qgis_iface.messageBar()
    bar.clearWidgets()
    plugin = RitmQgisPlugin(qgis_iface)
    plugin.initGui()
    try:
        items = bar.items()
        assert len(items) == 1
        item = items[0]
        assert item.title() == "RITM buildings"
        assert item.text() == "needs Python packages that are not installed yet."
        (button,) = [b for b in item.findChildren(QPushButton) if b.text() == "Install dependencies..."]
        assert not plugin.map_tool.action.icon().isNull() and not plugin.provider.icon().isNull()
        assert plugin.deps_action.text() == "Install dependencies..."
        button.click()
        dialog = plugin.deps_dialog
        assert dialog is not None and dialog.isVisible()
        text = dialog.details.toPlainText()
        assert "ritmprobe==1.0" in text and one_missing in text and "--target" in text
        assert "torch==2.13.0" not in text  # this Python has torch
        dialog.copy_text()
        assert QGuiApplication.clipboard().text().startswith(text)
    finally:
        plugin.unload()
        bar.clearWidgets()


def test_install_runs_in_a_task_with_a_live_log_and_asks_for_a_restart(qgis_app, one_missing):
    dialog = DepsDialog(one_missing)
    dialog.show()
    assert dialog.plan.missing == ["ritmprobe==1.0"] and dialog.install_button.isEnabled()
    dialog.install_button.click()
    assert dialog.task is not None and dialog.cancel_button.isEnabled()
    wait_for(lambda: dialog.task is None)
    log = dialog.log.toPlainText()
    assert log.startswith("$ " + dialog.plan.shell_command().split(" --target")[0])
    assert "Successfully installed ritmprobe-1.0" in log
    assert "Restart QGIS" in dialog.status.text()
    assert os.path.isfile(os.path.join(one_missing, "ritmprobe", "__init__.py")) and dialog.plan.missing == []
    assert not dialog.install_button.isEnabled()  # nothing left to install
    dialog.close()


def test_cancel_stops_pip_and_leaves_the_folder_as_it_was(qgis_app, one_missing, tmp_path):
    dialog = DepsDialog(one_missing)
    slow = [sys.executable, "-c", "import time; print('working', flush=True); time.sleep(120)",
            "--target", one_missing]
    dialog.plan = deps.Plan(one_missing, ["ritmprobe==1.0"], [], slow)
    dialog.install_button.click()
    wait_for(lambda: "working" in dialog.log.toPlainText(), timeout=30)
    started = time.monotonic()
    dialog.cancel_button.click()
    wait_for(lambda: dialog.task is None, timeout=30)
    assert time.monotonic() - started < 15
    assert dialog.status.text() == "Installation cancelled; nothing was changed."
    assert not (tmp_path / "profile").exists() or not list((tmp_path / "profile").rglob("*.partial"))
    dialog.close()


def test_uninstall_asks_with_the_size_then_removes_the_folder(qgis_app, one_missing):
    from qgis.PyQt.QtCore import QTimer
    from qgis.PyQt.QtWidgets import QApplication, QMessageBox

    os.makedirs(os.path.join(one_missing, "ritmprobe"))
    with open(os.path.join(one_missing, "ritmprobe", "__init__.py"), "wb") as f:
        f.write(b"#" * 3_000_000)
    dialog = DepsDialog(one_missing)
    assert dialog.uninstall_button.isEnabled()
    asked = []

    def answer(button):
        box = QApplication.activeModalWidget()
        if box is None:
            QTimer.singleShot(50, lambda: answer(button))
            return
        asked.append(box.text())
        box.button(button).click()

    QTimer.singleShot(50, lambda: answer(QMessageBox.No))
    dialog.uninstall_button.click()
    assert os.path.isdir(one_missing) and "3 MB" in asked[0] and one_missing in asked[0]
    QTimer.singleShot(50, lambda: answer(QMessageBox.Yes))
    dialog.uninstall_button.click()
    assert not os.path.exists(one_missing)
    assert "Removed" in dialog.status.text() and not dialog.uninstall_button.isEnabled()
    dialog.close()
