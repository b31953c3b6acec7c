"""Processing algorithm: the paper's demo on a georeferenced raster (simulated clicks to a target IoU)."""

from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputNumber,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorLayer,
)

from ritm_qgis.engine.jobs.limits import MAX_CLICKS

from ._params import stretch_parameter
from .base import RitmAlgorithm


class AutoAnnotateAlgorithm(RitmAlgorithm):
    INPUT = "INPUT"
    REFERENCE = "REFERENCE"
    REFERENCE_MASK = "REFERENCE_MASK"
    EXTENT = "EXTENT"
    MODEL = "MODEL"
    CHECKPOINT = "CHECKPOINT"
    DEVICE = "DEVICE"
    TARGET_IOU = "TARGET_IOU"
    MAX_CLICKS = "MAX_CLICKS"
    STRETCH = "STRETCH"
    OUTPUT = "OUTPUT"
    OUTPUT_CLICKS = "OUTPUT_CLICKS"
    OUTPUT_OVERLAY = "OUTPUT_OVERLAY"
    OUTPUT_ERROR_MAP = "OUTPUT_ERROR_MAP"
    OUTPUT_CURVE = "OUTPUT_CURVE"

    NAME = "auto_annotate"
    DISPLAY_NAME = "Auto-annotate with simulated clicks (demo)"
    GROUP = "Evaluation"
    GROUP_ID = "evaluation"
    HELP = (
        "The paper's demo on a georeferenced raster: a simulated user clicks at the centre of the largest "
        "error against a reference (a footprint layer, or a mask raster on the image's grid where > 128 is "
        "building) until the target IoU or the click budget is reached.\n"
        "Outputs: the predicted buildings as polygons, the clicks as points (order, positive, IoU after the "
        "click), and optionally the figures: overlay (prediction in red, positive clicks green, negative red), "
        "error map (true positive white, true negative black, false positive blue, false negative red) and the "
        "IoU-per-click curve.\n"
        "The window (the extent, or the whole raster) is read whole at native resolution: at most 4000x4000 "
        "pixels."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, "Image raster"))
        self.addParameter(QgsProcessingParameterVectorLayer(
            self.REFERENCE, "Reference footprints (or give a mask raster)", [QgsProcessing.TypeVectorPolygon],
            optional=True))
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.REFERENCE_MASK, "Reference mask raster (> 128 = building; or give footprints)", optional=True))
        self.addParameter(QgsProcessingParameterExtent(self.EXTENT, "Extent (empty = whole raster)", optional=True))
        self.add_model_parameters(self.MODEL, self.DEVICE)
        self.addParameter(QgsProcessingParameterNumber(
            self.TARGET_IOU, "Target IoU", QgsProcessingParameterNumber.Double, defaultValue=0.9, minValue=0.01,
            maxValue=1.0))
        self.addParameter(QgsProcessingParameterNumber(
            self.MAX_CLICKS, "Click budget", QgsProcessingParameterNumber.Integer, defaultValue=20, minValue=1,
            maxValue=MAX_CLICKS))
        self.addParameter(stretch_parameter(self.STRETCH))
        self.add_vector_output(self.OUTPUT, "Predicted buildings (GeoPackage)")
        self.add_vector_output(self.OUTPUT_CLICKS, "Clicks (GeoPackage)", QgsProcessing.TypeVectorPoint)
        self.add_overwrite_parameter()
        for key, label in ((self.OUTPUT_OVERLAY, "Overlay figure"), (self.OUTPUT_ERROR_MAP, "Error map figure"),
                           (self.OUTPUT_CURVE, "IoU-per-click figure")):
            self.addParameter(QgsProcessingParameterFileDestination(
                key, label, "PNG files (*.png)", optional=True, createByDefault=False))
        self.addOutput(QgsProcessingOutputNumber("N_CLICKS", "Clicks made"))
        self.addOutput(QgsProcessingOutputNumber("FINAL_IOU", "IoU after the last click"))

    def process(self, parameters, context, run):
        from ._layers import layer_place, layer_to_frame, raster_file, refuse_outputs_among_inputs, stretch_rule
        from ritm_qgis.engine.jobs.same_file import Place
        from ritm_qgis.core.atomic import OutputSet
        from ritm_qgis.engine.geo.footprints import load_footprints
        from ritm_qgis.engine.geo.output_paths import check_writable
        from ritm_qgis.engine.geo.raster_io import raster_meta
        from ritm_qgis.engine.interactive.backends import build_backend, model_label
        from ritm_qgis.engine.interactive.predictor import Predictor
        from ritm_qgis.engine.jobs.geo_annotate import annotate_raster
        from ritm_qgis.engine.jobs.annotation_outputs import annotation_frames, write_annotation_figures

        raster = raster_file(self, parameters, self.INPUT, context)
        ref_layer = self.parameterAsVectorLayer(parameters, self.REFERENCE, context)
        mask_raster = raster_file(self, parameters, self.REFERENCE_MASK, context) if parameters.get(
            self.REFERENCE_MASK) else None
        spec, device = self.model_and_device(parameters, context, run.feedback)
        target_iou = self.parameterAsDouble(parameters, self.TARGET_IOU, context)
        figures = {k: self.parameterAsFileOutput(parameters, k, context) if parameters.get(k) else None
                   for k in (self.OUTPUT_OVERLAY, self.OUTPUT_ERROR_MAP, self.OUTPUT_CURVE)}
        polys_dest = self.vector_output(parameters, self.OUTPUT, context, "buildings")
        clicks_dest = self.vector_output(parameters, self.OUTPUT_CLICKS, context, "clicks")
        for key, path in figures.items():
            if path:
                check_writable(path, self.describe(key))
        refuse_outputs_among_inputs(
            [Place(self.describe(self.OUTPUT), polys_dest.path, polys_dest.layer),
             Place(self.describe(self.OUTPUT_CLICKS), clicks_dest.path, clicks_dest.layer)]
            + [Place(self.describe(k), p) for k, p in figures.items() if p],
            [Place(self.describe(self.INPUT), raster), layer_place(self, self.REFERENCE, ref_layer),
             Place(self.describe(self.REFERENCE_MASK), mask_raster) if mask_raster else None])
        bounds = None
        if parameters.get(self.EXTENT):
            crs = self.parameterAsRasterLayer(parameters, self.INPUT, context).crs()
            rect = self.parameterAsExtent(parameters, self.EXTENT, context, crs)
            bounds = (rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum())
        reference = layer_to_frame(ref_layer, what="reference layer") if ref_layer is not None else None
        if reference is not None:
            reference = load_footprints(reference, raster_meta(raster).grid)
            if reference.repaired:
                from ritm_qgis.engine.jobs.geo_evaluation import repaired_warning

                run.warning(repaired_warning(reference.repaired, ref_layer.name()))
        stretch = stretch_rule(self, parameters, self.STRETCH, self.INPUT, context, run.warning)
        backend = build_backend(spec, device, optimize="auto")  # the arithmetic of interactive use
        label = model_label(spec)
        run.info(f"model {label}; clicking until IoU {target_iou:g}; stretch {stretch.label}")
        result = annotate_raster(
            raster, lambda: Predictor(backend), footprints=reference, mask_raster=mask_raster, bounds=bounds,
            target_iou=target_iou, max_clicks=self.parameterAsInt(parameters, self.MAX_CLICKS, context),
            progress=run.scaled(0, 90), cancel=run.cancelled, stretch=stretch)
        ann = result.annotation
        polys, clicks = annotation_frames(ann, result.grid, label)
        polys["stretch"] = stretch.label
        with OutputSet() as staging:
            staged = {k: staging.staged(p) if p else None for k, p in figures.items()}
            write_annotation_figures(
                result.rgb, result.gt, ann, result.invalid, overlay_path=staged[self.OUTPUT_OVERLAY],
                error_map_path=staged[self.OUTPUT_ERROR_MAP], curve_path=staged[self.OUTPUT_CURVE],
                target_iou=target_iou, title=label)
            # last: a layer of a GeoPackage that exists goes in at once, in place (vector_io)
            out_path = self.write_layer(polys, polys_dest, staging=staging)
            clicks_path = self.write_layer(clicks, clicks_dest, staging=staging)
        run.info(f"{ann.n_clicks} click(s), IoU {ann.ious[-1]:.3f}")
        return {self.OUTPUT: str(out_path), self.OUTPUT_CLICKS: str(clicks_path), **figures,
                "N_CLICKS": ann.n_clicks, "FINAL_IOU": ann.ious[-1]}
