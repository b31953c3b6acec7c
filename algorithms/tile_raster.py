"""Processing algorithm: cut a raster into fixed-size GeoTIFF tiles plus a tile-index layer."""

from __future__ import annotations

import os
import tempfile

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorDestination,
    QgsProcessing,
)

EDGES = ("drop", "pad", "shift")


class TileRasterAlgorithm(QgsProcessingAlgorithm):
    INPUT = "INPUT"
    TILE_SIZE = "TILE_SIZE"
    OVERLAP = "OVERLAP"
    EDGE = "EDGE"
    SKIP_EMPTY = "SKIP_EMPTY"
    OUTPUT_FOLDER = "OUTPUT_FOLDER"
    OUTPUT_INDEX = "OUTPUT_INDEX"
    TILE_COUNT = "TILE_COUNT"

    def name(self):
        return "tile_raster"

    def displayName(self):  # noqa: N802
        return "Tile a raster"

    def group(self):
        return "Raster preparation"

    def groupId(self):  # noqa: N802
        return "raster"

    def shortHelpString(self):  # noqa: N802
        return (
            "Cuts a georeferenced raster into fixed-size GeoTIFF tiles (500 x 500 pixels by default, the paper's "
            "crops) named {stem}_{row}_{col}, keeping the CRS, the geotransform, every band, the data type and "
            "nodata, and writes a polygon tile-index layer (fields name, row, col, path).\n"
            "Edge policy where the raster is not a whole number of tiles: 'drop' skips incomplete edge tiles; "
            "'pad' keeps them at full size and fills the outside with nodata; 'shift' moves the last tile of each "
            "row/column inward so it ends at the edge (more overlap there).\n"
            "The raster is read one tile at a time. Cancelling removes the tiles of this run and writes no index."
        )

    def createInstance(self):  # noqa: N802
        return TileRasterAlgorithm()

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, "Raster to tile"))
        self.addParameter(QgsProcessingParameterNumber(
            self.TILE_SIZE, "Tile size (pixels, width = height)", QgsProcessingParameterNumber.Integer,
            defaultValue=500, minValue=1))
        self.addParameter(QgsProcessingParameterNumber(
            self.OVERLAP, "Overlap between neighbouring tiles (pixels)", QgsProcessingParameterNumber.Integer,
            defaultValue=0, minValue=0))
        self.addParameter(QgsProcessingParameterEnum(
            self.EDGE, "Edge tiles", options=["drop incomplete tiles", "pad with nodata", "shift inward"],
            defaultValue=0))
        self.addParameter(QgsProcessingParameterBoolean(
            self.SKIP_EMPTY, "Skip tiles that are entirely nodata", defaultValue=False))
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT_FOLDER, "Tile folder"))
        self.addParameter(QgsProcessingParameterVectorDestination(
            self.OUTPUT_INDEX, "Tile index (GeoPackage)", QgsProcessing.TypeVectorPolygon))
        from qgis.core import QgsProcessingOutputNumber

        self.addOutput(QgsProcessingOutputNumber(self.TILE_COUNT, "Number of tiles written"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        from ._layers import engine_errors, raster_file  # first: isolates the geo stack
        from ritm_qgis.engine.geo.output_paths import check_writable, gpkg_path
        from ritm_qgis.engine.geo.tiling import write_tiles

        raster = raster_file(self, parameters, self.INPUT, context)
        size = self.parameterAsInt(parameters, self.TILE_SIZE, context)
        overlap = self.parameterAsInt(parameters, self.OVERLAP, context)
        edge = EDGES[self.parameterAsEnum(parameters, self.EDGE, context)]
        skip_empty = self.parameterAsBool(parameters, self.SKIP_EMPTY, context)
        folder = self.parameterAsString(parameters, self.OUTPUT_FOLDER, context)
        index_dest = self.parameterAsOutputLayer(parameters, self.OUTPUT_INDEX, context)
        with engine_errors():
            check_writable(os.path.join(folder, "tile.tif"), "tile folder")
            index_path, _ = gpkg_path(index_dest, "tile index")
            fd, tmp_index = tempfile.mkstemp(prefix=".tiles-index.", suffix=".gpkg", dir=os.path.dirname(index_path))
            os.close(fd)
            os.remove(tmp_index)
            try:
                result = write_tiles(raster, folder, size=size, overlap=overlap, edge=edge, index_path=tmp_index,
                                     skip_empty=skip_empty, progress=lambda f: feedback.setProgress(100 * f),
                                     cancel=feedback.isCanceled)
                if result.cancelled:
                    for p in result.paths:
                        if os.path.exists(p):
                            os.remove(p)
                    feedback.reportError("Tiling was cancelled; the tiles of this run were removed.")
                    return {}
                os.replace(tmp_index, index_path)
            finally:
                if os.path.exists(tmp_index):
                    os.remove(tmp_index)
        if not result.paths:
            feedback.pushWarning("No tile was written (every tile was nodata).")
        feedback.pushInfo(f"{len(result.paths)} tile(s) of {size} x {size} px written to {folder}")
        return {self.OUTPUT_FOLDER: folder, self.OUTPUT_INDEX: index_path, self.TILE_COUNT: len(result.paths)}
