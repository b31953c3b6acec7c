"""Processing algorithm: a building mask or probability raster -> building polygons (GeoPackage)."""

from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingParameterBand,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorDestination,
)


class VectorizeMaskAlgorithm(QgsProcessingAlgorithm):
    INPUT = "INPUT"
    BAND = "BAND"
    THRESHOLD = "THRESHOLD"
    MIN_AREA = "MIN_AREA"
    MIN_PIXELS = "MIN_PIXELS"
    SIMPLIFY = "SIMPLIFY"
    REGULARIZE = "REGULARIZE"
    APPEND = "APPEND"
    OUTPUT = "OUTPUT"

    def name(self):
        return "vectorize_mask"

    def displayName(self):  # noqa: N802
        return "Vectorize a building mask"

    def group(self):
        return "Vectorization"

    def groupId(self):  # noqa: N802
        return "vectorization"

    def shortHelpString(self):  # noqa: N802
        return (
            "Turns a building mask (0 = background, anything else = building) or a probability raster (building "
            "where probability > threshold, 0.49 by default) into polygons in the raster's CRS: exact pixel-edge "
            "outlines with their holes (the same shapes as GDAL's polygonize), then specks removed, optional "
            "simplification (Douglas-Peucker, topology preserved) and optional squaring of building outlines "
            "(dominant orientation, right angles; a polygon that would move more than the tolerance is left as it "
            "is). Nodata pixels are background. The raster is read in bands of rows, so any size works.\n"
            "Fields: area_m2 and perimeter_m (metres where the CRS allows: projected CRS, or the local UTM zone "
            "for a geographic one), pixels, regularized.\n"
            "The GeoPackage is written atomically (a cancelled run leaves no file or the old one); with 'append' "
            "the polygons are added to an existing 'buildings' layer in one transaction."
        )

    def createInstance(self):  # noqa: N802
        return VectorizeMaskAlgorithm()

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, "Mask or probability raster"))
        self.addParameter(QgsProcessingParameterBand(self.BAND, "Band (default: the first)", defaultValue=1, parentLayerParameterName=self.INPUT,
            optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.THRESHOLD, "Threshold (building where value > threshold; empty = nonzero for integer masks, "
            "0.49 for probabilities)", QgsProcessingParameterNumber.Double, optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.MIN_AREA, "Minimum polygon area (square map units)", QgsProcessingParameterNumber.Double,
            defaultValue=0.0, minValue=0.0))
        self.addParameter(QgsProcessingParameterNumber(
            self.MIN_PIXELS, "Minimum polygon size (pixels)", QgsProcessingParameterNumber.Integer,
            defaultValue=0, minValue=0))
        self.addParameter(QgsProcessingParameterNumber(
            self.SIMPLIFY, "Simplification tolerance (map units, 0 = exact pixel outlines)",
            QgsProcessingParameterNumber.Double, defaultValue=0.0, minValue=0.0))
        self.addParameter(QgsProcessingParameterNumber(
            self.REGULARIZE, "Square building outlines, maximum shift (map units, 0 = off)",
            QgsProcessingParameterNumber.Double, defaultValue=0.0, minValue=0.0))
        self.addParameter(QgsProcessingParameterBoolean(
            self.APPEND, "Append to the existing layer of the output GeoPackage", defaultValue=False))
        self.addParameter(QgsProcessingParameterVectorDestination(
            self.OUTPUT, "Buildings (GeoPackage)", QgsProcessing.TypeVectorPolygon))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        from ._layers import engine_errors, raster_file  # first: isolates the geo stack
        from ritm_qgis.engine.geo.output_paths import gpkg_path
        from ritm_qgis.engine.geo.vector_io import write_gpkg
        from ritm_qgis.engine.geo.vectorize import vectorize_raster

        raster = raster_file(self, parameters, self.INPUT, context)
        band = self.parameterAsInt(parameters, self.BAND, context) or 1
        threshold = None
        if parameters.get(self.THRESHOLD) not in (None, "") and self.parameterAsString(parameters, self.THRESHOLD, context):
            threshold = self.parameterAsDouble(parameters, self.THRESHOLD, context)
        regularize = self.parameterAsDouble(parameters, self.REGULARIZE, context) or None
        append = self.parameterAsBool(parameters, self.APPEND, context)
        dest = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        with engine_errors():
            path, layer = gpkg_path(dest, "output layer")
            feedback.setProgress(5)
            gdf = vectorize_raster(
                raster, band=band, threshold=threshold,
                min_area=self.parameterAsDouble(parameters, self.MIN_AREA, context),
                min_pixels=self.parameterAsInt(parameters, self.MIN_PIXELS, context),
                simplify=self.parameterAsDouble(parameters, self.SIMPLIFY, context),
                regularize=regularize)
            if feedback.isCanceled():
                return {}
            feedback.setProgress(80)
            write_gpkg(gdf, path, layer=layer or "buildings", mode="a" if append else "w", cancel=feedback.isCanceled)
        feedback.pushInfo(f"{len(gdf)} polygon(s) written to {path}")
        feedback.setProgress(100)
        return {self.OUTPUT: path}
