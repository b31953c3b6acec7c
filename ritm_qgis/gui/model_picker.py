"""The dock's model chooser: every model of the list, grouped, with a one-line description.

Groups follow ``ritm_qgis.models.catalog.model_statuses``: shipped, downloaded, downloadable (with
its size). The box is not editable, so nothing is loaded while the user types; a model is used
when a choice is committed (``activated``). Choosing a downloadable model starts a
``ModelDownloadTask`` (progress bar and Cancel here, and in QGIS's task manager) and uses the model
once it is in the cache; cancelling or failing goes back to the previous choice. A checkpoint file
stays choosable with the "…" button. The line under the box says which model is the default here
and why, with a button to download the best one when it is not there yet.
"""

from __future__ import annotations

import os

from qgis.core import QgsApplication
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtGui import QStandardItemModel
from qgis.PyQt.QtWidgets import (QComboBox, QFileDialog, QHBoxLayout, QLabel, QLineEdit, QProgressBar, QPushButton,
                                 QVBoxLayout, QWidget)

from ritm_qgis.qgis_download import ModelDownloadTask, mirror_setting, save_mirror_setting

SPEC_ROLE = Qt.UserRole
STATUS_ROLE = Qt.UserRole + 1
_GROUPS = {"shipped": "Shipped with the plugin", "downloaded": "Downloaded", "adapted": "Adapted to your area",
           "downloadable": "Downloadable", "other": "Not for outlining buildings (demonstrations, whole tiles)"}


def _group(status) -> str:
    return status.status if status.entry.for_buildings else "other"


def _statuses():
    from ritm_qgis.models.catalog import model_statuses

    return model_statuses()


def _default():
    from ritm_qgis.models.catalog import default_model

    return default_model()


class ChoiceBox(QComboBox):
    """A combo box that changes only through its popup: a closed QComboBox commits ('activated') on
    every key of a keyboard search and every wheel step, which would load (or download) each model
    passed on the way. Here keys open the popup, where typing only moves the highlight and Enter
    or a click commits. The key that opens the popup is the first letter of that search, so typing
    "paper" lands on paper-finetune, as it would in any list."""

    def keyPressEvent(self, event):  # noqa: N802 (Qt's name)
        text = event.text().strip()
        if text or event.key() in (Qt.Key_Space, Qt.Key_Return, Qt.Key_Enter, Qt.Key_F4, Qt.Key_Up, Qt.Key_Down):
            if not self.view().isVisible():  # showing it again would put the highlight back on the current model
                self.showPopup()
            if text:
                self.view().keyboardSearch(text)
            event.accept()
            return
        event.ignore()

    def wheelEvent(self, event):  # noqa: N802
        event.ignore()


def item_text(status) -> str:
    e = status.entry
    if status.status == "downloadable":
        return f"{e.name} ({status.size_label()}, download) — {e.good_for}"
    return f"{e.name} — {e.good_for}"


class ModelPicker(QWidget):
    modelChosen = pyqtSignal(str)  # noqa: N815 - a committed, usable spec (name or checkpoint file)
    downloadFailed = pyqtSignal(str)  # noqa: N815 - one sentence (a cancel included)
    downloadError = pyqtSignal(str)  # noqa: N815 - one sentence, for a download that failed by itself
    downloadStarted = pyqtSignal(str)  # noqa: N815 - model name

    def __init__(self, parent=None, spec: str = ""):
        super().__init__(parent)
        self.task: ModelDownloadTask | None = None
        self._spec = ""
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)

        row = QHBoxLayout()
        self.combo = ChoiceBox(self)
        self.combo.setEditable(False)
        self.combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setMinimumContentsLength(18)
        self.combo.activated.connect(self._activated)
        self.combo.view().setTextElideMode(Qt.ElideRight)
        self.browse = QPushButton("…", self)
        self.browse.setToolTip("Choose a checkpoint file (.pth)")
        self.browse.clicked.connect(self._browse)
        row.addWidget(self.combo, 1)
        row.addWidget(self.browse)
        layout.addLayout(row)

        progress_row = QHBoxLayout()
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 100)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self.cancel_download)
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.cancel_button)
        layout.addLayout(progress_row)
        self.progress.hide()
        self.cancel_button.hide()

        self.default_line = QLabel(self)  # the reason in short; the figures in its tooltip
        self.default_line.setWordWrap(True)
        layout.addWidget(self.default_line)
        self.get_best = QPushButton(self)
        self.get_best.clicked.connect(self._download_best)
        layout.addWidget(self.get_best)

        self.mirror = QLineEdit(self)
        self.mirror.setPlaceholderText("download mirror (optional base URL holding NAME.pth files)")
        self.mirror.setText(mirror_setting())
        self.mirror.editingFinished.connect(lambda: save_mirror_setting(self.mirror.text()))
        layout.addWidget(self.mirror)

        self.refresh()
        self.set_spec(spec)

    # ------------------------------------------------------------------ the list
    def refresh(self) -> None:
        """Rebuild the list from the catalogue (after a download or import), keeping the choice."""
        self.combo.blockSignals(True)
        model = QStandardItemModel(self.combo)
        self.combo.setModel(model)
        group = None
        for status in sorted(_statuses(), key=lambda s: _group(s) == "other"):  # stable: the list's order kept
            if _group(status) != group:
                group = _group(status)
                self.combo.addItem(_GROUPS[group])
                header = model.item(model.rowCount() - 1)
                header.setFlags(Qt.NoItemFlags)  # a heading, not a choice
                font = header.font()
                font.setBold(True)
                header.setFont(font)
            self.combo.addItem(item_text(status))
            index = self.combo.count() - 1
            self.combo.setItemData(index, status.name, SPEC_ROLE)
            self.combo.setItemData(index, status.status, STATUS_ROLE)
            self.combo.setItemData(index, f"{status.entry.training_data}. {status.entry.published or ''}".strip(),
                                   Qt.ToolTipRole)
        if self._spec and self._index_of(self._spec) < 0:
            self._add_file_item(self._spec)
        self.combo.blockSignals(False)
        view = self.combo.view()  # the open list as wide as its longest line (the screen permitting)
        view.setMinimumWidth(min(1000, view.sizeHintForColumn(0) + 60))
        self._select(self._spec)
        self._update_default_line()

    def _index_of(self, spec: str) -> int:
        for i in range(self.combo.count()):
            if self.combo.itemData(i, SPEC_ROLE) == spec:
                return i
        return -1

    def _add_file_item(self, path: str) -> None:
        self.combo.addItem(f"{os.path.basename(path)} — checkpoint file")
        index = self.combo.count() - 1
        self.combo.setItemData(index, path, SPEC_ROLE)
        self.combo.setItemData(index, "file", STATUS_ROLE)
        self.combo.setItemData(index, path, Qt.ToolTipRole)

    def _select(self, spec: str) -> None:
        index = self._index_of(spec)
        if index >= 0:
            self.combo.blockSignals(True)
            self.combo.setCurrentIndex(index)
            self.combo.blockSignals(False)

    def _update_default_line(self) -> None:
        from ritm_qgis.models.catalog import BEST_DOWNLOADABLE

        name, reason = _default()
        why = ("the paper's aerial model, downloaded" if name == BEST_DOWNLOADABLE
               else "fewest clicks per building of the shipped models")
        self.default_line.setText(f"Default: {name} ({why}; details on hover).")
        self.default_line.setToolTip(reason)
        best = self._index_of(BEST_DOWNLOADABLE)
        downloadable = best >= 0 and self.combo.itemData(best, STATUS_ROLE) == "downloadable"
        self.get_best.setText(f"Download {BEST_DOWNLOADABLE}")
        self.get_best.setVisible(downloadable and self.task is None)

    # ------------------------------------------------------------------ values
    def spec(self) -> str:
        """The model in use: a name of the list or a checkpoint file (never a partial text)."""
        return self._spec

    def set_spec(self, spec: str) -> None:
        """Show ``spec`` (empty: the default model). A listed name that is only downloadable, or a
        file that no longer exists, falls back to the default."""
        spec = (spec or "").strip()
        index = self._index_of(spec) if spec else -1
        usable = index >= 0 and self.combo.itemData(index, STATUS_ROLE) != "downloadable"
        if not usable and spec and os.path.isfile(spec):
            self._add_file_item(spec)
            usable = True
        self._spec = spec if usable else _default()[0]
        self._select(self._spec)

    # ------------------------------------------------------------------ user actions
    def _activated(self, index: int) -> None:
        spec = self.combo.itemData(index, SPEC_ROLE)
        if not spec:
            return
        if self.combo.itemData(index, STATUS_ROLE) == "downloadable":
            self.download(spec)
            return
        self._commit(spec)

    def _commit(self, spec: str) -> None:
        self._spec = spec
        self._select(spec)
        self.modelChosen.emit(spec)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "RITM checkpoint", "", "Checkpoints (*.pth *.pt);;All files (*)")
        if path:
            self.choose_file(path)

    def choose_file(self, path: str) -> None:
        if self._index_of(path) < 0:
            self._add_file_item(path)
        self._commit(path)

    def _download_best(self) -> None:
        from ritm_qgis.models.catalog import BEST_DOWNLOADABLE

        self.download(BEST_DOWNLOADABLE)

    # ------------------------------------------------------------------ downloads
    def download(self, name: str) -> ModelDownloadTask | None:
        """Start downloading ``name`` in QGIS's task manager; it is used once it is there."""
        if self.task is not None:
            self.downloadFailed.emit(f"{self.task.name} is still downloading; wait for it or cancel it first.")
            self._select(self._spec)
            return None
        mirror = self.mirror.text().strip()
        save_mirror_setting(mirror)
        self.task = ModelDownloadTask(name, mirror=mirror or None)
        self.task.progressChanged.connect(lambda p: self.progress.setValue(int(p)))
        self.task.taskCompleted.connect(self._download_done)
        self.task.taskTerminated.connect(self._download_done)
        self.progress.setValue(0)
        self.progress.setFormat(f"{name}: %p%")
        self.progress.show()
        self.cancel_button.show()
        self.get_best.hide()
        self._select(self._spec)  # the box keeps showing the model in use until the new one is there
        QgsApplication.taskManager().addTask(self.task)
        self.downloadStarted.emit(name)
        return self.task

    def cancel_download(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self._cancelled = True

    def _download_done(self) -> None:
        task, self.task = self.task, None
        self.progress.hide()
        self.cancel_button.hide()
        if task is None:
            return
        ok = task.status() == task.Complete and task.error is None
        self.refresh()
        if ok:
            self._commit(task.name)
        else:
            text = task.error or f"The download of {task.name} did not finish; nothing was kept."
            self.downloadFailed.emit(text)
            if not getattr(self, "_cancelled", False):
                self.downloadError.emit(text)
        self._cancelled = False


__all__ = ["ModelPicker", "item_text"]
