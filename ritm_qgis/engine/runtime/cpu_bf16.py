"""CPU inference in bfloat16 where the processor computes it natively.

On CPUs with AMX tiles or AVX512-BF16 (recent Xeons, Zen 4 and later) oneDNN runs bf16
convolutions two to three times faster than fp32 ones; elsewhere bf16 is emulated and slower
than fp32, so it is only chosen automatically where ``native_bf16()`` holds.

``bf16_model`` turns a network whose BatchNorms are folded (``device.fold_batchnorms``) into a
mixed copy whose convolutions run as oneDNN's fused, prepacked kernels (``onednn_fusion``), as
the fp32 'onednn' mode does. Everything runs in bf16 except the input side (``FP32_MODULES``):
the image normalisation, the click-map encoder and the first RGB convolution stay in fp32, and
their outputs are rounded to bf16 once. Rounding the normalised image and the click encoder's
weights to bf16 was the largest single source of the whole-network bf16 copy's error: keeping
them in fp32 divides the mask pixels that differ from fp32 by 2.8 on held-out buildings, for at
most 6 % of the time (docs/benchmarks.md). Measured on an AMX Xeon: 3.0-3.5x faster than fp32
(hrnet18s), 4.4-4.7x (hrnet18). Probabilities move by a few 1e-3, which
is why it is a separate choice from the exact ``fold`` / ``onednn`` modes, and ``prob_gap``
compares it with fp32 when a backend is built.
"""

from __future__ import annotations

# Largest |probability difference| to the fp32 network accepted on the construction check;
# trained networks measured here stay under 1e-2 (docs/benchmarks.md).
PROB_TOLERANCE = 0.05

# Sub-modules of a RitmHRNet kept in fp32 (their output rounded to bf16): the click-map encoder
# and the first convolution on the normalised image.
FP32_MODULES = ("maps_transform", "feature_extractor.conv1")


# Set to 0 or 1 to override the detection: measurements and tests stand in for a CPU without
# (or with) bf16 hardware this way.
NATIVE_BF16_ENV = "RITM_QGIS_NATIVE_BF16"

# oneDNN's ISA ceilings (ONEDNN_MAX_CPU_ISA) below bf16: with one of these, oneDNN emulates bf16
# even on a CPU that has it, so bf16 is slow there as on an older CPU.
_ISAS_WITHOUT_BF16 = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX512_CORE", "AVX512_CORE_VNNI")


def native_bf16() -> bool:
    """The CPU has bf16 arithmetic in hardware (AMX tiles or AVX512-BF16) and oneDNN may use it.

    ``$RITM_QGIS_NATIVE_BF16`` = 0 / 1 overrides the answer."""
    import os

    forced = os.environ.get(NATIVE_BF16_ENV, "").strip().lower()
    if forced in ("0", "1", "false", "true", "no", "yes"):
        return forced in ("1", "true", "yes")
    for var in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        if os.environ.get(var, "").strip().upper() in _ISAS_WITHOUT_BF16:
            return False
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


def _fp32_island(module):
    """``module`` run in fp32 on its (fp32) input, its output rounded to bf16."""
    import torch
    from torch import nn

    class Fp32Island(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x.float()).to(torch.bfloat16)

    return Fp32Island(module)


def bf16_model(folded, example, keep_fp32=FP32_MODULES):
    """A mixed bf16 copy of ``folded`` (eval, CPU, channels-last) with oneDNN's fused
    convolutions, weights laid out for ``example`` = (image (1, C, H, W) float, points). It
    takes fp32 images (``to_input``) and fp32 points and returns bf16 logits.

    ``keep_fp32=()`` gives the whole network in bf16, taking bf16 images (what this mode was
    before the input side moved to fp32; bench_levers.py's 'bf16-all' compares the two)."""
    import copy

    import torch

    from ritm_qgis.engine.runtime import onednn_fusion

    def mixed():
        model = copy.deepcopy(folded).to(torch.bfloat16)
        for name in keep_fp32:
            parent_name, _, attr = name.rpartition(".")
            try:
                parent = model.get_submodule(parent_name) if parent_name else model
                original = folded.get_submodule(name)
            except AttributeError:  # not a RitmHRNet layout: that part runs in bf16
                continue
            setattr(parent, attr, _fp32_island(copy.deepcopy(original)))
        if keep_fp32:  # the normalisation constants stay exact, like the layers that use them
            for name in ("mean", "std"):
                if hasattr(folded, name):
                    setattr(model, name, getattr(folded, name).clone())
        return model.to(memory_format=torch.channels_last)

    model = mixed()
    if onednn_fusion.available():
        image, points = example
        try:
            image = to_input(image) if keep_fp32 else image.to(torch.bfloat16).contiguous(
                memory_format=torch.channels_last)
            model, _ = onednn_fusion.fuse_model(model, (image, points))
        except Exception:  # noqa: BLE001 - a layer oneDNN cannot run, or torch.fx failing to import its
            # helpers (sympy too old, as in QGIS's Debian Python): plain modules still work
            model = mixed()
    return model


def to_input(image):
    import torch

    return image.float().contiguous(memory_format=torch.channels_last)


def prob_gap(reference, fast, example) -> float:
    """Largest |sigmoid difference| between ``reference`` (fp32) and the bf16 model ``fast``
    on ``example`` = (image, points)."""
    import torch

    image, points = example
    with torch.inference_mode():
        ref = torch.sigmoid(reference(image, points)["instances"].float())
        got = torch.sigmoid(fast(to_input(image), points)["instances"].float())
    return float((ref - got).abs().max())
