"""What a user can choose from: the models of the one list, the default model, the devices here.

For the Processing algorithms and the dock. Cheap to call when QGIS starts: neither the model
list nor the device list imports torch (the device list asks torch only when it is already loaded,
and a run checks the device with ``device.usable_device`` before using it).
"""

from __future__ import annotations

import os
from typing import Callable, List, Optional, Tuple

from ritm_qgis.core.errors import RitmError
from ritm_qgis.core.progress import Progress

__all__ = ["model_names", "default_model", "default_model_help", "available_devices", "model_spec"]


def model_names(weights_only: bool = False) -> List[str]:
    """Every model of the list (shipped, downloaded, downloadable), in the listing's order;
    ``weights_only``: only the networks (what can be trained), not the weight-free methods."""
    from ritm_qgis.models.catalog import entry, model_choices

    names = model_choices()
    if weights_only:
        names = [n for n in names if entry(n) is None or entry(n).weights]  # a user's file is a network
    return names


def default_model() -> Tuple[str, str]:
    """``(name, reason)``: paper-finetune when downloaded, else the best shipped backend."""
    from ritm_qgis.models.catalog import default_model as _default

    return _default()


def default_model_help() -> str:
    """The paragraph the algorithms' help shows about the model choice."""
    name, reason = default_model()
    return (f"Model: one of the list, the same as in the RITM dock's model box. Default here: {reason} "
            "A model that is not downloaded yet is downloaded when the algorithm runs (about 41 MB for the "
            "paper's models, through QGIS's network settings, proxy included; progress shown, cancellable), "
            "or beforehand by choosing it in the RITM dock. Offline, give a copy of its .pth file as the "
            "checkpoint file, which is used instead of the listed model (with the command line installed: `ritm-qgis download-weights NAME --from FILE` "
            "imports and verifies it).")


def available_devices() -> List[str]:
    """'auto', 'cpu', then 'cuda:N' for each GPU: ``device.device_choices`` without importing torch."""
    from ritm_qgis.engine.runtime.device import device_choices

    return [value for value, _ in device_choices(import_torch=False)]


def _download_with_urllib(name: str, progress: Optional[Progress], cancel: Optional[Callable[[], bool]]) -> None:
    """Outside QGIS (the command line): ``catalog.download_model``, on urllib, resumable."""
    from ritm_qgis.models.catalog import download_model

    def report(done, total):
        if cancel is not None and cancel():
            raise RitmError(f"The download of {name} was cancelled; run again to resume it.")
        if progress is not None:
            progress(done, total)

    download_model(name, progress=report)


def model_spec(name: str, checkpoint: Optional[str] = None,
               progress: Optional[Progress] = None,
               cancel: Optional[Callable[[], bool]] = None,
               fetch: Optional[Callable[..., None]] = None) -> str:
    """The spec ``build_backend`` takes for an algorithm's (model, checkpoint file) pair.

    A listed model that is downloadable but not downloaded yet is downloaded first (verified
    against its published digest) by ``fetch(name, progress, cancel)``: inside QGIS the glue gives
    QGIS's network stack (``ritm_qgis/qgis_download.download_in_qgis``, the user's proxy included);
    the default is urllib. ``cancel()`` returning True stops it (RitmError)."""
    if checkpoint:
        if not os.path.isfile(checkpoint):
            raise RitmError(f"Checkpoint file {checkpoint!r} does not exist; check the path.")
        return checkpoint
    from ritm_qgis.models.catalog import model_statuses

    status = {s.name: s for s in model_statuses()}.get(name)
    if status is None:
        raise RitmError(f"{name!r} is not in the model list; choose one of {', '.join(model_names())}.")
    if status.status == "downloadable":
        (fetch or _download_with_urllib)(name, progress, cancel)
    return name
