"""The ``layer`` stretch: the numbers behind what QGIS draws for a raster layer, for the engine.

QGIS glue shared by the map tool (``gui``) and the Processing algorithms, one layer below them.

QGIS draws a raster through its renderer: a grey band (single band grey), three bands (multiband
colour) or a colour ramp (single band pseudocolour), each band through a contrast enhancement
(value ``min`` -> 0, ``max`` -> 255, truncated). ``layer_stretch`` reads those numbers and returns
an engine ``StretchRule("layer", low, high, bands)``, so the model gets the grey levels the user
sees. Renderers the model cannot copy (paletted, hillshade...) fall back to the percentile rule,
with a sentence saying so.
"""

from __future__ import annotations

from qgis.core import (QgsContrastEnhancement, QgsMultiBandColorRenderer, QgsRasterLayer,
                       QgsSingleBandGrayRenderer, QgsSingleBandPseudoColorRenderer)

from ritm_qgis.engine.geo.stretch import StretchRule, parse_stretch

_AS_BYTES = (QgsContrastEnhancement.NoEnhancement, QgsContrastEnhancement.ClipToMinimumMaximum)


def _band_range(enhancement) -> tuple[float, float]:
    """(value drawn black, value drawn white) of one band's contrast enhancement."""
    if enhancement is None or enhancement.contrastEnhancementAlgorithm() in _AS_BYTES:
        return 0.0, 255.0  # values drawn as they are
    return float(enhancement.minimumValue()), float(enhancement.maximumValue())


def layer_stretch(layer: QgsRasterLayer) -> tuple[StretchRule, str | None]:
    """(the rule for what ``layer`` looks like on the map, None) or (percentile, why not)."""
    renderer = layer.renderer()
    if isinstance(renderer, QgsSingleBandGrayRenderer):
        low, high = _band_range(renderer.contrastEnhancement())
        if renderer.gradient() == QgsSingleBandGrayRenderer.WhiteToBlack:
            low, high = high, low
        return StretchRule("layer", (low,), (high,), bands=(renderer.grayBand(),)), None
    if isinstance(renderer, QgsMultiBandColorRenderer):
        bands = (renderer.redBand(), renderer.greenBand(), renderer.blueBand())
        if min(bands) >= 1:
            ranges = [_band_range(e) for e in (renderer.redContrastEnhancement(),
                                               renderer.greenContrastEnhancement(),
                                               renderer.blueContrastEnhancement())]
            return StretchRule("layer", tuple(r[0] for r in ranges), tuple(r[1] for r in ranges), bands=bands), None
    if isinstance(renderer, QgsSingleBandPseudoColorRenderer):
        low, high = renderer.classificationMin(), renderer.classificationMax()
        if high > low:
            return (StretchRule("layer", (float(low),), (float(high),), bands=(renderer.band(),)),
                    f"'{layer.name()}' is drawn with a colour ramp; the model sees it in grey over the ramp's "
                    f"range ({low:g} to {high:g}).")
    kind = renderer.type() if renderer is not None else "no"
    return parse_stretch("percentile"), (f"The model cannot copy the '{kind}' style of '{layer.name()}'; it sees "
                                         "the raster stretched from its 2nd to 98th percentile instead.")


def stretch_for_layer(choice: str, layer: QgsRasterLayer) -> tuple[StretchRule, str | None]:
    """The dock's / Processing's choice ('layer', 'percentile', 'minmax', 'LOW,HIGH') for ``layer``."""
    if (choice or "layer").strip().lower() == "layer":
        return layer_stretch(layer)
    return parse_stretch(choice), None
