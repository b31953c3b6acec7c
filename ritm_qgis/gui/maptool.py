"""The map tool: click a building, see its outline, accept it into the footprint layer.

Left click: positive click (on the building); right click: negative (background). A left drag
(beyond a few pixels) pans the map and places no click; Space keeps QGIS's space-to-pan.
Backspace or Ctrl+Z: undo the last click. Esc: discard the current building. Enter or Return (or
the dock's button): accept it (its polygons are appended to the output layer), then the next one.

The model runs on ``InferenceWorker``'s thread (jobs in order, see worker.py); this object only
turns events into jobs and results into the overlay and features. While jobs wait (a model
loading, an outline being computed) the cursor is busy and ``busyChanged`` tells the dock. Clicks
are reprojected from the canvas CRS to the raster's CRS, outlines from the raster's CRS to the
canvas CRS (overlay) and to the output layer's CRS (features).

What the model sees follows the dock's stretch choice; by default ``layer``: the layer's
renderer as QGIS draws it (``layer_stretch.py``), read again when the layer's style changes.

Switching the active layer while a building has clicks loses nothing: the building stays on the
raster it was started on, and the tool moves to the new raster when that building is accepted
or discarded (the status line says so). With no clicks it moves at once.
"""

from __future__ import annotations

import time

from qgis.core import (Qgis, QgsCoordinateTransform, QgsGeometry, QgsMapLayer, QgsPointXY, QgsProject,
                       QgsRasterLayer)
from qgis.gui import QgsMapTool
from qgis.PyQt.QtCore import QEvent, Qt, pyqtSignal
from qgis.PyQt.QtWidgets import QApplication

from ritm_qgis.about import PLUGIN_NAME
from ritm_qgis.layer_source import layer_parts
from ritm_qgis.layer_stretch import stretch_for_layer
from .output import (append_records, default_output_path, keep_on_top, move_temporary_buildings, open_output_layer,
                     temporary_output_layer)
from .overlay import OutlineOverlay, polygon_geometries
from .settings import ToolSettings
from .worker import (Accept, AddClick, Discard, InferenceWorker, Job, LoadModel, RefreshOutline, SetRaster, UndoClick,
                     WarmUp)

def raster_path(layer: QgsRasterLayer) -> str | None:
    """The file behind a GDAL raster layer, or None when it is not one (WMS, XYZ...)."""
    if not isinstance(layer, QgsRasterLayer) or layer.providerType() != "gdal":
        return None
    return layer_parts(layer)[0] or None


class RitmMapTool(QgsMapTool):
    statusChanged = pyqtSignal(str)  # noqa: N815 - a line for the status bar / dock
    latencyMeasured = pyqtSignal(float, float)  # noqa: N815 - ms from release to overlay drawn, ms in the predictor
    modelChanged = pyqtSignal(str, str, str)  # noqa: N815 - backend name, device in use, how long it took ('' unknown)
    buildingSaved = pyqtSignal(int)  # noqa: N815 - features appended
    busyChanged = pyqtSignal(bool, str)  # noqa: N815 - busy or not, what it is doing

    def __init__(self, canvas, message_bar=None, settings: ToolSettings | None = None, min_size: int | None = None):
        super().__init__(canvas)
        self.message_bar = message_bar
        self.min_size = min_size
        self.worker = InferenceWorker()
        self.worker.jobFinished.connect(self._on_job)
        self.worker.queueChanged.connect(self._queue_changed)
        self.worker.jobProgress.connect(self._job_progress)
        self.busy, self.busy_text = False, ""
        self._load_step = ""  # what the model load is doing now (a conversion), shown with the busy text
        self._press = None  # (position, button) of the mouse press being followed
        self._panning = False
        self.stretch_label = ""
        self._stale_raster = False  # the layer's style or the stretch changed during a building
        self.overlay = OutlineOverlay(canvas)
        self.overlay.paint_hook = self._painted
        self.layer: QgsRasterLayer | None = None
        self.pending_layer: QgsRasterLayer | None = None
        self.object_id = 0
        self.markers: list[tuple[QgsPointXY, bool]] = []  # canvas CRS, shown at once
        self.outline_wkb: list[bytes] = []  # last outline drawn: its polygons, raster CRS
        self.backend_name, self.device_name = "grabcut", "cpu"
        self.last_latency_ms = None
        self.last_predict_ms = None
        self.latencies: list[tuple[float, float]] = []
        self.output_layer = None
        QgsProject.instance().legendLayersAdded.connect(self._layers_added)  # once in the layer tree
        self._await_paint: list[tuple[float, float]] = []  # (t_release, predict_ms) awaiting a paint
        self.settings = settings or ToolSettings()
        self.set_settings(self.settings, reload_model=True)
        self.setCursor(Qt.CrossCursor)

    # ------------------------------------------------------------------ set-up
    def set_settings(self, settings: ToolSettings, reload_model: bool | None = None) -> None:
        old = self.settings
        self.settings = settings
        if reload_model is None:
            reload_model = (old.model, old.device, old.threshold) != (settings.model, settings.device, settings.threshold)
        if reload_model:
            self.worker.submit(LoadModel(spec=settings.model, device=settings.device, threshold=settings.threshold))
            self.worker.submit(WarmUp())  # not busy: runs while the user reaches for the mouse
        if old.stretch != settings.stretch and self.layer is not None:
            self._reload_raster()
        if self.has_object() and old.outline() != settings.outline():  # not for a new label or output file
            self.worker.submit(RefreshOutline(self.object_id, outline=settings.outline()))

    def set_layer(self, layer: QgsMapLayer | None) -> bool:
        """Work on ``layer`` (a GDAL raster layer); deferred while a building has clicks."""
        path = raster_path(layer)
        if path is None:
            if layer is not None and layer is not self.layer:
                self.statusChanged.emit("RITM: the active layer is not a raster file; the tool stays on "
                                        f"'{self.layer.name() if self.layer else 'no layer'}'.")
            return False
        if layer is self.layer:
            self.pending_layer = None
            return True
        if self.has_object():
            self.pending_layer = layer
            self.statusChanged.emit(f"RITM: the current building stays on '{self.layer.name()}'; accept (Enter) or "
                                    f"discard (Esc) it to move to '{layer.name()}'.")
            return False
        self._follow_style(self.layer, layer)
        self.layer = layer
        self.pending_layer = None
        self._submit_raster()
        self.statusChanged.emit(f"RITM: click buildings on '{layer.name()}' (the model sees it with the stretch "
                                f"{self.stretch_label}).")
        return True

    def _submit_raster(self) -> None:
        rule, note = stretch_for_layer(self.settings.stretch, self.layer)
        self.stretch_label = rule.label
        self._stale_raster = False
        self.worker.submit(SetRaster(path=raster_path(self.layer), min_size=self.min_size, stretch=rule))
        if note:
            self._message(note, Qgis.Info)

    def _reload_raster(self) -> None:
        """The model's view of the raster changed (style, stretch): now, or after the current building."""
        if self.has_object():
            self._stale_raster = True
        else:
            self._submit_raster()

    def _follow_style(self, old, new) -> None:
        for layer, connect in ((old, False), (new, True)):
            try:
                signal = layer.rendererChanged if layer is not None else None
                if signal is not None:
                    (signal.connect if connect else signal.disconnect)(self._style_changed)
            except (TypeError, RuntimeError):  # not connected, or the layer was deleted
                pass

    def _style_changed(self) -> None:
        if self.layer is not None and self.settings.stretch.strip().lower() == "layer":
            self._reload_raster()

    def has_object(self) -> bool:
        return bool(self.markers)

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Block (processing Qt events) until every queued job is done and drawn; for tests and benchmarks."""
        self.worker.wait_idle(timeout)

    def _layers_added(self, layers) -> None:
        if self.output_layer is not None and any(layer is not self.output_layer for layer in layers):
            keep_on_top(self.output_layer)

    def shutdown(self) -> None:
        try:
            QgsProject.instance().legendLayersAdded.disconnect(self._layers_added)
        except (TypeError, RuntimeError):
            pass
        self._follow_style(self.layer, None)
        self.worker.stop()
        self.overlay.clear()
        scene = self.canvas().scene()
        if scene is not None and self.overlay.scene() is scene:
            scene.removeItem(self.overlay)

    # ------------------------------------------------------------------ coordinates
    def _canvas_crs(self):
        return self.canvas().mapSettings().destinationCrs()

    def _to_raster(self, point: QgsPointXY) -> QgsPointXY:
        ct = QgsCoordinateTransform(self._canvas_crs(), self.layer.crs(), QgsProject.instance())
        return ct.transform(point)

    def _from_raster(self, point_or_geom):
        ct = QgsCoordinateTransform(self.layer.crs(), self._canvas_crs(), QgsProject.instance())
        if isinstance(point_or_geom, QgsGeometry):
            g = QgsGeometry(point_or_geom)
            g.transform(ct)
            return g
        return ct.transform(point_or_geom)

    # ------------------------------------------------------------------ events
    def canvasPressEvent(self, e):  # noqa: N802
        self._press = (e.pos(), e.button())
        self._panning = False

    def canvasMoveEvent(self, e):  # noqa: N802 - a left drag pans, as QGIS's pan tool does
        if self._press is None or self._press[1] != Qt.LeftButton or not e.buttons() & Qt.LeftButton:
            return
        if not self._panning:
            moved = (e.pos() - self._press[0]).manhattanLength()
            if moved < QApplication.startDragDistance():
                return
            self._panning = True
            self.canvas().setCursor(Qt.ClosedHandCursor)
        self.canvas().panAction(e)

    def canvasReleaseEvent(self, e):  # noqa: N802
        t_release = time.perf_counter()
        press, self._press = self._press, None
        if self._panning:
            self._panning = False
            self.canvas().panActionEnd(e.pos())
            self._apply_cursor()
            return
        if press is not None and (e.pos() - press[0]).manhattanLength() >= QApplication.startDragDistance():
            return  # a drag with another button: not a click
        if e.button() not in (Qt.LeftButton, Qt.RightButton):
            return
        if self.layer is None:
            self._message("Select a raster layer (a GeoTIFF or other GDAL raster) to outline buildings on.")
            return
        positive = e.button() == Qt.LeftButton
        canvas_pt = QgsPointXY(e.mapPoint())
        try:
            pt = self._to_raster(canvas_pt)
        except Exception as exc:  # noqa: BLE001 - QgsCsException
            self._message(f"This click cannot be placed on the raster's CRS ({exc}).")
            return
        if not self.layer.extent().contains(pt):
            self._message("That click is outside the raster; click on the image.", Qgis.Info)
            return
        marker = (canvas_pt, positive)
        self.markers.append(marker)
        self.overlay.set_clicks(self.markers)
        self.worker.submit(AddClick(self.object_id, x=pt.x(), y=pt.y(), positive=positive,
                                    outline=self.settings.outline(), t_release=t_release, marker=marker))
        e.accept()

    def keyPressEvent(self, e):  # noqa: N802
        # QgsMapCanvas reads this backwards: an event the tool leaves *ignored* is consumed, one left
        # accepted gets the canvas's own handling (Space to pan, arrows, Page Up/Down...).
        key = e.key()
        if key == Qt.Key_Backspace or (key == Qt.Key_Z and e.modifiers() & Qt.ControlModifier):
            self.undo()
        elif key == Qt.Key_Escape:
            self.discard()
        elif key in (Qt.Key_Return, Qt.Key_Enter):
            self.accept()
        else:
            e.accept()
            return
        e.ignore()

    def eventFilter(self, obj, event):  # noqa: N802 - QGIS's own Ctrl+Z (undo) shortcut must not take the tool's keys
        if event.type() == QEvent.ShortcutOverride and self.canvas().mapTool() is self and (
                event.key() in (Qt.Key_Backspace, Qt.Key_Escape, Qt.Key_Return, Qt.Key_Enter)
                or (event.key() == Qt.Key_Z and event.modifiers() & Qt.ControlModifier)):
            event.accept()
            return True
        return False  # Space stays the canvas's: hold it and move the mouse to pan

    def activate(self):
        super().activate()
        self.canvas().installEventFilter(self)

    def deactivate(self):
        self.canvas().removeEventFilter(self)
        super().deactivate()

    # ------------------------------------------------------------------ actions
    def undo(self) -> None:
        if not self.markers:
            return
        self.markers.pop()
        self.overlay.set_clicks(self.markers)
        self.worker.submit(UndoClick(self.object_id, outline=self.settings.outline()))

    def discard(self) -> None:
        had = bool(self.markers)
        self._new_object()
        self.worker.submit(Discard(self.object_id))
        if had:
            self.statusChanged.emit("RITM: building discarded.")
        self._apply_pending_layer()

    def accept(self) -> None:
        if not self.markers:
            return  # nothing to accept
        job = Accept(self.object_id, outline=self.settings.outline(), layer=self.layer,
                     output_path=self.settings.output_path or default_output_path(), label=self.settings.label.strip())
        self._new_object()
        self.worker.submit(job)
        self._apply_pending_layer()

    def _new_object(self) -> None:
        self.object_id += 1
        self.markers = []
        self.outline_wkb = []
        self._await_paint = []
        self.overlay.clear()

    def _apply_pending_layer(self) -> None:
        if self.pending_layer is not None:
            layer, self.pending_layer = self.pending_layer, None
            self.set_layer(layer)
        elif self._stale_raster and self.layer is not None:
            self._submit_raster()

    # ------------------------------------------------------------------ busy state
    def _queue_changed(self) -> None:
        kinds = [k for k in self.worker.kinds if k.busy_text]
        busy = bool(kinds)
        text = ""
        if busy:
            kind = LoadModel if LoadModel in kinds else kinds[0]
            text = kind.busy_text
            if kind is LoadModel:
                text += f" '{self.settings.model}'" + (f": {self._load_step}" if self._load_step else "")
        if busy != self.busy or busy:
            self.busy, self.busy_text = busy, text
            self._apply_cursor()
            self.busyChanged.emit(busy, text)

    def _job_progress(self, job: Job, message: str) -> None:
        if isinstance(job, LoadModel):
            self._load_step = message[:1].lower() + message[1:]
            self._queue_changed()

    def _apply_cursor(self) -> None:
        self.setCursor(Qt.BusyCursor if self.busy else Qt.CrossCursor)

    # ------------------------------------------------------------------ results (GUI thread)
    def _on_job(self, job: Job) -> None:
        handler = {LoadModel: self._done_model, AddClick: self._done_click, UndoClick: self._done_undo,
                   RefreshOutline: self._done_refresh, Accept: self._done_accept}.get(type(job))
        if job.error:
            if isinstance(job, AddClick) and job.object_id == self.object_id and job.marker in self.markers:
                self.markers.remove(job.marker)
                self.overlay.set_clicks(self.markers)
            if isinstance(job, LoadModel):
                self._done_model(job)
            self._message(job.error, Qgis.Warning)
            return
        if handler is not None:
            handler(job)

    def _done_model(self, job: LoadModel) -> None:
        self._load_step = ""
        if job.result:
            self.backend_name, self.device_name = job.result.backend, job.result.device
            ready = f"ready in {job.result.ready_s:.1f} s" + (" (built once for this CPU)" if job.result.built else "")
            self.modelChanged.emit(self.backend_name, self.device_name, ready)
            if job.result.note and not job.error:
                self._message(job.result.note, Qgis.Info)

    def _show_outline(self, job: Job) -> None:
        if job.object_id != self.object_id:
            return  # a building already accepted or discarded
        record = job.result
        self.outline_wkb = [] if record is None else record.polygons_wkb()
        geoms = [self._from_raster(g) for g in polygon_geometries(self.outline_wkb)]
        self.overlay.set_geometries(geoms)

    def _done_click(self, job: AddClick) -> None:
        self._show_outline(job)
        if job.object_id == self.object_id:
            self._await_paint.append((job.t_release, job.predict_s * 1000.0))
            self.overlay.update()

    def _done_undo(self, job: Job) -> None:
        self._show_outline(job)

    def _done_refresh(self, job: Job) -> None:
        self._show_outline(job)

    def _painted(self) -> None:
        if not self._await_paint:
            return
        now = time.perf_counter()
        for t_release, predict_ms in self._await_paint:
            total = (now - t_release) * 1000.0
            self.latencies.append((total, predict_ms))
        self.last_latency_ms, self.last_predict_ms = self.latencies[-1]
        self._await_paint = []
        self.latencyMeasured.emit(self.last_latency_ms, self.last_predict_ms)
        self.statusChanged.emit(f"RITM: last click {self.last_latency_ms:.0f} ms "
                                f"(model {self.last_predict_ms:.0f} ms, {self.backend_name} on {self.device_name})")

    def _done_accept(self, job: Accept) -> None:
        record = job.result
        if record is None or record.is_empty:
            self._message("The accepted building has no outline (nothing above the threshold or the minimum "
                          "area); nothing was added.", Qgis.Info)
            return
        try:
            layer = self._output_layer(job)
            feats = append_records(layer, [record], job.layer.crs(), job.label)
        except Exception as exc:  # noqa: BLE001 - RitmError or a QGIS failure: say it, keep the tool
            self._message(str(exc), Qgis.Critical)
            return
        self.buildingSaved.emit(len(feats))
        self.statusChanged.emit(f"RITM: building added to '{layer.name()}' ({len(feats)} polygon(s)).")

    def _output_layer(self, job: Accept):
        """The layer accepted buildings go to: the dock's file, footprints.gpkg beside the saved project,
        or (project never saved, no file chosen) a temporary layer the user can save."""
        layer, path = self.output_layer, job.output_path
        if path:
            if layer is None or not _is_layer_of(layer, path):
                layer = open_output_layer(path, job.layer.crs())
                if self.output_layer is not None and _is_temporary(self.output_layer):
                    moved = move_temporary_buildings(self.output_layer, layer)
                    if moved:
                        self._message(f"The {moved} building(s) of the temporary layer were saved to '{path}', "
                                      "with the new ones.", Qgis.Info)
        elif layer is None or not _is_temporary(layer):
            layer = temporary_output_layer(job.layer.crs())
            self._message("The project is not saved, so buildings go to the temporary layer 'footprints': save it "
                          "(right-click > Make Permanent), save the project, or choose an output file in the dock.",
                          Qgis.Info)
        self.output_layer = layer
        keep_on_top(layer)
        return layer

    def _message(self, text: str, level=Qgis.Warning) -> None:
        self.statusChanged.emit("RITM: " + text)
        if self.message_bar is not None:
            self.message_bar.pushMessage(PLUGIN_NAME, text, level=level, duration=8)


def _is_temporary(layer) -> bool:
    try:
        return (layer.isValid() and layer.providerType() == "memory"
                and QgsProject.instance().mapLayer(layer.id()) is not None)
    except RuntimeError:  # deleted
        return False


def _is_layer_of(layer, path: str) -> bool:
    import os

    try:
        return layer.isValid() and os.path.abspath(layer_parts(layer)[0]) == os.path.abspath(path)
    except RuntimeError:  # the C++ layer was deleted (removed from the project)
        return False
