"""Parameter definitions shared by several algorithms; light to import (no geo stack), for initAlgorithm."""

from __future__ import annotations

from qgis.core import QgsProcessingParameterString

from ritm_qgis.engine.geo.stretch_registry import DEFAULT, processing_label


def stretch_parameter(name: str) -> QgsProcessingParameterString:
    """What the model sees of a raster that is not 8-bit: the registered stretches, 'layer' included (as
    the layer is drawn in QGIS; read by ``_layers.stretch_rule``); ``base`` adds their help."""
    return QgsProcessingParameterString(name, processing_label(), defaultValue=DEFAULT)
