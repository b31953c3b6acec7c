"""The ``layer`` stretch: the numbers behind what QGIS draws for a raster layer, for the engine.

QGIS glue shared by the map tool (``gui``) and the Processing algorithms, one layer below them.

QGIS draws a raster through its renderer: a grey band (single band grey), three bands (multiband
colour) or a colour ramp (single band pseudocolour), each band through a contrast enhancement
(value ``min`` -> 0, ``max`` -> 255, truncated). ``layer_stretch`` reads those numbers and returns
an engine ``StretchRule("layer", low, high, bands)``, so the model gets the grey levels the user
sees. Renderers the model cannot copy (paletted, hillshade...) fall back to the percentile rule,
with a sentence saying so.

QGIS styles a one-band 16-bit raster from its minimum to its maximum, so a few bright pixels leave
it nearly black on the map and for the model alike. ``dark_grey`` tells such a layer (its mean grey
as drawn), and ``stretch_layer_2_98`` restyles it the way QGIS's own cumulative cut does, 2-98 %,
so that the user and the model both see the roofs.
"""

from __future__ import annotations

from qgis.core import (Qgis, QgsContrastEnhancement, QgsMultiBandColorRenderer, QgsRasterBandStats, QgsRasterLayer,
                       QgsRasterMinMaxOrigin, QgsSingleBandGrayRenderer, QgsSingleBandPseudoColorRenderer)

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


DARK_GREY = 48  # mean grey level (of 255) under which a high-bit-depth layer is called dark
_SAMPLE = 250_000  # pixels QGIS samples for statistics


def dark_grey(layer: QgsRasterLayer) -> float | None:
    """The mean grey (0-255) ``layer`` is drawn with, when it holds more than 8 bits per band and is
    drawn darker than DARK_GREY; None otherwise (bytes, a renderer the model cannot copy, bright)."""
    if layer is None or not layer.isValid():
        return None
    rule, note = layer_stretch(layer)
    if rule.kind != "layer" or note is not None:
        return None
    provider = layer.dataProvider()
    if all(provider.dataType(band) == Qgis.Byte for band in rule.bands):
        return None
    greys = []
    for band, low, high in zip(rule.bands, rule.low, rule.high):
        if high == low:
            continue
        mean = provider.bandStatistics(band, QgsRasterBandStats.Mean, layer.extent(), _SAMPLE).mean
        greys.append(min(max((mean - low) / (high - low) * 255.0, 0.0), 255.0))
    if not greys:
        return None
    grey = sum(greys) / len(greys)
    return grey if grey < DARK_GREY else None


def stretch_layer_2_98(layer: QgsRasterLayer) -> bool:
    """Restyle a grey or RGB layer from its 2nd to its 98th percentile (nodata excluded), as QGIS's
    "Cumulative count cut" does; False for other renderers (left as they are)."""
    renderer = layer.renderer()
    if isinstance(renderer, QgsSingleBandGrayRenderer):
        bands, setters = (renderer.grayBand(),), ("setContrastEnhancement",)
    elif isinstance(renderer, QgsMultiBandColorRenderer):
        bands = (renderer.redBand(), renderer.greenBand(), renderer.blueBand())
        setters = ("setRedContrastEnhancement", "setGreenContrastEnhancement", "setBlueContrastEnhancement")
    else:
        return False
    renderer = renderer.clone()
    provider = layer.dataProvider()
    for band, setter in zip(bands, setters):
        if band < 1:
            continue
        low, high = provider.cumulativeCut(band, 0.02, 0.98, layer.extent(), _SAMPLE)
        enhancement = QgsContrastEnhancement(provider.dataType(band))
        enhancement.setContrastEnhancementAlgorithm(QgsContrastEnhancement.StretchToMinimumMaximum)
        enhancement.setMinimumValue(low)
        enhancement.setMaximumValue(high)
        getattr(renderer, setter)(enhancement)
    origin = renderer.minMaxOrigin()
    origin.setLimits(QgsRasterMinMaxOrigin.CumulativeCut)
    origin.setCumulativeCutLower(0.02)
    origin.setCumulativeCutUpper(0.98)
    renderer.setMinMaxOrigin(origin)
    layer.setRenderer(renderer)  # emits rendererChanged: the map tool reloads what the model sees
    layer.emitStyleChanged()
    layer.triggerRepaint()
    return True
