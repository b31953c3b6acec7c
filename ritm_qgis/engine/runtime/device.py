"""Where the networks run, decided in one place.

``device_choices()`` is the one list of devices a user is offered (the dock, Processing):
'auto', 'cpu', then 'cuda:N' for each GPU; ``usable_device(name)`` turns a choice into the device
a run uses, the CPU with a sentence saying why when PyTorch cannot use the chosen GPU (the dock and
Processing both take it, so a device offered never makes a run fail).
``resolve_device('auto')`` is CUDA when torch sees a GPU, else the CPU; ``'cpu'``, ``'cuda'``
and ``'cuda:N'`` are taken literally (asking for CUDA without one is a RitmError: the CLI).
``autocast(device, precision)`` gives the fp16/bf16 autocast context on CUDA (and a no-op
context for fp32 or the CPU). ``is_out_of_memory(exc)`` recognises a CUDA out-of-memory error,
which the network backend answers by moving to the CPU with a warning instead of failing.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import sys
import warnings

from ritm_qgis.core.errors import RitmError

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "bf16")
# the network backend's speed-up modes (``NetworkBackend`` says what each does); the CLI offers these
OPTIMIZE_MODES = ("auto", "none", "fold", "onednn", "bf16", "int8", "openvino", "openvino-int8")
NVIDIA_GPUS = "/proc/driver/nvidia/gpus"  # one folder per GPU the NVIDIA driver runs (Linux)


def _driver_gpus() -> list[str]:
    """The GPUs the NVIDIA driver lists, by model name, without importing torch."""
    names = []
    for info in sorted(glob.glob(os.path.join(NVIDIA_GPUS, "*", "information"))):
        model = "NVIDIA GPU"
        try:
            with open(info, encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    if line.startswith("Model:"):
                        model = line.split(":", 1)[1].strip() or model
                        break
        except OSError:
            pass
        names.append(model)
    return names


def cuda_gpus(import_torch: bool = True) -> list[str]:
    """The names of the CUDA GPUs PyTorch can use here ([] without torch or without CUDA support).

    ``import_torch=False`` (QGIS start-up, where importing torch would cost seconds): torch is asked
    only when already imported, else the NVIDIA driver's list stands in; ``usable_device`` checks the
    choice against PyTorch when the run starts."""
    torch = sys.modules.get("torch")
    if torch is None and not import_torch:
        return _driver_gpus()
    try:
        import torch

        if not torch.cuda.is_available():
            return []
        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001 - no torch, or a broken CUDA setup: no GPU to offer
        return []


def device_choices(import_torch: bool = True) -> list[tuple[str, str]]:
    """(value, label) pairs: auto, cpu, then one entry per CUDA GPU (see ``cuda_gpus``)."""
    names = cuda_gpus(import_torch)
    auto = f"auto (graphics card: {names[0]})" if names else "auto (processor: no CUDA graphics card)"
    return ([("auto", auto), ("cpu", "cpu (processor)")]
            + [(f"cuda:{i}", f"cuda:{i} ({name})") for i, name in enumerate(names)])


def usable_device(device: str | None) -> tuple[str, str | None]:
    """(the device to use, None) or ('cpu', a sentence saying why the chosen one is not used)."""
    device = (device or "auto").strip().lower()
    if not device.startswith("cuda"):
        return device, None
    names = cuda_gpus()
    index = int(device.split(":", 1)[1]) if ":" in device and device.split(":", 1)[1].isdigit() else 0
    if index < len(names):
        return device, None
    why = ("the PyTorch installed for QGIS has no CUDA support or sees no graphics card" if not names
           else f"this computer has {len(names)} CUDA graphics card(s)")
    return "cpu", (f"The graphics card '{device}' cannot be used ({why}); the model runs on the processor (CPU) "
                   "instead, which is slower.")


def resolve_device(name: str | None = "auto"):
    """A ``torch.device`` for a user's choice: 'auto' (default), 'cpu', 'cuda' or 'cuda:N'."""
    import torch

    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RitmError(
                f"Device '{name}' was asked for but PyTorch sees no CUDA GPU here; use --device cpu "
                "(or auto), or install a CUDA build of PyTorch."
            )
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise RitmError(
                f"Device '{name}' does not exist: PyTorch sees {torch.cuda.device_count()} CUDA GPU(s) "
                "numbered from 0."
            )
        return dev
    raise RitmError(f"Unknown device '{name}'; use auto, cpu, cuda or cuda:N.")


def check_precision(precision: str | None) -> str:
    precision = (precision or "fp32").lower()
    if precision not in PRECISIONS:
        raise RitmError(f"Unknown precision '{precision}'; use one of {', '.join(PRECISIONS)}.")
    return precision


def autocast(device, precision: str = "fp32"):
    """Autocast context for reduced precision on CUDA; a no-op context otherwise."""
    import torch

    precision = check_precision(precision)
    if precision == "fp32" or torch.device(device).type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    return torch.autocast(device_type="cuda", dtype=dtype)


def is_out_of_memory(exc: BaseException) -> bool:
    """True for a CUDA out-of-memory error (the typed one, or the older RuntimeError text)."""
    import torch

    oom_type = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower() and "cuda" in str(exc).lower()


def warn_cpu_fallback(device, exc: BaseException) -> None:
    msg = (
        f"Out of GPU memory on {device} ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
        "this prediction and the following ones run on the CPU instead (slower). Use a smaller image or "
        "close other GPU programs to stay on the GPU."
    )
    log.warning(msg)
    warnings.warn(msg, RuntimeWarning, stacklevel=3)


def empty_cuda_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# ---------------------------------------------------------------------------- inference speed-ups
def fold_batchnorms(model):
    """A copy of ``model`` (eval mode) with each BatchNorm2d folded into the convolution before it.

    Two wirings are recognised: a Conv2d directly followed by a BatchNorm2d (or by a Sequential
    that starts with one) inside an ``nn.Sequential``, and sibling attributes ``convK`` /
    ``bnK`` (the residual blocks and the stem of HRNet), whose forward applies ``bnK``
    directly to ``convK``'s output. Folded BatchNorms become ``nn.Identity``. The caller checks
    the result numerically (``optimize_model`` does) since the attribute rule trusts names.
    """
    import copy

    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    model = copy.deepcopy(model).eval()

    def foldable(conv, bn) -> bool:
        return (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.affine
                and bn.running_var is not None and conv.out_channels == bn.num_features)

    for module in list(model.modules()):
        if isinstance(module, nn.Sequential):
            items = list(module._modules.items())
            for (ka, a), (kb, b) in zip(items, items[1:]):
                if isinstance(b, nn.Sequential) and len(b) and foldable(a, b[0]):
                    module._modules[ka], b[0] = fuse_conv_bn_eval(a, b[0]), nn.Identity()
                elif foldable(a, b):
                    module._modules[ka], module._modules[kb] = fuse_conv_bn_eval(a, b), nn.Identity()
        for name, child in list(module._modules.items()):
            if name.startswith("conv") and name[4:].isdigit():
                bn_name = "bn" + name[4:]
                if foldable(child, module._modules.get(bn_name)):
                    module._modules[name] = fuse_conv_bn_eval(child, module._modules[bn_name])
                    module._modules[bn_name] = nn.Identity()
    return model


def optimize_model(model, device, channels_last: bool = True, fold_bn: bool = True,
                   example=None, atol: float = 1e-3, onednn_example=None):
    """``optimize_model_with_path``'s model alone."""
    return optimize_model_with_path(model, device, channels_last, fold_bn, example, atol, onednn_example)[0]


def optimize_model_with_path(model, device, channels_last: bool = True, fold_bn: bool = True,
                             example=None, atol: float = 1e-3, onednn_example=None):
    """(model, path): the model prepared for fast inference on ``device``: BatchNorms folded into the
    convolutions and weights in channels-last layout; with ``onednn_example`` = (image, points)
    of a typical input size (CPU only), convolutions replaced by oneDNN's fused kernels on
    weights prepacked for that size (``onednn_fusion``; other sizes run too). With ``example``
    = (image, points), the optimised model is checked against the original (max |logit
    difference| <= atol) and the original is returned, with a warning, if it disagrees.

    ``path`` says what the model is: 'onednn', 'fold' (the oneDNN fusion was asked for but
    skipped) or 'none' (the original network, the check having failed)."""
    import torch

    path = "fold"
    fast = fold_batchnorms(model) if fold_bn else model
    fast = fast.to(device)
    if channels_last:
        fast = fast.to(memory_format=torch.channels_last)
    if onednn_example is not None and torch.device(device).type == "cpu":
        from ritm_qgis.engine.runtime import onednn_fusion

        if onednn_fusion.available():
            import copy

            image, points = onednn_example
            if channels_last:
                image = image.contiguous(memory_format=torch.channels_last)
            try:
                fast, _ = onednn_fusion.fuse_model(fast if fast is not model else copy.deepcopy(model),
                                                   (image, points))
                path = "onednn"
            except (RuntimeError, ImportError) as exc:  # keep the folded network
                # RuntimeError: a layer oneDNN cannot run. ImportError: torch.fx needs a newer sympy than
                # some Pythons have (Debian 12's 1.11, which QGIS's Python imports before the plugin's folder)
                log.warning("oneDNN convolution fusion skipped: %s", exc)
    if example is not None and fast is not model:
        image, points = (t.to(device) for t in example)
        # in true fp32: CUDA's default TF32 convolutions alone differ by ~1e-3 between two layouts
        tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        try:
            with torch.inference_mode():
                ref = model.to(device)(image, points)["instances"]
                got = fast(image.contiguous(memory_format=torch.channels_last) if channels_last else image,
                           points)["instances"]
        finally:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
        err = float((ref - got).abs().max())
        if not err <= atol:
            msg = f"The optimised network changed the outputs by {err:.2e} (> {atol}); using the unmodified network."
            log.warning(msg)
            warnings.warn(msg, RuntimeWarning, stacklevel=2)
            fast, path = model.to(device), "none"
            if channels_last:
                fast = fast.to(memory_format=torch.channels_last)
    return fast, path
