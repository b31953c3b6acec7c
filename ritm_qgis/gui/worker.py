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
from typing import ClassVar

from qgis.PyQt.QtCore import QCoreApplication, QEventLoop, Qt, QThread, pyqtSignal

from ritm_qgis.core.defaults import MASK_THRESHOLD
from ritm_qgis.core.errors import RitmError


@dataclass
class Job:
    """What every job carries; the kinds below add their own fields and say what they run."""

    object_id: int = 0  # the map tool's building the job belongs to
    t_submit: float = field(default_factory=time.perf_counter)
    # filled in by the worker
    result: object = None
    error: str | None = None
    predict_s: float = 0.0
    run_s: float = 0.0
    progress: object = None  # set by the worker: progress(done, total, message) reaches the GUI thread
    busy_text: ClassVar[str] = ""  # what the map tool says while the job waits or runs ('' = not busy)

    def run(self, state: "WorkerState"):
        raise NotImplementedError


@dataclass
class ModelLoaded:
    backend: str
    device: str
    spec: str
    note: str | None = None  # a device that is not there became the CPU
    ready_s: float = 0.0  # from the start of the load until the model could take a click
    built: bool = False  # a speed-up path was built for it (first use), not read from the build cache


@dataclass
class LoadModel(Job):
    spec: str = ""
    device: str = "auto"
    threshold: float = MASK_THRESHOLD
    busy_text: ClassVar[str] = "loading the model"

    def run(self, state):
        return state.load_model(self)


@dataclass
class WarmUp(Job):
    """One pass of the model in use on a click's input size, queued right after ``LoadModel`` while
    the user reaches for the mouse (a click made sooner waits for it, as behind any job)."""

    def run(self, state):
        from ritm_qgis.engine.interactive.interactive_settings import warm_up

        if state.backend is not None:
            warm_up(state.backend)
        return None


@dataclass
class SetRaster(Job):
    path: str = ""
    min_size: int | None = None
    stretch: object = None
    busy_text: ClassVar[str] = "reading the raster"

    def run(self, state):
        return state.set_raster(self.path, self.min_size, self.stretch)


@dataclass
class AddClick(Job):
    x: float = 0.0  # raster CRS
    y: float = 0.0
    positive: bool = True
    outline: object = None  # OutlineSettings
    t_release: float = 0.0  # the map tool's: when the mouse button was released
    marker: object = None  # the map tool's: the click's marker, taken away when the click is refused
    busy_text: ClassVar[str] = "computing the outline"

    def run(self, state):
        step = state.need_session().add_click(self.x, self.y, self.positive)
        self.predict_s = step.predict_s
        return state.outline(self.outline)


@dataclass
class UndoClick(Job):
    outline: object = None
    busy_text: ClassVar[str] = "computing the outline"

    def run(self, state):
        state.need_session().undo()
        return state.outline(self.outline)


@dataclass
class RefreshOutline(Job):
    outline: object = None
    busy_text: ClassVar[str] = "computing the outline"

    def run(self, state):
        state.need_session()
        return state.outline(self.outline)


@dataclass
class Discard(Job):
    def run(self, state):
        if state.session is not None:
            state.session.reset()
        return None


@dataclass
class Accept(Job):
    outline: object = None
    layer: object = None  # the map tool's: the raster layer the building was drawn on
    output_path: str = ""  # '' = a temporary layer
    label: str = ""
    busy_text: ClassVar[str] = "saving the building"

    def run(self, state):
        record = state.outline(self.outline)
        state.need_session().reset()
        return record


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

    def load_model(self, job: LoadModel) -> ModelLoaded:
        """Build the backend (its one-off build, a conversion, reported through ``job.progress``; the
        warm-up pass is the ``WarmUp`` job the map tool queues next); on failure fall back to GrabCut
        and say why (RitmError, with ``job.result`` still set). A device that is not there becomes
        the CPU, said in the result's ``note``."""
        from ritm_qgis.engine.interactive.backends import build_backend, model_label
        from ritm_qgis.engine.interactive.interactive_settings import interactive_predictor, load_interactive_backend
        from ritm_qgis.engine.runtime.device import usable_device

        spec = (job.spec or "").strip()
        if not spec:  # the default model: paper-finetune when downloaded, else the best shipped backend
            from ritm_qgis.models.catalog import default_model

            spec = default_model()[0]
        device, note = usable_device(job.device)
        error = None
        t0 = time.perf_counter()
        try:
            backend = load_interactive_backend(spec, device, warm=False, progress=job.progress)
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
        threshold = job.threshold
        self.factory = lambda: interactive_predictor(backend, threshold=threshold)
        if self.session is not None:
            self.session.predictor_factory = self.factory  # used from the next window or object on
        openvino = getattr(backend, "_openvino", None)
        job.result = ModelLoaded(self.backend_name, self.device_name, spec, note, ready_s=time.perf_counter() - t0,
                                 built=getattr(openvino, "source", "") == "converted")
        if error:
            raise RitmError(f"Could not load the model '{spec}' ({error}); using the weight-free GrabCut "
                            "backend instead.")
        return job.result

    def set_raster(self, path: str, min_size: int | None = None, stretch=None):
        from ritm_qgis.engine.interactive.raster_session import RasterSession

        kwargs = {} if min_size is None else {"min_size": int(min_size)}
        self.session = self._last = None
        self.session = RasterSession(path, self.factory, stretch=stretch, **kwargs)

    def outline(self, outline):
        """The session's current building as an ``OutlineRecord`` (None before a click); the same step
        with the same settings is not vectorized again (accepting reuses the outline drawn)."""
        step = self.session.current
        if self._last is not None and self._last[0] is step and self._last[1] == outline:
            return self._last[2]
        record = self.session.record(outline, model=self.model_label)
        self._last = (step, outline, record)
        return record

    def need_session(self):
        if self.session is None:
            raise RitmError("No raster layer is set for the RITM tool; select a raster layer first.")
        return self.session


class InferenceWorker(QThread):
    """One thread, one queue; ``jobFinished`` is emitted on the GUI thread once per submitted job, in order."""

    jobFinished = pyqtSignal(object)  # noqa: N815 (Qt naming) - GUI thread
    jobProgress = pyqtSignal(object, str)  # noqa: N815 - GUI thread: a running job's progress message ('' = done)
    queueChanged = pyqtSignal()  # noqa: N815 - GUI thread: a job was submitted or handled (see ``kinds``)
    _handedBack = pyqtSignal(object)  # noqa: N815 - worker thread -> GUI thread
    _progressed = pyqtSignal(object, str)  # noqa: N815 - worker thread -> GUI thread, a job's progress message

    def __init__(self, parent=None):
        super().__init__(parent)
        self._queue: queue.Queue = queue.Queue()
        self.state = WorkerState()
        self.pending = 0  # GUI thread only: submitted, not yet handled by every jobFinished receiver
        self.kinds: list[type] = []  # GUI thread only: the types of those jobs, oldest first
        # this object lives on the GUI thread (only run() executes on the worker's), so _handed_back runs there
        self._handedBack.connect(self._handed_back, Qt.QueuedConnection)
        self._progressed.connect(self.jobProgress, Qt.QueuedConnection)

    def submit(self, job: Job) -> Job:
        if not self.isRunning():
            self.start()
        self.pending += 1
        self.kinds.append(type(job))
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
            job.progress = lambda done, total, message=None, job=job: self._progressed.emit(job, message or "")
            try:
                job.result = job.run(self.state)
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
