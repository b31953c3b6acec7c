"""The dock of the map tool: model, device, what the model sees (stretch), threshold, simplification,
regularise, minimum area, output and label, an accept button, and the tool's state.

Every change is saved in QgsSettings at once (``settings.save_settings``) and emitted as
``settingsChanged(ToolSettings)``; the line under the device shows the model and device in use
(``loading...`` from the moment a new one is chosen). While the tool works, a progress line says
what it is doing (``show_busy``). Devices offered are those PyTorch sees (``devices.py``).
"""

from __future__ import annotations

from dataclasses import replace

from qgis.core import QgsProject
from qgis.gui import QgsDockWidget, QgsFileWidget
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel,
                                 QLineEdit, QProgressBar, QPushButton, QWidget)

from ritm_qgis.about import PLUGIN_NAME
from ritm_qgis.engine.geo.stretch_registry import dock_choices, dock_tooltip
from ritm_qgis.engine.runtime.device import device_choices

from .dark_layer_hint import DarkLayerHint
from .learn import LearnPanel
from .model_picker import ModelPicker
from .output import default_output_path
from .settings import ToolSettings, load_settings, save_settings

TITLE = PLUGIN_NAME


class RitmDock(QgsDockWidget):
    settingsChanged = pyqtSignal(object)  # noqa: N815
    activateRequested = pyqtSignal()  # noqa: N815
    acceptRequested = pyqtSignal()  # noqa: N815

    def __init__(self, parent=None, settings: ToolSettings | None = None):
        super().__init__(TITLE, parent)
        self.setObjectName("RitmQgisDock")
        self._loading = True
        body = QWidget(self)
        form = QFormLayout(body)

        self.model = ModelPicker(body)  # the one list, grouped; downloads in a QgsTask (model_picker.py)
        self.model.setToolTip("A new model applies from the next building.")
        form.addRow("Model", self.model)

        self._add_device_rows(body, form)
        self._add_stretch_row(body, form)

        self.threshold = QDoubleSpinBox(body)
        self.threshold.setRange(0.01, 0.99)
        self.threshold.setSingleStep(0.05)
        self.threshold.setDecimals(2)
        form.addRow("Threshold", self.threshold)

        self.simplify = QDoubleSpinBox(body)
        self.simplify.setRange(0.0, 20.0)
        self.simplify.setSingleStep(0.5)
        self.simplify.setSuffix(" px")
        self.simplify.setToolTip("Simplification tolerance in raster pixels (0: the exact pixel outline); the "
                                 "same unit as the Processing algorithms' tolerance")
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
        self.output.setToolTip("Where accepted buildings go (layer 'footprints'); empty: footprints.gpkg "
                               "beside the project, or a temporary layer while the project is not saved")
        form.addRow("Output", self.output)
        self.label = QLineEdit(body)
        self.label.setPlaceholderText("optional, e.g. house, shed")
        self.label.setToolTip("Written to the 'label' field of every building you accept")
        form.addRow("Label", self.label)

        self.activate_button = QPushButton("Outline buildings (map tool)", body)
        self.activate_button.clicked.connect(self.activateRequested)
        self.accept_button = QPushButton("Accept building (Enter)", body)
        self.accept_button.clicked.connect(self.acceptRequested)
        buttons = QHBoxLayout()
        buttons.addWidget(self.activate_button)
        buttons.addWidget(self.accept_button)
        form.addRow(buttons)
        self.learn = LearnPanel(body)  # 'Learn from my buildings' (learn.py; wired by connect_learning)
        form.addRow("Learn", self.learn)
        self._add_busy_rows(body, form)
        self.latency = QLabel("last click: -", body)
        form.addRow("Latency", self.latency)
        self.status = QLabel("", body)
        self.status.setWordWrap(True)
        form.addRow(self.status)
        self.setWidget(body)

        self.set_settings(settings or load_settings())
        initial = self.settings()
        self._last_stretch, self._last_model = initial.stretch, (initial.model, initial.device)
        self._loading = False
        self.model.modelChosen.connect(self._changed)
        self.model.downloadStarted.connect(lambda name: self.show_status(f"Downloading {name}…"))
        self.model.downloadFailed.connect(self.show_status)
        self.device.currentIndexChanged.connect(self._changed)
        self.stretch.currentTextChanged.connect(self._changed)
        self.label.textChanged.connect(self._changed)
        for w in (self.threshold, self.simplify, self.min_area):
            w.valueChanged.connect(self._changed)
        self.regularize.toggled.connect(self._changed)
        self.output.fileChanged.connect(self._changed)
        for saved in (QgsProject.instance().fileNameChanged, QgsProject.instance().projectSaved):
            saved.connect(self._update_output_hint)  # footprints.gpkg beside the project from now on

    # ------------------------------------------------------------------ rows of their own
    def _add_device_rows(self, body, form) -> None:
        self.device = QComboBox(body)
        for value, text in device_choices():
            self.device.addItem(text, value)
        self.device.setToolTip("Where the network runs; only the devices PyTorch can use here are listed")
        form.addRow("Device", self.device)
        self.in_use = QLabel("in use: -", body)
        self.in_use.setWordWrap(True)
        form.addRow("", self.in_use)

    def _add_stretch_row(self, body, form) -> None:
        self.stretch = QComboBox(body)
        self.stretch.setEditable(True)
        for i, (value, text) in enumerate(dock_choices()):  # the registered stretches chosen by a word
            self.stretch.addItem(value)
            self.stretch.setItemData(i, text, Qt.ToolTipRole)
        self.stretch.setToolTip(dock_tooltip())
        form.addRow("Model sees", self.stretch)
        self.dark_hint = DarkLayerHint(body)  # shown while the raster is drawn dark
        form.addRow(self.dark_hint)

    def _add_busy_rows(self, body, form) -> None:
        self.busy_label = QLabel("ready", body)
        self.busy_bar = QProgressBar(body)
        self.busy_bar.setRange(0, 0)  # no fraction known: a moving bar
        self.busy_bar.setTextVisible(False)
        self.busy_bar.setMaximumHeight(8)
        self.busy_bar.hide()
        form.addRow("State", self.busy_label)
        form.addRow(self.busy_bar)

    def device_value(self) -> str:
        return self.device.currentData() or "auto"

    def _set_device(self, value: str) -> None:
        value = "cuda:0" if value == "cuda" else value  # the name older versions saved
        index = self.device.findData(value)
        self.device.setCurrentIndex(index if index >= 0 else 0)

    # ------------------------------------------------------------------ values
    def set_settings(self, s: ToolSettings) -> None:
        loading, self._loading = self._loading, True
        self.model.set_spec(s.model)
        self._set_device(s.device)
        self.stretch.setCurrentText(s.stretch or "layer")
        self.label.setText(s.label)
        self.threshold.setValue(s.threshold)
        self.simplify.setValue(s.simplify_px)
        self.regularize.setChecked(s.regularize)
        self.min_area.setValue(s.min_area_m2)
        self.output.setFilePath(s.output_path)
        self._loading = loading
        self._update_output_hint()

    def settings(self) -> ToolSettings:
        return ToolSettings(model=self.model.spec(), device=self.device_value(),
                            threshold=self.threshold.value(), simplify_px=self.simplify.value(),
                            regularize=self.regularize.isChecked(), min_area_m2=self.min_area.value(),
                            output_path=self.output.filePath().strip(), stretch=self._stretch_value(),
                            label=self.label.text())

    def _stretch_value(self) -> str:
        from ritm_qgis.engine.geo.stretch import parse_stretch

        text = self.stretch.currentText().strip().lower() or "layer"
        if text == "layer":
            return text
        try:
            return parse_stretch(text).label
        except Exception:  # noqa: BLE001 - half-typed range: keep the last good choice
            return getattr(self, "_last_stretch", "layer")

    def _changed(self, *_):
        if self._loading:
            return
        s = self.settings()
        self._last_stretch = s.stretch
        previous = getattr(self, "_last_model", None)
        if previous is not None and previous != (s.model, s.device):
            self.show_loading()
        self._last_model = (s.model, s.device)
        save_settings(s)
        self._update_output_hint()
        self.settingsChanged.emit(s)

    def _update_output_hint(self, *_):
        if not self.output.filePath().strip():
            self.output.lineEdit().setPlaceholderText(default_output_path() or "temporary layer (project not saved)")

    # ------------------------------------------------------------------ feedback
    def show_loading(self) -> None:
        """Until the tool says which model it loaded: the one it is loading."""
        s = self.settings()
        self.in_use.setText(f"in use: loading {s.model} on {s.device}…")

    def show_model(self, backend: str, device: str, ready: str = "") -> None:
        """``ready``: how long the model took to become ready ('ready in 1.2 s'), or ''."""
        self.in_use.setText(f"in use: {backend} on {device}" + (f", {ready}" if ready else ""))

    def show_busy(self, busy: bool, what: str) -> None:
        self.busy_label.setText(f"busy: {what}…" if busy else "ready")
        self.busy_bar.setVisible(busy)

    def show_latency(self, total_ms: float, predict_ms: float) -> None:
        self.latency.setText(f"last click: {total_ms:.0f} ms (model {predict_ms:.0f} ms)")

    def show_status(self, text: str) -> None:
        self.status.setText(text)

    def use_model(self, name: str) -> None:
        """Choose a model that has just appeared in the cache (an adapted one), as if picked in the list."""
        self.model.refresh()
        self.model.set_spec(name)
        self._changed()

    def with_output(self, path: str) -> ToolSettings:
        return replace(self.settings(), output_path=path)


__all__ = ["RitmDock"]
