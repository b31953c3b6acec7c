"""Which speed-up path a network runs on: what 'auto' picks, and the choices this CPU cannot honour.

'auto' on the CPU in fp32: 'bf16' where the CPU computes bfloat16 in hardware
(``cpu_bf16.native_bf16``), else 'openvino' where the openvino package is installed, else
'onednn'; on a GPU 'fold'. An explicit 'bf16' on a CPU without bf16 hardware is refused: oneDNN
emulates it there, 4x slower than the default and further from RITM's arithmetic.
'openvino' and 'openvino-int8' without the package are refused with the command that installs it.
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
    return "openvino" if openvino_cpu.available() else "onednn"


def check_mode(mode: str, device_type: str) -> None:
    """A RitmError when ``mode`` cannot run well here."""
    if device_type != "cpu" or mode not in ("bf16", "openvino", "openvino-int8"):
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
