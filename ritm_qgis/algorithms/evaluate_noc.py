"""Processing algorithm: the paper's NoC evaluation on a raster against a reference footprint layer."""

from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputNumber,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorLayer,
)

from ritm_qgis.engine.jobs.limits import MAX_BATCH_SIZE, MAX_CLICKS, MAX_EVAL_TILE

from ._params import stretch_parameter
from .base import RitmAlgorithm

MODES = ("tiles", "buildings")
EDGE_TILES = ("pad", "drop", "shift")


class EvaluateNocAlgorithm(RitmAlgorithm):
    INPUT = "INPUT"
    REFERENCE = "REFERENCE"
    MODEL = "MODEL"
    CHECKPOINT = "CHECKPOINT"
    STRETCH = "STRETCH"
    DEVICE = "DEVICE"
    MODE = "MODE"
    TILE_SIZE = "TILE_SIZE"
    EDGE_TILES = "EDGE_TILES"
    AREA_OF_INTEREST = "AREA_OF_INTEREST"
    MAX_CLICKS = "MAX_CLICKS"
    THRESHOLDS = "THRESHOLDS"
    BATCH_SIZE = "BATCH_SIZE"
    OUTPUT_TABLE = "OUTPUT_TABLE"
    OUTPUT_HTML = "OUTPUT_HTML"
    OUTPUT_IOUS = "OUTPUT_IOUS"
    OUTPUT_FOOTPRINTS = "OUTPUT_FOOTPRINTS"

    NAME = "evaluate_noc"
    DISPLAY_NAME = "Evaluate NoC against a footprint layer"
    GROUP = "Evaluation"
    GROUP_ID = "evaluation"
    HELP = (
        "Measures how many clicks a model needs on a raster, with the paper's simulated user (each click at "
        "the pixel deepest inside the largest error) and a reference building-footprint layer (reprojected to "
        "the raster's CRS; invalid polygons repaired).\n"
        "Mode 'tiles' (the paper's): 500 x 500 tiles, ground truth = union of the buildings; tiles without "
        "buildings are dropped from the metrics and counted. Mode 'buildings': one window around each "
        "footprint, ground truth = that building alone.\n"
        "Outputs: a per-sample table (CSV: IoU after each click, NoC@t per threshold), an HTML report with "
        "Table 1 (NoC@80/85/90, >=max@t, Avg IoU under both definitions) and the IoU-vs-clicks figure, "
        "optionally the IoU array (.npy, for 'NoC report from IoU arrays') and the predicted footprints "
        "(the mask after each sample's last click, with its IoU)."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, "Image raster"))
        self.addParameter(QgsProcessingParameterVectorLayer(
            self.REFERENCE, "Reference building footprints", [QgsProcessing.TypeVectorPolygon]))
        self.add_model_parameters(self.MODEL, self.DEVICE)
        self.addParameter(stretch_parameter(self.STRETCH))
        self.addParameter(QgsProcessingParameterEnum(
            self.MODE, "Samples", options=["tiles, union of buildings (paper)", "one window per building"],
            defaultValue=0))
        self.addParameter(QgsProcessingParameterNumber(
            self.TILE_SIZE, "Tile size (pixels, tile mode)", QgsProcessingParameterNumber.Integer,
            defaultValue=500, minValue=16, maxValue=MAX_EVAL_TILE))
        self.addParameter(QgsProcessingParameterEnum(
            self.EDGE_TILES, "Edge tiles where the raster is not a whole number of tiles (tile mode)",
            options=["pad: keep them, padding ignored (a thin sliver counts as a sample)",
                     "drop: whole tiles only", "shift: move the last tile inward (whole tiles, some overlap)"],
            defaultValue=0))
        self.addParameter(QgsProcessingParameterVectorLayer(
            self.AREA_OF_INTEREST, "Area of interest (only tiles/buildings intersecting it)",
            [QgsProcessing.TypeVectorPolygon], optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.MAX_CLICKS, "Click budget per sample", QgsProcessingParameterNumber.Integer, defaultValue=20,
            minValue=1, maxValue=MAX_CLICKS))
        self.addParameter(QgsProcessingParameterString(
            self.THRESHOLDS, "IoU thresholds for NoC (comma-separated)", defaultValue="0.8,0.85,0.9"))
        self.addParameter(QgsProcessingParameterNumber(
            self.BATCH_SIZE, "Samples per network batch", QgsProcessingParameterNumber.Integer, defaultValue=4,
            minValue=1, maxValue=MAX_BATCH_SIZE))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_TABLE, "Per-sample table", "CSV files (*.csv)"))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_HTML, "HTML report", "HTML files (*.html)"))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_IOUS, "IoU array (.npy)", "NumPy arrays (*.npy)", optional=True, createByDefault=False))
        self.add_vector_output(self.OUTPUT_FOOTPRINTS, "Predicted footprints (GeoPackage)", optional=True,
                               createByDefault=False)
        self.add_overwrite_parameter()
        for key, label in (("NOC_80", "NoC@80"), ("NOC_85", "NoC@85"), ("NOC_90", "NoC@90"),
                           ("N_SAMPLES", "Samples evaluated"), ("N_EMPTY", "Empty samples dropped")):
            self.addOutput(QgsProcessingOutputNumber(key, label))

    def check_parameters(self, parameters, context):
        from ritm_qgis.engine.protocol.noc import parse_thresholds

        if parameters.get(self.THRESHOLDS) not in (None, ""):
            parse_thresholds(str(parameters[self.THRESHOLDS]), self.describe(self.THRESHOLDS))
        return None

    def process(self, parameters, context, run):
        from ._layers import layer_place, layer_to_frame, raster_file, refuse_outputs_among_inputs, stretch_rule
        from ritm_qgis.engine.jobs.same_file import Place
        from ritm_qgis.engine.geo.output_paths import check_writable
        from ritm_qgis.engine.interactive.backends import build_backend, model_label
        from ritm_qgis.engine.interactive.predictor import Predictor
        from ritm_qgis.engine.jobs.geo_evaluation import evaluate_raster, repaired_warning, write_evaluation_outputs
        from ritm_qgis.engine.protocol.noc import parse_thresholds

        raster = raster_file(self, parameters, self.INPUT, context)
        ref_layer = self.parameterAsVectorLayer(parameters, self.REFERENCE, context)
        aoi_layer = self.parameterAsVectorLayer(parameters, self.AREA_OF_INTEREST, context)
        spec, device = self.model_and_device(parameters, context, run.feedback)
        mode = MODES[self.parameterAsEnum(parameters, self.MODE, context)]
        edge_tiles = EDGE_TILES[self.parameterAsEnum(parameters, self.EDGE_TILES, context)]
        max_clicks = self.parameterAsInt(parameters, self.MAX_CLICKS, context)
        table = self.parameterAsFileOutput(parameters, self.OUTPUT_TABLE, context)
        html = self.parameterAsFileOutput(parameters, self.OUTPUT_HTML, context)
        ious = self.parameterAsFileOutput(parameters, self.OUTPUT_IOUS, context) if parameters.get(
            self.OUTPUT_IOUS) else None
        thresholds = parse_thresholds(self.parameterAsString(parameters, self.THRESHOLDS, context),
                                      self.describe(self.THRESHOLDS))
        check_writable(table, self.describe(self.OUTPUT_TABLE))
        check_writable(html, self.describe(self.OUTPUT_HTML))
        if ious:
            check_writable(ious, self.describe(self.OUTPUT_IOUS))
        fp_dest = self.vector_output(parameters, self.OUTPUT_FOOTPRINTS, context, "predictions") if parameters.get(
            self.OUTPUT_FOOTPRINTS) else None
        refuse_outputs_among_inputs(
            [Place(self.describe(k), p) for k, p in ((self.OUTPUT_TABLE, table), (self.OUTPUT_HTML, html),
                                                      (self.OUTPUT_IOUS, ious)) if p]
            + ([Place(self.describe(self.OUTPUT_FOOTPRINTS), fp_dest.path, fp_dest.layer)] if fp_dest else []),
            [Place(self.describe(self.INPUT), raster), layer_place(self, self.REFERENCE, ref_layer),
             layer_place(self, self.AREA_OF_INTEREST, aoi_layer)])
        reference = layer_to_frame(ref_layer, what="reference footprint layer")
        aoi = layer_to_frame(aoi_layer, what="area of interest") if aoi_layer is not None else None
        stretch = stretch_rule(self, parameters, self.STRETCH, self.INPUT, context, run.warning)
        run.info(f"{len(reference)} reference footprint(s); model {spec}; mode {mode}; stretch {stretch.label}")
        backend = build_backend(spec, device, optimize="auto")  # the arithmetic of interactive use
        label = model_label(spec)
        ev = evaluate_raster(
            raster, reference, lambda: Predictor(backend), model_name=label, mode=mode,
            tile_size=self.parameterAsInt(parameters, self.TILE_SIZE, context), area_of_interest=aoi,
            max_clicks=max_clicks, thresholds=thresholds,
            batch_size=self.parameterAsInt(parameters, self.BATCH_SIZE, context),
            predictions=fp_dest is not None, edge_tiles=edge_tiles,
            progress=run.scaled(0, 90), cancel=run.cancelled,
            stretch=stretch)
        footprints = (fp_dest.path, fp_dest.layer) if fp_dest is not None else None
        write_evaluation_outputs(ev, thresholds, table_path=table, html_path=html, ious_path=ious,
                                 footprints=footprints, overwrite_footprints=fp_dest is not None and fp_dest.overwrite,
                                 title=f"NoC report: {label} on {ref_layer.name()} ({mode})")
        if ev.repaired:
            run.warning(repaired_warning(ev.repaired, ref_layer.name()))
        r = ev.report
        run.info(f"{label}: {r.n_samples} samples ({r.n_empty_dropped} empty dropped), "
                 + ", ".join(f"NoC@{t:g}={v:.2f}" for t, v in r.noc.items()))
        out = {self.OUTPUT_TABLE: table, self.OUTPUT_HTML: html, self.OUTPUT_IOUS: ious,
               self.OUTPUT_FOOTPRINTS: footprints[0] if footprints else None,
               "N_SAMPLES": r.n_samples, "N_EMPTY": r.n_empty_dropped}
        for key, t in (("NOC_80", 0.8), ("NOC_85", 0.85), ("NOC_90", 0.9)):
            out[key] = r.noc.get(t)
        return out
