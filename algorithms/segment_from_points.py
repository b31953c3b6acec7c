"""Processing algorithm: outline buildings from click points (positive / negative) on a raster."""

from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingParameterField,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
    QgsProcessingParameterVectorLayer,
)


class SegmentFromPointsAlgorithm(QgsProcessingAlgorithm):
    INPUT = "INPUT"
    POINTS = "POINTS"
    SIGN_FIELD = "SIGN_FIELD"
    OBJECT_FIELD = "OBJECT_FIELD"
    ORDER_FIELD = "ORDER_FIELD"
    MODEL = "MODEL"
    DEVICE = "DEVICE"
    MARGIN = "MARGIN"
    SIMPLIFY = "SIMPLIFY"
    OUTPUT = "OUTPUT"
    OUTPUT_MASK = "OUTPUT_MASK"

    def name(self):
        return "segment_from_points"

    def displayName(self):  # noqa: N802
        return "Segment buildings from click points"

    def group(self):
        return "Segmentation"

    def groupId(self):  # noqa: N802
        return "segmentation"

    def shortHelpString(self):  # noqa: N802
        return (
            "Outlines buildings on a raster from clicks stored as points: a sign field says whether a click is on "
            "the building (true / 1) or on the background (false / 0); an optional object-id field groups the "
            "clicks of each building so many buildings are outlined in one run (without it all points are one "
            "building); an optional order field gives the click order (default: feature order).\n"
            "Points in another CRS are reprojected to the raster's. Points outside the raster or on nodata are "
            "refused with their feature ids. For each building only a window around its clicks (the clicks' "
            "bounding box plus the context margin) is read.\n"
            "Model: a RITM checkpoint file, the name of a downloaded official model, or 'grabcut' for the "
            "weight-free GrabCut backend.\n"
            "Output: one (multi)polygon per building with object_id, area_m2, perimeter_m, n_clicks, model, "
            "pixels and touches_window (true when the mask reaches the window border: raise the margin); "
            "optionally a 0/255 mask raster on the raster's grid."
        )

    def createInstance(self):  # noqa: N802
        return SegmentFromPointsAlgorithm()

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
        self.addParameter(QgsProcessingParameterString(
            self.MODEL, "Model: checkpoint file, official model name, or 'grabcut'", defaultValue="grabcut"))
        self.addParameter(QgsProcessingParameterString(
            self.DEVICE, "Device (auto, cpu, cuda, cuda:N)", defaultValue="auto"))
        self.addParameter(QgsProcessingParameterNumber(
            self.MARGIN, "Context margin around each building's clicks (pixels)", QgsProcessingParameterNumber.Integer,
            defaultValue=200, minValue=1))
        self.addParameter(QgsProcessingParameterNumber(
            self.SIMPLIFY, "Simplification tolerance (map units, 0 = exact pixel outlines)",
            QgsProcessingParameterNumber.Double, defaultValue=0.0, minValue=0.0))
        self.addParameter(QgsProcessingParameterVectorDestination(
            self.OUTPUT, "Buildings (GeoPackage)", QgsProcessing.TypeVectorPolygon))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT_MASK, "Mask raster (0/255)", optional=True, createByDefault=False))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        from ._layers import crs_text, engine_errors, python_value, raster_file  # first: isolates the geo stack
        from ritm_qgis.engine.interactive.backends import model_label
        from ritm_qgis.engine.interactive.backends import build_backend
        from ritm_qgis.engine.jobs.click_points import ClickPoint, group_clicks, parse_sign, segment_objects
        from ritm_qgis.engine.geo.output_paths import check_writable, gpkg_path
        from ritm_qgis.engine.interactive.interactive_settings import interactive_predictor
        from ritm_qgis.engine.geo.raster_io import raster_meta
        from ritm_qgis.engine.geo.vector_io import write_gpkg

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
        spec = self.parameterAsString(parameters, self.MODEL, context).strip()
        device = self.parameterAsString(parameters, self.DEVICE, context).strip() or "auto"
        dest = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        mask_dest = self.parameterAsOutputLayer(parameters, self.OUTPUT_MASK, context) if parameters.get(
            self.OUTPUT_MASK) else None
        with engine_errors():
            out_path, out_layer = gpkg_path(dest, "output layer")
            if mask_dest:
                if not mask_dest.lower().endswith((".tif", ".tiff")):
                    raise QgsProcessingException(f"The mask raster must be a GeoTIFF (.tif), not '{mask_dest}'.")
                check_writable(mask_dest, "mask raster")
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
            feedback.pushInfo(f"{len(points)} click(s), {len(objects)} building(s); model {spec}")
            backend = build_backend(spec, device)
            gdf = segment_objects(
                raster, objects, lambda: interactive_predictor(backend), model_name=model_label(spec),
                margin=self.parameterAsInt(parameters, self.MARGIN, context),
                simplify=self.parameterAsDouble(parameters, self.SIMPLIFY, context),
                mask_path=mask_dest, progress=lambda f: feedback.setProgress(95 * f), cancel=feedback.isCanceled)
            cut = [str(o) for o, t in zip(gdf["object_id"], gdf["touches_window"]) if t]
            if cut:
                feedback.pushWarning(f"The outline of building(s) {', '.join(cut[:20])} reaches the edge of its "
                                     "context window and may be cut; raise the context margin.")
            if object_field is None:
                gdf["object_id"] = 1
            write_gpkg(gdf, out_path, layer=out_layer or "buildings", mode="w", cancel=feedback.isCanceled)
        feedback.setProgress(100)
        return {self.OUTPUT: out_path, self.OUTPUT_MASK: mask_dest}
