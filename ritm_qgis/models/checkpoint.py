"""Reading and writing checkpoints, RITM's published files and this project's own.

Two layouts are read through one function, :func:`load_model`:

* RITM's (``isegm/utils/misc.py``): ``{'state_dict': ..., 'config': {'class': dotted path,
  'params': {name: {'type', 'value', 'specified'}}}}``. The class path and parameters are only
  *read* and mapped onto our registry through an explicit allow-list; nothing named in the file
  is ever imported or called.
* ours: the same two keys (so RITM's own loader can read our files too) plus ``'format'``,
  ``'format_version'``, ``'arch'``, ``'model_config'`` and ``'metadata'`` (training data, regime,
  metrics, creation time, the SHA-256 of the weights, their stored dtype).

Files are opened with ``torch.load(weights_only=True)``: a file whose pickle needs anything
beyond tensors and plain containers is refused, never executed. Before that, the file must be laid
out as ``torch.save`` writes it, and after it no tensor may claim more bytes than the file holds
(:mod:`.checkpoint_guard`).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import os
import pickle
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import torch

from ritm_qgis.core.atomic import atomic_path
from ritm_qgis.core.errors import RitmError

from .checkpoint_guard import check_file_kind, check_tensor_sizes, unsafe_message
from .network import IMAGENET_MEAN, IMAGENET_STD, ModelConfig, RitmHRNet
from .registry import arch_name_for, count_parameters, create_model, get_config

__all__ = [
    "CheckpointInfo",
    "FORMAT",
    "FORMAT_VERSION",
    "RITM_HRNET_CLASS",
    "load_model",
    "resolve_checkpoint",
    "read_checkpoint",
    "inspect_checkpoint",
    "save_checkpoint",
    "save_ritm_checkpoint",
    "config_from_ritm",
    "ritm_config_dict",
    "weights_sha256",
]

FORMAT = "ritm_qgis.checkpoint"
FORMAT_VERSION = 1
RITM_HRNET_CLASS = "isegm.model.is_hrnet_model.HRNetModel"
_BATCHNORM_CLASS = "torch.nn.modules.batchnorm.BatchNorm2d"

# RITM's constructor defaults (ISModel + HRNetModel), used when a file's config omits a parameter.
_RITM_DEFAULTS: Dict[str, Any] = {
    "width": 48,
    "ocr_width": 256,
    "small": False,
    "backbone_lr_mult": 0.1,
    "norm_layer": _BATCHNORM_CLASS,
    "use_rgb_conv": True,
    "with_aux_output": False,
    "norm_radius": 260,
    "use_disks": False,
    "cpu_dist_maps": False,
    "clicks_groups": None,
    "with_prev_mask": False,
    "use_leaky_relu": False,
    "binary_prev_mask": False,
    "conv_extend": False,
    "norm_mean_std": (list(IMAGENET_MEAN), list(IMAGENET_STD)),
}
# The allow-list. Parameters that become fields of ModelConfig, with their accepted type:
_MAPPED = {
    "width": int,
    "ocr_width": int,
    "small": bool,
    "with_prev_mask": bool,
    "with_aux_output": bool,
    "norm_radius": (int, float),
    "use_leaky_relu": bool,
}
# Parameters whose value changes the architecture in a way this project does not implement:
# only the listed value is accepted.
_FIXED = {
    "use_rgb_conv": False,
    "use_disks": True,
    "clicks_groups": None,
    "binary_prev_mask": False,
    "conv_extend": False,
    "norm_layer": _BATCHNORM_CLASS,
}
# Training-only parameters without effect on inference.
_IGNORED = {"backbone_lr_mult", "cpu_dist_maps"}

PathLike = Union[str, os.PathLike]


@dataclass
class CheckpointInfo:
    """What :func:`load_model` learnt about a checkpoint."""

    arch: str  # registry name, or "custom" when no registered variant matches
    config: ModelConfig
    source_format: str  # "ritm" or "ritm_qgis"
    num_parameters: int
    weights_dtype: str
    weights_sha256: str
    path: Optional[str] = None
    metadata: Dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["config"] = self.config.as_dict()
        return d


# --------------------------------------------------------------------------- reading


def read_checkpoint(path: PathLike) -> dict:
    """``torch.load`` restricted to tensors and plain containers, with readable errors.

    The file's layout is checked first and its tensors' declared sizes right after the load, before
    anything copies them (:mod:`.checkpoint_guard`)."""
    path = Path(path)
    if not path.is_file():
        raise RitmError(f"Checkpoint file {str(path)!r} does not exist; check the path.")
    check_file_kind(path)
    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "weights only" in text.lower() or "global" in text.lower():  # the restricted reader refused an object
            named = re.search(r"GLOBAL ([\w.]+)", text)
            raise RitmError(unsafe_message(path.name, named.group(1) if named else None)) from None
        raise RitmError(_damaged(path.name, exc)) from None
    except Exception as exc:  # noqa: BLE001 - any failure of the restricted reader means unreadable
        raise RitmError(_damaged(path.name, exc)) from None
    check_tensor_sizes(data, path)
    if not isinstance(data, dict) or not isinstance(data.get("state_dict"), Mapping):
        raise RitmError(
            f"{path.name} is not a RITM checkpoint: expected a dict with a 'state_dict' entry."
        )
    return data


def _damaged(name: str, exc: BaseException) -> str:
    detail = _first_line(exc)
    if "weights_only" in detail:  # PyTorch's advice to load unrestricted is never ours to give
        detail = type(exc).__name__
    return (f"{name} is not a readable PyTorch checkpoint (truncated or corrupt download?); download it again. "
            f"Detail: {detail}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def config_from_ritm(config: Mapping, source: str = "checkpoint") -> ModelConfig:
    """Map RITM's serialized ``config`` onto a :class:`ModelConfig` (allow-list, no imports)."""
    if not isinstance(config, Mapping):
        raise RitmError(f"The {source} has no usable 'config' entry describing the network.")
    cls = config.get("class")
    if cls != RITM_HRNET_CLASS:
        raise RitmError(
            f"The {source} was made for network class {cls!r}; only RITM's HRNet models "
            f"({RITM_HRNET_CLASS}) are supported."
        )
    raw = config.get("params") or {}
    values = dict(_RITM_DEFAULTS)
    for name, entry in raw.items():
        if name not in _RITM_DEFAULTS:
            raise RitmError(
                f"The {source} sets an unknown HRNetModel parameter {name!r}; it was made by a "
                "RITM version this project does not support."
            )
        values[name] = entry.get("value") if isinstance(entry, Mapping) else entry

    for name, expected in _FIXED.items():
        if values[name] != expected:
            raise RitmError(
                f"The {source} uses {name}={values[name]!r}; only {name}={expected!r} (RITM's "
                "'conv1s' early-fusion models with disk clicks) is supported."
            )
    mean_std = values["norm_mean_std"]
    try:
        flat = [float(v) for part in mean_std for v in part]
    except (TypeError, ValueError):
        flat = []
    if len(flat) != 6 or any(
        not math.isclose(a, b, abs_tol=1e-6) for a, b in zip(flat, IMAGENET_MEAN + IMAGENET_STD)
    ):
        raise RitmError(
            f"The {source} normalises images with {mean_std!r}; only ImageNet mean/std is supported."
        )
    return _typed_config(values, source)


def _typed_config(values: Mapping, source: str) -> ModelConfig:
    """ModelConfig from the mapped fields of ``values``, with type and range checks."""
    kwargs = {}
    for name, kinds in _MAPPED.items():
        value = values.get(name)
        if isinstance(value, bool) and kinds is not bool:
            value = None  # bool is an int subclass; never accept it as a width
        if value is None or not isinstance(value, kinds):
            raise RitmError(f"The {source} has an invalid value for {name}: {values.get(name)!r}.")
        kwargs[name] = value
    if kwargs["width"] <= 0 or kwargs["ocr_width"] <= 0 or kwargs["norm_radius"] <= 0:
        raise RitmError(
            f"The {source} describes width={kwargs['width']}, ocr_width={kwargs['ocr_width']}, "
            f"norm_radius={kwargs['norm_radius']}; all must be positive (models without the OCR "
            "head are not supported)."
        )
    return ModelConfig(**kwargs)


def ritm_config_dict(config: ModelConfig) -> dict:
    """RITM's serialized ``config`` for ``config`` (as RITM's ``@serialize`` would write it)."""
    specified = set(_MAPPED) | {"use_rgb_conv", "use_disks"}
    values = dict(_RITM_DEFAULTS)
    values.update(config.as_dict())
    values.update(use_rgb_conv=False, use_disks=True)
    params = {}
    for name, value in values.items():
        params[name] = {
            "type": "class" if name == "norm_layer" else "builtin",
            "value": tuple(value) if name == "norm_mean_std" else value,
            "specified": name in specified,
        }
    return {"class": RITM_HRNET_CLASS, "params": params}


def _strip_module_prefix(state: Mapping) -> dict:
    state = dict(state)
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def weights_sha256(state_dict: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over the weights as stored: key, dtype, shape and raw bytes, in key order."""
    h = hashlib.sha256()
    for key in sorted(state_dict):
        t = state_dict[key]
        if not isinstance(t, torch.Tensor):
            continue
        t = t.detach().to("cpu").contiguous()
        h.update(f"{key}|{str(t.dtype)}|{tuple(t.shape)}\n".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _dtype_summary(state: Mapping[str, torch.Tensor]) -> str:
    kinds = sorted({str(t.dtype).replace("torch.", "") for t in state.values() if t.is_floating_point()})
    return "+".join(kinds) or "none"


def _check_and_fill(model: RitmHRNet, state: dict, name: str) -> dict:
    """Compare with the model's state dict; raise a readable error on any disagreement."""
    expected = model.state_dict()
    bad_types = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad_types:
        raise RitmError(f"{name}: state_dict entries are not tensors: {_few(bad_types)}.")
    # BatchNorm's step counter does not influence inference; very old files may lack it.
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing weights ({_few(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected weights ({_few(unexpected)})")
    if shapes:
        problems.append(f"{len(shapes)} with the wrong shape (file vs network: {_few(shapes)})")
    if problems:
        raise RitmError(
            f"{name} does not match the network it describes: " + "; ".join(problems)
            + ". The file is damaged or was made for a different architecture."
        )
    filled = dict(state)
    for k, v in expected.items():
        if k not in filled:  # only num_batches_tracked can be absent here
            filled[k] = torch.zeros(tuple(v.shape), dtype=v.dtype)
    return filled


def _few(items, n: int = 4) -> str:
    items = list(items)
    shown = ", ".join(items[:n])
    return shown + (f", ... (+{len(items) - n} more)" if len(items) > n else "")


def inspect_checkpoint(path: PathLike) -> Tuple[dict, ModelConfig, str, str]:
    """Read a file and work out its network: ``(data, config, arch, source_format)``."""
    data = read_checkpoint(path)
    name = Path(path).name
    if data.get("format") == FORMAT:
        version = data.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise RitmError(
                f"{name} was written by a newer ritm_qgis (format version {version!r}); "
                "update the plugin to read it."
            )
        raw = data.get("model_config")
        if not isinstance(raw, Mapping) or set(raw) - set(_MAPPED):
            raise RitmError(f"{name} has a damaged 'model_config' entry; write it again.")
        config = _typed_config(raw, name)
        arch = data.get("arch") if isinstance(data.get("arch"), str) else None
        return data, config, arch or arch_name_for(config) or "custom", "ritm_qgis"
    config = config_from_ritm(data.get("config"), source=name)
    return data, config, arch_name_for(config) or "custom", "ritm"


def load_model(path_or_name: Union[PathLike, str], device="cpu") -> Tuple[RitmHRNet, CheckpointInfo]:
    """Build the network a checkpoint describes and load its weights.

    ``path_or_name`` is a file path, or a model name of :mod:`ritm_qgis.models.catalog`
    (shipped, or downloaded into the cache). Returns ``(model, info)``; the model is in
    eval mode, float32, on ``device``, with gradients disabled.
    """
    path = _resolve(path_or_name)
    name = path.name
    data, config, arch, source = inspect_checkpoint(path)
    state = _strip_module_prefix(data["state_dict"])
    digest = weights_sha256(state)
    metadata = dict(data.get("metadata") or {}) if source == "ritm_qgis" else {}
    recorded = metadata.get("weights_sha256")
    if recorded is not None and recorded != digest:
        raise RitmError(
            f"{name} is corrupt: its weights do not match the SHA-256 recorded in it; "
            "download or copy it again."
        )
    try:
        torch_device = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise RitmError(f"Unknown device {device!r} ({_first_line(exc)}); use 'cpu' or 'cuda'.") from None
    # Built on 'meta' (no memory, no random init) and given the file's tensors directly.
    with torch.device("meta"):
        model = create_model(config)
    full = _check_and_fill(model, state, name)
    full = {k: v.float() if v.is_floating_point() else v for k, v in full.items()}
    model.load_state_dict(full, strict=True, assign=True)
    model.reset_constants()
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        model.to(torch_device)
    except (RuntimeError, AssertionError) as exc:
        raise RitmError(f"Cannot use device {device!r}: {_first_line(exc)}") from None
    info = CheckpointInfo(
        arch=arch,
        config=config,
        source_format=source,
        num_parameters=count_parameters(model),
        weights_dtype=_dtype_summary(state),
        weights_sha256=digest,
        path=str(path),
        metadata=metadata,
    )
    return model.eval(), info


def resolve_checkpoint(path_or_name) -> Path:
    """The file ``load_model`` would read for ``path_or_name`` (RitmError when there is none)."""
    return _resolve(path_or_name)


def _resolve(path_or_name) -> Path:
    path = Path(path_or_name)
    if path.is_file():
        return path
    text = str(path_or_name)
    from .catalog import model_statuses, resolve_file  # local import: the catalogue imports this module lazily

    if os.sep not in text and "/" not in text:
        found = resolve_file(text)  # shipped, or downloaded (checked against its recorded SHA-256)
        if found is not None:
            return found
    if os.sep in text or text.endswith((".pth", ".pt")):
        raise RitmError(f"Checkpoint file {text!r} does not exist; check the path.")
    raise RitmError(
        f"{text!r} is neither a checkpoint file nor a known weights name "
        f"({', '.join(s.name for s in model_statuses() if s.entry.weights)})."
    )


# --------------------------------------------------------------------------- writing


_PLAIN = (str, int, float, bool, type(None))


def _check_plain(value, where: str = "metadata"):
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, (list, tuple)):
        return [_check_plain(v, where) for v in value]
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise RitmError(f"{where}: keys must be strings, got {k!r}.")
            out[k] = _check_plain(v, f"{where}.{k}")
        return out
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return _check_plain(value.item(), where)
    raise RitmError(f"{where}: {type(value).__name__} values cannot be stored in a checkpoint.")


def _atomic_torch_save(obj, path: PathLike) -> None:
    with atomic_path(str(path)) as tmp:
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())


def save_checkpoint(
    path: PathLike,
    model: RitmHRNet,
    arch: Optional[str] = None,
    metadata: Optional[Mapping[str, Any]] = None,
    *,
    half: bool = False,
) -> dict:
    """Write ``model`` in the project's format (temp file + atomic rename).

    ``metadata`` holds plain values (training data, regime, metrics, ...); ``created``,
    ``weights_sha256`` and ``weights_dtype`` are filled in. ``half=True`` stores floating
    weights as float16 (half the size; :func:`load_model` returns float32). Returns the
    metadata written.
    """
    config = model.config
    if arch is None:
        arch = arch_name_for(config) or "custom"
    elif arch != "custom":
        known = get_config(arch)
        if (known.width, known.ocr_width, known.small) != (config.width, config.ocr_width, config.small):
            raise RitmError(f"The model is not a {arch}: its widths differ from that architecture.")
    state = {}
    for k, v in model.state_dict().items():
        v = v.detach().to("cpu").clone()
        if half and v.is_floating_point():
            v = v.half()
        state[k] = v
    meta = _check_plain(dict(metadata or {}))
    meta.setdefault("created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    meta["weights_sha256"] = weights_sha256(state)
    meta["weights_dtype"] = _dtype_summary(state)
    obj = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "arch": arch,
        "model_config": config.as_dict(),
        "config": ritm_config_dict(config),
        "metadata": meta,
        "state_dict": state,
    }
    _atomic_torch_save(obj, path)
    return meta


def save_half_copy(src: PathLike, dst: PathLike) -> dict:
    """Write an fp16 copy of the checkpoint ``src`` (e.g. a training run's ``last.pth``) to
    ``dst``, metadata kept (its weight digest and dtype are those of the copy); for shipping."""
    model, info = load_model(src)
    meta = {k: v for k, v in info.metadata.items() if k not in ("weights_sha256", "weights_dtype")}
    return save_checkpoint(dst, model, metadata=meta, half=True)


def save_ritm_checkpoint(path: PathLike, model: RitmHRNet) -> None:
    """Write ``model`` exactly as RITM's trainer does: ``{'state_dict', 'config'}``."""
    state = {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}
    _atomic_torch_save({"state_dict": state, "config": ritm_config_dict(model.config)}, path)
