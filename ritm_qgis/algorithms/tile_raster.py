"""Processing algorithm: cut a raster into fixed-size GeoTIFF tiles plus a tile-index layer."""

from __future__ import annotations

import os

from qgis.core import (
    QgsProcessingException,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorDestination,
    QgsProcessing,
)

from ritm_qgis.engine.jobs.limits import MAX_RASTER_TILE

from .base import RitmAlgorithm

EDGES = ("drop", "pad", "shift")


class TileRasterAlgorithm(RitmAlgorithm):
    INPUT = "INPUT"
    TILE_SIZE = "TILE_SIZE"
    OVERLAP = "OVERLAP"
    EDGE = "EDGE"
    SKIP_EMPTY = "SKIP_EMPTY"
    OUTPUT_FOLDER = "OUTPUT_FOLDER"
    OUTPUT_INDEX = "OUTPUT_INDEX"
    TILE_COUNT = "TILE_COUNT"

    NAME = "tile_raster"
    DISPLAY_NAME = "Tile a raster"
    GROUP = "Raster preparation"
    GROUP_ID = "raster"
    HELP = (
        "Cuts a georeferenced raster into fixed-size GeoTIFF tiles (500 x 500 pixels by default, the paper's "
        "crops) named {stem}_{row}_{col}, keeping the CRS, the geotransform, every band, the data type and "
        "nodata, and writes a polygon tile-index layer (fields name, row, col, path).\n"
        "Edge policy where the raster is not a whole number of tiles: 'drop' skips incomplete edge tiles; "
        "'pad' keeps them at full size and fills the outside with nodata; 'shift' moves the last tile of each "
        "row/column inward so it ends at the edge (more overlap there).\n"
        "The raster is read one tile at a time. Cancelling removes the tiles of this run and writes no index."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, "Raster to tile"))
        self.addParameter(QgsProcessingParameterNumber(
            self.TILE_SIZE, "Tile size (pixels, width = height)", QgsProcessingParameterNumber.Integer,
            defaultValue=500, minValue=1, maxValue=MAX_RASTER_TILE))
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

    def process(self, parameters, context, run):
        from ._layers import raster_file, refuse_outputs_among_inputs
        from ritm_qgis.engine.jobs.same_file import Place
        from ritm_qgis.core.atomic import OutputSet
        from ritm_qgis.core.cancel import Cancelled
        from ritm_qgis.engine.geo.output_paths import check_writable
        from ritm_qgis.engine.geo.tiling import write_tiles

        raster = raster_file(self, parameters, self.INPUT, context)
        size = self.parameterAsInt(parameters, self.TILE_SIZE, context)
        overlap = self.parameterAsInt(parameters, self.OVERLAP, context)
        if overlap >= size:
            raise QgsProcessingException(f"{self.describe(self.OVERLAP)} must be smaller than "
                                         f"{self.describe(self.TILE_SIZE)} ({overlap} >= {size}).")
        edge = EDGES[self.parameterAsEnum(parameters, self.EDGE, context)]
        skip_empty = self.parameterAsBool(parameters, self.SKIP_EMPTY, context)
        folder = self.parameterAsString(parameters, self.OUTPUT_FOLDER, context)
        index = self.vector_output(parameters, self.OUTPUT_INDEX, context, "tiles")
        refuse_outputs_among_inputs([Place(self.describe(self.OUTPUT_INDEX), index.path, index.layer)],
                                    [Place(self.describe(self.INPUT), raster)])
        if os.path.isfile(folder):
            raise QgsProcessingException(f"{self.describe(self.OUTPUT_FOLDER)} '{folder}' is a file; choose a folder.")
        folder_existed = os.path.isdir(folder)
        check_writable(os.path.join(folder, "tile.tif"), self.describe(self.OUTPUT_FOLDER))
        try:
            # tiles and index are staged and moved into place together: a failed or cancelled run
            # leaves the folder as it was
            with OutputSet() as staging:
                staging.lock(folder, self.describe(self.OUTPUT_FOLDER), manifest=False)  # one lock for all tiles
                result = write_tiles(raster, folder, size=size, overlap=overlap, edge=edge, index_path=index.path,
                                     skip_empty=skip_empty, progress=run.counts, cancel=run.cancelled,
                                     staging=staging)
                if result.cancelled:
                    raise Cancelled()
        except BaseException:
            if not folder_existed and os.path.isdir(folder) and not os.listdir(folder):
                os.rmdir(folder)
            raise
        if not result.paths:
            run.warning("No tile was written (every tile was nodata).")
        run.info(f"{len(result.paths)} tile(s) of {size} x {size} px written to {folder}")
        return {self.OUTPUT_FOLDER: folder, self.OUTPUT_INDEX: index.path, self.TILE_COUNT: len(result.paths)}
