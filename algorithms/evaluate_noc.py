"""Processing algorithm: the paper's NoC evaluation on a raster against a reference footprint layer."""

from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
    QgsProcessingParameterVectorLayer,
)

MODES = ("tiles", "buildings")


class EvaluateNocAlgorithm(QgsProcessingAlgorithm):
    INPUT = "INPUT"
    REFERENCE = "REFERENCE"
    MODEL = "MODEL"
    DEVICE = "DEVICE"
    MODE = "MODE"
    TILE_SIZE = "TILE_SIZE"
    AREA_OF_INTEREST = "AREA_OF_INTEREST"
    MAX_CLICKS = "MAX_CLICKS"
    THRESHOLDS = "THRESHOLDS"
    BATCH_SIZE = "BATCH_SIZE"
    OUTPUT_TABLE = "OUTPUT_TABLE"
    OUTPUT_HTML = "OUTPUT_HTML"
    OUTPUT_IOUS = "OUTPUT_IOUS"
    OUTPUT_FOOTPRINTS = "OUTPUT_FOOTPRINTS"

    def name(self):
        return "evaluate_noc"

    def displayName(self):  # noqa: N802
        return "Evaluate NoC against a footprint layer"

    def group(self):
        return "Evaluation"

    def groupId(self):  # noqa: N802
        return "evaluation"

    def shortHelpString(self):  # noqa: N802
        return (
            "Measures how many clicks a model needs on a raster, with the paper's simulated user (each click at "
            "the pixel deepest inside the largest error) and a reference building-footprint layer (reprojected to "
            "the raster's CRS; invalid polygons repaired).\n"
            "Mode 'tiles' (the paper's): 500 x 500 tiles, ground truth = union of the buildings; tiles without "
            "buildings are dropped from the metrics and counted. Mode 'buildings': one window around each "
            "footprint, ground truth = that building alone.\n"
            "Outputs: a per-sample table (CSV: IoU after each click, NoC@t per threshold), an HTML report with "
            "Table 1 (NoC@80/85/90, >=max@t, Avg IoU under both definitions) and the IoU-vs-clicks figure, "
            "optionally the IoU array (.npy, for 'NoC report from IoU arrays') and the predicted footprints "
            "(the mask after each sample's last click, with its IoU).\n"
            "Model: a RITM checkpoint file, an official model name, or 'grabcut' (weight-free)."
        )

    def createInstance(self):  # noqa: N802
        return EvaluateNocAlgorithm()

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, "Image raster"))
        self.addParameter(QgsProcessingParameterVectorLayer(
            self.REFERENCE, "Reference building footprints", [QgsProcessing.TypeVectorPolygon]))
        self.addParameter(QgsProcessingParameterString(
            self.MODEL, "Model: checkpoint file, official model name, or 'grabcut'", defaultValue="grabcut"))
        self.addParameter(QgsProcessingParameterString(
            self.DEVICE, "Device (auto, cpu, cuda, cuda:N)", defaultValue="auto"))
        self.addParameter(QgsProcessingParameterEnum(
            self.MODE, "Samples", options=["tiles, union of buildings (paper)", "one window per building"],
            defaultValue=0))
        self.addParameter(QgsProcessingParameterNumber(
            self.TILE_SIZE, "Tile size (pixels, tile mode)", QgsProcessingParameterNumber.Integer,
            defaultValue=500, minValue=16))
        self.addParameter(QgsProcessingParameterVectorLayer(
            self.AREA_OF_INTEREST, "Area of interest (only tiles/buildings intersecting it)",
            [QgsProcessing.TypeVectorPolygon], optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.MAX_CLICKS, "Click budget per sample", QgsProcessingParameterNumber.Integer, defaultValue=20,
            minValue=1, maxValue=100))
        self.addParameter(QgsProcessingParameterString(
            self.THRESHOLDS, "IoU thresholds for NoC (comma-separated)", defaultValue="0.8,0.85,0.9"))
        self.addParameter(QgsProcessingParameterNumber(
            self.BATCH_SIZE, "Samples per network batch", QgsProcessingParameterNumber.Integer, defaultValue=4,
            minValue=1))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_TABLE, "Per-sample table", "CSV files (*.csv)"))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_HTML, "HTML report", "HTML files (*.html)"))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_IOUS, "IoU array (.npy)", "NumPy arrays (*.npy)", optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterVectorDestination(
            self.OUTPUT_FOOTPRINTS, "Predicted footprints (GeoPackage)", QgsProcessing.TypeVectorPolygon,
            optional=True, createByDefault=False))
        for key, label in (("NOC_80", "NoC@80"), ("NOC_85", "NoC@85"), ("NOC_90", "NoC@90"),
                           ("N_SAMPLES", "Samples evaluated"), ("N_EMPTY", "Empty samples dropped")):
            self.addOutput(QgsProcessingOutputNumber(key, label))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        from ._layers import engine_errors, layer_to_frame, raster_file  # first: isolates the geo stack
        from ritm_qgis.engine.interactive.backends import model_label
        from ritm_qgis.engine.protocol.noc import parse_thresholds
        from ritm_qgis.engine.interactive.backends import build_backend
        from ritm_qgis.engine.jobs.geo_evaluation import evaluate_raster, write_evaluation_outputs
        from ritm_qgis.engine.geo.output_paths import check_writable, gpkg_path
        from ritm_qgis.engine.interactive.predictor import Predictor
        from ritm_qgis.engine.geo.vector_io import write_gpkg

        raster = raster_file(self, parameters, self.INPUT, context)
        ref_layer = self.parameterAsVectorLayer(parameters, self.REFERENCE, context)
        aoi_layer = self.parameterAsVectorLayer(parameters, self.AREA_OF_INTEREST, context)
        spec = self.parameterAsString(parameters, self.MODEL, context).strip()
        device = self.parameterAsString(parameters, self.DEVICE, context).strip() or "auto"
        mode = MODES[self.parameterAsEnum(parameters, self.MODE, context)]
        max_clicks = self.parameterAsInt(parameters, self.MAX_CLICKS, context)
        table = self.parameterAsFileOutput(parameters, self.OUTPUT_TABLE, context)
        html = self.parameterAsFileOutput(parameters, self.OUTPUT_HTML, context)
        ious = self.parameterAsFileOutput(parameters, self.OUTPUT_IOUS, context) if parameters.get(
            self.OUTPUT_IOUS) else None
        fp_dest = self.parameterAsOutputLayer(parameters, self.OUTPUT_FOOTPRINTS, context) if parameters.get(
            self.OUTPUT_FOOTPRINTS) else None
        with engine_errors():
            thresholds = parse_thresholds(self.parameterAsString(parameters, self.THRESHOLDS, context))
            check_writable(table, "per-sample table")
            check_writable(html, "HTML report")
            if ious:
                check_writable(ious, "IoU array")
            fp_path, fp_layer = gpkg_path(fp_dest, "predicted footprints") if fp_dest else (None, None)
            reference = layer_to_frame(ref_layer, what="reference footprint layer")
            aoi = layer_to_frame(aoi_layer, what="area of interest") if aoi_layer is not None else None
            feedback.pushInfo(f"{len(reference)} reference footprint(s); model {spec}; mode {mode}")
            backend = build_backend(spec, device)
            label = model_label(spec)
            ev = evaluate_raster(
                raster, reference, lambda: Predictor(backend), model_name=label, mode=mode,
                tile_size=self.parameterAsInt(parameters, self.TILE_SIZE, context), area_of_interest=aoi,
                max_clicks=max_clicks, thresholds=thresholds,
                batch_size=self.parameterAsInt(parameters, self.BATCH_SIZE, context),
                predictions=fp_path is not None,
                progress=lambda done, total: feedback.setProgress(90 * done / max(total, 1)),
                cancel=feedback.isCanceled)
            if feedback.isCanceled():
                raise QgsProcessingException("The evaluation was cancelled; no output was written.")
            write_evaluation_outputs(ev, thresholds, table_path=table, html_path=html, ious_path=ious,
                                     title=f"NoC report: {label} on {ref_layer.name()} ({mode})")
            if fp_path:
                write_gpkg(ev.footprints, fp_path, layer=fp_layer or "predictions", mode="w")
        r = ev.report
        feedback.pushInfo(f"{label}: {r.n_samples} samples ({r.n_empty_dropped} empty dropped), "
                          + ", ".join(f"NoC@{t:g}={v:.2f}" for t, v in r.noc.items()))
        feedback.setProgress(100)
        out = {self.OUTPUT_TABLE: table, self.OUTPUT_HTML: html, self.OUTPUT_IOUS: ious,
               self.OUTPUT_FOOTPRINTS: fp_path, "N_SAMPLES": r.n_samples, "N_EMPTY": r.n_empty_dropped}
        for key, t in (("NOC_80", 0.8), ("NOC_85", 0.85), ("NOC_90", 0.9)):
            out[key] = r.noc.get(t)
        return out
