"""Inference off the GUI thread: one worker thread running the jobs of the map tool in order.

The GUI thread puts jobs (load a model, open a raster, click, undo, discard, accept) on a queue;
the worker runs them one after another and hands each back to the GUI thread through one queued
connection; there ``jobFinished(job)`` is emitted, so its receivers (the map tool) run on the GUI
thread. Clicks made while a prediction runs therefore wait in the queue and are applied in the
order they were made; the canvas never waits for the model.

``pending`` counts jobs submitted and not yet handled: it drops only after every receiver of
``jobFinished`` has run for the job. ``wait_idle`` (for tests and the benchmark) processes Qt events
until it is zero, or raises after a timeout. (Counting down in a receiver of its own, beside the
map tool's, was a race: each receiver of a cross-thread signal gets its own queued event, posted
one after the other, so ``pending`` could reach zero before the map tool's event was even posted
and ``wait_idle`` returned with the outline not yet drawn.)
"""

from __future__ import annotations

import queue
import time
import traceback
from dataclasses import dataclass, field

from qgis.PyQt.QtCore import QCoreApplication, QEventLoop, Qt, QThread, pyqtSignal

from ritm_qgis.core.errors import RitmError


@dataclass
class Job:
    kind: str  # model | raster | click | undo | discard | accept | refresh
    args: dict = field(default_factory=dict)
    object_id: int = 0
    t_submit: float = field(default_factory=time.perf_counter)
    # the map tool's own, read back when the job returns
    t_release: float = 0.0  # click: when the mouse button was released
    marker: object = None  # click: its marker, taken away when the click is refused
    layer: object = None  # accept: the raster layer the building was drawn on
    output_path: str = ""  # accept: the output file ('' = a temporary layer)
    label: str = ""  # accept: the dock's label
    # filled in by the worker: click, undo, refresh, accept -> an OutlineRecord (None: no click)
    result: object = None
    error: str | None = None
    predict_s: float = 0.0
    run_s: float = 0.0


class WorkerState:
    """What lives on the worker thread: the model factory and the raster session."""

    def __init__(self):
        self.session = None
        self.backend = None
        self.backend_name = "grabcut"
        self.model_label = "grabcut"
        self.device_name = "cpu"
        self.factory = None
        self._last = None  # (step, outline settings, record): the record of the outline last computed

    # --------------------------------------------------------------------- jobs
    def run(self, job: Job):
        return getattr(self, "_" + job.kind)(job, **job.args)

    def _model(self, job, spec: str, device: str, threshold: float):
        """Build the backend and run it once (so the first click does not pay for the warm-up); on
        failure fall back to GrabCut and say why (job.error). A device that is not there becomes the
        CPU, said in ``job.result['note']``."""
        from ritm_qgis.engine.interactive.backends import build_backend, model_label
        from ritm_qgis.engine.interactive.interactive_settings import interactive_predictor, load_interactive_backend

        from ritm_qgis.engine.runtime.device import usable_device

        spec = (spec or "").strip()
        if not spec:  # the default model: paper-finetune when downloaded, else the best shipped backend
            from ritm_qgis.models.catalog import default_model

            spec = default_model()[0]
        device, note = usable_device(device)
        error = None
        try:
            backend = load_interactive_backend(spec, device)  # warmed up: no one-off cost on the first click
        except RitmError as exc:
            error = str(exc)
        except Exception as exc:  # noqa: BLE001 - a broken checkpoint can raise anything
            error = f"{type(exc).__name__}: {exc}"
        if error:
            backend = build_backend("grabcut")
        self.backend_name = getattr(backend, "name", spec)
        self.model_label = "grabcut" if error else model_label(spec)  # what a saved building records
        self.device_name = str(getattr(backend, "device", "cpu"))
        self.backend = backend
        self.factory = lambda: interactive_predictor(backend, threshold=threshold)
        if self.session is not None:
            self.session.predictor_factory = self.factory  # used from the next window or object on
        job.result = {"backend": self.backend_name, "device": self.device_name, "spec": spec, "note": note}
        if error:
            raise RitmError(f"Could not load the model '{spec}' ({error}); using the weight-free GrabCut "
                            "backend instead.")
        return job.result

    def _raster(self, job, path: str, min_size: int | None = None, stretch=None):
        from ritm_qgis.engine.interactive.raster_session import RasterSession

        kwargs = {} if min_size is None else {"min_size": int(min_size)}
        self.session = self._last = None
        self.session = RasterSession(path, self.factory, stretch=stretch, **kwargs)
        return {"path": path, "crs": str(self.session.grid.crs), "stretch": self.session.stretch.rule.label}

    def _outline(self, outline):
        """The session's current building as an ``OutlineRecord`` (None before a click); the same step
        with the same settings is not vectorized again (accepting reuses the outline drawn)."""
        step = self.session.current
        if self._last is not None and self._last[0] is step and self._last[1] == outline:
            return self._last[2]
        record = self.session.record(outline, model=self.model_label)
        self._last = (step, outline, record)
        return record

    def _need_session(self):
        if self.session is None:
            raise RitmError("No raster layer is set for the RITM tool; select a raster layer first.")

    def _click(self, job, x: float, y: float, positive: bool, outline):
        self._need_session()
        step = self.session.add_click(x, y, positive)
        job.predict_s = step.predict_s
        return self._outline(outline)

    def _undo(self, job, outline):
        self._need_session()
        self.session.undo()
        return self._outline(outline)

    def _refresh(self, job, outline):
        self._need_session()
        return self._outline(outline)

    def _discard(self, job):
        if self.session is not None:
            self.session.reset()
        return None

    def _accept(self, job, outline):
        self._need_session()
        out = self._outline(outline)
        self.session.reset()
        return out


class InferenceWorker(QThread):
    """One thread, one queue; ``jobFinished`` is emitted on the GUI thread once per submitted job, in order."""

    jobFinished = pyqtSignal(object)  # noqa: N815 (Qt naming) - GUI thread
    queueChanged = pyqtSignal()  # noqa: N815 - GUI thread: a job was submitted or handled (see ``kinds``)
    _handedBack = pyqtSignal(object)  # noqa: N815 - worker thread -> GUI thread, the only cross-thread connection

    def __init__(self, parent=None):
        super().__init__(parent)
        self._queue: queue.Queue = queue.Queue()
        self.state = WorkerState()
        self.pending = 0  # GUI thread only: submitted, not yet handled by every jobFinished receiver
        self.kinds: list[str] = []  # GUI thread only: the kinds of those jobs, oldest first
        # this object lives on the GUI thread (only run() executes on the worker's), so _handed_back runs there
        self._handedBack.connect(self._handed_back, Qt.QueuedConnection)

    def submit(self, job: Job) -> Job:
        if not self.isRunning():
            self.start()
        self.pending += 1
        self.kinds.append(job.kind)
        self._queue.put(job)
        self.queueChanged.emit()
        return job

    def _handed_back(self, job):  # GUI thread
        try:
            self.jobFinished.emit(job)  # same thread: the receivers run now, before the count drops
        finally:
            self.pending -= 1
            if self.kinds:
                self.kinds.pop(0)
            self.queueChanged.emit()

    def run(self):  # the worker thread
        while True:
            job = self._queue.get()
            if job is None:
                return
            t0 = time.perf_counter()
            try:
                job.result = self.state.run(job)
            except RitmError as exc:
                job.error = str(exc)
            except Exception as exc:  # noqa: BLE001 - reported in the message bar, the thread lives on
                job.error = f"{type(exc).__name__}: {exc}"
                traceback.print_exc()
            job.run_s = time.perf_counter() - t0
            self._handedBack.emit(job)

    def stop(self, timeout_ms: int = 10000) -> None:
        if self.isRunning():
            self._queue.put(None)
            self.wait(timeout_ms)

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Process Qt events until every submitted job has been handled on the GUI thread.

        TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while self.pending > 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.pending} RITM job(s) still running after {timeout} s")
            QCoreApplication.processEvents(QEventLoop.AllEvents, 20)
            if self.pending > 0:
                QThread.msleep(2)
        QCoreApplication.processEvents(QEventLoop.AllEvents, 20)
