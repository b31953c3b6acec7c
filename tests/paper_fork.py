"""Checkpoints in the exact layout the paper authors' trainer writes (tanguy-magne's fork of RITM).

Their trainer (``isegm/utils/misc.py: save_checkpoint``) saves ``{'state_dict': net.state_dict(),
'config': net._config}``, where ``_config`` is what RITM's ``@serialize`` records for
``HRNetModel(width=18, ocr_width=64, with_aux_output=True, use_leaky_relu=True,
use_rgb_conv=False, use_disks=True, norm_radius=5, with_prev_mask=True)`` (their
``models/iter_mask/train_sat_img.py``): the given arguments first, then every other default.

``data/paper_fork_hrnet18_layout.json.gz`` lists the state-dict keys, shapes and dtypes in the
order that class produces them, and ``data/paper_fork_reference.npz`` the probabilities the fork's
own model code computes for :func:`fork_inputs` on :func:`fork_state_dict` (both written by
``scripts/make_paper_fork_reference.py`` from a checkout of the fork).
"""

import gzip
import json
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

DATA = Path(__file__).resolve().parent / "data"
SEED = 12


def _p(value, specified, kind="builtin"):
    return {"type": kind, "value": value, "specified": specified}


def fork_config(with_prev_mask=True) -> dict:
    """The ``config`` entry of the fork's checkpoints, key order and value types included."""
    return {
        "class": "isegm.model.is_hrnet_model.HRNetModel",
        "params": {
            "width": _p(18, True),
            "ocr_width": _p(64, True),
            "with_aux_output": _p(True, True),
            "use_leaky_relu": _p(True, True),
            "use_rgb_conv": _p(False, True),
            "use_disks": _p(True, True),
            "norm_radius": _p(5, True),
            "with_prev_mask": _p(with_prev_mask, True),
            "small": _p(False, False),
            "backbone_lr_mult": _p(0.1, False),
            "norm_layer": _p("torch.nn.modules.batchnorm.BatchNorm2d", False, "class"),
            "cpu_dist_maps": _p(False, False),
            "clicks_groups": _p(None, False),
            "binary_prev_mask": _p(False, False),
            "conv_extend": _p(False, False),
            "norm_mean_std": _p(([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]), False),
        },
    }


def fork_layout():
    with gzip.open(DATA / "paper_fork_hrnet18_layout.json.gz", "rt") as fh:
        return json.load(fh)["layout"]


def fork_state_dict(seed=SEED) -> "OrderedDict[str, torch.Tensor]":
    """Deterministic weights for every key of the fork's network, in its order."""
    from ritm_qgis.models.testing import deterministic_state_dict

    template = OrderedDict((k, torch.zeros(shape, dtype=getattr(torch, dtype))) for k, shape, dtype in fork_layout())
    return OrderedDict(deterministic_state_dict(template, seed).items())


def write_fork_checkpoint(path, seed=SEED) -> None:
    torch.save({"state_dict": fork_state_dict(seed), "config": fork_config()}, str(path))


def fork_inputs():
    """An image with a previous mask (B, 4, 96, 112) and RITM's points (B, 2N, 3): 2 positive, 1 negative."""
    rng = np.random.default_rng(SEED)
    h, w = 96, 112
    image = np.zeros((1, 4, h, w), np.float32)
    image[0, :3] = rng.random((3, h, w)).astype(np.float32)
    image[0, 3, 30:70, 40:90] = 1.0
    image[0, 3] += 0.2 * rng.random((h, w)).astype(np.float32)
    points = np.full((1, 6, 3), -1, np.float32)  # rows (y, x, click order); first 3 positive, last 3 negative
    points[0, 0] = (48, 60, 0)
    points[0, 1] = (35.5, 80.25, 2)
    points[0, 3] = (10, 12, 1)
    return image, points
