"""The paper's evaluation loop: simulated clicks on every sample, IoU after each click.

At each click step, every unfinished sample of a batch gets its next click from the simulated
user (``clicker``), then all of them go through the network together (``predict_batch``: one
forward pass per input shape; zoom-in crops are resized to a common size, so they share one).
A sample stops early only when its prediction has no error left (no click is possible, so its
IoU stays the same: carrying it forward is exact) or, when ``stop_iou`` is set (the demo), once
it reaches that IoU; its remaining entries are then NaN and the row is not for NoC tables.

Beside the IoU, each click's boundary F-score at 1 and 2 pixels is recorded (``bf1``, ``bf2``).
A session with ``set_sample`` (``as_drawn.DrawnSession``) gets the whole sample, not only its
image, and one with ``batched = False`` gets its clicks one by one.

Samples without any foreground get an all-NaN row, as in the paper's arrays; they cost nothing.
Timing follows RITM: seconds per click = total elapsed time / total number of clicks made.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ritm_qgis.core.cancel import Cancelled, check_cancel
from ritm_qgis.core.progress import Progress
from ritm_qgis.core.memory import release_free_memory
from ritm_qgis.core.threads import map_samples
from ritm_qgis.engine.data.datasets import Dataset, Sample
from ritm_qgis.engine.protocol.clicker import ClickHistory, next_click
from ritm_qgis.engine.protocol.metrics import boundary_f, mask_iou

__all__ = ["Cancelled", "EvalResult", "evaluate", "Annotation", "annotate", "shard", "merge_results"]


@dataclass
class EvalResult:
    model: str
    dataset: str
    max_clicks: int
    names: list = field(default_factory=list)
    ious: list = field(default_factory=list)  # one (max_clicks,) float array per sample
    clicks: list = field(default_factory=list)  # one list of Click per sample
    seconds: float = 0.0
    bf1: list = field(default_factory=list)  # one (max_clicks,) array per sample: boundary F at 1 px
    bf2: list = field(default_factory=list)  # and at 2 px

    @property
    def iou_array(self) -> np.ndarray:
        if not self.ious:
            return np.zeros((0, self.max_clicks), np.float64)
        return np.stack(self.ious).astype(np.float64)

    def boundary_array(self, tolerance_px: int) -> np.ndarray:
        rows = self.bf1 if tolerance_px == 1 else self.bf2
        if not rows:
            return np.zeros((0, self.max_clicks), np.float64)
        return np.stack(rows).astype(np.float64)

    @property
    def n_clicks(self) -> int:
        return sum(len(c) for c in self.clicks)

    @property
    def seconds_per_click(self) -> float:
        return self.seconds / self.n_clicks if self.n_clicks else float("nan")


@dataclass
class _Run:
    """One sample being evaluated."""

    sample: Sample
    session: object
    history: ClickHistory
    ious: np.ndarray
    done: bool = False
    bf1: np.ndarray | None = None
    bf2: np.ndarray | None = None


def _step(runs: list[_Run], k: int, stop_iou: float | None):
    """Click k+1 on every unfinished run: simulated clicks, one batched prediction, IoUs."""
    from ritm_qgis.engine.interactive.predictor import predict_batch

    def user_click(run):  # full-size distance transforms, as RITM: float ties break as in its evaluation
        s = run.sample
        return next_click(s.gt, run.session.mask, s.ignore, run.history.not_clicked)

    steps = []
    for run, click in zip(runs, map_samples(user_click, runs)):
        if click is None:  # perfect already: nothing left to click, the IoU stays
            run.ious[k:] = run.ious[k - 1] if k else 1.0
            run.bf1[k:] = run.bf1[k - 1] if k else 1.0
            run.bf2[k:] = run.bf2[k - 1] if k else 1.0
            run.done = True
            continue
        steps.append((run, click))
    if not steps:
        return
    first = steps[0][0].session
    if getattr(first, "batched", None) is not False and first.backend.is_network:
        preds = predict_batch([(run.session, click) for run, click in steps])
    else:
        preds = [run.session.add_click(click.row, click.col, click.is_positive) for run, click in steps]

    def sample_iou(step_and_pred):
        (run, _), pred = step_and_pred
        s = run.sample
        return (float(mask_iou(s.gt, pred.mask, s.ignore)), boundary_f(s.gt, pred.mask, 1, s.ignore),
                boundary_f(s.gt, pred.mask, 2, s.ignore))

    scores = map_samples(sample_iou, zip(steps, preds))
    for (run, click), (iou, bf1, bf2) in zip(steps, scores):
        run.history.add(click)
        run.ious[k] = iou
        run.bf1[k], run.bf2[k] = bf1, bf2
        if stop_iou is not None and run.ious[k] >= stop_iou:
            run.done = True


def _give_sample(session, sample) -> None:
    if hasattr(session, "set_sample"):
        session.set_sample(sample)
    else:
        session.set_image(sample.image)


def evaluate(dataset: Dataset, make_session: Callable[[], object], model_name: str = "model",
             max_clicks: int = 20, batch_size: int = 1, stop_iou: float | None = None,
             progress: Progress | None = None,
             cancel: Callable[[], bool] | None = None,
             on_batch: Callable[[EvalResult], None] | None = None,
             indices=None) -> EvalResult:
    """Evaluate one model on a dataset.

    make_session: returns a fresh ``Predictor`` (all sharing one backend). progress(done, total)
    is called after each batch with sample counts; cancel() is polled between click steps and
    raises ``Cancelled`` (the batches already finished were handed to ``on_batch``).
    """
    if max_clicks < 1:
        raise ValueError("max_clicks must be at least 1")
    batch_size = max(1, int(batch_size))
    indices = list(range(len(dataset))) if indices is None else list(indices)
    result = EvalResult(model_name, dataset.name, max_clicks)
    start = time.perf_counter()
    for b0 in range(0, len(indices), batch_size):
        runs, order = [], []
        for i in indices[b0:b0 + batch_size]:
            sample = dataset[i]
            ious = np.full(max_clicks, np.nan)
            run = _Run(sample, None, ClickHistory(sample.gt.shape), ious, bf1=ious.copy(), bf2=ious.copy())
            if sample.gt.any():
                run.session = make_session()
                _give_sample(run.session, sample)
                runs.append(run)
            order.append(run)
        for k in range(max_clicks):
            if cancel is not None and cancel():
                result.seconds = time.perf_counter() - start
                raise Cancelled()
            active = [r for r in runs if not r.done]
            if not active:
                break
            _step(active, k, stop_iou)
        for run in order:
            result.names.append(run.sample.name)
            result.ious.append(run.ious)
            result.bf1.append(run.bf1)
            result.bf2.append(run.bf2)
            result.clicks.append(list(run.history.clicks))
            if hasattr(run.session, "close"):
                run.session.close()
        runs = order = active = run = None  # this batch's sessions and their maps, freed before the trim
        release_free_memory()  # each batch's inputs have new sizes: keep the heap from piling up their memory
        result.seconds = time.perf_counter() - start
        if on_batch is not None:
            on_batch(result)
        if progress is not None:
            progress(len(result.names), len(indices))
    return result


@dataclass
class Annotation:
    """The demo's outcome on one image: the clicks made, the IoU after each, the final maps."""

    clicks: list
    ious: list
    prob: np.ndarray
    mask: np.ndarray

    def boundary_array(self, tolerance_px: int) -> np.ndarray:
        rows = self.bf1 if tolerance_px == 1 else self.bf2
        if not rows:
            return np.zeros((0, self.max_clicks), np.float64)
        return np.stack(rows).astype(np.float64)

    @property
    def n_clicks(self) -> int:
        return len(self.clicks)


def annotate(sample: Sample, session, target_iou: float = 0.9, max_clicks: int = 20,
             progress: Progress | None = None,
             cancel: Callable[[], bool] | None = None) -> Annotation:
    """The paper's demo: simulated clicks on one image until ``target_iou`` or ``max_clicks``.

    progress(clicks made, max_clicks) after each click; cancel() is polled before each click and
    raises ``Cancelled``.
    """
    if not sample.gt.any():
        raise ValueError("the target mask has no foreground pixel; there is nothing to annotate")
    _give_sample(session, sample)
    nan = np.full(max_clicks, np.nan)
    run = _Run(sample, session, ClickHistory(sample.gt.shape), nan, bf1=nan.copy(), bf2=nan.copy())
    for k in range(max_clicks):
        if run.done:
            break
        check_cancel(cancel)
        _step([run], k, target_iou)
        if progress is not None:
            progress(k + 1, max_clicks)
    n = len(run.history)
    return Annotation(list(run.history.clicks), [float(v) for v in run.ious[:n]], session.prob, session.mask)


def shard(indices, rank: int, world_size: int) -> list:
    """The contiguous block of ``indices`` that process ``rank`` of ``world_size`` evaluates."""
    indices = list(indices)
    n = len(indices)
    start, stop = n * rank // world_size, n * (rank + 1) // world_size
    return indices[start:stop]


def merge_results(parts: list) -> EvalResult:
    """Results of contiguous shards, in rank order -> one result in dataset order.

    Elapsed time is the slowest shard's (they ran side by side); clicks add up.
    """
    first = parts[0]
    merged = EvalResult(first.model, first.dataset, first.max_clicks)
    for p in parts:
        merged.names += p.names
        merged.ious += p.ious
        merged.bf1 += p.bf1
        merged.bf2 += p.bf2
        merged.clicks += p.clicks
    merged.seconds = max(p.seconds for p in parts)
    return merged
