"""CPU inference in bfloat16 where the processor computes it natively.

On CPUs with AMX tiles or AVX512-BF16 (recent Xeons, Zen 4 and later) oneDNN runs bf16
convolutions two to three times faster than fp32 ones; elsewhere bf16 is emulated and slower
than fp32, so it is only chosen automatically where ``native_bf16()`` holds. The network runs
under CPU autocast: convolutions, matrix products and their inputs in bf16, the click disks,
softmax and the output in fp32. Probabilities move by a few 1e-3 (the protocol's NoC by less
than 0.05 clicks, see docs/benchmarks.md), which is why it is a separate choice from the
exact ``fold`` / ``onednn`` modes and ``check`` compares it with fp32 at construction.
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


def autocast():
    import torch

    return torch.autocast(device_type="cpu", dtype=torch.bfloat16)


def prob_gap(reference, fast, example) -> float:
    """Largest |sigmoid difference| between ``reference`` (fp32) and ``fast`` run under bf16
    autocast, on ``example`` = (image, points)."""
    import torch

    image, points = example
    with torch.inference_mode():
        ref = torch.sigmoid(reference(image, points)["instances"].float())
        with autocast():
            got = torch.sigmoid(fast(image.contiguous(memory_format=torch.channels_last), points)["instances"].float())
    return float((ref - got).abs().max())
