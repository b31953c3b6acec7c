"""The devices the dock offers: only those this QGIS's PyTorch can use, named as a user knows them."""

from __future__ import annotations


def _cuda_names() -> list[str]:
    try:
        import torch

        if not torch.cuda.is_available():
            return []
        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001 - no torch, or a broken CUDA setup: no GPU to offer
        return []


def available_devices() -> list[tuple[str, str]]:
    """(value, label) pairs: auto, cpu, then one entry per CUDA GPU PyTorch sees."""
    names = _cuda_names()
    auto = f"auto (graphics card: {names[0]})" if names else "auto (processor: no CUDA graphics card)"
    return ([("auto", auto), ("cpu", "cpu (processor)")]
            + [(f"cuda:{i}", f"cuda:{i} ({name})") for i, name in enumerate(names)])


def usable_device(device: str) -> tuple[str, str | None]:
    """(the device to use, None) or ('cpu', a sentence saying why the chosen one is not used)."""
    device = (device or "auto").strip().lower()
    if not device.startswith("cuda"):
        return device, None
    names = _cuda_names()
    index = int(device.split(":", 1)[1]) if ":" in device and device.split(":", 1)[1].isdigit() else 0
    if index < len(names):
        return device, None
    why = ("the PyTorch installed for QGIS has no CUDA support or sees no graphics card" if not names
           else f"this computer has {len(names)} CUDA graphics card(s)")
    return "cpu", (f"The graphics card '{device}' cannot be used ({why}); the model runs on the processor (CPU) "
                   "instead, which is slower.")
