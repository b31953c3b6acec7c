"""Adapting a model to the user's scene in minutes on a CPU, with a hold-out check.

``adapt(model, dataset, minutes)`` fine-tunes ``model`` on per-building windows (``dataset``: one
sample per building, that building the target) with RITM's iterative click scheme and the
normalized focal loss, and keeps the weights that did best on buildings held out of training:

1. every k-th building is held out (k = 5 by default; smaller so at least ``min_holdout`` are,
   larger so at most ``max_holdout`` are: the check then stays short) and never trained on;
2. the hold-out check (:func:`holdout_scores`, the paper's simulated clicks, 10 clicks): NoC10@85
   and the mean IoU at clicks 1 and 3, before training;
3. training for the budget (time spent in training steps; the checks come on top), the check
   running again halfway and at the end (``checks``);
4. the best checkpoint by the check is returned with ``improved`` True only when it needs fewer
   clicks than the model before (or as many, with a higher mean IoU at clicks 1 and 3).

The recipe (:class:`AdaptRecipe`): a naive fine-tune of every layer at the default learning rate
made the model worse within minutes (issue 23), so here BatchNorm statistics stay frozen (a batch
of 4 small windows is no estimate of them), the backbone's early stages do not train, the rates
are low, and the windows are resized so a building is seen at the scale the shipped per-building
models were trained on. On a CPU with bf16 in hardware (AVX512-BF16 or AMX) the training passes
run under bf16 autocast (weights and Adam stay fp32): more steps in the same minutes
(``bench/bench_adapt_precision.py``). Measured on SpaceNet Rio (docs/evaluation.md, "Adapting to
the user's area"): 5 minutes of it did not make the default model better there either; the hold-out check
is what keeps such a run from being switched on.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Optional

import numpy as np

from ritm_qgis.core.cancel import Cancelled
from ritm_qgis.core.errors import RitmError
from ritm_qgis.core.progress import Progress
from ritm_qgis.engine.data.datasets import Dataset, Sample

__all__ = ["AdaptRecipe", "HoldoutScore", "AdaptResult", "holdout_split", "holdout_scores", "adapt",
           "set_trainable", "training_autocast", "PARTS", "PRECISIONS", "MIN_BUILDINGS"]

# what trains: the click branch and the heads; + HRNet's last stage; or everything
PARTS = ("head", "last", "all")
_HEAD = ("conv3x3_ocr", "ocr_gather_head", "ocr_distri_head", "cls_head", "aux_head")
_LAST = _HEAD + ("stage4", "transition3")
MIN_BUILDINGS = 10  # 5 held out + 5 to train on
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass
class AdaptRecipe:
    part: str = "last"
    lr: float = 5e-5
    backbone_lr_mult: float = 0.1
    freeze_bn: bool = True
    window_px: Optional[int] = 160  # resize each building window to this longer side (None: native)
    crop_size: tuple = (160, 160)
    batch_size: int = 4
    max_next_clicks: int = 3
    aerial_aug: bool = True
    scale: tuple = (0.75, 1.25)
    seed: int = 0
    # "auto": the training passes in bfloat16 (autocast, weights and Adam in fp32) on a CPU that has
    # bf16 in hardware, where a step takes about two thirds of the fp32 one; "fp32"; "bf16"
    precision: str = "auto"

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class HoldoutScore:
    noc10_85: float
    iou_at_1: float
    iou_at_3: float
    n_buildings: int

    def better_than(self, other: "HoldoutScore") -> bool:
        if not math.isclose(self.noc10_85, other.noc10_85, abs_tol=1e-9):
            return self.noc10_85 < other.noc10_85
        return self.iou_at_1 + self.iou_at_3 > other.iou_at_1 + other.iou_at_3 + 1e-9

    def as_dict(self) -> dict:
        return {"noc10@85": round(self.noc10_85, 3), "mean_iou_click1": round(self.iou_at_1, 3),
                "mean_iou_click3": round(self.iou_at_3, 3), "buildings": self.n_buildings}

    def text(self) -> str:
        return f"NoC10@85 {self.noc10_85:.2f}, IoU at click 1/3 {self.iou_at_1:.2f}/{self.iou_at_3:.2f}"


@dataclass
class AdaptResult:
    model: object  # the best network (the base model itself when nothing beat it)
    before: HoldoutScore
    after: HoldoutScore  # the best checkpoint's score
    improved: bool
    steps: int
    seconds: float
    n_train: int
    n_holdout: int
    checks: list = field(default_factory=list)  # (step, HoldoutScore) per check after training began
    recipe: AdaptRecipe = field(default_factory=AdaptRecipe)
    cancelled: bool = False
    last_model: object = None  # the network at the end of training (measurements)
    snapshots: dict = field(default_factory=dict)  # minutes -> (steps, network) for ``keep_at`` (measurements)

    def summary(self) -> str:
        verdict = "better" if self.improved else "not better"
        return (f"hold-out of {self.n_holdout} buildings: before {self.before.text()}; after {self.after.text()} "
                f"({verdict}; {self.steps} steps on {self.n_train} buildings in {self.seconds / 60:.1f} min)")

    def metadata(self) -> dict:
        return {"before": self.before.as_dict(), "after": self.after.as_dict(), "improved": self.improved,
                "steps": self.steps, "seconds": round(self.seconds, 1), "train_buildings": self.n_train,
                "holdout_buildings": self.n_holdout, "recipe": self.recipe.as_dict(),
                "checks": [{"step": s, **h.as_dict()} for s, h in self.checks]}


def holdout_split(n: int, every: int = 5, min_holdout: int = 5, max_holdout: int = 16):
    """(train indices, hold-out indices) of n buildings: every k-th held out (k from ``every``,
    adjusted so that between ``min_holdout`` and ``max_holdout`` are)."""
    if n < MIN_BUILDINGS:
        raise RitmError(f"Adapting needs at least {MIN_BUILDINGS} buildings ({min_holdout} are held out to "
                        f"check the result); there are {n}.")
    k = max(2, int(every))
    if n // k < min_holdout:
        k = max(2, n // min_holdout)
    if n // k > max_holdout:
        k = math.ceil(n / max_holdout)
    held = [i for i in range(n) if i % k == k - 1]
    held_set = set(held)
    return [i for i in range(n) if i not in held_set], held


def holdout_scores(model, dataset: Dataset, indices, max_clicks: int = 10, cancel=None) -> HoldoutScore:
    """NoC10@85 and the mean IoU at clicks 1 and 3 of ``model`` on the samples ``indices``."""
    import torch

    from ritm_qgis.engine.interactive.predictor import NetworkBackend, Predictor
    from ritm_qgis.engine.protocol.evaluation import evaluate
    from ritm_qgis.engine.protocol.noc import noc_report

    net = copy.deepcopy(model).float().to(memory_format=torch.contiguous_format)
    backend = NetworkBackend(net, device="cpu", optimize="none")
    res = evaluate(dataset, lambda: Predictor(backend), "holdout", max_clicks, batch_size=8, indices=indices,
                   cancel=cancel)
    rep = noc_report("holdout", res.iou_array, (0.85,))
    per_click = rep.mean_iou_per_click
    return HoldoutScore(rep.noc[0.85], per_click[0], per_click[min(2, len(per_click) - 1)], rep.n_samples)


def set_trainable(model, part: str, freeze_bn: bool = True) -> int:
    """Turn gradients on for ``part`` (see ``PARTS``) only; returns the number of trainable weights."""
    if part not in PARTS:
        raise RitmError(f"Unknown part '{part}'; use one of {', '.join(PARTS)}.")
    modules = {"head": _HEAD, "last": _LAST}.get(part)
    n = 0
    for name, p in model.named_parameters():
        parts = name.split(".")
        on = modules is None or parts[0] != "feature_extractor" or parts[1] in modules
        p.requires_grad_(on)
        n += p.numel() if on else 0
    return n


def training_autocast(precision: str):
    """A context factory for the training passes (None: plain fp32), see ``AdaptRecipe.precision``."""
    if precision not in PRECISIONS:
        raise RitmError(f"Unknown precision '{precision}'; use one of {', '.join(PRECISIONS)}.")
    if precision == "fp32":
        return None
    if precision == "auto":
        from ritm_qgis.engine.runtime.cpu_bf16 import native_bf16

        if not native_bf16():
            return None
    import torch

    return lambda: torch.autocast("cpu", dtype=torch.bfloat16)


def _train_mode(model, freeze_bn: bool) -> None:
    import torch

    model.train()
    if freeze_bn:
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.eval()


def _zoomed(dataset: Dataset, indices, longer_side: Optional[int]) -> Dataset:
    """The samples ``indices``, each window resized so its longer side is ``longer_side`` px."""
    import cv2

    def load(k):
        s = dataset[indices[k]]
        if not longer_side:
            return s
        h, w = s.gt.shape
        f = longer_side / max(h, w)
        size = (max(1, round(w * f)), max(1, round(h * f)))
        image = cv2.resize(np.ascontiguousarray(s.image[:, :, :3]), size, interpolation=cv2.INTER_LINEAR)
        gt = cv2.resize(s.gt.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
        ignore = None if s.ignore is None else cv2.resize(s.ignore.astype(np.uint8), size,
                                                          interpolation=cv2.INTER_NEAREST).astype(bool)
        return Sample(s.name, image, gt, ignore)

    return Dataset(dataset.name, [dataset.names[i] for i in indices], load)


def _batches(items, batch_size: int, seed: int):
    """Endless batches of ``items`` (a ClickDataset), reshuffled each pass."""
    import torch

    n = len(items)
    epoch = 0
    while True:
        items.set_epoch(epoch)
        order = np.random.default_rng([seed, epoch]).permutation(n)
        for b0 in range(0, n - batch_size + 1, batch_size):
            got = [items[int(i)] for i in order[b0:b0 + batch_size]]
            yield {k: torch.stack([g[k] for g in got]) for k in got[0]}
        epoch += 1


def adapt(model, dataset: Dataset, minutes: float, recipe: AdaptRecipe | None = None, *,
          every: int = 5, min_holdout: int = 5, max_holdout: int = 16, check_clicks: int = 10, checks: int = 2,
          max_steps: Optional[int] = None,
          progress: Progress | None = None, cancel: Callable[[], bool] | None = None,
          log: Callable[[str], None] | None = None, holdout: Optional[Dataset] = None,
          keep_at: tuple = ()) -> AdaptResult:
    """Fine-tune ``model`` (a network, not changed) on ``dataset`` for ``minutes`` of training (see the
    module doc); the hold-out checks (before, and ``checks`` times while training) come on top.

    ``holdout``: check on this dataset instead of holding buildings out of ``dataset`` (then every
    sample of ``dataset`` trains). progress(seconds spent, budget seconds, message); cancel() is polled
    between steps: a cancelled run returns the best weights checked so far (or the base model) with
    ``cancelled`` True. ``max_steps``: stop training there too (tests: a run that does not depend on
    the machine's speed; the checks then fall at half and all of the steps). ``keep_at``: minutes of
    training at which a copy of the network is kept in ``snapshots`` (one run gives the curve of gain
    against minutes; the rates have no schedule, so minute 2 of a 10-minute run is a 2-minute run).
    """
    import torch

    from .augment import Augment
    from .data import ClickDataset
    from .loop import iterative_inputs, param_groups
    from .losses import ritm_loss
    from .sampler import MultiPointSampler

    recipe = recipe or AdaptRecipe()
    if not (minutes > 0 and math.isfinite(minutes)):
        raise RitmError(f"The time budget must be a positive number of minutes, not {minutes}.")
    autocast = training_autocast(recipe.precision)
    recipe = replace(recipe, precision="bf16" if autocast else "fp32")  # what ran, for the provenance
    say = log or (lambda s: None)
    t0 = time.perf_counter()
    budget = minutes * 60.0

    trained = 0.0

    def tell(message):
        if progress is not None:
            progress(min(trained, budget), budget, message)

    if holdout is None:
        train_idx, held_idx = holdout_split(len(dataset), every, min_holdout, max_holdout)
        check_set = dataset
    else:
        train_idx, held_idx, check_set = list(range(len(dataset))), list(range(len(holdout))), holdout
    torch.manual_seed(recipe.seed)
    net = copy.deepcopy(model).float()
    tell(f"checking the model on {len(held_idx)} held-out buildings")
    t_check = time.perf_counter()
    before = holdout_scores(net, check_set, held_idx, check_clicks, cancel)
    t_check = time.perf_counter() - t_check
    say(f"before: {before.text()} ({t_check:.0f} s)")

    aug = Augment(crop_size=tuple(recipe.crop_size), scale=tuple(recipe.scale),
                  vflip=0.5 if recipe.aerial_aug else 0.0, rot90=bool(recipe.aerial_aug),
                  min_object_area=10)
    items = ClickDataset([_zoomed(dataset, train_idx, recipe.window_px)], aug,
                         MultiPointSampler(24, 0.8), seed=recipe.seed)
    if len(items) < recipe.batch_size:
        raise RitmError(f"Only {len(items)} buildings are left to train on; accept more buildings first.")
    set_trainable(net, recipe.part)
    say(f"training passes in {'bfloat16' if autocast else 'fp32'}")
    optimizer = torch.optim.Adam(param_groups(net, recipe.lr, recipe.backbone_lr_mult), lr=recipe.lr)
    # the budget is training time; the checks come on top (each as long as the first)
    train_time = budget
    check_at = [train_time * (j + 1) / checks for j in range(max(1, checks))]
    best_state, best, checks_done, step = None, before, [], 0
    rng = np.random.default_rng([recipe.seed, 7])
    batches = _batches(items, recipe.batch_size, recipe.seed)
    cancelled = False
    pending, snapshots = sorted(float(m) for m in keep_at if m <= minutes), {}

    def check():
        nonlocal best_state, best
        score = holdout_scores(net, check_set, held_idx, check_clicks, cancel)
        checks_done.append((step, score))
        say(f"step {step}: {score.text()}")
        if score.better_than(best):
            best, best_state = score, copy.deepcopy(net.state_dict())

    step_at = [None] * len(check_at) if not max_steps else \
        [max(1, round(max_steps * (j + 1) / len(check_at))) for j in range(len(check_at))]
    for at, last_step in zip(check_at, step_at):
        while trained < at and (last_step is None or step < last_step):
            t_step = time.perf_counter()
            if cancel is not None and cancel():
                cancelled = True
                break
            batch = next(batches)
            _train_mode(net, recipe.freeze_bn)
            num_iters = int(rng.integers(0, recipe.max_next_clicks + 1))
            net_input, points = iterative_inputs(net, batch["image"], batch["label"], batch["points"], num_iters, rng,
                                                 autocast_ctx=autocast)
            if recipe.freeze_bn:
                _train_mode(net, True)
            with autocast() if autocast else contextlib.nullcontext():
                output = net(net_input, points)
            loss, _ = ritm_loss({k: v if v is None else v.float() for k, v in output.items()}, batch["label"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            trained += time.perf_counter() - t_step
            while pending and pending[0] * 60.0 <= trained:
                snapshots[pending.pop(0)] = (step, copy.deepcopy(net).eval())
            tell(f"step {step}, loss {float(loss.detach()):.3f}")
        if cancelled:
            break
        tell(f"checking step {step} on the held-out buildings")
        net.eval()
        try:
            check()
        except Cancelled:
            cancelled = True
            break
    last = copy.deepcopy(net).eval()
    result_model = model
    if best_state is not None:
        net.load_state_dict(best_state)
        result_model = net.eval()
        for p in net.parameters():
            p.requires_grad_(False)
    seconds = time.perf_counter() - t0
    tell("done")
    return AdaptResult(result_model, before, best, best is not before, step, seconds, len(train_idx),
                       len(held_idx), checks_done, recipe, cancelled, last, snapshots)
