"""Parameter definitions shared by several algorithms; light to import (no geo stack), for initAlgorithm."""

from __future__ import annotations

from qgis.core import QgsProcessingParameterString


def stretch_parameter(name: str) -> QgsProcessingParameterString:
    """What the model sees of a raster that is not 8-bit: the words of the CLI's --stretch, plus 'layer'
    (as the layer is drawn in QGIS; read by ``_layers.stretch_rule``)."""
    return QgsProcessingParameterString(name, "Input stretch: percentile, minmax, layer (as drawn in QGIS) or LOW,HIGH",
                                        defaultValue="percentile")
