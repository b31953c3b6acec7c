"""Processing algorithm: train or fine-tune a RITM network on a raster + building footprint layer."""

from __future__ import annotations

import os
import tempfile

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputFile,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorLayer,
)

from ritm_qgis.engine.jobs.limits import MAX_BATCH_SIZE

from .base import RitmAlgorithm

SAMPLING = ["tiles", "buildings"]


class TrainModelAlgorithm(RitmAlgorithm):
    INPUT = "INPUT"
    FOOTPRINTS = "FOOTPRINTS"
    INIT = "INIT"
    ARCH = "ARCH"
    SAMPLES = "SAMPLES"
    EPOCHS = "EPOCHS"
    MINUTES = "MINUTES"
    BATCH_SIZE = "BATCH_SIZE"
    DEVICE = "DEVICE"
    OUTPUT_FOLDER = "OUTPUT_FOLDER"
    CHECKPOINT = "CHECKPOINT"

    NAME = "train_model"
    DISPLAY_NAME = "Train or fine-tune a model on footprints"
    GROUP = "Training"
    GROUP_ID = "training"
    HELP = (
        "Adapts an interactive segmentation network to your imagery, as the paper does: RITM's iterative "
        "training (random initial clicks, then clicks on the model's own errors, previous mask fed back, "
        "normalized focal loss) on samples cut from the raster and labelled by the footprint layer.\n"
        "Start from: 'none' (from scratch, architecture below) or a model to fine-tune (a checkpoint file, "
        "a shipped model name, or a downloaded official RITM model such as coco_lvis_h18_itermask).\n"
        "The output folder holds last.pth (use it as the model of the other algorithms) and what is "
        "needed to resume: run again with the same folder to continue. Cancelling saves the "
        "current weights. Training is slow on a CPU; a GPU is used when there is one."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, "Image raster"))
        self.addParameter(QgsProcessingParameterVectorLayer(
            self.FOOTPRINTS, "Building footprints", [QgsProcessing.TypeVectorPolygon]))
        self.addParameter(QgsProcessingParameterString(
            self.INIT, "Start from: 'none' or a model to fine-tune", defaultValue="none"))
        self.addParameter(QgsProcessingParameterString(
            self.ARCH, "Architecture when starting from scratch (hrnet18s, hrnet18, hrnet32, hrnet_tiny)",
            defaultValue="hrnet18s"))
        self.addParameter(QgsProcessingParameterEnum(
            self.SAMPLES, "Samples", options=["500x500 tiles of the raster (the paper's)", "one window per building"],
            defaultValue=0))
        self.addParameter(QgsProcessingParameterNumber(
            self.EPOCHS, "Epochs", QgsProcessingParameterNumber.Integer, defaultValue=10, minValue=1))
        self.addParameter(QgsProcessingParameterNumber(
            self.MINUTES, "Time budget in minutes (0: none; training stops there, the weights so far kept)",
            QgsProcessingParameterNumber.Double, defaultValue=0.0, minValue=0.0, optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.BATCH_SIZE, "Batch size", QgsProcessingParameterNumber.Integer, defaultValue=8, minValue=1,
            maxValue=MAX_BATCH_SIZE))
        from ._model_params import add_device_parameter

        add_device_parameter(self, self.DEVICE)
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT_FOLDER, "Output folder"))
        self.addOutput(QgsProcessingOutputFile(self.CHECKPOINT, "Checkpoint (last.pth)"))

    def process(self, parameters, context, run):
        from ._layers import layer_to_frame, raster_file
        from ._model_params import device_to_use
        from ritm_qgis.core.errors import RitmError
        from ritm_qgis.engine.geo.output_paths import check_writable
        from ritm_qgis.engine.geo.vector_io import write_gpkg
        from ritm_qgis.engine.data.specs import RasterSpec
        from ritm_qgis.engine.training import TrainConfig, train

        raster = raster_file(self, parameters, self.INPUT, context)
        layer = self.parameterAsVectorLayer(parameters, self.FOOTPRINTS, context)
        out = self.parameterAsString(parameters, self.OUTPUT_FOLDER, context)
        mode = SAMPLING[self.parameterAsEnum(parameters, self.SAMPLES, context)]
        check_writable(os.path.join(out, "last.pth"), self.describe(self.OUTPUT_FOLDER))
        frame = layer_to_frame(layer, what="footprint layer")
        if len(frame) == 0:
            raise QgsProcessingException(f"The footprint layer '{layer.name()}' has no features.")
        # the layer as the engine reads it (any provider, any CRS), in a temporary file removed after the run;
        # messages name the layer, never that file
        with tempfile.TemporaryDirectory(prefix="ritm-train-") as tmp:
            footprints = os.path.join(tmp, "footprints.gpkg")
            write_gpkg(frame, footprints, layer="footprints", mode="w")
            cfg = TrainConfig(
                train_data=[RasterSpec(raster, footprints, mode)], out=out,
                init=self.parameterAsString(parameters, self.INIT, context).strip() or "none",
                arch=self.parameterAsString(parameters, self.ARCH, context).strip() or "hrnet18s",
                epochs=self.parameterAsInt(parameters, self.EPOCHS, context),
                batch_size=self.parameterAsInt(parameters, self.BATCH_SIZE, context),
                device=device_to_use(self, parameters, context, run.feedback, self.DEVICE),
                aerial_aug=True,
                minutes=self.parameterAsDouble(parameters, self.MINUTES, context) or None)

            try:
                path = train(cfg, progress=run.counts, cancel=run.cancelled, log=run.info)
            except RitmError as exc:
                raise RitmError(str(exc).replace(footprints, f"the footprint layer '{layer.name()}'")) from None
        if run.cancelled():
            run.warning(f"Cancelled: the weights so far are in {path}; run again with the same folder to resume.")
        return {self.OUTPUT_FOLDER: out, self.CHECKPOINT: str(path)}
