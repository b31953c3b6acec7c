"""Processing algorithm: train or fine-tune a RITM network on a raster + building footprint layer."""

from __future__ import annotations

import os

from qgis.core import (
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingOutputFile,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorLayer,
)

SAMPLING = ["tiles", "buildings"]


class TrainModelAlgorithm(QgsProcessingAlgorithm):
    INPUT = "INPUT"
    FOOTPRINTS = "FOOTPRINTS"
    INIT = "INIT"
    ARCH = "ARCH"
    SAMPLES = "SAMPLES"
    EPOCHS = "EPOCHS"
    BATCH_SIZE = "BATCH_SIZE"
    DEVICE = "DEVICE"
    OUTPUT_FOLDER = "OUTPUT_FOLDER"
    CHECKPOINT = "CHECKPOINT"

    def name(self):
        return "train_model"

    def displayName(self):  # noqa: N802
        return "Train or fine-tune a model on footprints"

    def group(self):
        return "Training"

    def groupId(self):  # noqa: N802
        return "training"

    def shortHelpString(self):  # noqa: N802
        return (
            "Adapts an interactive segmentation network to your imagery, as the paper does: RITM's iterative "
            "training (random initial clicks, then clicks on the model's own errors, previous mask fed back, "
            "normalized focal loss) on samples cut from the raster and labelled by the footprint layer.\n"
            "Start from: 'none' (from scratch, architecture below) or a model to fine-tune (a checkpoint file, "
            "a shipped model name, or a downloaded official RITM model such as coco_lvis_h18_itermask).\n"
            "The output folder holds last.pth (use it as the model of the other algorithms), best.pth, and "
            "what is needed to resume: run again with the same folder to continue. Cancelling saves the "
            "current weights. Training is slow on a CPU; a GPU is used when there is one."
        )

    def createInstance(self):  # noqa: N802
        return TrainModelAlgorithm()

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
            self.BATCH_SIZE, "Batch size", QgsProcessingParameterNumber.Integer, defaultValue=8, minValue=1))
        self.addParameter(QgsProcessingParameterString(
            self.DEVICE, "Device (auto, cpu, cuda, cuda:N)", defaultValue="auto"))
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT_FOLDER, "Output folder"))
        self.addOutput(QgsProcessingOutputFile(self.CHECKPOINT, "Checkpoint (last.pth)"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        from ._layers import engine_errors, layer_to_frame, raster_file  # first: isolates the geo stack
        from ritm_qgis.engine.geo.output_paths import check_writable
        from ritm_qgis.engine.data.specs import RasterSpec
        from ritm_qgis.engine.training import TrainConfig, train
        from ritm_qgis.engine.geo.vector_io import write_gpkg

        raster = raster_file(self, parameters, self.INPUT, context)
        layer = self.parameterAsVectorLayer(parameters, self.FOOTPRINTS, context)
        out = self.parameterAsString(parameters, self.OUTPUT_FOLDER, context)
        mode = SAMPLING[self.parameterAsEnum(parameters, self.SAMPLES, context)]
        with engine_errors():
            check_writable(os.path.join(out, "last.pth"), "output folder")
            # the layer as the engine reads it (any provider, any CRS), kept beside the checkpoints
            footprints = os.path.join(out, "training_footprints.gpkg")
            frame = layer_to_frame(layer, what="footprint layer")
            if len(frame) == 0:
                raise QgsProcessingException(f"The footprint layer '{layer.name()}' has no features.")
            write_gpkg(frame, footprints, layer="footprints", mode="w")
            cfg = TrainConfig(
                train_data=[RasterSpec(raster, footprints, mode)], out=out,
                init=self.parameterAsString(parameters, self.INIT, context).strip() or "none",
                arch=self.parameterAsString(parameters, self.ARCH, context).strip() or "hrnet18s",
                epochs=self.parameterAsInt(parameters, self.EPOCHS, context),
                batch_size=self.parameterAsInt(parameters, self.BATCH_SIZE, context),
                device=self.parameterAsString(parameters, self.DEVICE, context).strip() or "auto",
                aerial_aug=True)

            def progress(fraction, message):
                feedback.setProgress(100 * fraction)
                feedback.setProgressText(message)

            path = train(cfg, progress=progress, cancel=feedback.isCanceled, log=feedback.pushInfo)
        if feedback.isCanceled():
            feedback.pushWarning(f"Cancelled: the weights so far are in {path}; run again with the same folder "
                                 "to resume.")
        return {self.OUTPUT_FOLDER: out, self.CHECKPOINT: str(path)}
