"""'Learn from my buildings': the dock's row that adapts the current model to the accepted buildings.

The row shows how many buildings the output layer holds; its button copies them to a temporary
GeoPackage (in the GUI thread: QGIS layers are not thread-safe) and starts an ``AdaptTask`` in
QGIS's task manager, which runs ``engine.jobs.adapt_area`` (the model's fine-tune with its
hold-out check) with progress and cancel. Clicking goes on meanwhile with the model in use. When
the task ends, ``finished(name, message, improved)`` says what came out: the dock then switches
to the adapted model (used from the next building) only when the held-out buildings got better.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from qgis.core import QgsApplication, QgsCoordinateTransformContext, QgsTask, QgsVectorFileWriter
from qgis.PyQt.QtCore import pyqtSignal
from qgis.PyQt.QtWidgets import QDoubleSpinBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

MIN_BUILDINGS = 10  # engine.training.adapt.MIN_BUILDINGS (not imported: torch stays unloaded until used)
DEFAULT_MINUTES = 5.0


def layer_to_gpkg(layer, path: str) -> None:
    """The layer's features as a GeoPackage (any provider, memory layers included)."""
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = "GPKG"
    options.layerName = "footprints"
    err, msg, *_ = QgsVectorFileWriter.writeAsVectorFormatV3(layer, path, QgsCoordinateTransformContext(), options) \
        if hasattr(QgsVectorFileWriter, "writeAsVectorFormatV3") else \
        QgsVectorFileWriter.writeAsVectorFormatV2(layer, path, QgsCoordinateTransformContext(), options)
    if err != QgsVectorFileWriter.NoError:
        raise RuntimeError(f"Could not copy the layer '{layer.name()}' for training: {msg}")


class AdaptTask(QgsTask):
    """``adapt_area`` in QGIS's task manager; ``outcome`` (AreaAdaptation) or ``error`` once it ends."""

    def __init__(self, raster: str, footprints_gpkg: str, base_model: str, minutes: float, layer_label: str,
                 workdir: str, **options):
        super().__init__(f"Learning from the buildings of '{layer_label}'", QgsTask.CanCancel)
        self.args = (raster, footprints_gpkg, base_model, minutes)
        self.layer_label, self.workdir, self.options = layer_label, workdir, options
        self.outcome = None
        self.error: str | None = None

    def run(self) -> bool:  # the task's thread
        from ritm_qgis.core.cancel import Cancelled
        from ritm_qgis.core.errors import RitmError
        from ritm_qgis.engine.jobs.adapt_area import adapt_area

        def progress(done, total, message=None):
            if total:
                self.setProgress(100.0 * done / total)

        try:
            self.outcome = adapt_area(*self.args, layer_label=self.layer_label, progress=progress,
                                      cancel=self.isCanceled, **self.options)
        except RitmError as exc:
            self.error = str(exc).replace(self.args[1], f"the layer '{self.layer_label}'")
        except Cancelled:
            self.error = "Learning from the buildings was cancelled; the model in use stays."
        except Exception as exc:  # noqa: BLE001 - said in the message bar, never a crash of QGIS
            self.error = f"Learning from the buildings failed: {exc}"
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return self.error is None and not self.isCanceled()


class LearnPanel(QWidget):
    """The dock's 'Learn from my buildings' row (count, minutes, button, progress, cancel)."""

    finished = pyqtSignal(str, str, bool)  # noqa: N815 - adapted model name ('' when none), message, improved

    def __init__(self, parent=None):
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.count = QLabel("no building accepted yet", self)
        self.minutes = QDoubleSpinBox(self)
        self.minutes.setRange(0.05, 120.0)
        self.minutes.setValue(DEFAULT_MINUTES)
        self.minutes.setSuffix(" min")
        self.minutes.setToolTip("Training time; checking the result on the held-out buildings comes on top")
        self.button = QPushButton("Learn from my buildings", self)
        self.button.setToolTip("Fine-tune the model in use on the buildings of the output layer (every 5th held out "
                               "to check it); the adapted model is used from the next building if it did better")
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 100)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self.cancel)
        for w in (self.count, self.minutes, self.button, self.progress, self.cancel_button):
            row.addWidget(w)
        self.progress.hide()
        self.cancel_button.hide()
        self.task: AdaptTask | None = None
        self.n_buildings, self.layer_name = 0, ""
        self.options: dict = {}  # extra adapt_area options (tests: a few steps, a small check)
        self.set_count(0, "")

    def set_count(self, n: int, layer_name: str) -> None:
        self.n_buildings, self.layer_name = int(n), layer_name
        where = f" in '{layer_name}'" if layer_name else ""
        self.count.setText(f"{n} building(s) accepted{where}")
        self.button.setEnabled(self.task is None and n >= MIN_BUILDINGS)
        if n < MIN_BUILDINGS and self.task is None:
            self.button.setToolTip(f"Accept at least {MIN_BUILDINGS} buildings first (5 are held out to check)")

    def start(self, raster: str | None, layer, base_model: str) -> AdaptTask | None:
        """Start learning from ``layer``'s buildings on ``raster``; None with ``finished`` emitted when it cannot."""
        if self.task is not None:
            return None
        if not raster or layer is None or base_model.strip().lower() in ("grabcut", "grabcut-multi"):
            why = ("GrabCut has no weights to learn; choose a network model first." if raster and layer is not None
                   else "Start the tool on a raster and accept buildings first.")
            self.finished.emit("", why, False)
            return None
        workdir = tempfile.mkdtemp(prefix="ritm-learn-")
        gpkg = os.path.join(workdir, "footprints.gpkg")
        try:
            layer_to_gpkg(layer, gpkg)
        except RuntimeError as exc:
            shutil.rmtree(workdir, ignore_errors=True)
            self.finished.emit("", str(exc), False)
            return None
        self.task = AdaptTask(raster, gpkg, base_model, self.minutes.value(), layer.name(), workdir, **self.options)
        self.task.progressChanged.connect(lambda p: self.progress.setValue(int(p)))
        self.task.taskCompleted.connect(self._done)
        self.task.taskTerminated.connect(self._done)
        self.progress.setValue(0)
        self.progress.show()
        self.cancel_button.show()
        self.button.setEnabled(False)
        QgsApplication.taskManager().addTask(self.task)
        return self.task

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def _done(self) -> None:
        task, self.task = self.task, None
        self.progress.hide()
        self.cancel_button.hide()
        self.set_count(self.n_buildings, self.layer_name)
        if task is None:
            return
        if task.outcome is not None:
            out = task.outcome
            self.finished.emit(out.name or "", out.message(), bool(out.improved))
        else:
            self.finished.emit("", task.error or "Learning from the buildings was cancelled; the model in use stays.",
                               False)


def connect_learning(dock, tool, message_bar=None) -> None:
    """Wire the dock's learn row to the map tool: the count follows the accepted buildings, the button
    learns from the tool's output layer with the model in use, and an adapted model that did better is
    chosen in the dock (the tool loads it before the next building)."""
    from qgis.core import Qgis

    from .maptool import raster_path

    panel = dock.learn

    def count(*_):
        layer = tool.output_layer
        panel.set_count(layer.featureCount() if layer is not None else 0, layer.name() if layer is not None else "")

    def learn():
        count()
        panel.start(raster_path(tool.layer) if tool.layer is not None else None, tool.output_layer,
                    dock.settings().model)

    def learned(name: str, message: str, improved: bool):
        if improved and name:
            dock.use_model(name)
        tool.statusChanged.emit("RITM: " + message)
        if message_bar is not None:
            level = Qgis.Success if improved else Qgis.Warning
            message_bar.pushMessage("RITM buildings", message, level=level, duration=0 if not improved else 15)

    tool.buildingSaved.connect(count)
    panel.button.clicked.connect(learn)
    panel.finished.connect(learned)
    count()
