"""CPU inference in bfloat16 where the processor computes it natively.

On CPUs with AMX tiles or AVX512-BF16 (recent Xeons, Zen 4 and later) oneDNN runs bf16
convolutions two to three times faster than fp32 ones; elsewhere bf16 is emulated and slower
than fp32, so it is only chosen automatically where ``native_bf16()`` holds.

``bf16_model`` turns a network whose BatchNorms are folded (``device.fold_batchnorms``) into a
bf16 copy (weights, buffers, activations; the click disks are still drawn in fp32 from fp32
coordinates and then cast) whose convolutions run as oneDNN's fused, prepacked kernels
(``onednn_fusion``), as the fp32 'onednn' mode does. Measured on an AMX Xeon: 2x over bf16
autocast of the plain network, 4x over fp32. Probabilities move by a few 1e-3 (the protocol's
NoC by less than 0.05 clicks, see docs/benchmarks.md), which is why it is a separate choice
from the exact ``fold`` / ``onednn`` modes, and ``prob_gap`` compares it with fp32 when a
backend is built.
"""

from __future__ import annotations

# Largest |probability difference| to the fp32 network accepted on the construction check;
# trained networks measured here stay under 1e-2 (docs/benchmarks.md).
PROB_TOLERANCE = 0.05


def native_bf16() -> bool:
    """The CPU has bf16 arithmetic in hardware (AMX tiles or AVX512-BF16)."""
    import torch

    cpu = getattr(torch, "cpu", None)
    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        fn = getattr(cpu, probe, None)
        try:
            if fn is not None and fn():
                return True
        except RuntimeError:
            continue
    return False


def bf16_model(folded, example):
    """A bf16 copy of ``folded`` (eval, CPU, channels-last) with oneDNN's fused convolutions,
    weights laid out for ``example`` = (image (1, C, H, W) float, points); the model takes
    bf16 images (``to_input``) and fp32 points and returns bf16 logits."""
    import copy

    import torch

    from ritm_qgis.engine.runtime import onednn_fusion

    model = copy.deepcopy(folded).to(torch.bfloat16)
    if onednn_fusion.available():
        image, points = example
        try:
            model, _ = onednn_fusion.fuse_model(model, (to_input(image), points))
        except Exception:  # noqa: BLE001 - a layer oneDNN cannot run, or torch.fx failing to import its
            # helpers (sympy too old, as in QGIS's Debian Python): plain bf16 modules still work
            model = copy.deepcopy(folded).to(torch.bfloat16)
    return model


def to_input(image):
    import torch

    return image.to(torch.bfloat16).contiguous(memory_format=torch.channels_last)


def prob_gap(reference, fast, example) -> float:
    """Largest |sigmoid difference| between ``reference`` (fp32) and the bf16 model ``fast``
    on ``example`` = (image, points)."""
    import torch

    image, points = example
    with torch.inference_mode():
        ref = torch.sigmoid(reference(image, points)["instances"].float())
        got = torch.sigmoid(fast(to_input(image), points)["instances"].float())
    return float((ref - got).abs().max())
