"""Named network variants (timm-style): ``create_model('hrnet18')``.

Widths follow RITM's training configs (``models/iter_mask/*.py`` in RITM's repository):

=========  =====  =========  =====  ==============================================
name       width  ocr_width  small  source
=========  =====  =========  =====  ==============================================
hrnet18s   18     48         yes    hrnet18s_cocolvis_itermask_3p (coco_lvis_h18s)
hrnet18    18     64         no     hrnet18_*_itermask_3p (coco_lvis_h18, sbd_h18)
hrnet32    32     128        no     hrnet32_cocolvis_itermask_3p (coco_lvis_h32)
hrnet48    48     128        no     no RITM config; OCR width as hrnet32
hrnet_tiny 4      8          yes    tests only (random weights)
=========  =====  =========  =====  ==============================================
"""

from __future__ import annotations

from dataclasses import replace
from typing import Dict, Optional

import torch.nn as nn

from ritm_qgis.core.errors import RitmError

from .network import ModelConfig, RitmHRNet

__all__ = [
    "register_model",
    "create_model",
    "get_config",
    "list_models",
    "arch_name_for",
    "count_parameters",
]

_REGISTRY: Dict[str, ModelConfig] = {}


def register_model(name: str, config: ModelConfig) -> None:
    """Add a named variant; names are unique."""
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is already registered")
    _REGISTRY[name] = config


register_model("hrnet18s", ModelConfig(width=18, ocr_width=48, small=True))
register_model("hrnet18", ModelConfig(width=18, ocr_width=64))
register_model("hrnet32", ModelConfig(width=32, ocr_width=128))
register_model("hrnet48", ModelConfig(width=48, ocr_width=128))
register_model("hrnet_tiny", ModelConfig(width=4, ocr_width=8, small=True))


def list_models() -> list:
    """Registered names, in registration order."""
    return list(_REGISTRY)


def get_config(name: str) -> ModelConfig:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise RitmError(
            f"Unknown model architecture {name!r}; choose one of: {', '.join(_REGISTRY)}."
        ) from None


def arch_name_for(config: ModelConfig) -> Optional[str]:
    """The registry name whose backbone (width, ocr_width, small) matches ``config``."""
    for name, known in _REGISTRY.items():
        if (known.width, known.ocr_width, known.small) == (
            config.width,
            config.ocr_width,
            config.small,
        ):
            return name
    return None


def create_model(name_or_config, **overrides) -> RitmHRNet:
    """Build a network (random weights) from a registry name or a ``ModelConfig``.

    ``overrides`` replace fields of the config, e.g. ``create_model('hrnet18', with_prev_mask=False)``.
    The model is returned in eval mode.
    """
    config = name_or_config if isinstance(name_or_config, ModelConfig) else get_config(name_or_config)
    if overrides:
        config = replace(config, **overrides)
    return RitmHRNet(config).eval()


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters (BatchNorm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
