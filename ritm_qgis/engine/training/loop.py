"""RITM's iterative training loop: ``train(config, progress, cancel) -> checkpoint path``.

One training step (RITM's ``ISTrainer.batch_forward``, written anew):

1. the batch's initial clicks come from the ``MultiPointSampler`` (in the data loader);
2. with no gradient and the network in eval mode, ``r`` extra passes are made, ``r`` drawn
   uniformly from ``0..max_next_clicks`` (3): each pass feeds back the previous probability
   map as the 4th channel and adds one click on the largest error (``next_points``);
3. the training pass sees the image, the last previous mask and all clicks; the loss is the
   normalized focal loss on ``instances`` + 0.4 x BCE on ``instances_aux``;
4. Adam (lr 5e-4, betas 0.9/0.999, eps 1e-8), the HRNet backbone at 0.1 x lr (the OCR head,
   the output heads and the click-map branch at full lr), MultiStepLR over epochs.

On CUDA the passes run under fp16 autocast with a gradient scaler and channels_last memory
(``amp``/``channels_last``); on the CPU everything is fp32.

Files in ``config.out`` (rank 0 writes them):

- ``last.pth``  the project's checkpoint format (``ritm_qgis.models.save_checkpoint``) with the
  metadata: regime, init, data, epochs done, hyper-parameters, validation NoC history;
- ``last_state.pth``  optimizer / scheduler / scaler state and counters, to resume;
- ``best.pth``  the weights with the lowest validation NoC20@85 so far (when validating);
- ``history.json``  one line of losses and validation metrics per epoch.

A run whose ``out`` already holds ``last.pth`` + ``last_state.pth`` resumes from them (an epoch
cut short is started again). Ctrl+C and ``cancel()`` save the current weights first.
"""

from __future__ import annotations

import copy
import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ritm_qgis.core.errors import RitmError
from ritm_qgis.core.progress import Progress
from ritm_qgis.engine.data.datasets import Dataset
from ritm_qgis.engine.data.registry import open_dataset

from .data import select

__all__ = ["TrainConfig", "train", "Trainer", "param_groups", "iterative_inputs", "HEAD_MODULES"]

# Parts of ``feature_extractor`` trained at full lr (RITM resets their LRMult to 1).
HEAD_MODULES = ("conv3x3_ocr", "ocr_gather_head", "ocr_distri_head", "cls_head", "aux_head")


@dataclass
class TrainConfig:
    train_data: list  # typed dataset specs (ritm_qgis.engine.data.specs)
    out: str
    val_data: list = field(default_factory=list)
    include: Optional[str] = None  # regex on training sample names
    exclude: Optional[str] = None
    val_include: Optional[str] = None
    val_exclude: Optional[str] = None
    init: str = "none"  # 'none' (from scratch), a weights name or a checkpoint file (fine-tune)
    arch: str = "hrnet18s"  # used with init='none'
    regime: Optional[str] = None  # label stored in the metadata; default from init
    epochs: int = 10
    epoch_len: Optional[int] = None  # items per epoch (all ranks together); default: the data size
    batch_size: int = 8  # per process
    lr: float = 5e-4
    backbone_lr_mult: float = 0.1
    milestones: tuple = ()  # epochs at which lr *= lr_gamma
    lr_gamma: float = 0.1
    crop_size: tuple = (320, 480)
    scale: tuple = (0.75, 1.40)
    aerial_aug: bool = False  # vertical flips and 90-degree rotations too
    max_num_points: int = 24
    prob_gamma: float = 0.8
    max_next_clicks: int = 3
    prev_mask_drop_prob: float = 0.0
    aux_weight: float = 0.4
    val_max_clicks: int = 20
    val_limit: Optional[int] = None
    val_every: int = 1
    device: str = "auto"
    amp: bool = True  # CUDA only
    channels_last: bool = True  # CUDA only
    num_workers: int = 0
    cache: bool = True
    seed: int = 0
    resume: bool = True
    max_steps: Optional[int] = None  # stop after this many optimizer steps in total (tests, benchmarks)
    minutes: Optional[float] = None  # stop training after this much time; the epoch cut short is validated

    def as_metadata(self) -> dict:
        d = asdict(self)
        d["train_data"], d["val_data"] = [str(s) for s in self.train_data], [str(s) for s in self.val_data]
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


# ----------------------------------------------------------------------------- pieces


def param_groups(model, lr: float, backbone_lr_mult: float):
    """Adam groups: HRNet backbone at lr x mult; OCR/heads and the click branch at lr."""
    backbone, rest = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        is_backbone = name.startswith("feature_extractor.") and not name.split(".")[1] in HEAD_MODULES
        (backbone if is_backbone else rest).append(p)
    return [{"params": backbone, "lr": lr * backbone_lr_mult, "name": "backbone"},
            {"params": rest, "lr": lr, "name": "heads"}]


def iterative_inputs(model, image, label, points, num_iters: int, rng, autocast_ctx=None):
    """RITM's no-grad click simulation: returns (4-channel input, points) for the training pass.

    ``model`` is the bare network (not the DDP wrapper); it is put in eval mode for the passes
    and back in train mode afterwards.
    """
    import contextlib

    import torch

    from .sampler import next_points

    prev = torch.zeros_like(image[:, :1])
    if num_iters <= 0:
        return torch.cat([image, prev], dim=1), points
    was_training = model.training
    model.eval()
    label_np = label[:, 0].detach().cpu().numpy()
    with torch.no_grad():
        for k in range(num_iters):
            with autocast_ctx() if autocast_ctx else contextlib.nullcontext():
                logits = model(torch.cat([image, prev], dim=1), points)["instances"]
            prev = torch.sigmoid(logits.float())
            new = next_points(prev[:, 0].cpu().numpy(), label_np, points.cpu().numpy(), k + 1, rng)
            points = torch.from_numpy(new).to(points.device)
    model.train(was_training)
    return torch.cat([image, prev], dim=1), points


def _scheduler_state(s) -> dict:
    st = s.state_dict()
    st["milestones"] = {int(k): int(v) for k, v in dict(st.get("milestones", {})).items()}
    return st


def _load_scheduler_state(s, st: dict) -> None:
    from collections import Counter

    st = dict(st)
    st["milestones"] = Counter({int(k): int(v) for k, v in st.get("milestones", {}).items()})
    s.load_state_dict(st)


def _concat(datasets):
    if len(datasets) == 1:
        return datasets[0]
    index = [(d, i) for d in range(len(datasets)) for i in range(len(datasets[d]))]
    return Dataset("+".join(d.name for d in datasets), [datasets[d].names[i] for d, i in index],
                   lambda k: datasets[index[k][0]][index[k][1]])


def load_datasets(specs, include=None, exclude=None):
    if not specs:
        raise RitmError("no training data given; pass at least one dataset spec")
    return [select(open_dataset(s), include, exclude) for s in specs]


# ----------------------------------------------------------------------------- the trainer


class Trainer:
    """Holds the model, optimizer and data of one run; ``train()`` below drives it."""

    def __init__(self, config: TrainConfig):
        import torch

        from ritm_qgis.engine.runtime.device import resolve_device

        from . import distributed as dist_mod
        from .augment import Augment
        from .data import ClickDataset
        from .sampler import MultiPointSampler

        self.cfg = cfg = config
        if cfg.epochs < 1 or cfg.batch_size < 1:
            raise RitmError("epochs and batch size must be at least 1")
        if cfg.max_next_clicks < 0 or cfg.max_next_clicks >= cfg.max_num_points:
            raise RitmError("max_next_clicks must be in 0..max_num_points-1")
        device = resolve_device(cfg.device)
        self.dist = dist_mod.setup(device.type)
        if self.dist.enabled and device.type == "cuda":
            device = torch.device("cuda", self.dist.local_rank)
            torch.cuda.set_device(device)
        self.device = device
        self.use_amp = bool(cfg.amp and device.type == "cuda")
        self.channels_last = bool(cfg.channels_last and device.type == "cuda")
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        self.out = Path(cfg.out)
        self.out.mkdir(parents=True, exist_ok=True)

        # data
        self.train_sets = load_datasets(cfg.train_data, cfg.include, cfg.exclude)
        aug = Augment(crop_size=tuple(cfg.crop_size), scale=tuple(cfg.scale),
                      vflip=0.5 if cfg.aerial_aug else 0.0, rot90=bool(cfg.aerial_aug))
        sampler = MultiPointSampler(cfg.max_num_points, cfg.prob_gamma)
        self.data = ClickDataset(self.train_sets, aug, sampler, cfg.epoch_len, cfg.seed, cache=cfg.cache)
        per_step = cfg.batch_size * self.dist.world_size
        if len(self.data) < per_step:
            raise RitmError(f"an epoch of {len(self.data)} items is smaller than one step "
                            f"({cfg.batch_size} x {self.dist.world_size} processes); raise --epoch-len "
                            "or lower --batch-size")
        self.val_set = None
        if cfg.val_data:
            self.val_set = _concat(load_datasets(cfg.val_data, cfg.val_include, cfg.val_exclude))

        # model
        self.model, self.init_info = self._build_model()
        self.model.to(device)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.model.train()
        self.optimizer = torch.optim.Adam(param_groups(self.model, cfg.lr, cfg.backbone_lr_mult),
                                          lr=cfg.lr, betas=(0.9, 0.999), eps=1e-8)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(
            self.optimizer, milestones=[int(m) for m in cfg.milestones], gamma=cfg.lr_gamma)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.epoch = 0  # completed epochs
        self.step = 0
        self.history: list = []
        self.best_noc = math.inf
        self.replicas = None  # filled at the end: every rank's parameter digest
        self.resumed = self._maybe_resume()
        self.net = self.model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.net = DDP(self.model, device_ids=[device.index] if device.type == "cuda" else None)

    # ------------------------------------------------------------------ setup helpers
    def _build_model(self):
        from ritm_qgis.models import create_model, load_model

        init = (self.cfg.init or "none").strip()
        if init.lower() in ("none", "scratch", ""):
            return create_model(self.cfg.arch), {"init": "none", "arch": self.cfg.arch}
        model, info = load_model(init, device="cpu")
        for p in model.parameters():
            p.requires_grad_(True)
        return model, {"init": init, "arch": info.arch, "init_weights_sha256": info.weights_sha256,
                       "init_metadata_regime": (info.metadata or {}).get("regime")}

    def _maybe_resume(self) -> bool:
        import torch

        from ritm_qgis.models import read_checkpoint

        last, state_path = self.out / "last.pth", self.out / "last_state.pth"
        if not (self.cfg.resume and last.is_file() and state_path.is_file()):
            return False
        data = read_checkpoint(last)
        if data.get("model_config") != self.model.config.as_dict():
            raise RitmError(f"'{self.out}' holds a run of another architecture ({data.get('arch')}); "
                            "use a new output folder or turn resuming off.")
        state = {k: v.float() if v.is_floating_point() else v for k, v in data["state_dict"].items()}
        self.model.load_state_dict(state)
        st = torch.load(str(state_path), map_location="cpu", weights_only=True)
        self.optimizer.load_state_dict(st["optimizer"])
        _load_scheduler_state(self.scheduler, st["scheduler"])
        if st.get("scaler") and self.use_amp:
            self.scaler.load_state_dict(st["scaler"])
        self.epoch, self.step = int(st["epoch"]), int(st["step"])
        self.history = json.loads(st.get("history", "[]"))
        self.best_noc = float(st.get("best_noc", math.inf))
        return True

    def regime(self) -> str:
        if self.cfg.regime:
            return self.cfg.regime
        return "scratch" if self.init_info["init"] == "none" else "finetune"

    def metadata(self, complete: bool) -> dict:
        cfg = self.cfg
        last_val = next((h["validation"] for h in reversed(self.history) if h.get("validation")), None)
        return {
            "regime": self.regime(),
            "init": self.init_info,
            "training_data": {"specs": [str(s) for s in cfg.train_data], "include": cfg.include, "exclude": cfg.exclude,
                              "samples": self.data.n_samples},
            "validation_data": {"specs": [str(s) for s in cfg.val_data], "include": cfg.val_include,
                                "exclude": cfg.val_exclude, "limit": cfg.val_limit} if cfg.val_data else None,
            "epochs": self.epoch,
            "epochs_planned": cfg.epochs,
            "steps": self.step,
            "complete": complete,
            "validation": last_val,
            "history": self.history,
            "hyperparameters": cfg.as_metadata(),
            "device": str(self.device),
            "world_size": self.dist.world_size,
            "amp": self.use_amp,
            "replicas": self.replicas,
        }

    # ------------------------------------------------------------------ saving
    def save(self, complete: bool = False) -> Path:
        """Write last.pth + last_state.pth (rank 0; other ranks just return the path)."""
        import torch

        from ritm_qgis.core.atomic import atomic_path
        from ritm_qgis.models import save_checkpoint

        last = self.out / "last.pth"
        if not self.dist.is_main:
            return last
        save_checkpoint(last, self.model, metadata=self.metadata(complete))
        state = {
            "epoch": self.epoch,
            "step": self.step,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": _scheduler_state(self.scheduler),
            "scaler": self.scaler.state_dict() if self.use_amp else None,
            "history": json.dumps(self.history),
            "best_noc": self.best_noc if math.isfinite(self.best_noc) else 1e9,
        }
        with atomic_path(str(self.out / "last_state.pth"), suffix=".tmp") as tmp:
            torch.save(state, tmp)
        return last

    # ------------------------------------------------------------------ steps
    def autocast(self):
        import torch

        return torch.autocast("cuda", dtype=torch.float16, enabled=self.use_amp)

    def train_step(self, batch, rng) -> dict:
        import torch

        from .losses import ritm_loss

        image = batch["image"].to(self.device, non_blocking=True)
        label = batch["label"].to(self.device, non_blocking=True)
        points = batch["points"].to(self.device, non_blocking=True)
        num_iters = int(rng.integers(0, self.cfg.max_next_clicks + 1))
        net_input, points = iterative_inputs(self.model, image, label, points, num_iters, rng,
                                             self.autocast if self.use_amp else None)
        if self.cfg.prev_mask_drop_prob > 0 and num_iters > 0:
            drop = torch.from_numpy(rng.random(image.shape[0]) < self.cfg.prev_mask_drop_prob).to(self.device)
            net_input[drop, 3:] = 0
        if self.channels_last:
            net_input = net_input.contiguous(memory_format=torch.channels_last)
        with self.autocast():
            out = self.net(net_input, points)
        loss, parts = ritm_loss(out, label, self.cfg.aux_weight)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.step += 1
        return {"loss": float(loss.detach()), **{k: float(v.detach()) for k, v in parts.items()},
                "extra_clicks": num_iters}

    def validate(self) -> Optional[dict]:
        """NoC20@85/90 of the current weights on the held-out set (rank 0)."""
        from ritm_qgis.engine.interactive.predictor import NetworkBackend, Predictor
        from ritm_qgis.engine.protocol.evaluation import evaluate
        from ritm_qgis.engine.protocol.noc import noc_report

        if self.val_set is None:
            return None
        model = copy.deepcopy(self.model).float().to(memory_format=__import__("torch").contiguous_format)
        # the network as trained, run unmodified (no BatchNorm folding or oneDNN prepacking)
        backend = NetworkBackend(model, device=self.device, optimize="none")
        n = len(self.val_set) if not self.cfg.val_limit else min(len(self.val_set), self.cfg.val_limit)
        t0 = time.perf_counter()
        res = evaluate(self.val_set, lambda: Predictor(backend), "val", self.cfg.val_max_clicks, batch_size=8,
                       indices=range(n))
        rep = noc_report("val", res.iou_array, (0.85, 0.9))
        return {"noc@85": rep.noc[0.85], "noc@90": rep.noc[0.9], "avg_iou_best": rep.avg_iou_best,
                "n_samples": rep.n_samples, "max_clicks": self.cfg.val_max_clicks,
                "seconds": round(time.perf_counter() - t0, 1)}


def train(config: TrainConfig, progress: Optional[Progress] = None,
          cancel: Optional[Callable[[], bool]] = None, log: Optional[Callable[[str], None]] = None) -> Path:
    """Train (or fine-tune, or resume) as ``config`` says; returns the path of the last checkpoint.

    progress(steps done, total steps, message) after each step; cancel() polled before each step: when it
    returns True the weights are saved and the path returned (metadata ``complete: false``;
    run again with the same ``out`` to resume). Ctrl+C saves too, then re-raises.
    """
    from torch.utils.data import DataLoader, DistributedSampler

    from ritm_qgis.models import save_checkpoint, weights_sha256

    from . import distributed as dist_mod

    trainer = Trainer(config)
    cfg, info = trainer.cfg, trainer.dist
    say = (log or (lambda s: None)) if info.is_main else (lambda s: None)
    if trainer.resumed:
        say(f"resuming from {trainer.out / 'last.pth'} after epoch {trainer.epoch} (step {trainer.step})")
    sampler = DistributedSampler(trainer.data, num_replicas=info.world_size, rank=info.rank, shuffle=True,
                                 seed=cfg.seed, drop_last=True)
    loader = DataLoader(trainer.data, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.num_workers,
                        drop_last=True, pin_memory=trainer.device.type == "cuda",
                        persistent_workers=False)
    steps_per_epoch = len(loader)
    total = cfg.epochs * steps_per_epoch
    if cfg.max_steps:
        total = min(total, cfg.max_steps)
    deadline = time.perf_counter() + cfg.minutes * 60.0 if cfg.minutes else None
    out_of_time = False
    try:
        while trainer.epoch < cfg.epochs and not (cfg.max_steps and trainer.step >= cfg.max_steps) \
                and not out_of_time:
            epoch = trainer.epoch
            sampler.set_epoch(epoch)
            trainer.data.set_epoch(epoch)
            rng = np.random.default_rng([cfg.seed, info.rank, epoch, 7])
            sums, n, t0 = {}, 0, time.perf_counter()
            for batch in loader:
                if cancel is not None and cancel():
                    say("cancelled: saving the current weights")
                    return trainer.save(complete=False)
                parts = trainer.train_step(batch, rng)
                for k, v in parts.items():
                    sums[k] = sums.get(k, 0.0) + v
                n += 1
                if progress is not None and info.is_main:
                    progress(min(trainer.step, total), total,
                             f"epoch {epoch + 1}/{cfg.epochs} step {n}/{steps_per_epoch} loss {parts['loss']:.4f}")
                if cfg.max_steps and trainer.step >= cfg.max_steps:
                    break
                if deadline is not None and time.perf_counter() >= deadline:
                    out_of_time = True
                    say(f"time budget of {cfg.minutes:g} min reached after step {trainer.step}")
                    break
            finished = n == steps_per_epoch
            if finished:
                trainer.epoch += 1
                trainer.scheduler.step()
            record = {"epoch": trainer.epoch if finished else epoch, "steps": n,
                      "seconds": round(time.perf_counter() - t0, 1),
                      "lr": [g["lr"] for g in trainer.optimizer.param_groups],
                      **{f"mean_{k}": v / max(n, 1) for k, v in sums.items()}}
            if info.is_main and cfg.val_data and ((finished and trainer.epoch % max(1, cfg.val_every) == 0)
                                                  or (out_of_time and n > 0)):
                record["validation"] = trainer.validate()
            if info.is_main:
                trainer.history.append(record)
                say(json.dumps(record))
                noc = (record.get("validation") or {}).get("noc@85")
                path = trainer.save(complete=False)
                if noc is not None and noc < trainer.best_noc:
                    trainer.best_noc = noc
                    save_checkpoint(trainer.out / "best.pth", trainer.model, metadata=trainer.metadata(False))
                    trainer.save(complete=False)  # records best_noc for resuming
                from ritm_qgis.core.atomic import write_text_atomically

                write_text_atomically(str(trainer.out / "history.json"), json.dumps(trainer.history, indent=1))
            dist_mod.barrier(info)
    except KeyboardInterrupt:
        if info.is_main:
            path = trainer.save(complete=False)
            say(f"interrupted: weights saved to {path}; run the same command again to resume")
        raise
    # replicas must agree on every parameter (buffers are rank 0's, broadcast by DDP each step)
    digest = weights_sha256({k: p.detach() for k, p in trainer.model.named_parameters()})
    digests = dist_mod.all_gather_objects(info, digest)
    path = trainer.out / "last.pth"
    if info.is_main:
        trainer.replicas = {"parameter_sha256": digests, "identical": len(set(digests)) == 1}
        path = trainer.save(complete=trainer.epoch >= cfg.epochs)
    dist_mod.barrier(info)
    dist_mod.cleanup()
    return path
