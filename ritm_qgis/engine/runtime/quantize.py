"""int8 CPU inference: post-training static quantization of the HRNet with calibration.

``quantize_int8`` quantizes the network's feature extractor (the HRNet + OCR, where nearly all
the arithmetic is) with PyTorch's FX graph-mode quantization and the x86 backend (oneDNN /
FBGEMM int8 kernels, VNNI or AMX where the CPU has them): convolutions, their ReLUs and the
residual additions in int8 with per-channel weight scales, activations' ranges observed on a
few calibration inputs given by the caller. The click branch (disks, ``maps_transform``) and
the output stay in fp32. Probabilities move by about 1e-2, more than bf16; the caller compares
with fp32 (``prob_gap``) and falls back when the gap is too large.
"""

from __future__ import annotations


def backend_engine() -> str | None:
    """The quantized engine to use ('x86', else 'fbgemm' or 'onednn'), or None without one."""
    import torch

    engines = torch.backends.quantized.supported_engines
    for name in ("x86", "fbgemm", "onednn"):
        if name in engines:
            return name
    return None


def quantize_int8(model, calibration):
    """A copy of ``model`` (eval, CPU, fp32, with a ``feature_extractor``) whose feature
    extractor runs in int8, calibrated on ``calibration`` = [(image, points), ...] (inputs of
    the whole network). Raises RuntimeError when this torch has no quantized CPU engine or the
    network cannot be traced."""
    import copy
    import warnings

    import torch
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    engine = backend_engine()
    if engine is None:
        raise RuntimeError("this PyTorch build has no quantized CPU engine")
    torch.backends.quantized.engine = engine
    model = copy.deepcopy(model).eval().to(memory_format=torch.contiguous_format)
    captured = []
    hook = model.feature_extractor.register_forward_pre_hook(
        lambda module, args: captured.append(tuple(a.detach() for a in args)))
    try:
        with torch.no_grad():
            for image, points in calibration:
                model(image, points)
    finally:
        hook.remove()
    with warnings.catch_warnings():  # FX prints its generated code in deprecation notes
        warnings.simplefilter("ignore")
        try:
            prepared = prepare_fx(model.feature_extractor, get_default_qconfig_mapping(engine),
                                  example_inputs=captured[0])
        except Exception as exc:  # noqa: BLE001 - FX tracing fails in many ways; one sentence for the caller
            raise RuntimeError(f"the network could not be traced for quantization ({type(exc).__name__})") from exc
        with torch.no_grad():
            for args in captured:
                prepared(*args)
        model.feature_extractor = convert_fx(prepared)
    return model.to(memory_format=torch.channels_last)


def prob_gap(reference, fast, example) -> float:
    """Largest |sigmoid difference| between ``reference`` (fp32) and ``fast`` on ``example``."""
    import torch

    image, points = example
    with torch.inference_mode():
        ref = torch.sigmoid(reference(image, points)["instances"].float())
        got = torch.sigmoid(fast(image.contiguous(memory_format=torch.channels_last), points)["instances"].float())
    return float((ref - got).abs().max())
