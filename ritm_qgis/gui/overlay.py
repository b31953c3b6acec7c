"""What the tool draws over the map: the predicted outline and the clicks.

One canvas item: the polygons (canvas CRS) filled semi-transparent with a solid border, and the
clicks as the paper draws them: green discs with a white (+) for positive clicks, red discs with
a white (-) for negative ones. ``paint`` records when it last drew, so the map tool can measure
the latency from mouse release to the overlay actually drawn.
"""

from __future__ import annotations

import time

from qgis.core import QgsGeometry, QgsPointXY, QgsRectangle, QgsWkbTypes
from qgis.gui import QgsMapCanvasItem
from qgis.PyQt.QtCore import QPointF, Qt
from qgis.PyQt.QtGui import QBrush, QColor, QPainter, QPainterPath, QPen

FILL = QColor(255, 40, 40, 90)
BORDER = QColor(255, 40, 40, 230)
POSITIVE = QColor(30, 200, 60)
NEGATIVE = QColor(230, 30, 30)
MARKER_RADIUS = 7  # screen pixels


class OutlineOverlay(QgsMapCanvasItem):
    def __init__(self, canvas):
        super().__init__(canvas)
        self.canvas_ref = canvas
        self.geometries: list[QgsGeometry] = []  # canvas CRS
        self.clicks: list[tuple[QgsPointXY, bool]] = []  # canvas CRS
        self.last_paint = 0.0  # perf_counter of the last paint
        self.paints = 0
        self.paint_hook = None  # called after each paint (the map tool measures latency with it)
        self.setZValue(1000)
        self._update_rect()

    # ------------------------------------------------------------------ content
    def set_geometries(self, geometries) -> None:
        self.geometries = list(geometries)
        self._update_rect()

    def set_clicks(self, clicks) -> None:
        self.clicks = list(clicks)
        self._update_rect()

    def clear(self) -> None:
        self.geometries, self.clicks = [], []
        self._update_rect()

    def is_empty(self) -> bool:
        return not self.geometries and not self.clicks

    def _update_rect(self) -> None:
        rect = QgsRectangle()
        rect.setMinimal()
        for g in self.geometries:
            rect.combineExtentWith(g.boundingBox())
        for p, _ in self.clicks:
            rect.combineExtentWith(p.x(), p.y())
        if rect.isEmpty() and not self.clicks and not self.geometries:
            rect = self.canvas_ref.extent()
        pad = (MARKER_RADIUS + 3) * self.canvas_ref.mapUnitsPerPixel()
        rect = QgsRectangle(rect.xMinimum() - pad, rect.yMinimum() - pad, rect.xMaximum() + pad, rect.yMaximum() + pad)
        self.setRect(rect)
        self.update()

    def updatePosition(self):  # noqa: N802 - the canvas calls it when the extent changes
        self._update_rect()

    # ------------------------------------------------------------------ painting
    def _local(self, p) -> QPointF:
        return self.toCanvasCoordinates(QgsPointXY(p)) - self.pos()

    def paint(self, painter: QPainter, option=None, widget=None):
        painter.setRenderHint(QPainter.Antialiasing, True)
        path = QPainterPath()
        path.setFillRule(Qt.OddEvenFill)
        for geom in self.geometries:
            polys = geom.asMultiPolygon() if geom.isMultipart() else [geom.asPolygon()]
            for poly in polys:
                for ring in poly:
                    if len(ring) < 3:
                        continue
                    path.moveTo(self._local(ring[0]))
                    for pt in ring[1:]:
                        path.lineTo(self._local(pt))
                    path.closeSubpath()
        painter.setPen(QPen(BORDER, 2))
        painter.setBrush(QBrush(FILL))
        painter.drawPath(path)
        r = MARKER_RADIUS
        for pt, positive in self.clicks:
            c = self._local(pt)
            painter.setPen(QPen(QColor(255, 255, 255), 1.5))
            painter.setBrush(QBrush(POSITIVE if positive else NEGATIVE))
            painter.drawEllipse(c, r, r)
            painter.setPen(QPen(QColor(255, 255, 255), 2))
            painter.drawLine(QPointF(c.x() - r * 0.55, c.y()), QPointF(c.x() + r * 0.55, c.y()))
            if positive:
                painter.drawLine(QPointF(c.x(), c.y() - r * 0.55), QPointF(c.x(), c.y() + r * 0.55))
        self.paints += 1
        self.last_paint = time.perf_counter()
        if self.paint_hook is not None:
            self.paint_hook()


def polygon_geometries(wkbs) -> list[QgsGeometry]:
    out = []
    for wkb in wkbs:
        g = QgsGeometry()
        g.fromWkb(bytes(wkb))
        if not g.isEmpty() and g.type() == QgsWkbTypes.PolygonGeometry:
            out.append(g)
    return out
