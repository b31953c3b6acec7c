"""Latency of the map tool with the canvas in the loop: mouse release -> overlay drawn.

A real QgsMapCanvas (shown, offscreen or under Xvfb) with the synthetic scene; real mouse
clicks (QTest) on buildings; the tool's worker runs the model; the latency ends when the
overlay's paint() has run. Next to it, the predictor's own time for the same click (measured
inside the worker around ``Predictor.add_click``) and the same clicks through a bare Predictor
on the same window without QGIS. GUI overhead = end-to-end - predictor.

    xvfb-run -a .venv/bin/python bench/bench_canvas_latency.py [--clicks 12] [--screenshot docs/canvas.png]

Backends: the weight-free GrabCut backend, and a hrnet18s network with random weights
(ritm_qgis.models.create_model + randomize_) on the device given (--device auto|cpu|cuda).

Second part, the first click of a building (``--first-click``, on by default): the model is
chosen in the tool as a user does (a checkpoint file: hrnet18s with random weights, plus any
``--model`` given), which loads it on the worker in the background; then, once the tool is idle,
a first click on each of ``--buildings`` buildings and two following clicks on each. Baseline in
the same process: the same with the load's warm-up run switched off (the tool before issue 14,
where the network's first run fell on the user's first click). Also timed: a click made right
after choosing the model, which waits for the load (the busy cursor shows meanwhile).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clicks", type=int, default=12, help="timed clicks per backend (default 12)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--backends", default="grabcut,hrnet18s")
    ap.add_argument("--screenshot", metavar="PNG", help="also save the canvas with overlay and clicks")
    ap.add_argument("--first-click", default=True, action=argparse.BooleanOptionalAction,
                    help="also time the first click of a building after a model is chosen (default on)")
    ap.add_argument("--buildings", type=int, default=4, help="buildings for the first-click part (default 4)")
    ap.add_argument("--model", action="append", default=[], metavar="NAME|FILE",
                    help="more models for the first-click part (a shipped name or checkpoint file)")
    args = ap.parse_args(argv)

    import cv2
    import numpy as np
    from qgis.core import QgsApplication, QgsPointXY, QgsProject, QgsRasterLayer
    from qgis.PyQt.QtCore import QPoint, Qt
    from qgis.PyQt.QtTest import QTest

    app = QgsApplication([], True)
    app.initQgis()
    from qgis.gui import QgsMapCanvas

    from ritm_qgis.engine.interactive.predictor import NetworkBackend, Predictor
    from ritm_qgis.engine.interactive.grabcut_backend import GrabCutBackend
    from ritm_qgis.engine.geo.synthetic_scene import make_scene, write_scene
    from ritm_qgis.gui.maptool import RitmMapTool
    from ritm_qgis.gui.settings import ToolSettings

    tmp = tempfile.mkdtemp(prefix="ritm_bench_")
    scene = make_scene(size=1024, n_buildings=16, seed=5)
    raster = os.path.join(tmp, "scene.tif")
    write_scene(scene, raster)
    layer = QgsRasterLayer(raster, "scene")
    QgsProject.instance().addMapLayer(layer)
    canvas = QgsMapCanvas()
    canvas.resize(800, 800)
    canvas.show()
    canvas.setDestinationCrs(layer.crs())
    canvas.setLayers([layer])
    canvas.setExtent(layer.extent())
    canvas.refresh()
    canvas.waitWhileRendering()

    def inside(k):
        m = np.zeros(scene.mask.shape, np.uint8)
        cv2.fillPoly(m, [scene.polygons_px[k].round().astype(np.int32)], 1)
        dist = cv2.distanceTransform(np.pad(m, 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
        r, c = np.unravel_index(np.argmax(dist), dist.shape)
        return c + 0.5, r + 0.5

    def click_px(col, row, button=Qt.LeftButton):
        p = canvas.getCoordinateTransform().transform(QgsPointXY(*(scene.transform * (col, row))))
        QTest.mouseClick(canvas.viewport(), button, Qt.NoModifier, QPoint(round(p.x()), round(p.y())))

    def make_backend(name):
        if name == "grabcut":
            return GrabCutBackend()
        import torch

        from ritm_qgis.models import create_model
        from ritm_qgis.models.testing import randomize_

        torch.set_num_threads(max(1, os.cpu_count() or 1))
        return NetworkBackend(randomize_(create_model(name)), device=args.device, name=f"{name} (random weights)")

    print(f"machine: {platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
          f"Qt platform {os.environ.get('QT_QPA_PLATFORM')}")
    rows = []
    tool = RitmMapTool(canvas, None, ToolSettings(simplify_px=1.0, min_area_m2=2.0))
    for name in [b.strip() for b in args.backends.split(",") if b.strip()]:
        backend = make_backend(name)
        state = tool.worker.state
        tool.wait_idle()
        factory = ((lambda b=backend: Predictor(b, zoom_in=True, flip=True)) if backend.is_network
                   else (lambda b=backend: Predictor(b)))
        state.factory, state.backend = factory, backend
        tool.backend_name = name
        tool.layer = None
        tool.set_layer(layer)
        canvas.setMapTool(tool)
        tool.wait_idle()
        device = str(getattr(backend, "device", "cpu"))
        # warm-up (tracing of the network, OpenCV first calls)
        click_px(*inside(0))
        tool.wait_idle(600)
        tool.discard()
        tool.wait_idle()
        tool.latencies.clear()
        predictor_only = []
        k = 1
        while len(tool.latencies) < args.clicks:
            col, row = inside(k % len(scene.polygons_px))
            seq = [(col, row, Qt.LeftButton), (col + 3, row + 2, Qt.LeftButton), (col + 40, row + 40, Qt.RightButton)]
            for c, r, b in seq:
                click_px(c, r, b)
                tool.wait_idle(600)
                canvas.viewport().repaint() if not tool.overlay.paints else None
            # the same clicks on the same window through a bare Predictor, no QGIS in the loop
            session = tool.worker.state.session
            step = session.current
            bare = factory()
            bare.set_image(step.image.rgb)
            for c_, r_, p_ in step.pixels:
                rr, cc = step.window.to_local(c_, r_)
                t0 = time.perf_counter()
                bare.add_click(rr, cc, p_)
                predictor_only.append((time.perf_counter() - t0) * 1000)
            tool.discard()
            tool.wait_idle()
            k += 1
        lat = tool.latencies[:args.clicks]
        total = [t for t, _ in lat]
        pred = [p for _, p in lat]
        over = [t - p for t, p in lat]
        rows.append((name, device, statistics.median(total), statistics.median(pred),
                     statistics.median(predictor_only), statistics.median(over), max(over)))
    print(f"{'backend':<10} {'device':<7} {'release->drawn':>15} {'predictor (in tool)':>20} "
          f"{'predictor (bare)':>17} {'GUI overhead':>13} {'overhead max':>13}   (medians, ms; "
          f"{args.clicks} clicks each)")
    for name, device, t, p, b, o, omax in rows:
        print(f"{name:<10} {device:<7} {t:15.1f} {p:20.1f} {b:17.1f} {o:13.1f} {omax:13.1f}")
    worst = max(r[5] for r in rows)
    print(f"GUI overhead (median) {'within' if worst < 30 else 'ABOVE'} the 30 ms target: {worst:.1f} ms")
    if args.first_click:
        first_click_part(args, tool, layer, canvas, scene, inside, click_px, tmp)

    if args.screenshot:
        tool.discard()
        tool.wait_idle()
        state = tool.worker.state
        state.factory = lambda: Predictor(GrabCutBackend())
        state.session.predictor_factory = state.factory
        k = 5
        col, row = inside(k)
        canvas.setExtent(_zoom_box(scene, k, layer))
        canvas.refresh()
        canvas.waitWhileRendering()
        click_px(col, row)
        tool.wait_idle()
        tool.settings = ToolSettings(simplify_px=1.0, min_area_m2=2.0)
        pts = scene.polygons_px[k]
        roof = np.zeros(scene.mask.shape, np.uint8)
        cv2.fillPoly(roof, [pts.round().astype(np.int32)], 1)
        shadow = np.zeros_like(roof)
        cv2.fillPoly(shadow, [(pts + 0.012 * scene.mask.shape[0]).round().astype(np.int32)], 1)
        shadow &= 1 - roof
        dist = cv2.distanceTransform(np.pad(shadow, 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
        sr, sc = np.unravel_index(np.argmax(dist), dist.shape)
        click_px(sc + 0.5, sr + 0.5, Qt.RightButton)  # a negative click on the cast shadow
        tool.wait_idle()
        canvas.viewport().repaint()
        os.makedirs(os.path.dirname(os.path.abspath(args.screenshot)), exist_ok=True)
        canvas.grab().save(args.screenshot)
        print(f"screenshot: {args.screenshot} ({len(tool.markers)} clicks, {len(tool.overlay.geometries)} polygon(s))")
    tool.shutdown()
    sys.stdout.flush()
    os._exit(0)  # skip QGIS's exit-time teardown, which can crash headless


def first_click_part(args, tool, layer, canvas, scene, inside, click_px, tmp):
    """Choose a model in the tool, then time first and following clicks (module doc)."""
    import statistics
    from dataclasses import replace

    from qgis.PyQt.QtCore import Qt

    import ritm_qgis.engine.interactive.interactive_settings as warm_module

    specs = [_random_checkpoint(tmp)] + list(args.model)
    warm_up = warm_module.warm_up
    tool.layer = None
    tool.set_layer(layer)
    canvas.setMapTool(tool)
    tool.wait_idle()
    print(f"\nfirst click of a building (mouse release -> outline drawn, ms; {args.buildings} buildings, "
          "medians; model chosen in the tool, loaded in the background)")
    print(f"{'model':<28} {'load (bg)':>10} {'click during load':>18} {'1st click':>10} "
          f"{'1st, no warm-up':>16} {'ratio':>6} {'next clicks':>12}")
    n = len(scene.polygons_px)

    def choose(spec, device):
        t0 = time.perf_counter()
        tool.set_settings(replace(tool.settings, model=spec, device=device))
        tool.wait_idle(600)
        return (time.perf_counter() - t0) * 1000

    def building_clicks(offset):
        firsts, nexts = [], []
        for b in range(args.buildings):
            col, row = inside((offset + b) % n)
            for k, (c, r, button) in enumerate([(col, row, Qt.LeftButton), (col + 3, row + 2, Qt.LeftButton),
                                                (col + 40, row + 40, Qt.RightButton)]):
                before = len(tool.latencies)
                click_px(c, r, button)
                tool.wait_idle(600)
                if len(tool.latencies) > before:
                    (firsts if k == 0 else nexts).append(tool.latencies[-1][0])
            tool.discard()
            tool.wait_idle()
        return firsts, nexts

    for spec in specs:
        label = os.path.basename(spec) if os.path.sep in spec else spec
        tool.set_settings(replace(tool.settings, model="grabcut"))
        tool.wait_idle()
        # a click right after choosing: it waits behind the load (what the busy cursor is for)
        tool.set_settings(replace(tool.settings, model=spec, device=args.device))
        before = len(tool.latencies)
        click_px(*inside(1))
        tool.wait_idle(600)
        during = tool.latencies[-1][0] if len(tool.latencies) > before else float("nan")
        tool.discard()
        tool.wait_idle()
        # baseline: no warm-up at load, so the network's first run falls on the first click
        warm_module.warm_up = lambda backend, flip=True: None
        try:
            choose("grabcut", "cpu")
            choose(spec, args.device)
            cold, _ = building_clicks(2)
        finally:
            warm_module.warm_up = warm_up
        choose("grabcut", "cpu")
        load_ms = choose(spec, args.device)
        warm, nexts = building_clicks(2 + args.buildings)
        first = statistics.median(warm)
        print(f"{label[:28]:<28} {load_ms:10.0f} {during:18.0f} {first:10.0f} {cold[0]:16.0f} "
              f"{cold[0] / first:6.2f} {statistics.median(nexts):12.0f}")
    print("'1st, no warm-up' is the first building's first click with the load's warm-up switched off (the "
          "old tool); ratio = that / '1st click'.")


def _random_checkpoint(tmp) -> str:
    from ritm_qgis.models import create_model
    from ritm_qgis.models.checkpoint import save_checkpoint
    from ritm_qgis.models.testing import randomize_

    path = os.path.join(tmp, "hrnet18s_random.pth")
    save_checkpoint(path, randomize_(create_model("hrnet18s")), arch="hrnet18s")
    return path


def _zoom_box(scene, k, layer):
    from qgis.core import QgsRectangle

    pts = scene.polygons_px[k]
    c0, r0 = pts.min(axis=0) - 90
    c1, r1 = pts.max(axis=0) + 90
    x0, y0 = scene.transform * (c0, r1)
    x1, y1 = scene.transform * (c1, r0)
    return QgsRectangle(x0, y0, x1, y1)


if __name__ == "__main__":
    main()
