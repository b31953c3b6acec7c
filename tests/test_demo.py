"""The paper's demo (`ritm-qgis demo`, `make-scene`) on a generated georeferenced scene."""

import json

import cv2
import geopandas as gpd
import numpy as np
import pytest

from ritm_qgis.cli import main
from ritm_qgis.engine.data.datasets import Sample
from ritm_qgis.engine.protocol.evaluation import annotate
from ritm_qgis.engine.interactive.grabcut_backend import GrabCutBackend
from ritm_qgis.engine.interactive.predictor import Predictor
from ritm_qgis.engine.geo.synthetic_scene import make_scene


def test_scene_has_buildings_of_several_shapes_and_exact_footprints(tmp_path):
    scene = make_scene(256, 4, seed=3)
    assert scene.rgb.shape == (256, 256, 3) and scene.rgb.dtype == np.uint8
    assert 0.05 < scene.mask.mean() < 0.6
    assert {len(p) for p in make_scene(512, 9, seed=0).polygons_px} == {4, 6}  # rectangles and L-shapes
    assert main(["make-scene", "--out", str(tmp_path), "--size", "256", "--buildings", "4", "--seed", "3"]) == 0
    fp = gpd.read_file(tmp_path / "footprints.gpkg", layer="buildings")
    assert len(fp) == 4 and fp.crs.to_epsg() == 32618
    assert fp.area.sum() == pytest.approx(scene.mask.sum() * 0.25, rel=0.05)  # 0.5 m pixels


def test_annotate_stops_at_the_target_iou():
    scene = make_scene(160, 1, seed=1)
    sample = Sample("one", scene.rgb, scene.mask)
    ann = annotate(sample, Predictor(GrabCutBackend()), target_iou=0.8, max_clicks=12)
    assert 1 <= ann.n_clicks <= 12 and len(ann.ious) == ann.n_clicks
    assert ann.clicks[0].is_positive
    if ann.n_clicks < 12:
        assert ann.ious[-1] >= 0.8 and all(v < 0.8 for v in ann.ious[:-1])
    assert ann.mask.shape == scene.mask.shape


def test_demo_command_writes_figures_and_geopackages(tmp_path, capsys):
    assert main(["make-scene", "--out", str(tmp_path / "scene"), "--size", "192", "--buildings", "2"]) == 0
    out = tmp_path / "demo"
    code = main(["demo", "--image", str(tmp_path / "scene" / "scene.tif"), "--target", str(tmp_path / "scene" / "scene_mask.tif"),
                 "--model", "grabcut", "--target-iou", "0.85", "--max-clicks", "6", "--out", str(out)])
    assert code == 0
    summary = json.loads((out / "demo.json").read_text())["models"]["grabcut"]
    assert 1 <= summary["n_clicks"] <= 6 and len(summary["ious"]) == summary["n_clicks"]
    for name in ("overlay.png", "error_map.png", "iou_per_click.png"):
        assert cv2.imread(str(out / "grabcut" / name)) is not None
    clicks = gpd.read_file(out / "grabcut" / "clicks.gpkg", layer="clicks")
    assert len(clicks) == summary["n_clicks"] and clicks.crs.to_epsg() == 32618
    assert list(clicks["order"]) == list(range(1, len(clicks) + 1)) and bool(clicks["positive"].iloc[0])
    fp = gpd.read_file(out / "grabcut" / "footprints.gpkg", layer="footprints")
    assert len(fp) >= 1 and fp.crs.to_epsg() == 32618
    assert "grabcut:" in capsys.readouterr().out


def test_target_mask_is_binarized_above_128_and_sizes_must_match(tmp_path):
    img = np.full((40, 50, 3), 90, np.uint8)
    cv2.imwrite(str(tmp_path / "img.png"), img)
    target = np.zeros((40, 50), np.uint8)
    target[10:20, 10:20] = 128  # not above 128: not foreground
    cv2.imwrite(str(tmp_path / "t.png"), target)
    assert main(["demo", "--image", str(tmp_path / "img.png"), "--target", str(tmp_path / "t.png"), "--out", str(tmp_path / "o")]) == 1
    cv2.imwrite(str(tmp_path / "small.png"), np.full((10, 10), 255, np.uint8))
    assert main(["demo", "--image", str(tmp_path / "img.png"), "--target", str(tmp_path / "small.png"), "--out", str(tmp_path / "o")]) == 1
