"""A line under "Model sees" that appears when the raster is drawn dark, with one click to fix it.

A one-band 16-bit raster in QGIS's default style (its minimum to its maximum) is often nearly black:
the user sees little, and the model, which copies the layer's style, sees the same. The hint says
so with the mean grey, and its button restyles the layer from its 2nd to its 98th percentile
(``layer_stretch.stretch_layer_2_98``); it hides again as soon as the layer is bright enough.
"""

from __future__ import annotations

from qgis.PyQt.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from ritm_qgis.layer_stretch import dark_grey, stretch_layer_2_98


class DarkLayerHint(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.layer = None
        self.text = QLabel(self)
        self.text.setWordWrap(True)
        self.button = QPushButton("Stretch the layer 2-98 %", self)
        self.button.setToolTip("Restyle the layer from its 2nd to its 98th percentile (nodata left out), as "
                               "QGIS's cumulative count cut does; the model then sees the brighter image too")
        self.button.clicked.connect(self.stretch)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.text, 1)
        row.addWidget(self.button)
        self.hide()

    def watch(self, layer) -> None:
        """Follow ``layer`` (a raster layer, or None): the hint shows while it is drawn dark."""
        if layer is self.layer:
            return
        self._connect(self.layer, False)
        self.layer = layer
        self._connect(layer, True)
        self.refresh()

    def _connect(self, layer, on: bool) -> None:
        try:
            if layer is not None:
                (layer.rendererChanged.connect if on else layer.rendererChanged.disconnect)(self.refresh)
        except (TypeError, RuntimeError):  # not connected, or the layer was deleted
            pass

    def refresh(self, *_) -> None:
        try:
            grey = dark_grey(self.layer) if self.layer is not None else None
        except RuntimeError:  # the layer was deleted
            self.layer, grey = None, None
        if grey is None:
            self.hide()
            return
        self.text.setText(f"'{self.layer.name()}' is drawn dark (mean grey {grey:.0f} of 255), and the model sees "
                          "it so too.")
        self.show()

    def stretch(self) -> None:
        if self.layer is not None:
            stretch_layer_2_98(self.layer)  # its new renderer calls refresh (rendererChanged)
