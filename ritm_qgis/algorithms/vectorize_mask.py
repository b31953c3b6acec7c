"""Processing algorithm: a building mask or probability raster -> building polygons (GeoPackage)."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingParameterBand,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
)

from .base import RitmAlgorithm


class VectorizeMaskAlgorithm(RitmAlgorithm):
    INPUT = "INPUT"
    BAND = "BAND"
    THRESHOLD = "THRESHOLD"
    MIN_AREA = "MIN_AREA"
    MIN_PIXELS = "MIN_PIXELS"
    SIMPLIFY = "SIMPLIFY"
    REGULARIZE = "REGULARIZE"
    APPEND = "APPEND"
    OUTPUT = "OUTPUT"

    NAME = "vectorize_mask"
    DISPLAY_NAME = "Vectorize a building mask"
    GROUP = "Vectorization"
    GROUP_ID = "vectorization"
    HELP = (
        "Turns a building mask (0 = background, anything else = building) or a probability raster (building "
        "where probability > threshold, 0.49 by default) into polygons in the raster's CRS: exact pixel-edge "
        "outlines with their holes (the same shapes as GDAL's polygonize), then specks removed, optional "
        "simplification (Douglas-Peucker, topology preserved) and optional squaring of building outlines "
        "(dominant orientation, right angles; a polygon that would move more than the tolerance is left as it "
        "is); both tolerances are in raster pixels, as in the map tool. Nodata pixels are background. The raster is read in bands of rows, so any size works.\n"
        "Fields: area_m2 and perimeter_m (metres where the CRS allows: projected CRS, or the local UTM zone "
        "for a geographic one), pixels, regularized.\n"
        "The layer goes into the GeoPackage in one transaction, in place, so QGIS or the map tool may have the "
        "file open (a cancelled run leaves the file as it was); with 'append' the polygons are added to the "
        "existing layer (e.g. the map tool's 'footprints') in one transaction, filling the columns it has: "
        "columns it lacks (such as pixels) are left out, and the run's log says which."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, "Mask or probability raster"))
        self.addParameter(QgsProcessingParameterBand(self.BAND, "Band (default: the first)", defaultValue=1, parentLayerParameterName=self.INPUT,
            optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.THRESHOLD, "Threshold (building where value > threshold; empty = nonzero for integer masks, "
            "0.49 for probabilities)", QgsProcessingParameterNumber.Double, optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.MIN_AREA, "Minimum polygon area (m²)", QgsProcessingParameterNumber.Double,
            defaultValue=0.0, minValue=0.0))
        self.addParameter(QgsProcessingParameterNumber(
            self.MIN_PIXELS, "Minimum polygon size (pixels)", QgsProcessingParameterNumber.Integer,
            defaultValue=0, minValue=0))
        self.addParameter(QgsProcessingParameterNumber(
            self.SIMPLIFY, "Simplification tolerance (raster pixels, 0 = exact pixel outlines)",
            QgsProcessingParameterNumber.Double, defaultValue=0.0, minValue=0.0))
        self.addParameter(QgsProcessingParameterNumber(
            self.REGULARIZE, "Square building outlines, maximum shift (raster pixels, 0 = off)",
            QgsProcessingParameterNumber.Double, defaultValue=0.0, minValue=0.0))
        self.addParameter(QgsProcessingParameterBoolean(
            self.APPEND, "Append to the existing layer of the output GeoPackage", defaultValue=False))
        self.add_vector_output(self.OUTPUT, "Buildings (GeoPackage)")
        self.add_overwrite_parameter()

    def process(self, parameters, context, run):
        from ._layers import raster_file, refuse_outputs_among_inputs
        from ritm_qgis.engine.jobs.same_file import Place
        from ritm_qgis.core.cancel import check_cancel
        from ritm_qgis.engine.geo.vector_io import missing_columns
        from ritm_qgis.engine.geo.vectorize import vectorize_raster

        raster = raster_file(self, parameters, self.INPUT, context)
        band = self.parameterAsInt(parameters, self.BAND, context) or 1
        threshold = None
        if parameters.get(self.THRESHOLD) not in (None, "") and self.parameterAsString(parameters, self.THRESHOLD, context):
            threshold = self.parameterAsDouble(parameters, self.THRESHOLD, context)
        regularize_px = self.parameterAsDouble(parameters, self.REGULARIZE, context)
        append = self.parameterAsBool(parameters, self.APPEND, context)
        destination = self.vector_output(parameters, self.OUTPUT, context, "buildings", append=append)
        refuse_outputs_among_inputs([Place(self.describe(self.OUTPUT), destination.path, destination.layer)],
                                    [Place(self.describe(self.INPUT), raster)])
        run.progress(0.05)
        gdf = vectorize_raster(
            raster, band=band, threshold=threshold,
            min_area_m2=self.parameterAsDouble(parameters, self.MIN_AREA, context),
            min_pixels=self.parameterAsInt(parameters, self.MIN_PIXELS, context),
            simplify_px=self.parameterAsDouble(parameters, self.SIMPLIFY, context),
            regularize_px=regularize_px)
        check_cancel(run.cancelled)
        run.progress(0.8)
        left_out = missing_columns(destination.path, destination.layer, gdf) if append else []
        path = self.write_layer(gdf, destination, mode="a" if append else "w", cancel=run.cancelled)
        run.info(f"{len(gdf)} polygon(s) written to {path}")
        if left_out:
            run.info(f"The layer '{destination.layer}' has no column {', '.join(left_out)}; those values were left "
                     "out and its columns kept as they are.")
        return {self.OUTPUT: str(path)}
