"""The model and device parameters every model-running algorithm shares.

MODEL is a choice among the models of the one list (``ritm_qgis.models.catalog``), its value the
model's name, so scripts and .model3 files keep passing names such as 'grabcut'; CHECKPOINT an
optional .pth file used instead; DEVICE a choice among the devices present.
"""

from __future__ import annotations

from qgis.core import QgsProcessingException, QgsProcessingParameterEnum, QgsProcessingParameterFile

MODEL = "MODEL"
CHECKPOINT = "CHECKPOINT"
DEVICE = "DEVICE"


def model_help() -> str:
    from ritm_qgis.engine.runtime.choices import default_model_help

    return default_model_help()


def add_model_parameters(alg, model: str = MODEL, device: str | None = DEVICE,
                         label: str = "Model (shipped, downloaded, or downloaded on first use)",
                         weights_only: bool = False) -> None:
    """MODEL and CHECKPOINT, then DEVICE unless ``device`` is None; ``weights_only`` offers only the
    networks (for algorithms that train one)."""
    from ritm_qgis.engine.runtime.choices import default_model, model_names

    names = model_names(weights_only=weights_only)
    default = default_model()[0]
    alg.addParameter(QgsProcessingParameterEnum(
        model, label, options=names, defaultValue=default if default in names else names[0], usesStaticStrings=True))
    alg.addParameter(QgsProcessingParameterFile(
        CHECKPOINT, "Checkpoint file (.pth) used instead of the model above", optional=True,
        fileFilter="Checkpoints (*.pth *.pt);;All files (*)"))
    if device is not None:
        add_device_parameter(alg, device)


def add_device_parameter(alg, device: str = DEVICE) -> None:
    from ritm_qgis.engine.runtime.choices import available_devices

    alg.addParameter(QgsProcessingParameterEnum(
        device, "Device", options=available_devices(), defaultValue="auto", usesStaticStrings=True))


def device_to_use(alg, parameters, context, feedback, device: str = DEVICE) -> str:
    """The DEVICE choice as the run uses it: a GPU PyTorch cannot use becomes the CPU, with a warning
    (the offered list is read without importing torch when QGIS starts; see ``device.cuda_gpus``)."""
    from ritm_qgis.engine.runtime.device import usable_device

    chosen, note = usable_device(alg.parameterAsEnumString(parameters, device, context) or "auto")
    if note:
        feedback.pushWarning(note)
    return chosen


def model_and_device(alg, parameters, context, feedback, model: str = MODEL,
                     device: str = DEVICE) -> tuple[str, str]:
    """``(spec, device)`` for ``build_backend``; a listed model not downloaded yet is downloaded now."""
    device_name = device_to_use(alg, parameters, context, feedback, device)
    return listed_model(alg, parameters, context, feedback, model), device_name


def listed_model(alg, parameters, context, feedback, model: str = MODEL) -> str:
    """The MODEL choice (or the CHECKPOINT file) as a spec; a listed model not downloaded yet is
    downloaded now, on QGIS's network stack (the user's proxy), with progress and cancel."""
    from ritm_qgis.core.errors import RitmError
    from ritm_qgis.engine.runtime.choices import model_spec
    from ritm_qgis.qgis_download import download_in_qgis

    name = alg.parameterAsEnumString(parameters, model, context)
    checkpoint = alg.parameterAsFile(parameters, CHECKPOINT, context) if parameters.get(CHECKPOINT) else None

    def progress(done, total):
        if total:
            feedback.setProgressText(f"Downloading {name}: {done / 1e6:.1f} of {total / 1e6:.1f} MB")

    try:
        return model_spec(name, checkpoint or None, progress=progress, cancel=feedback.isCanceled,
                          fetch=download_in_qgis)
    except RitmError as exc:
        raise QgsProcessingException(str(exc)) from None
