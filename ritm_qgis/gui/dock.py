"""The dock of the map tool: model, device, threshold, simplification, regularise, minimum area, output.

Every change is saved in QgsSettings at once (``settings.save_settings``) and emitted as
``settingsChanged(ToolSettings)``; the line under the device shows the device actually in use.
"""

from __future__ import annotations

from dataclasses import replace

from qgis.gui import QgsDockWidget, QgsFileWidget
from qgis.PyQt.QtCore import pyqtSignal
from qgis.PyQt.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QLabel,
                                 QPushButton, QWidget)

from .model_picker import ModelPicker
from .output import default_output_path
from .settings import ToolSettings, load_settings, save_settings

DEVICES = ("auto", "cpu", "cuda")


class RitmDock(QgsDockWidget):
    settingsChanged = pyqtSignal(object)  # noqa: N815
    activateRequested = pyqtSignal()  # noqa: N815

    def __init__(self, parent=None, settings: ToolSettings | None = None):
        super().__init__("RITM buildings", parent)
        self.setObjectName("RitmQgisDock")
        self._loading = True
        body = QWidget(self)
        form = QFormLayout(body)

        self.model = ModelPicker(body)  # the one list, grouped; downloads in a QgsTask (model_picker.py)
        self.model.setToolTip("A new model applies from the next building.")
        form.addRow("Model", self.model)

        self.device = QComboBox(body)
        self.device.addItems(DEVICES)
        form.addRow("Device", self.device)
        self.in_use = QLabel("in use: -", body)
        form.addRow("", self.in_use)

        self.threshold = QDoubleSpinBox(body)
        self.threshold.setRange(0.01, 0.99)
        self.threshold.setSingleStep(0.05)
        self.threshold.setDecimals(2)
        form.addRow("Threshold", self.threshold)

        self.simplify = QDoubleSpinBox(body)
        self.simplify.setRange(0.0, 20.0)
        self.simplify.setSingleStep(0.5)
        self.simplify.setSuffix(" px")
        self.simplify.setToolTip("Simplification tolerance in raster pixels (0: the exact pixel outline)")
        form.addRow("Simplify", self.simplify)

        self.regularize = QCheckBox("Square the outlines", body)
        form.addRow("Regularise", self.regularize)

        self.min_area = QDoubleSpinBox(body)
        self.min_area.setRange(0.0, 1e6)
        self.min_area.setDecimals(1)
        self.min_area.setSuffix(" m²")
        form.addRow("Minimum area", self.min_area)

        self.output = QgsFileWidget(body)
        self.output.setStorageMode(QgsFileWidget.SaveFile)
        self.output.setFilter("GeoPackage (*.gpkg)")
        self.output.setToolTip("Where accepted buildings go (layer 'footprints'); empty: "
                               "footprints.gpkg beside the project")
        form.addRow("Output", self.output)

        self.activate_button = QPushButton("Outline buildings (map tool)", body)
        self.activate_button.clicked.connect(self.activateRequested)
        form.addRow(self.activate_button)
        self.latency = QLabel("last click: -", body)
        form.addRow("Latency", self.latency)
        self.status = QLabel("", body)
        self.status.setWordWrap(True)
        form.addRow(self.status)
        self.setWidget(body)

        self.set_settings(settings or load_settings())
        self._loading = False
        self.model.modelChosen.connect(self._changed)
        self.model.downloadStarted.connect(lambda name: self.show_status(f"Downloading {name}…"))
        self.model.downloadFailed.connect(self.show_status)
        self.device.currentTextChanged.connect(self._changed)
        for w in (self.threshold, self.simplify, self.min_area):
            w.valueChanged.connect(self._changed)
        self.regularize.toggled.connect(self._changed)
        self.output.fileChanged.connect(self._changed)

    # ------------------------------------------------------------------ values
    def set_settings(self, s: ToolSettings) -> None:
        loading, self._loading = self._loading, True
        self.model.set_spec(s.model)
        self.device.setCurrentText(s.device if s.device in DEVICES else "auto")
        self.threshold.setValue(s.threshold)
        self.simplify.setValue(s.simplify_px)
        self.regularize.setChecked(s.regularize)
        self.min_area.setValue(s.min_area_m2)
        self.output.setFilePath(s.output_path)
        self._loading = loading
        self._update_output_hint()

    def settings(self) -> ToolSettings:
        return ToolSettings(model=self.model.spec(), device=self.device.currentText(),
                            threshold=self.threshold.value(), simplify_px=self.simplify.value(),
                            regularize=self.regularize.isChecked(), min_area_m2=self.min_area.value(),
                            output_path=self.output.filePath().strip())

    def _changed(self, *_):
        if self._loading:
            return
        s = self.settings()
        save_settings(s)
        self._update_output_hint()
        self.settingsChanged.emit(s)

    def _update_output_hint(self):
        if not self.output.filePath().strip():
            self.output.lineEdit().setPlaceholderText(default_output_path())

    # ------------------------------------------------------------------ feedback
    def show_model(self, backend: str, device: str) -> None:
        self.in_use.setText(f"in use: {backend} on {device}")

    def show_latency(self, total_ms: float, predict_ms: float) -> None:
        self.latency.setText(f"last click: {total_ms:.0f} ms (model {predict_ms:.0f} ms)")

    def show_status(self, text: str) -> None:
        self.status.setText(text)

    def with_output(self, path: str) -> ToolSettings:
        return replace(self.settings(), output_path=path)


__all__ = ["RitmDock"]
