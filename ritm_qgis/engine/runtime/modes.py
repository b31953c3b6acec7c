"""Which speed-up path a network runs on: what 'auto' picks, and the choices this CPU cannot honour.

'auto' on the CPU in fp32: 'bf16' where the CPU computes bfloat16 in hardware
(``cpu_bf16.native_bf16``); below AVX2 (or under a oneDNN ISA limit below it) 'fold'; else
'openvino-int8' where the openvino package is installed (HRNet's stages in int8, the rest in fp32:
2.5x 'none' per click on an AVX2 CPU, NoC20@85 with the clicks held fixed +0.04 on 186 held-out
aerial buildings and -0.08 on 50 GrabCut images; it runs as 'openvino' fp32 for weights whose
int8 network fails its check), else 'onednn'; on a GPU 'fold'.
An explicit 'bf16' on a CPU without bf16 hardware is refused: oneDNN emulates it there, 4x slower
than the default and further from RITM's arithmetic. 'onednn', 'openvino' and 'openvino-int8'
below AVX2 are refused: oneDNN's fused kernels ran 5x slower than 'none' limited to SSE4.1, and
OpenVINO's CPU plugin does not compile under that limit (docs/benchmarks.md). 'openvino' and
'openvino-int8' without the package are refused with the command that installs it.
"""

from __future__ import annotations

from ritm_qgis.core.errors import RitmError

CPU_ONLY = ("onednn", "bf16", "int8", "openvino", "openvino-int8")


def auto_mode(device_type: str, precision: str = "fp32") -> str:
    if device_type != "cpu" or precision != "fp32":
        return "fold"
    from ritm_qgis.engine.runtime import openvino_cpu
    from ritm_qgis.engine.runtime.cpu_bf16 import native_bf16

    if native_bf16():
        return "bf16"
    if not avx2():
        return "fold"
    return "openvino-int8" if openvino_cpu.available() else "onednn"


# oneDNN's ISA ceilings (ONEDNN_MAX_CPU_ISA) below AVX2: measurements stand in for older CPUs this way.
_ISAS_BELOW_AVX2 = ("SSE41", "AVX")


def avx2() -> bool:
    """The CPU has AVX2 and no oneDNN ISA limit keeps it from being used."""
    import os

    for var in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        if os.environ.get(var, "").strip().upper() in _ISAS_BELOW_AVX2:
            return False
    import torch

    probe = getattr(getattr(torch, "cpu", None), "_is_avx2_supported", None)
    try:
        return True if probe is None else bool(probe())
    except RuntimeError:
        return True


def check_mode(mode: str, device_type: str) -> None:
    """A RitmError when ``mode`` cannot run well here."""
    if device_type != "cpu" or mode not in ("bf16", "onednn", "openvino", "openvino-int8"):
        return
    if mode != "bf16" and not avx2():
        raise RitmError(
            f"--optimize {mode} needs a CPU with AVX2, which this one does not have (or a oneDNN ISA limit hides "
            "it): its kernels run several times slower than the plain network there; use --optimize auto, which "
            "runs fold here.")
    if mode == "onednn":
        return
    if mode == "bf16":
        from ritm_qgis.engine.runtime.cpu_bf16 import NATIVE_BF16_ENV, native_bf16

        if not native_bf16():
            raise RitmError(
                "--optimize bf16 needs a CPU that computes bfloat16 in hardware (AMX or AVX512-BF16), which this "
                f"one does not (or {NATIVE_BF16_ENV}=0 / a oneDNN ISA limit says so); use --optimize auto, which "
                f"runs {auto_mode('cpu')} here.")
    else:
        from ritm_qgis.engine.runtime import openvino_cpu

        if not openvino_cpu.available():
            raise RitmError(f"--optimize {mode} needs the openvino package, which is not installed; install it "
                            "with `python3 -m pip install openvino` in QGIS's Python, or use --optimize auto.")
