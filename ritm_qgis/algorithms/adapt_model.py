"""Processing algorithm: adapt a model to this area (raster + footprints -> a named adapted model)."""

from __future__ import annotations

import os
import tempfile

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputBoolean,
    QgsProcessingOutputString,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorLayer,
)

from .base import RitmAlgorithm


class AdaptModelAlgorithm(RitmAlgorithm):
    INPUT = "INPUT"
    FOOTPRINTS = "FOOTPRINTS"
    MODEL = "MODEL"
    MINUTES = "MINUTES"
    NAME_PARAM = "NAME"
    MODEL_NAME = "MODEL_NAME"
    IMPROVED = "IMPROVED"
    REPORT = "REPORT"

    NAME = "adapt_model"
    DISPLAY_NAME = "Adapt a model to this area"
    GROUP = "Training"
    GROUP_ID = "training"
    HELP = (
        "Fine-tunes a model on the buildings of a footprint layer you already have for part of the raster "
        "(cadastre, OpenStreetMap, buildings you outlined), for a few minutes on the CPU, with RITM's "
        "iterative click scheme.\n"
        "Every 5th building (at least 5) is held out and never trained on: the clicks needed to reach 85 % "
        "IoU (NoC10@85) and the mean IoU at clicks 1 and 3 are measured on them before and after. When the "
        "held-out buildings got better, the adapted model is saved in the model cache under a name "
        "(BASE+LAYER-DATE, or the name you give) and can be chosen in the dock and in every algorithm; "
        "otherwise nothing is saved and the report says so. The minutes are training time; the two checks "
        "come on top."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, "Image raster"))
        self.addParameter(QgsProcessingParameterVectorLayer(
            self.FOOTPRINTS, "Building footprints (may cover part of the raster)", [QgsProcessing.TypeVectorPolygon]))
        self.add_model_parameters(self.MODEL, device=None, label="Model to adapt", weights_only=True)
        self.addParameter(QgsProcessingParameterNumber(
            self.MINUTES, "Training time (minutes)", QgsProcessingParameterNumber.Double, defaultValue=5.0,
            minValue=0.05, maxValue=24 * 60))
        self.addParameter(QgsProcessingParameterString(
            self.NAME_PARAM, "Name of the adapted model (empty: BASE+LAYER-DATE)", optional=True))
        self.addOutput(QgsProcessingOutputString(self.MODEL_NAME, "Adapted model (empty when not saved)"))
        self.addOutput(QgsProcessingOutputBoolean(self.IMPROVED, "The held-out buildings got better"))
        self.addOutput(QgsProcessingOutputString(self.REPORT, "Hold-out report"))

    def process(self, parameters, context, run):
        from ritm_qgis.core.errors import RitmError
        from ritm_qgis.engine.geo.vector_io import write_gpkg
        from ritm_qgis.engine.jobs.adapt_area import adapt_area

        from ._layers import layer_to_frame, raster_file

        raster = raster_file(self, parameters, self.INPUT, context)
        layer = self.parameterAsVectorLayer(parameters, self.FOOTPRINTS, context)
        frame = layer_to_frame(layer, what="footprint layer")
        if len(frame) == 0:
            raise QgsProcessingException(f"The footprint layer '{layer.name()}' has no features.")
        base = self.listed_model(parameters, context, run.feedback, self.MODEL)
        minutes = self.parameterAsDouble(parameters, self.MINUTES, context)
        name = (self.parameterAsString(parameters, self.NAME_PARAM, context) or "").strip() or None
        with tempfile.TemporaryDirectory(prefix="ritm-adapt-") as tmp:
            footprints = os.path.join(tmp, "footprints.gpkg")
            write_gpkg(frame, footprints, layer="footprints", mode="w")
            try:
                result = adapt_area(raster, footprints, base, minutes, layer_label=layer.name(), name=name,
                                    progress=run.counts, cancel=run.cancelled, log=run.info)
            except RitmError as exc:
                raise RitmError(str(exc).replace(footprints, f"the footprint layer '{layer.name()}'")) from None
        message = result.message()
        (run.info if result.improved else run.warning)(message)
        return {self.MODEL_NAME: result.name or "", self.IMPROVED: result.improved, self.REPORT: message}
