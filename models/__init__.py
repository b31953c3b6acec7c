"""RITM's HRNet+OCR interactive segmentation networks, checkpoints and weights downloads.

Importing this package imports torch (the parent ``ritm_qgis`` package does not).

Main entry points::

    from ritm_qgis.models import load_model, create_model, list_models
    model, info = load_model("coco_lvis_h18_itermask")   # or a .pth path
    out = model(image_4ch, points)["instances"]           # logits, (B, 1, H, W)
"""

from .checkpoint import (
    CheckpointInfo,
    inspect_checkpoint,
    load_model,
    read_checkpoint,
    save_checkpoint,
    save_half_copy,
    save_ritm_checkpoint,
    weights_sha256,
)
from .network import ModelConfig, RitmHRNet, disk_maps
from .registry import arch_name_for, count_parameters, create_model, get_config, list_models, register_model
from .weights import OFFICIAL_WEIGHTS, cache_dir, cached_path, download, download_weights

__all__ = [
    "CheckpointInfo",
    "ModelConfig",
    "OFFICIAL_WEIGHTS",
    "RitmHRNet",
    "arch_name_for",
    "cache_dir",
    "cached_path",
    "count_parameters",
    "create_model",
    "disk_maps",
    "download",
    "download_weights",
    "get_config",
    "inspect_checkpoint",
    "list_models",
    "load_model",
    "read_checkpoint",
    "register_model",
    "save_checkpoint",
    "save_half_copy",
    "save_ritm_checkpoint",
    "weights_sha256",
]
