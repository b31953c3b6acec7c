"""Processing algorithms of the ``ritm_qgis`` provider, one per module.

Each module defines one QgsProcessingAlgorithm subclass; the list below is the registry.
Algorithms import the engine's heavy dependencies (torch, rasterio...) only when they run, so
the provider loads in a QGIS that lacks them.
"""

import importlib

# module name -> class name
ALGORITHMS = {
    "noc_report": "NocReportAlgorithm",
    "tile_raster": "TileRasterAlgorithm",
    "segment_from_points": "SegmentFromPointsAlgorithm",
    "vectorize_mask": "VectorizeMaskAlgorithm",
    "evaluate_noc": "EvaluateNocAlgorithm",
    "auto_annotate": "AutoAnnotateAlgorithm",
    "train_model": "TrainModelAlgorithm",
    "adapt_model": "AdaptModelAlgorithm",
}


def algorithm_classes():
    return [getattr(importlib.import_module(f"{__name__}.{module}"), cls) for module, cls in ALGORITHMS.items()]
