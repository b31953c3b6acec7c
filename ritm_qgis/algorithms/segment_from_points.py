"""Processing algorithm: outline buildings from click points (positive / negative) on a raster."""

from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterField,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorLayer,
)

from ._params import stretch_parameter
from .base import RitmAlgorithm


class SegmentFromPointsAlgorithm(RitmAlgorithm):
    INPUT = "INPUT"
    POINTS = "POINTS"
    SIGN_FIELD = "SIGN_FIELD"
    OBJECT_FIELD = "OBJECT_FIELD"
    ORDER_FIELD = "ORDER_FIELD"
    MODEL = "MODEL"
    CHECKPOINT = "CHECKPOINT"
    DEVICE = "DEVICE"
    SIMPLIFY = "SIMPLIFY"
    REGULARIZE = "REGULARIZE"
    STRETCH = "STRETCH"
    OUTPUT = "OUTPUT"
    OUTPUT_MASK = "OUTPUT_MASK"

    NAME = "segment_from_points"
    DISPLAY_NAME = "Segment buildings from click points"
    GROUP = "Segmentation"
    GROUP_ID = "segmentation"
    HELP = (
        "Outlines buildings on a raster from clicks stored as points: a sign field says whether a click is on "
        "the building (true / 1) or on the background (false / 0); an optional object-id field groups the "
        "clicks of each building so many buildings are outlined in one run (without it all points are one "
        "building); an optional order field gives the click order (default: feature order).\n"
        "Points in another CRS are reprojected to the raster's. Points outside the raster or on nodata are "
        "refused with their feature ids. Each building's clicks are replayed in order exactly as the map tool "
        "takes them on the canvas (the same window around the clicks, stretch and outline rules), so the same "
        "clicks give the same polygon; only that window of the raster is read.\n"
        "The simplification tolerance is in raster pixels, as in the map tool.\n"
        "Output: one (multi)polygon per building with the fields every RITM tool saves: object_id, area_m2, "
        "perimeter_m, n_clicks, pixels, model, stretch, source, label, touches_window (true when the mask "
        "reaches the border of the model's window: add a click near the cut side) and created; optionally a "
        "0/255 mask raster on the raster's grid."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, "Image raster"))
        self.addParameter(QgsProcessingParameterVectorLayer(
            self.POINTS, "Click points", [QgsProcessing.TypeVectorPoint]))
        self.addParameter(QgsProcessingParameterField(
            self.SIGN_FIELD, "Sign field (true/1 = on the building, false/0 = background)",
            parentLayerParameterName=self.POINTS))
        self.addParameter(QgsProcessingParameterField(
            self.OBJECT_FIELD, "Object id field (one building per value; empty = one building)",
            parentLayerParameterName=self.POINTS, optional=True))
        self.addParameter(QgsProcessingParameterField(
            self.ORDER_FIELD, "Click order field (empty = feature order)", parentLayerParameterName=self.POINTS,
            type=QgsProcessingParameterField.Numeric, optional=True))
        self.add_model_parameters(self.MODEL, self.DEVICE)
        self.addParameter(QgsProcessingParameterNumber(
            self.SIMPLIFY, "Simplification tolerance (raster pixels, 0 = exact pixel outlines)",
            QgsProcessingParameterNumber.Double, defaultValue=0.0, minValue=0.0))
        self.addParameter(QgsProcessingParameterBoolean(
            self.REGULARIZE, "Square the outlines (right angles where the roof has them)", defaultValue=True))
        self.addParameter(stretch_parameter(self.STRETCH))
        self.add_vector_output(self.OUTPUT, "Buildings (GeoPackage)")
        self.add_overwrite_parameter()
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT_MASK, "Mask raster (0/255)", optional=True, createByDefault=False))

    def process(self, parameters, context, run):
        from ._layers import crs_text, layer_place, python_value, raster_file, refuse_outputs_among_inputs, stretch_rule
        from ritm_qgis.core.atomic import OutputSet
        from ritm_qgis.engine.geo.output_paths import check_writable
        from ritm_qgis.engine.geo.raster_io import raster_meta
        from ritm_qgis.engine.interactive.backends import build_backend, model_label
        from ritm_qgis.engine.interactive.outline_record import records_frame
        from ritm_qgis.engine.jobs.click_points import ClickPoint, group_clicks, parse_sign, segment_objects
        from ritm_qgis.engine.interactive.interactive_settings import interactive_predictor
        from ritm_qgis.engine.jobs.same_file import Place

        raster = raster_file(self, parameters, self.INPUT, context)
        layer = self.parameterAsVectorLayer(parameters, self.POINTS, context)
        if layer is None:
            raise QgsProcessingException("Choose a point layer of clicks.")
        sign_field = self.parameterAsString(parameters, self.SIGN_FIELD, context)
        object_field = self.parameterAsString(parameters, self.OBJECT_FIELD, context) or None
        order_field = self.parameterAsString(parameters, self.ORDER_FIELD, context) or None
        for f in (sign_field, object_field, order_field):
            if f and layer.fields().indexOf(f) < 0:
                raise QgsProcessingException(f"The click layer '{layer.name()}' has no field '{f}'; choose one of "
                                             f"{', '.join(layer.fields().names())}.")
        spec, device = self.model_and_device(parameters, context, run.feedback)
        destination = self.vector_output(parameters, self.OUTPUT, context, "buildings")
        mask_dest = self.parameterAsOutputLayer(parameters, self.OUTPUT_MASK, context) if parameters.get(
            self.OUTPUT_MASK) else None
        if mask_dest:
            if not mask_dest.lower().endswith((".tif", ".tiff")):
                raise QgsProcessingException(f"The mask raster must be a GeoTIFF (.tif), not '{mask_dest}'.")
            check_writable(mask_dest, self.describe(self.OUTPUT_MASK))
        refuse_outputs_among_inputs(
            [Place(self.describe(self.OUTPUT), destination.path, destination.layer),
             Place(self.describe(self.OUTPUT_MASK), mask_dest) if mask_dest else None],
            [Place(self.describe(self.INPUT), raster), layer_place(self, self.POINTS, layer)])
        if crs_text(layer.crs()) is None:
            raise QgsProcessingException(f"The click layer '{layer.name()}' has no CRS, so its points cannot be "
                                         "placed on the raster; assign one (Layer > Set CRS).")
        grid = raster_meta(raster).grid
        points = []
        for feat in layer.getFeatures():
            g = feat.geometry()
            if g is None or g.isNull() or g.isEmpty():
                x = y = float("nan")
            else:
                pt = g.asPoint() if not g.isMultipart() else g.asMultiPoint()[0]
                x, y = pt.x(), pt.y()
            order = python_value(feat[order_field]) if order_field else None
            points.append(ClickPoint(
                int(feat.id()), x, y, parse_sign(python_value(feat[sign_field]), feat.id()),
                python_value(feat[object_field]) if object_field else None,
                None if order is None else float(order)))
        objects = group_clicks(points, grid, src_crs=crs_text(layer.crs()))
        stretch = stretch_rule(self, parameters, self.STRETCH, self.INPUT, context, run.warning)
        run.info(f"{len(points)} click(s), {len(objects)} building(s); model {spec}; stretch {stretch.label}")
        backend = build_backend(spec, device)
        if object_field is None:
            for obj in objects:
                obj.object_id = 1
        with OutputSet() as staging:
            records = segment_objects(
                raster, objects, lambda: interactive_predictor(backend), model_name=model_label(spec),
                simplify_px=self.parameterAsDouble(parameters, self.SIMPLIFY, context), stretch_rule=stretch,
                regularize=self.parameterAsBool(parameters, self.REGULARIZE, context),
                mask_path=mask_dest, progress=run.scaled(0, 95), cancel=run.cancelled, staging=staging)
            cut = [str(r.object_id) for r in records if r.touches_window]
            advice = "add a click near the side where it is cut"
            if cut and object_field is None:
                run.warning(f"The outline reaches the edge of the model's window and may be cut; {advice}.")
            elif cut:
                run.warning(f"The outline of building(s) {', '.join(cut[:20])} reaches the edge of the model's "
                            f"window and may be cut; {advice}.")
            path = self.write_layer(records_frame(records, grid.crs), destination, cancel=run.cancelled,
                                    staging=staging)
        return {self.OUTPUT: str(path), self.OUTPUT_MASK: mask_dest}
