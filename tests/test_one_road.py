"""One road from clicks to a building (issue 26): the same clicks on a real 16-bit scene with
nodata give the same polygon from the map tool (a real canvas, a small real network through the
worker thread), ``segment_from_points`` (QGIS Processing, headless) and ``ritm-qgis segment``.

The scene is a real SpaceNet Rio chip turned into what a 16-bit sensor product looks like: one
grey band stored as uint16 (about 200..3300, a few saturated pixels), reprojected to UTM at 0.3 m
(so it is larger than the model's 384-pixel window), nodata 0 where the reprojection has no data
and in a 24-pixel strip on the left. The map tool's clicks are real mouse clicks on the canvas;
the map coordinates it got are handed to the other two, so the three see exactly the same clicks.
"""

import os

import cv2
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from qgis.core import QgsPointXY, QgsProject, QgsRasterLayer
from qgis.PyQt.QtCore import Qt

from conftest import shared_path
from data_builders import point_layer, provider  # noqa: F401
from test_maptool import canvas_tool, click, key, make_tool, show  # noqa: F401
from tiny_model import one_torch_thread, tiny_checkpoint  # noqa: F401

pytestmark = pytest.mark.qgis

CHIP = ("aerial", "spacenet_rio", "images", "3band_013022223130_Public_img50.tif")
MASK = ("aerial", "spacenet_rio", "masks", "3band_013022223130_Public_img50.tif")
UTM = "EPSG:32723"
SAME = 0.999  # IoU between the three polygons of one building


def reproject_to_utm(src_path, out_path, *, grey16: bool):
    """The chip (or its mask) at 0.3 m in UTM 23S: grey uint16 with nodata 0, or the mask as 0/1."""
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    with rasterio.open(src_path) as src:
        data = src.read().astype(np.float32)
        transform, width, height = calculate_default_transform(src.crs, UTM, src.width, src.height, *src.bounds,
                                                               resolution=0.3)
        if grey16:
            valid = (data > 0).any(axis=0)
            band = np.where(valid, (0.3 * data[0] + 0.59 * data[1] + 0.11 * data[2]) * 12.0 + 200.0, 0)
        else:
            band = (data[0] > 0).astype(np.float32) + 1  # 0 stays "no data" for the reprojection
        out = np.zeros((height, width), np.float32)
        reproject(band.astype(np.float32), out, src_transform=src.transform, src_crs=src.crs, src_nodata=0,
                  dst_transform=transform, dst_crs=UTM, dst_nodata=0,
                  resampling=Resampling.bilinear if grey16 else Resampling.nearest)
    if grey16:
        out = np.clip(np.round(out), 0, 65535).astype(np.uint16)
        hot = np.random.default_rng(0).integers(0, out.size, out.size // 2000)
        out.flat[hot] = np.where(out.flat[hot] > 0, 16000, 0)
        out[:, :24] = 0
        profile = dict(driver="GTiff", width=width, height=height, count=1, dtype="uint16", crs=UTM,
                       transform=transform, nodata=0, tiled=True, blockxsize=256, blockysize=256)
        with rasterio.open(out_path, "w", **profile) as dst:
            dst.write(out, 1)
        return out_path, transform
    return out == 2, transform


@pytest.fixture(scope="module")
def uint16_scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp("one_road")
    raster, transform = reproject_to_utm(shared_path(*CHIP), str(folder / "scene16.tif"), grey16=True)
    mask, _ = reproject_to_utm(shared_path(*MASK), None, grey16=False)
    with rasterio.open(raster) as ds:
        valid = ds.read(1) != 0
    return raster, transform, mask & valid, tiny_checkpoint(folder)


def building_clicks(mask: np.ndarray, transform) -> list:
    """Click sequences (map coordinates, sign) on three buildings of the scene: the largest one with a
    positive click, a negative one on the ground beside it and a second positive; two more with one
    click. Each click is at the centre of a pixel farthest inside (outside) the building."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=4)
    order = 1 + np.argsort(-stats[1:, cv2.CC_STAT_AREA])
    sequences = []
    for rank, k in enumerate(order[:3]):
        building = labels == k
        inside = cv2.distanceTransform(np.pad(building.astype(np.uint8), 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
        r, c = np.unravel_index(np.argmax(inside), inside.shape)
        clicks = [(c, r, True)]
        if rank == 0:
            ring = cv2.dilate(building.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool) & ~mask
            rows, cols = np.nonzero(ring)
            j = int(np.argmin((rows - r) ** 2 + (cols - c) ** 2))
            clicks.append((cols[j], rows[j], False))
            far = np.nonzero(inside >= 0.5 * inside.max())
            j = int(np.argmax((far[0] - r) ** 2 + (far[1] - c) ** 2))
            clicks.append((far[1][j], far[0][j], True))
        sequences.append([(*(transform * (col + 0.5, row + 0.5)), positive) for col, row, positive in clicks])
    return sequences


def union(gdf) -> shapely.Geometry:
    return shapely.union_all(gdf.geometry.values)


def iou(a, b) -> float:
    return float(shapely.area(shapely.intersection(a, b)) / shapely.area(shapely.union(a, b)))


@pytest.mark.parametrize("backend", ["tiny network", "grabcut"])
def test_the_same_clicks_give_the_same_building_on_the_canvas_in_processing_and_on_the_command_line(
        backend, uint16_scene, provider, qgis_iface, qgis_canvas, canvas_tool, tmp_path):  # noqa: F811
    """The tiny network's random weights outline most of the model's window (so the three must
    agree on the window: the rule that differed); GrabCut outlines the building itself."""
    import processing

    from ritm_qgis.cli import main

    raster, transform, mask, ckpt = uint16_scene
    sequences = building_clicks(mask, transform)
    model = ckpt if backend == "tiny network" else "grabcut"

    # 1. the map tool: real clicks on a real canvas, the tiny network on the worker thread
    layer = QgsRasterLayer(raster, "scene16")
    QgsProject.instance().addMapLayer(layer)
    show(qgis_canvas, layer)
    tool = make_tool(qgis_canvas, qgis_iface, layer, tmp_path, model=model, device="cpu", stretch="percentile",
                     simplify_px=0.0, min_area_m2=0.0, output_path=str(tmp_path / "canvas.gpkg"))
    canvas_tool.append(tool)
    assert tool.backend_name.startswith(model)
    taken = []  # the map coordinates the worker got, per building
    records = {}  # kind -> the records the worker handed back, in order

    def on_job(job):
        if job.kind == "click" and not job.error:
            taken[-1].append((job.args["x"], job.args["y"], job.args["positive"]))
        if job.kind in ("click", "accept"):
            records.setdefault(job.kind, []).append(job.result)

    tool.worker.jobFinished.connect(on_job)
    for clicks in sequences:
        taken.append([])
        for x, y, positive in clicks:
            click(qgis_canvas, QgsPointXY(x, y), layer, Qt.LeftButton if positive else Qt.RightButton)
            tool.wait_idle(120)
        assert len(taken[-1]) == len(clicks)
        key(qgis_canvas, Qt.Key_Return)
        tool.wait_idle(120)
    canvas = gpd.read_file(tmp_path / "canvas.gpkg", layer="footprints")
    assert len(canvas) == 3 and list(canvas["n_clicks"]) == [3, 1, 1]
    # accepting saved the outline drawn after the last click: the same record, not traced again
    last_clicks = [records["click"][i] for i in (2, 3, 4)]
    assert all(a is c for a, c in zip(records["accept"], last_clicks))

    # 2. segment_from_points through QGIS Processing, the same clicks as points of a layer
    points = [(x, y, {"sign": int(p), "obj": b + 1, "ord": i}) for b, clicks in enumerate(taken)
              for i, (x, y, p) in enumerate(clicks)]
    res = processing.run("ritm_qgis:segment_from_points", {
        "INPUT": raster, "POINTS": point_layer(points, crs=UTM), "SIGN_FIELD": "sign", "OBJECT_FIELD": "obj",
        "ORDER_FIELD": "ord", "DEVICE": "cpu",
        **({"CHECKPOINT": ckpt} if model == ckpt else {"MODEL": model}), "STRETCH": "percentile", "SIMPLIFY": 0.0,
        "REGULARIZE": True, "OUTPUT": str(tmp_path / "processing.gpkg")})
    alg = gpd.read_file(res["OUTPUT"])

    # 3. ritm-qgis segment
    argv = ["segment", "--raster", raster, "--model", model, "--device", "cpu", "--out", str(tmp_path / "cli.gpkg")]
    for b, clicks in enumerate(taken):
        if b:
            argv.append("--next")
        for x, y, p in clicks:
            argv += ["--click", f"{x!r},{y!r},{'+' if p else '-'}"]
    assert main(argv) == 0
    cli = gpd.read_file(tmp_path / "cli.gpkg", layer="buildings")

    # one field set, and the same polygon three times
    assert list(cli.columns) == list(alg.columns)
    assert set(cli.columns) - {"geometry"} <= set(canvas.columns)
    assert list(alg["object_id"]) == list(cli["object_id"]) == [1, 2, 3]
    for b in range(3):
        drawn = union(canvas.iloc[[b]])
        assert not drawn.is_empty and drawn.area > 5.0, drawn.area  # not a speck
        if model == "grabcut":  # the building, not the window
            assert canvas.iloc[b].pixels < 0.2 * 384 * 384, canvas.iloc[b].pixels
        scores = (iou(drawn, union(alg.iloc[[b]])), iou(drawn, union(cli.iloc[[b]])))
        print("building", b + 1, "area", round(drawn.area, 1), "IoU canvas/processing, canvas/cli", scores)
        assert min(scores) >= SAME, scores
        for table in (alg, cli):
            row = table.iloc[b]
            assert row.n_clicks == len(taken[b]) and row.stretch == canvas.iloc[b].stretch
            assert row.area_m2 == pytest.approx(canvas.iloc[b].area_m2, rel=1e-3)
            assert row.pixels == canvas.iloc[b].pixels
            assert os.path.samefile(row.source, canvas.iloc[b].source)


def test_segment_reprojects_clicks_given_in_another_crs_and_refuses_bad_clicks(uint16_scene, tmp_path, capsys):
    from pyproj import Transformer

    from ritm_qgis.cli import main

    raster, transform, mask, _ = uint16_scene
    (x, y, _), = building_clicks(mask, transform)[1]
    lon, lat = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True).transform(x, y)
    base = ["segment", "--raster", raster, "--model", "grabcut"]
    assert main(base + ["--click", f"{x!r},{y!r},+", "--out", str(tmp_path / "utm.gpkg")]) == 0
    wgs_argv = ["--crs", "EPSG:4326", "--click", f"{lon!r},{lat!r},+", "--out", str(tmp_path / "wgs.gpkg")]
    assert main(base + wgs_argv) == 0
    utm, wgs = (gpd.read_file(tmp_path / f"{n}.gpkg") for n in ("utm", "wgs"))
    assert len(utm) == len(wgs) == 1 and utm.crs.to_epsg() == 32723 and wgs.crs.to_epsg() == 32723
    assert iou(union(utm), union(wgs)) >= SAME
    capsys.readouterr()
    on_nodata = transform * (5.5, 200.5)  # the nodata strip on the left
    for argv, message in [
        (["--click", f"{x},{y},?"], "the sign must be"),
        (["--click", f"{x},{y},+", "--next"], "--next at the end"),
        (["--next", "--click", f"{x},{y},+"], "--next after building 1 with no click"),
        (["--click", f"{x + 1e5},{y},+"], "outside the raster"),
        (["--crs", "EPSG:nope", "--click", f"{x},{y},+"], "is not a CRS"),
        (["--click", f"{x},{y},+", "--click", f"{on_nodata[0]},{on_nodata[1]},-"], "--click number(s) 2 lie on nodata"),
    ]:
        assert main(base + argv + ["--out", str(tmp_path / "bad.gpkg")]) == 1
        assert message in capsys.readouterr().err
        assert not os.path.exists(tmp_path / "bad.gpkg")


def test_a_footprints_layer_of_single_polygons_takes_a_two_part_building_part_by_part(qgis_app, tmp_path):
    """A footprints.gpkg made by an earlier version (Polygon, fewer fields) keeps taking buildings."""
    from qgis.core import QgsCoordinateReferenceSystem, QgsVectorLayer

    from ritm_qgis.engine.interactive.outline_record import FIELDS, OutlineRecord
    from ritm_qgis.gui.output import append_records, open_output_layer

    path = str(tmp_path / "old.gpkg")
    old = gpd.GeoDataFrame({"area_m2": [1.0], "perimeter_m": [4.0], "n_clicks": [1], "model": ["grabcut"],
                            "created": [pd.Timestamp("2026-01-01")]},
                           geometry=[shapely.box(500000, 5000000, 500001, 5000001)], crs=UTM)
    old.to_file(path, layer="footprints", engine="pyogrio")
    layer = open_output_layer(path, QgsCoordinateReferenceSystem(UTM), add_to_project=False)
    two = shapely.MultiPolygon([shapely.box(500010, 5000000, 500020, 5000010),
                                shapely.box(500030, 5000000, 500035, 5000010)])
    record = OutlineRecord(two, area_m2=150.0, perimeter_m=100.0, pixels=1666, clicks=((500015, 5000005, True),),
                           model="grabcut", stretch="percentile", source="scene.tif",
                           crs=rasterio.crs.CRS.from_string(UTM))
    feats = append_records(layer, [record], QgsCoordinateReferenceSystem(UTM), "house")
    assert len(feats) == 2
    back = gpd.read_file(path, layer="footprints")
    assert len(back) == 3 and set(FIELDS) <= set(back.columns)
    assert back["area_m2"].iloc[1:].round(3).tolist() == [100.0, 50.0] and set(back["label"].iloc[1:]) == {"house"}
    assert QgsVectorLayer(f"{path}|layername=footprints").featureCount() == 3
