"""The base class of every ritm_qgis Processing algorithm.

A subclass states its metadata once, as class attributes (``NAME``, ``DISPLAY_NAME``, ``GROUP``,
``GROUP_ID``, ``HELP``), declares its parameters in ``initAlgorithm`` (shared ones through the
``add_*_parameter`` helpers), may check parameter values in ``check_parameters`` (run by QGIS
before any work, messages naming the Processing parameters), and does its work in
``process(parameters, context, run)`` where ``run`` is the one progress/cancel adapter
(``RunFeedback``). The base class maps the engine's errors to one ``QgsProcessingException``:
a ``RitmError`` is its sentence, ``Cancelled`` says that nothing was written, a file that cannot
be read or written (a truncated GeoTIFF, an unwritable folder) is a sentence too.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from qgis.core import (
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterVectorDestination,
)
from qgis.PyQt.QtCore import QCoreApplication

from ritm_qgis.layer_source import destination_parts



def icon_path() -> str:
    """``ritm_qgis/icon.svg``, the plugin's one icon (may be absent: QGIS then shows its default)."""
    from ritm_qgis.gui.icon import ICON_PATH

    return ICON_PATH


class Destination(NamedTuple):
    path: str
    layer: str
    overwrite: bool


class RunFeedback:
    """One progress/cancel adapter over a ``QgsProcessingFeedback``.

    ``counts(done, total, message)`` takes the engine's progress reports (``core.progress``),
    ``progress(fraction)`` (0..1) a fraction, each mapped into ``[start, end]`` percent;
    ``cancelled()`` is the engine's ``cancel`` callable. Messages
    (``info``/``warning``) given while the progress bar is moving are held back until
    ``finish()`` so that they do not run into qgis_process's progress dots.
    """

    def __init__(self, feedback):
        from qgis.core import QgsProcessingFeedback

        self.feedback = feedback if feedback is not None else QgsProcessingFeedback()
        self._held: list[tuple[str, str]] = []
        self._moving = False

    def cancelled(self) -> bool:
        return bool(self.feedback.isCanceled())

    def progress(self, fraction: float, start: float = 0.0, end: float = 100.0) -> None:
        fraction = min(1.0, max(0.0, float(fraction)))
        self._moving = True
        self.feedback.setProgress(start + (end - start) * fraction)

    def counts(self, done: float, total: float | None, message: str | None = None,
               start: float = 0.0, end: float = 100.0) -> None:
        """The engine's ``progress(done, total, message)`` (``core.progress``), mapped into [start, end] %."""
        if total:
            self.progress(done / total, start, end)
        if message:
            self.feedback.setProgressText(message)

    def scaled(self, start: float, end: float):
        """An engine ``progress`` callable for one stage of the run, within [start, end] %."""
        return lambda done, total, message=None: self.counts(done, total, message, start, end)

    def _say(self, kind: str, text: str) -> None:
        if self._moving:
            self._held.append((kind, text))
        elif kind == "warning":
            self.feedback.pushWarning(text)
        else:
            self.feedback.pushInfo(text)

    def info(self, text: str) -> None:
        self._say("info", text)

    def warning(self, text: str) -> None:
        self._say("warning", text)

    def finish(self) -> None:
        """Progress 100 %, then the messages held back."""
        self.feedback.setProgress(100)
        self._moving = False
        held, self._held = self._held, []
        for kind, text in held:
            self._say(kind, text)


class RitmAlgorithm(QgsProcessingAlgorithm):
    NAME = ""
    DISPLAY_NAME = ""
    GROUP = ""
    GROUP_ID = ""
    HELP = ""

    # ---------------------------------------------------------------- metadata, written once
    def name(self):
        return self.NAME

    def displayName(self):  # noqa: N802
        return self.tr(self.DISPLAY_NAME)

    def group(self):
        return self.tr(self.GROUP)

    def groupId(self):  # noqa: N802
        return self.GROUP_ID

    def shortHelpString(self):  # noqa: N802
        from ._model_params import CHECKPOINT, model_help

        text = self.tr(self.HELP)
        if self.parameterDefinition("STRETCH") is not None:  # stretch_parameter: the registered stretches
            from ritm_qgis.engine.geo.stretch_registry import help_sentence

            text += "\n" + help_sentence()
        if self.parameterDefinition(CHECKPOINT) is not None:  # an algorithm that runs a model
            text += "\n" + model_help()
        return text

    def helpUrl(self):  # noqa: N802
        return help_url()

    def icon(self):
        from qgis.PyQt.QtGui import QIcon

        path = icon_path()
        return QIcon(path) if os.path.isfile(path) else super().icon()

    def tr(self, text: str) -> str:
        return QCoreApplication.translate(type(self).__name__, text)

    def createInstance(self):  # noqa: N802
        return type(self)()

    # ---------------------------------------------------------------- shared parameters
    def add_model_parameters(self, model: str = "MODEL", device: str | None = "DEVICE", **options) -> None:
        """The model to run (a choice among the model list, or a checkpoint file) and the device to
        run it on (one definition for every algorithm; ``_model_params.py``, which says the options)."""
        from ._model_params import add_model_parameters

        add_model_parameters(self, model, device, **options)

    def model_and_device(self, parameters, context, feedback, model: str = "MODEL", device: str = "DEVICE"):
        """``(spec, device)`` for ``build_backend``; a listed model not downloaded yet is downloaded now."""
        from ._model_params import model_and_device

        return model_and_device(self, parameters, context, feedback, model, device)

    def listed_model(self, parameters, context, feedback, model: str = "MODEL") -> str:
        """The model's spec alone (no device), downloaded now when it is listed but not downloaded yet."""
        from ._model_params import listed_model

        return listed_model(self, parameters, context, feedback, model)

    def add_overwrite_parameter(self, key: str = "OVERWRITE") -> None:
        self.addParameter(QgsProcessingParameterBoolean(
            key, "Replace an existing layer of the same name that ritm_qgis did not write", defaultValue=False))

    def add_vector_output(self, key: str, label: str, geometry=QgsProcessing.TypeVectorPolygon, **kw) -> None:
        self.addParameter(QgsProcessingParameterVectorDestination(key, label, geometry, **kw))

    # ---------------------------------------------------------------- outputs
    def vector_output(self, parameters, key, context, default_layer: str, *, append: bool = False):
        """A vector destination -> a ``Destination`` (file, layer, whether it may be replaced; any
        one-file OGR format, a GeoPackage layer keeping the file's other layers),
        checked before any work: the folder is writable, and an existing layer that ritm_qgis did not
        write is replaced only when the user named it or chose to overwrite it."""
        from ritm_qgis.engine.geo.output_paths import vector_destination
        from ritm_qgis.engine.geo.vector_io import LayerExists, list_layers, written_by_us

        raw = self.parameterAsOutputLayer(parameters, key, context)
        path, named = vector_destination(*destination_parts(raw), self.describe(key), shown=raw)
        layer = named or default_layer
        if not path.lower().endswith(".gpkg"):  # a one-layer file the user chose by name
            return Destination(path, layer, True)
        overwrite = named is not None or (self.parameterDefinition("OVERWRITE") is not None
                                          and self.parameterAsBool(parameters, "OVERWRITE", context))
        exists = layer.lower() in (n.lower() for n in list_layers(path))
        if exists and not append and not overwrite and not written_by_us(path, layer):
            choices = [f"give {key} as '{path}|layername=another_name' for another layer"]
            if self.parameterDefinition("APPEND") is not None:
                choices.insert(0, "set APPEND to add to it")
            if self.parameterDefinition("OVERWRITE") is not None:
                choices.append("set OVERWRITE to replace it")
            else:
                choices.append(f"give {key} as '{path}|layername={layer}' to replace it")
            raise LayerExists(path, layer, ", ".join(choices[:-1]) + " or " + choices[-1])
        return Destination(path, layer, overwrite)

    def write_layer(self, gdf, destination: "Destination", *, mode: str = "w", cancel=None, staging=None):
        from ritm_qgis.engine.geo.vector_io import write_vector

        return write_vector(gdf, destination.path, layer=destination.layer, mode=mode,
                            overwrite=destination.overwrite, cancel=cancel, staging=staging)

    # ---------------------------------------------------------------- validation before any work
    def check_parameters(self, parameters, context) -> str | None:
        """A sentence naming the parameter when a value is unusable, else None (override)."""
        return None

    def checkParameterValues(self, parameters, context):  # noqa: N802
        from ritm_qgis.core.errors import RitmError

        try:
            problem = self.number_problems(parameters) or self.check_parameters(parameters, context)
        except RitmError as exc:
            problem = str(exc)
        if problem:
            return False, problem
        return super().checkParameterValues(parameters, context)

    def number_problems(self, parameters) -> str | None:
        """The first number parameter outside its range, as a sentence naming it (QGIS would only say
        'Incorrect parameter value')."""
        from qgis.core import QgsProcessingParameterNumber

        for d in self.parameterDefinitions():
            if not isinstance(d, QgsProcessingParameterNumber) or parameters.get(d.name()) in (None, ""):
                continue
            raw = parameters[d.name()]
            try:
                value = float(raw) if isinstance(raw, (int, float)) else float(str(raw).strip())
            except ValueError:
                continue  # not a literal (an expression, a model input): QGIS checks it
            integer = d.dataType() == QgsProcessingParameterNumber.Integer
            shown = f"{value:g}"
            if integer and value != int(value):
                return f"{self.describe(d.name())} must be a whole number, not {shown}."
            if value < d.minimum():
                return f"{self.describe(d.name())} must be at least {d.minimum():g}, not {shown}."
            if value > d.maximum():
                return f"{self.describe(d.name())} must be at most {d.maximum():g}, not {shown}."
        return None

    def describe(self, key: str) -> str:
        """A parameter in the words of Processing: its name and its label."""
        d = self.parameterDefinition(key)
        return f"{key} ({d.description()})" if d is not None else key

    # ---------------------------------------------------------------- the run
    def process(self, parameters, context, run: RunFeedback) -> dict:
        raise NotImplementedError

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        from ritm_qgis.core.cancel import Cancelled
        from ritm_qgis.core.errors import RitmError, file_error_message

        run = RunFeedback(feedback)
        try:
            from . import _layers  # noqa: F401 - first: isolates the geo stack
            result = self.process(parameters, context, run)
        except ModuleNotFoundError as exc:
            message = missing_package_message(exc)
            if message is None:
                raise
        except Cancelled:
            message = (f"{self.DISPLAY_NAME} was cancelled; no output was written and earlier outputs were left "
                       "as they were.")
        except RitmError as exc:
            message = str(exc)
        except QgsProcessingException as exc:
            message = str(exc)
        except Exception as exc:  # noqa: BLE001 - a file problem becomes a sentence; a bug stays a traceback
            message = file_error_message(exc)
            if message is None:
                raise
        else:
            run.finish()
            return result
        raise _processing_error(message, run.feedback) from None


def help_url(metadata: str | None = None) -> str:
    """The project's homepage, as `make package` wrote it into the plugin's metadata.txt from the
    release setting; '' (no help link) while the project has none, rather than an invented address."""
    from ritm_qgis.about import METADATA_FILES, read_metadata

    # the zip's ritm_qgis/metadata.txt only (a source checkout has none there: no link)
    return read_metadata(metadata or METADATA_FILES[0]).get("homepage", "").strip()


def missing_package_message(exc: ModuleNotFoundError) -> str | None:
    """One sentence for a package of the plugin's requirements that QGIS's Python lacks (the
    dependencies were never installed); None for any other module (a bug: it stays a traceback)."""
    from ritm_qgis import deps

    top = (exc.name or "").split(".")[0]
    modules = {r.module for r in deps.read_requirements()} | {"pyogrio", "pandas", "cv2"}
    if top not in modules:
        return None
    return (f"{deps.PLUGIN_TITLE} needs Python packages that QGIS's Python does not have yet (here '{top}'): "
            f"install them with Plugins > {deps.PLUGIN_TITLE} > Install dependencies, then restart QGIS.")


def _processing_error(message: str, feedback) -> QgsProcessingException:
    """The exception for a failed run, so that the message is printed once.

    qgis_process prints a failed run's message three times: as ``ERROR:`` and twice more through
    QGIS's message log, which it echoes to stderr. The run ends the process there, so in
    qgis_process the log's echo is silenced first and only the ``ERROR:`` line remains. Elsewhere
    (the toolbox, processing.run, the Modeler) the exception is left to QGIS as it is.
    """
    from qgis.core import QgsApplication

    if QgsApplication.platform() == "qgis_process":
        QgsApplication.messageLog().blockSignals(True)
    return QgsProcessingException(message)
