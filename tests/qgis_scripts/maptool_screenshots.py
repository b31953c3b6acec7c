"""Run inside the QGIS desktop (``qgis --code``) by scripts/screenshots_maptool.py; see there.

Everything is driven from a timer once the main window is up; a log goes to $RITM_SHOT_WORK/log.txt
and QGIS is left with os._exit when done (or after an error, written to the log).
"""

import os
import site
import time
import traceback

site.addsitedir(os.environ["RITM_SHOT_SITE"])  # the venv: torch, rasterio, the editable ritm_qgis

from qgis.core import QgsApplication, QgsPointXY, QgsProject, QgsRasterLayer, QgsRectangle  # noqa: E402
from qgis.PyQt.QtCore import QPoint, Qt, QTimer  # noqa: E402
from qgis.PyQt.QtTest import QTest  # noqa: E402
from qgis.utils import iface  # noqa: E402

LOG = open(os.path.join(os.environ["RITM_SHOT_WORK"], "log.txt"), "w")
OUT = os.environ["RITM_SHOT_OUT"]


def log(*parts):
    LOG.write(" ".join(str(p) for p in parts) + "\n")
    LOG.flush()


def pump(seconds=0.3):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QgsApplication.processEvents()
        time.sleep(0.01)


def building_centres(mask_path, n):
    """Map coordinates of the deepest pixel of the ``n`` largest buildings of the mask."""
    import cv2
    import numpy as np
    import rasterio

    with rasterio.open(mask_path) as m:
        mask = (m.read(1) > 0).astype(np.uint8)
        tr = m.transform
    mask[:, :24] = 0  # not in the nodata strip
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask)
    order = [i for i in np.argsort(-stats[:, cv2.CC_STAT_AREA]) if i != 0][:n]
    out = []
    for i in order:
        dist = cv2.distanceTransform(np.pad((labels == i).astype(np.uint8), 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
        r, c = np.unravel_index(np.argmax(dist), dist.shape)
        out.append(tr * (c + 0.5, r + 0.5))
    return out


def click(canvas, x, y, button=Qt.LeftButton):
    p = canvas.getCoordinateTransform().transform(QgsPointXY(x, y))
    QTest.mouseClick(canvas.viewport(), button, Qt.NoModifier, QPoint(round(p.x()), round(p.y())))


def run():
    try:
        from ritm_qgis import classFactory

        QgsProject.instance().setFileName("")
        layer = QgsRasterLayer(os.environ["RITM_SHOT_RASTER"], "city_uint16")
        QgsProject.instance().addMapLayer(layer)
        ce = layer.renderer().contrastEnhancement()
        log("renderer", layer.renderer().type(), "min/max", ce.minimumValue(), ce.maximumValue())
        iface.setActiveLayer(layer)
        canvas = iface.mapCanvas()
        canvas.setDestinationCrs(layer.crs())
        plugin = classFactory(iface)
        plugin.initGui()
        controller = plugin.map_tool
        controller.action.trigger()
        tool, dock = controller.tool, controller.dock
        tool.wait_idle(120)
        pump(0.5)  # QGIS zooms to the first layer on its own; zoom in after that
        e = layer.extent()
        canvas.setExtent(QgsRectangle(e.xMinimum() + e.width() * 0.08, e.yMinimum() + e.height() * 0.02,
                                      e.xMinimum() + e.width() * 0.58, e.yMinimum() + e.height() * 0.52))
        canvas.refresh()
        canvas.waitWhileRendering()
        dock.label.setText("house")
        combo = dock.model.combo  # chosen as a user does: the list's row, committed
        row = dock.model._index_of(os.environ["RITM_SHOT_MODEL"])
        combo.setCurrentIndex(row)
        combo.activated.emit(row)  # loads in the background: busy
        pump(0.4)
        log("busy:", tool.busy, dock.busy_label.text(), "|", dock.in_use.text())
        iface.mainWindow().grab().save(os.path.join(OUT, "maptool_busy.png"))
        tool.wait_idle(300)
        log("model:", dock.in_use.text())
        centres = building_centres(os.environ["RITM_SHOT_MASK"], 12)
        view = canvas.extent()
        inside = [(x, y) for x, y in centres if view.contains(QgsPointXY(x, y))]
        done = 0
        for x, y in inside[:5]:
            click(canvas, x, y)
            tool.wait_idle(120)
            QTest.keyClick(canvas, Qt.Key_Return)
            tool.wait_idle(120)
            done += 1
        out = tool.output_layer
        log("accepted", done, "features", out.featureCount() if out else 0, "latencies", tool.latencies)
        for f in (out.getFeatures() if out else []):
            log("feature", f["area_m2"], f["source"], f["label"], f["stretch"])
        if len(inside) > 5:  # one building in progress, so a click and its live outline show too
            click(canvas, *inside[5])
            tool.wait_idle(120)
        canvas.refresh()
        canvas.waitWhileRendering()
        pump(1.0)
        iface.mainWindow().grab().save(os.path.join(OUT, "maptool_uint16_outlines.png"))
        log("messages:", [w.text() for w in iface.messageBar().items()])
        log("done")
    except Exception:  # noqa: BLE001 - written to the log; QGIS must still exit
        log(traceback.format_exc())
    finally:
        LOG.flush()
        os._exit(0)


iface.mainWindow().showMaximized()
QTimer.singleShot(3000, run)
