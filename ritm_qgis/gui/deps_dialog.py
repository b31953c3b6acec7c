"""The *Install dependencies...* dialog: what will be installed and where, then pip in a QgsTask.

Shows the plan of ``ritm_qgis.deps`` as copyable text (missing packages, target folder, sizes, the
exact command), lets the user pick the torch build (CUDA only when an NVIDIA GPU is present), runs
the install as a cancellable background task with pip's output in a live log, and asks for a
restart. *Uninstall dependencies* removes the folder after a confirmation that says its size.
"""

from __future__ import annotations

import os

from qgis.core import QgsApplication, QgsTask
from qgis.PyQt.QtCore import pyqtSignal
from qgis.PyQt.QtGui import QFont, QGuiApplication
from qgis.PyQt.QtWidgets import (QComboBox, QDialog, QHBoxLayout, QLabel, QMessageBox, QPlainTextEdit,
                                 QPushButton, QVBoxLayout)

from ritm_qgis import deps


class PipInstallTask(QgsTask):
    """Runs ``deps.install`` off the GUI thread; pip's lines arrive through ``line``."""

    line = pyqtSignal(str)

    def __init__(self, plan: deps.Plan):
        super().__init__(f"Installing the Python packages of {deps.PLUGIN_TITLE}", QgsTask.CanCancel)
        self.plan = plan
        self.error = ""

    def run(self):
        try:
            deps.install(self.plan, on_line=self.line.emit, should_stop=self.isCanceled)
        except deps.InstallError as exc:
            self.error = str(exc)
            return False
        except Exception as exc:  # keep a failed install a sentence in the dialog, not a traceback in QGIS
            self.error = f"The installation failed: {exc}; nothing was changed."
            return False
        return True


class DepsDialog(QDialog):
    finishedInstall = pyqtSignal(bool)  # noqa: N815 (Qt style); True when the packages were installed

    def __init__(self, target: str, parent=None, requirements=None):
        super().__init__(parent)
        self.setWindowTitle(f"{deps.PLUGIN_TITLE}: install dependencies")
        self.target = target
        self.requirements = requirements  # None: the plugin's requirements.txt
        self.plan = None
        self.task = None

        self.build = QComboBox()
        self.build.addItem("CPU build of torch (works on every machine)", "cpu")
        self.build.addItem("CUDA build of torch (NVIDIA GPU; a download of several GB)", "cuda")
        if not deps.gpu_present():
            self.build.model().item(1).setEnabled(False)
            self.build.setItemData(1, "No NVIDIA GPU was found on this machine.", 3)  # 3 = Qt.ToolTipRole
        self.build.currentIndexChanged.connect(self.refresh)

        mono = QFont("monospace")
        mono.setStyleHint(QFont.TypeWriter)
        self.details = QPlainTextEdit(readOnly=True)
        self.details.setFont(mono)
        self.details.setLineWrapMode(QPlainTextEdit.WidgetWidth)
        self.log = QPlainTextEdit(readOnly=True)
        self.log.setFont(mono)
        self.log.setPlaceholderText("pip's output appears here during the installation.")
        self.status = QLabel()
        self.status.setWordWrap(True)

        self.copy_button = QPushButton("Copy text")
        self.copy_button.clicked.connect(self.copy_text)
        self.install_button = QPushButton("Install")
        self.install_button.setDefault(True)
        self.install_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel installation")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.uninstall_button = QPushButton("Uninstall dependencies")
        self.uninstall_button.clicked.connect(self.uninstall)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.close)

        buttons = QHBoxLayout()
        buttons.addWidget(self.copy_button)
        buttons.addWidget(self.uninstall_button)
        buttons.addStretch(1)
        for b in (self.install_button, self.cancel_button, self.close_button):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addWidget(self.build)
        layout.addWidget(self.details, 3)
        layout.addWidget(QLabel("Log"))
        layout.addWidget(self.log, 2)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        self.resize(860, 560)
        self.refresh()

    # ------------------------------------------------------------------ the plan
    def refresh(self, *_):
        try:
            self.plan = deps.make_plan(self.target, self.build.currentData() or "cpu", self.requirements)
        except deps.InstallError as exc:  # e.g. this Python has no pip
            self.plan = None
            self.details.setPlainText(str(exc))
            self.install_button.setEnabled(False)
            return
        self.details.setPlainText(self.plan.text())
        self.install_button.setEnabled(bool(self.plan.command) and self.task is None)
        self.uninstall_button.setEnabled(os.path.isdir(self.target) and self.task is None)

    def text(self) -> str:
        return self.details.toPlainText() + ("\n\n" + self.log.toPlainText() if self.log.toPlainText() else "")

    def copy_text(self):
        QGuiApplication.clipboard().setText(self.text())

    # ------------------------------------------------------------------ the install
    def start(self):
        if self.plan is None or not self.plan.command or self.task is not None:
            return
        self.log.clear()
        self.status.setText("Installing... (you can keep working; the download can take several minutes)")
        task = PipInstallTask(self.plan)
        task.line.connect(self.log.appendPlainText)
        task.taskCompleted.connect(lambda: self._done(True))
        task.taskTerminated.connect(lambda: self._done(False))
        self.task = task
        self.install_button.setEnabled(False)
        self.build.setEnabled(False)
        self.cancel_button.setEnabled(True)
        QgsApplication.taskManager().addTask(task)

    def cancel(self):
        if self.task is not None:
            self.status.setText("Cancelling...")
            self.task.cancel()

    def uninstall(self):
        if self.task is not None or not os.path.isdir(self.target):
            return
        size = sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(self.target) for f in files
                   if not os.path.islink(os.path.join(root, f)))
        answer = QMessageBox.question(
            self, "Uninstall dependencies",
            f"Remove the packages {deps.PLUGIN_TITLE} installed ({size / 1e6:,.0f} MB in {self.target})? QGIS's own "
            "packages are not touched; the plugin needs its packages again before it can outline buildings.")
        if answer != QMessageBox.Yes:
            return
        try:
            deps.uninstall(self.target)
        except deps.InstallError as exc:
            self.status.setText(str(exc))
        else:
            self.status.setText("<b>Removed. Restart QGIS to finish.</b>")
        self.refresh()

    def _done(self, ok: bool):
        task, self.task = self.task, None
        self.cancel_button.setEnabled(False)
        self.build.setEnabled(True)
        if ok:
            self.status.setText(f"<b>Installed. Restart QGIS to use {deps.PLUGIN_TITLE}.</b>")
        else:
            self.status.setText(task.error if task is not None and task.error else "The installation stopped; "
                                "nothing was changed.")
        self.refresh()
        self.finishedInstall.emit(ok)

    def closeEvent(self, event):  # noqa: N802
        if self.task is not None:  # closing the window does not stop a running install silently
            self.status.setText("The installation is still running: cancel it first.")
            event.ignore()
            return
        super().closeEvent(event)
