"""The map tool: click a building, see its outline, accept it into the footprint layer.

Left click: positive click (on the building); right click: negative (background).
Backspace or Ctrl+Z: undo the last click. Esc: discard the current building. Enter, Return or
Space: accept it (its polygons are appended to the output GeoPackage layer), then the next one.

The model runs on ``InferenceWorker``'s thread (jobs in order, see worker.py); this object only
turns events into jobs and results into the overlay and features. Clicks are reprojected from
the canvas CRS to the raster's CRS, outlines from the raster's CRS to the canvas CRS (overlay) and
to the output layer's CRS (features).

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

from .output import append_footprints, default_output_path, open_output_layer
from .overlay import OutlineOverlay, polygon_geometries
from .settings import ToolSettings
from .worker import InferenceWorker, Job

PLUGIN_NAME = "ritm_qgis"


def raster_path(layer: QgsRasterLayer) -> str | None:
    """The file behind a GDAL raster layer, or None when it is not one (WMS, XYZ...)."""
    if not isinstance(layer, QgsRasterLayer) or layer.providerType() != "gdal":
        return None
    return layer.source().split("|")[0]


class RitmMapTool(QgsMapTool):
    statusChanged = pyqtSignal(str)  # noqa: N815 - a line for the status bar / dock
    latencyMeasured = pyqtSignal(float, float)  # noqa: N815 - ms from release to overlay drawn, ms in the predictor
    modelChanged = pyqtSignal(str, str)  # noqa: N815 - backend name, device in use
    buildingSaved = pyqtSignal(int)  # noqa: N815 - features appended

    def __init__(self, canvas, message_bar=None, settings: ToolSettings | None = None, min_size: int | None = None):
        super().__init__(canvas)
        self.message_bar = message_bar
        self.min_size = min_size
        self.worker = InferenceWorker()
        self.worker.jobFinished.connect(self._on_job)
        self.overlay = OutlineOverlay(canvas)
        self.overlay.paint_hook = self._painted
        self.layer: QgsRasterLayer | None = None
        self.pending_layer: QgsRasterLayer | None = None
        self.object_id = 0
        self.markers: list[tuple[QgsPointXY, bool]] = []  # canvas CRS, shown at once
        self.outline_wkb: list[bytes] = []  # last outline drawn, raster CRS
        self.backend_name, self.device_name = "grabcut", "cpu"
        self.last_latency_ms = None
        self.last_predict_ms = None
        self.latencies: list[tuple[float, float]] = []
        self.output_layer = None
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
            self.worker.submit(Job("model", dict(spec=settings.model, device=settings.device,
                                                 threshold=settings.threshold)))
        if self.has_object():
            self.worker.submit(Job("refresh", dict(outline=settings.outline()), self.object_id))

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
        self.layer = layer
        self.pending_layer = None
        self.worker.submit(Job("raster", dict(path=path, min_size=self.min_size)))
        self.statusChanged.emit(f"RITM: click buildings on '{layer.name()}'.")
        return True

    def has_object(self) -> bool:
        return bool(self.markers)

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Block (processing Qt events) until every queued job is done and drawn; for tests and benchmarks."""
        self.worker.wait_idle(timeout)

    def shutdown(self) -> None:
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
    def canvasReleaseEvent(self, e):  # noqa: N802
        t_release = time.perf_counter()
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
        job = Job("click", dict(x=pt.x(), y=pt.y(), positive=positive, outline=self.settings.outline()),
                  self.object_id)
        job.t_release = t_release
        job.marker = marker
        self.worker.submit(job)
        e.accept()

    def keyPressEvent(self, e):  # noqa: N802
        key = e.key()
        if key == Qt.Key_Backspace or (key == Qt.Key_Z and e.modifiers() & Qt.ControlModifier):
            self.undo()
        elif key == Qt.Key_Escape:
            self.discard()
        elif key in (Qt.Key_Return, Qt.Key_Enter, Qt.Key_Space):
            self.accept()
        else:
            e.ignore()
            return
        e.accept()

    def eventFilter(self, obj, event):  # noqa: N802 - the canvas keeps Space for panning; take it first
        if event.type() == QEvent.ShortcutOverride and self.canvas().mapTool() is self and (
                event.key() in (Qt.Key_Backspace, Qt.Key_Escape, Qt.Key_Return, Qt.Key_Enter, Qt.Key_Space)
                or (event.key() == Qt.Key_Z and event.modifiers() & Qt.ControlModifier)):
            event.accept()  # QGIS's own Ctrl+Z (undo) shortcut must not take the tool's keys
            return True
        if (event.type() == QEvent.KeyPress and event.key() == Qt.Key_Space and not event.isAutoRepeat()
                and self.canvas().mapTool() is self):
            self.accept()
            return True
        if (event.type() == QEvent.KeyRelease and event.key() == Qt.Key_Space
                and self.canvas().mapTool() is self):
            return True
        return False

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
        self.worker.submit(Job("undo", dict(outline=self.settings.outline()), self.object_id))

    def discard(self) -> None:
        had = bool(self.markers)
        self._new_object()
        self.worker.submit(Job("discard", {}, self.object_id))
        if had:
            self.statusChanged.emit("RITM: building discarded.")
        self._apply_pending_layer()

    def accept(self) -> None:
        if not self.markers:
            return  # nothing to accept
        job = Job("accept", dict(outline=self.settings.outline()), self.object_id)
        job.layer = self.layer
        job.output_path = self.settings.output_path or default_output_path()
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

    # ------------------------------------------------------------------ results (GUI thread)
    def _on_job(self, job: Job) -> None:
        handler = getattr(self, "_done_" + job.kind, None)
        if job.error:
            if job.kind == "click" and job.object_id == self.object_id and job.marker in self.markers:
                self.markers.remove(job.marker)
                self.overlay.set_clicks(self.markers)
            level = Qgis.Warning
            if job.kind == "model":
                self._done_model(job)
            self._message(job.error, level)
            return
        if handler is not None:
            handler(job)

    def _done_model(self, job: Job) -> None:
        if job.result:
            self.backend_name, self.device_name = job.result["backend"], job.result["device"]
            self.modelChanged.emit(self.backend_name, self.device_name)

    def _show_outline(self, job: Job) -> None:
        if job.object_id != self.object_id:
            return  # a building already accepted or discarded
        self.outline_wkb = list(job.result["wkb"])
        geoms = [self._from_raster(g) for g in polygon_geometries(self.outline_wkb)]
        self.overlay.set_geometries(geoms)

    def _done_click(self, job: Job) -> None:
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

    def _done_accept(self, job: Job) -> None:
        res = job.result
        geoms = polygon_geometries(res["wkb"])
        if not geoms:
            self._message("The accepted building has no outline (nothing above the threshold or the minimum "
                          "area); nothing was added.", Qgis.Info)
            return
        try:
            layer = self.output_layer
            path = job.output_path
            if layer is None or not _is_layer_of(layer, path):
                layer = open_output_layer(path, job.layer.crs())
                self.output_layer = layer
            feats = append_footprints(layer, geoms, job.layer.crs(), area_m2=res["area_m2"],
                                      perimeter_m=res["perimeter_m"], n_clicks=res["n_clicks"],
                                      model=self.backend_name)
        except Exception as exc:  # noqa: BLE001 - RitmError or a QGIS failure: say it, keep the tool
            self._message(str(exc), Qgis.Critical)
            return
        self.buildingSaved.emit(len(feats))
        self.statusChanged.emit(f"RITM: building added to '{layer.name()}' ({len(feats)} polygon(s)).")

    def _message(self, text: str, level=Qgis.Warning) -> None:
        self.statusChanged.emit("RITM: " + text)
        if self.message_bar is not None:
            self.message_bar.pushMessage(PLUGIN_NAME, text, level=level, duration=8)


def _is_layer_of(layer, path: str) -> bool:
    import os

    try:
        return layer.isValid() and os.path.abspath(layer.source().split("|")[0]) == os.path.abspath(path)
    except RuntimeError:  # the C++ layer was deleted (removed from the project)
        return False
