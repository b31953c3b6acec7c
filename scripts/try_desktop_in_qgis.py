"""Run inside the QGIS desktop by scripts/try_desktop.py (``qgis --code``): what a new user sees.

Opens an aerial image, starts the RITM tool from its toolbar button (which opens the dock), outlines
the image's largest building with one click and Enter (read from the chip's reference mask), reads
the dock's model list, types part of a model name into the model box one key at a time as a person
would, collects every message QGIS logs or shows in its message bar meanwhile, then downloads a
model from a loopback mirror through the dock (cancel half-way, then a file that is not the
published one), takes screenshots, writes a JSON report and quits. Settings come from environment variables set by try_desktop.py.
"""

import json
import os
import time
import traceback

from qgis.core import Qgis, QgsApplication, QgsProject, QgsRasterLayer
from qgis.PyQt.QtCore import QCoreApplication, Qt, QTimer
from qgis.PyQt.QtGui import QImage
from qgis.PyQt.QtTest import QTest
from qgis.PyQt.QtWidgets import QApplication, QDialog
from qgis.utils import iface

OUT = os.environ["RITM_TRY_DESKTOP_OUT"]
RASTER = os.environ.get("RITM_TRY_DESKTOP_RASTER", "")
TYPED = os.environ.get("RITM_TRY_DESKTOP_TYPE", "paper-fi")
SHOTS = os.environ.get("RITM_TRY_DESKTOP_SHOTS", "")
MIRROR = os.environ.get("RITM_TRY_DESKTOP_MIRROR", "")  # a loopback server: try the download too
MASK = os.environ.get("RITM_TRY_DESKTOP_MASK", "")  # the raster's reference buildings: one to outline
LEVELS = {Qgis.Info: "info", Qgis.Warning: "warning", Qgis.Critical: "critical", Qgis.Success: "success"}

report = {"typed": TYPED, "log": [], "errors": []}
logged = []  # (tag, level, message) of every QgsMessageLog message from here on
shown = []  # (title, text, level) of every message bar item from here on


def on_log(message, tag, level):
    logged.append((tag, LEVELS.get(level, str(level)), message))


def on_bar(item):
    try:
        shown.append((item.title(), item.text(), LEVELS.get(item.level(), str(item.level()))))
    except Exception:  # an item that is not a QgsMessageBarItem
        shown.append(("", repr(item), "?"))


QgsApplication.messageLog().messageReceived.connect(on_log)
iface.messageBar().widgetAdded.connect(on_bar)


def pump(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QCoreApplication.processEvents()
        time.sleep(0.02)


def wait_until(condition, seconds):
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            return False
        pump(0.05)
    return True


def shoot(widget, path):
    """A widget (None: the whole screen, open lists included) as a 256-colour PNG, small enough for the docs."""
    image = widget.grab().toImage() if widget is not None else QApplication.primaryScreen().grabWindow(0).toImage()
    image.convertToFormat(QImage.Format_Indexed8, Qt.ThresholdDither | Qt.AvoidDither).save(path)
    return path


def list_entries(combo):
    from ritm_qgis.gui.model_picker import SPEC_ROLE, STATUS_ROLE

    groups = [{"heading": "", "models": []}]
    for i in range(combo.count()):
        spec, text = combo.itemData(i, SPEC_ROLE), combo.itemText(i)
        if spec is None:  # a heading
            groups.append({"heading": text, "models": []})
            continue
        description = text.split(" — ", 1)[1] if " — " in text else ""
        groups[-1]["models"].append({"name": spec, "status": combo.itemData(i, STATUS_ROLE), "text": text,
                                     "description": description})
    return [g for g in groups if g["heading"] or g["models"]]


def try_it():
    import qgis.utils

    report["plugin_loaded"] = "ritm_qgis" in qgis.utils.plugins
    report["startup_log"] = list(logged)
    if not report["plugin_loaded"]:
        report["errors"].append("the plugin is not loaded (see QGIS's Plugins > Manage and Install Plugins)")
        return
    plugin = qgis.utils.plugins["ritm_qgis"]
    window = iface.mainWindow()
    window.setGeometry(0, 0, 1280, 800)  # the whole screen of the X server try_desktop.py starts
    report["dialogs_at_startup"] = [w.windowTitle() for w in QApplication.topLevelWidgets()
                                    if isinstance(w, QDialog) and w.isVisible()]  # e.g. a Python error

    if RASTER:
        layer = QgsRasterLayer(RASTER, os.path.splitext(os.path.basename(RASTER))[0])
        report["raster"] = {"path": RASTER, "valid": layer.isValid()}
        QgsProject.instance().addMapLayer(layer)
        iface.setActiveLayer(layer)
        iface.mapCanvas().setExtent(layer.extent())
        iface.mapCanvas().refresh()

    action = plugin.map_tool.action
    report["toolbar_button"] = {"text": action.text(), "icon_is_null": action.icon().isNull(),
                                "in_plugins_menu": any(a.text() == "&RITM buildings"
                                                       for a in iface.pluginMenu().actions())}
    action.trigger()  # as a click on the toolbar button: starts the tool and opens the dock
    dock = plugin.map_tool.dock
    report["dock_open"] = dock is not None and dock.isVisible()
    if dock is None:
        report["errors"].append("the toolbar button opened no dock")
        return
    tool = plugin.map_tool.tool
    report["model_loaded"] = wait_until(lambda: not tool.busy, 240)
    pump(0.5)
    picker = dock.model
    combo = picker.combo
    report["in_use_before"] = dock.in_use.text()
    report["default_line"] = picker.default_line.text()
    report["get_best_button"] = picker.get_best.text() if picker.get_best.isVisible() else None
    report["groups"] = list_entries(combo)
    if SHOTS:
        shoot(window, os.path.join(SHOTS, "desktop_dock.png"))
    if RASTER and MASK:
        try_outline(plugin, layer)

    # type a part of a model name into the model box, one key at a time
    spec_before = picker.spec()
    logged_before, shown_before = len(logged), len(shown)
    combo.setFocus(Qt.OtherFocusReason)
    pump(0.2)
    from ritm_qgis.gui.model_picker import SPEC_ROLE

    highlighted = []
    for ch in TYPED:
        QTest.keyClick(QApplication.focusWidget() or combo, ch)  # where the keyboard is: the box, then its list
        pump(0.15)  # a person's pace between keys
        view = combo.view()
        highlighted.append(view.currentIndex().data(SPEC_ROLE) if view.isVisible() else None)
    report["popup_open_while_typing"] = combo.view().isVisible()
    report["highlighted_after_each_key"] = highlighted
    if SHOTS and combo.view().isVisible():
        shoot(None, os.path.join(SHOTS, "desktop_model_list.png"))
    QTest.keyClick(QApplication.focusWidget() or combo, Qt.Key_Escape)  # leave without choosing
    pump(1.0)
    report["typing"] = {
        "log_messages": logged[logged_before:],
        "message_bar_items": shown[shown_before:],
        "warnings": sum(1 for _, level, _ in logged[logged_before:] if level in ("warning", "critical"))
        + sum(1 for _, _, level in shown[shown_before:] if level in ("warning", "critical")),
        "model_before": spec_before,
        "model_after": picker.spec(),
        "download_started": picker.task is not None,
        "tool_model_after": tool.settings.model,
        "in_use_after": dock.in_use.text(),
    }
    if MIRROR:
        try_download(picker, dock)


def try_outline(plugin, layer):
    """One left click at the deepest point of the largest reference building, then Enter, as a user:
    the outline must land in the output layer, and its IoU with the reference is recorded."""
    import cv2
    import numpy as np
    import rasterio
    from shapely.geometry import Polygon

    with rasterio.open(MASK) as src:
        mask = src.read(1) > 0
        to_map = src.transform
    count, labels = cv2.connectedComponents(mask.astype(np.uint8))
    largest = 1 + int(np.argmax([np.sum(labels == i) for i in range(1, count)]))
    building = (labels == largest).astype(np.uint8)
    depth = cv2.distanceTransform(np.pad(building, 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    row, col = np.unravel_index(int(np.argmax(depth)), depth.shape)
    x, y = to_map * (col + 0.5, row + 0.5)
    canvas = iface.mapCanvas()
    tool = plugin.map_tool.tool
    point = canvas.getCoordinateTransform().transform(x, y)
    from qgis.PyQt.QtCore import QPoint

    QTest.mouseClick(canvas.viewport(), Qt.LeftButton, Qt.NoModifier, QPoint(round(point.x()), round(point.y())))
    wait_until(lambda: not tool.busy and tool.worker.pending == 0, 120)
    pump(0.5)
    if SHOTS:
        shoot(iface.mainWindow(), os.path.join(SHOTS, "desktop_outline.png"))
    QTest.keyClick(canvas, Qt.Key_Return)
    wait_until(lambda: tool.worker.pending == 0 and tool.output_layer is not None, 60)
    pump(0.5)
    out = tool.output_layer
    contours, _ = cv2.findContours(building, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    reference = Polygon([to_map * (c + 0.5, r + 0.5) for c, r in contours[0][:, 0, :]]).buffer(0)
    features = list(out.getFeatures()) if out is not None else []
    iou = None
    if features:
        from shapely import wkb

        drawn = wkb.loads(bytes(features[0].geometry().asWkb())).buffer(0)
        iou = round(drawn.intersection(reference).area / drawn.union(reference).area, 3)
    report["outline"] = {"clicked_map_xy": [x, y], "features": len(features),
                         "output_layer": out.name() + " (" + out.providerType() + ")" if out is not None else None,
                         "iou_with_reference": iou, "latency_ms": tool.last_latency_ms}


def try_download(picker, dock):
    """Through the dock, as a user: the mirror field, the "Download paper-finetune" button, Cancel
    half-way, then again to the end. The mirror (a loopback server of try_desktop.py) serves a file
    that is not the published one, so the second try must be refused and deleted."""
    from ritm_qgis.models.weights import cached_path

    manager = QgsApplication.taskManager()
    picker.mirror.setText(MIRROR)
    picker.mirror.editingFinished.emit()
    dest = cached_path("paper-finetune")
    seen = {}
    picker.get_best.click()
    task = picker.task
    seen["task_in_qgis_task_manager"] = task is not None and task in manager.tasks()
    progress = []
    picker.progress.valueChanged.connect(progress.append)
    seen["progress_shown"] = wait_until(lambda: picker.progress.value() > 0, 60) and picker.progress.isVisible()
    if SHOTS:
        shoot(iface.mainWindow(), os.path.join(SHOTS, "desktop_download.png"))
    picker.cancel_button.click()
    seen["cancel_ended_task_within_s"] = None
    t0 = time.monotonic()
    if wait_until(lambda: picker.task is None, 60):
        seen["cancel_ended_task_within_s"] = round(time.monotonic() - t0, 2)
    seen["after_cancel"] = {"status": dock.status.text(), "progress_max": max(progress, default=0),
                            "files_left": sorted(p.name for p in dest.parent.glob("paper-finetune*"))}
    picker.get_best.click()
    seen["second_try_ended"] = wait_until(lambda: picker.task is None, 120)
    seen["after_second_try"] = {"status": dock.status.text(), "model": picker.spec(),
                                "files_left": sorted(p.name for p in dest.parent.glob("paper-finetune*"))}
    report["download"] = seen


def finish():
    try:
        try_it()
    except Exception:
        report["errors"].append(traceback.format_exc())
    report["log"] = logged
    report["message_bar"] = shown
    with open(os.path.join(OUT, "report.json"), "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=2, ensure_ascii=False)
    QgsProject.instance().setDirty(False)  # no "save the project?" question on the way out
    os._exit(0)  # QGIS's exit-time teardown is not what is being tried here, and can hang headless


QTimer.singleShot(3000, finish)  # after the main window is up and the plugins are loaded
