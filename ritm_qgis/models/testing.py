"""Deterministic random weights for tests and benchmarks (no training needed).

Each tensor is drawn from a generator seeded by the CRC-32 of its state-dict key (plus
``seed``), so the values do not depend on module construction order: the same weights can be
produced for RITM's own classes and for ours, which is how the two were compared.
"""

from __future__ import annotations

import zlib
from typing import Dict, Mapping

import torch

__all__ = ["deterministic_state_dict", "randomize_"]

_POOL = 1 << 16


def deterministic_state_dict(template: Mapping[str, torch.Tensor], seed: int = 0) -> Dict[str, torch.Tensor]:
    """Tensors shaped like ``template``: BN scales and variances in [0.5, 1.5), conv weights
    uniform with a fan-in scaled range, biases small, integer buffers set to 7.

    Tensors with more than 65536 elements repeat a 65536-value random pool (fast enough for
    full-size networks in tests)."""
    out = {}
    for key, ref in template.items():
        gen = torch.Generator().manual_seed(zlib.crc32(key.encode()) + seed)
        if not ref.dtype.is_floating_point:
            out[key] = torch.full(ref.shape, 7, dtype=ref.dtype)
            continue
        n = ref.numel()
        if n <= _POOL:
            u = torch.rand(tuple(ref.shape), generator=gen)
        else:  # large tensors: tile a random pool (drawing every value is slow on CPU)
            pool = torch.rand(_POOL, generator=gen)
            u = pool.repeat(-(-n // _POOL))[:n].reshape(tuple(ref.shape))
        if key.endswith("running_var") or (key.endswith("weight") and ref.dim() == 1):
            out[key] = u + 0.5
        else:
            fan_in = ref[0].numel() if ref.dim() > 1 else 1
            out[key] = (u - 0.5) * 2.0 * (1.0 / max(1, fan_in)) ** 0.5
    return out


def randomize_(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Load :func:`deterministic_state_dict` into ``model`` in place; returns it."""
    model.load_state_dict(deterministic_state_dict(model.state_dict(), seed))
    return model
