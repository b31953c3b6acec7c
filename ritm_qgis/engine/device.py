"""Where the networks run, decided in one place.

``resolve_device('auto')`` is CUDA when torch sees a GPU, else the CPU; ``'cpu'``, ``'cuda'``
and ``'cuda:N'`` are taken literally (asking for CUDA without one is a RitmError).
``autocast(device, precision)`` gives the fp16/bf16 autocast context on CUDA (and a no-op
context for fp32 or the CPU). ``is_out_of_memory(exc)`` recognises a CUDA out-of-memory error,
which the network backend answers by moving to the CPU with a warning instead of failing.
"""

from __future__ import annotations

import contextlib
import logging
import warnings

from .errors import RitmError

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "bf16")


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
