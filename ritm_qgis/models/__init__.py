"""RITM's HRNet+OCR interactive segmentation networks, checkpoints and weights downloads.

Importing a network name from this package imports torch (the catalogue and the downloader do not;
the parent ``ritm_qgis`` package does not either).

Main entry points::

    from ritm_qgis.models import load_model, create_model, list_models
    model, info = load_model("coco_lvis_h18_itermask")   # or a .pth path
    out = model(image_4ch, points)["instances"]           # logits, (B, 1, H, W)
"""

import importlib

# Names are loaded on first use (PEP 562), so that ``ritm_qgis.models.catalog`` and
# ``ritm_qgis.models.weights`` (standard library only) can be read without importing torch,
# e.g. by the Processing provider when QGIS starts.
_WHERE = {
    "checkpoint": ("CheckpointInfo", "inspect_checkpoint", "load_model", "read_checkpoint", "save_checkpoint",
                   "save_half_copy", "save_ritm_checkpoint", "weights_sha256"),
    "network": ("ModelConfig", "RitmHRNet", "disk_maps"),
    "registry": ("arch_name_for", "count_parameters", "create_model", "get_config", "list_models",
                 "register_model"),
    "weights": ("OFFICIAL_WEIGHTS", "cache_dir", "cached_path", "download"),
    "catalog": ("default_model", "download_model", "download_weights", "import_model", "model_choices",
                "model_statuses"),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}


def __getattr__(name):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


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
    "default_model",
    "download_model",
    "disk_maps",
    "download",
    "download_weights",
    "get_config",
    "import_model",
    "inspect_checkpoint",
    "list_models",
    "load_model",
    "model_choices",
    "model_statuses",
    "read_checkpoint",
    "register_model",
    "save_checkpoint",
    "save_half_copy",
    "save_ritm_checkpoint",
    "weights_sha256",
]
