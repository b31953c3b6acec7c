"""Issue 22: outlines shaped like buildings, the first click's context in metres, image refinement.
Real rasters and the shipped tiny model; no mocks."""

import cv2
import numpy as np
import pytest
import shapely
from affine import Affine

from data_builders import scene
from ritm_qgis.engine.geo.vectorize import vectorize_mask
from ritm_qgis.engine.interactive.zoom_in import ZoomInParams, click_centred_box

TR = Affine(0.5, 0, 500000, 0, -0.5, 7000000)


def _rounded_rectangle(angle=20.0):
    r = np.zeros((140, 140), np.uint8)
    box = cv2.boxPoints(((70, 70), (80, 46), angle)).astype(np.int32)
    cv2.fillPoly(r, [box], 1)
    return cv2.morphologyEx(r, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (17, 17)))


def _corners(g):
    return len(g.exterior.coords) - 1


def _right_angles(g):
    c = np.asarray(g.exterior.coords)[:-1]
    d = np.roll(c, -1, axis=0) - c
    cos = (d * np.roll(d, -1, axis=0)).sum(1) / np.hypot(*d.T) / np.hypot(*np.roll(d, -1, axis=0).T)
    return np.abs(cos).max() < 1e-6


def test_a_rounded_blob_of_a_rectangular_roof_becomes_its_rectangle_where_the_strict_rule_gives_up():
    mask = _rounded_rectangle()
    strict = vectorize_mask(mask, TR, simplify=0.5, regularize=0.75, regularize_mode="strict")
    building = vectorize_mask(mask, TR, simplify=0.5, regularize=0.5, regularize_mode="building")
    assert not strict.regularized[0] and _corners(strict.geometry[0]) > 8  # today's: the blob stays
    g = building.geometry[0]
    assert building.regularized[0] and _corners(g) == 4 and _right_angles(g)
    # its orientation is the roof's (20 degrees), not the pixel grid's
    c = np.asarray(g.exterior.coords)
    angles = np.degrees(np.arctan2(np.diff(c[:, 1]), np.diff(c[:, 0]))) % 90
    assert np.all(np.minimum(np.abs(angles - 20), np.abs(angles - 70)) < 3)


def test_l_shapes_keep_their_wings_and_round_roofs_are_left_alone():
    ell = np.zeros((120, 120), np.uint8)
    ell[20:100, 20:50] = 1
    ell[70:100, 20:100] = 1
    g = vectorize_mask(ell, TR, simplify=0.5, regularize=0.5, regularize_mode="building")
    assert g.regularized[0] and _corners(g.geometry[0]) == 6 and _right_angles(g.geometry[0])
    disc = np.zeros((120, 120), np.uint8)
    cv2.circle(disc, (60, 60), 35, 1, -1)
    d = vectorize_mask(disc, TR, simplify=0.5, regularize=0.5, regularize_mode="building")
    assert not d.regularized[0] and _corners(d.geometry[0]) > 8
    r = vectorize_mask(disc, TR, simplify=0.5, regularize=0.5, regularize_mode="rectangle")
    assert r.regularized[0] and _corners(r.geometry[0]) == 4  # the comparison mode squares everything


def test_first_click_context_is_given_in_metres_and_centred_on_the_click():
    z = ZoomInParams(first_crop_m=60.0, min_crop_m=30.0)
    assert z.at_resolution(0.5).first_crop == 120 and z.at_resolution(1.5).first_crop == 40
    assert z.at_resolution(0.3).min_crop_size == 100
    assert z.at_resolution(None).first_crop == 120  # no georeference: 0.5 m assumed
    from ritm_qgis.engine.interactive.click_encoding import Click

    assert click_centred_box([Click(200, 300, True)], 120, (1000, 1000)) == (140, 259, 240, 359)
    assert click_centred_box([Click(5, 995, True)], 120, (1000, 1000)) == (0, 119, 880, 999)  # shifted inside


def test_the_map_tool_session_sees_the_first_click_at_the_buildings_scale(tmp_path):
    """The first click's crop covers the same ground (200 m) at 0.5 m and at 1.0 m per pixel."""
    from data_builders import scene_arrays, transform, write_raster
    from ritm_qgis.engine.interactive.backends import build_backend
    from ritm_qgis.engine.interactive.interactive_settings import FIRST_CLICK_M, interactive_predictor
    from ritm_qgis.engine.interactive.raster_session import RasterSession

    backend = build_backend("aerial-finetuned-tiny", "cpu")
    img, _ = scene_arrays()
    sides = {}
    for pixel in (0.5, 1.0):
        raster = write_raster(tmp_path / f"scene_{pixel}.tif", img, transform_=transform(pixel=pixel))
        session = RasterSession(raster, lambda: interactive_predictor(backend))
        assert session.metres_per_pixel == pytest.approx(pixel)
        x, y = session.grid.transform * (300 + 0.5, 300 + 0.5)
        step = session.add_click(x, y)
        roi = step.predictor.roi
        sides[pixel] = (roi[1] - roi[0] + 1, roi[3] - roi[2] + 1, step.window.width)
    assert sides[0.5] == (384, 384, 384)  # 200 m at 0.5 m is more than the window: the whole window
    assert sides[1.0][:2] == (int(FIRST_CLICK_M), int(FIRST_CLICK_M)) and sides[1.0][2] == 384


def test_guided_refinement_moves_a_soft_border_onto_the_image_edge():
    from ritm_qgis.engine.interactive.refine_mask import guided_probability

    rgb = np.full((80, 80, 3), 40, np.uint8)
    rgb[:, 40:] = 200  # an edge at column 40
    x = np.arange(80, dtype=np.float32)
    prob = np.tile(1.0 / (1.0 + np.exp(-(x - 36.6) / 2.0)), (80, 1)).astype(np.float32)  # soft, 3 px early
    before = int((prob[40] > 0.5).argmax())
    refined = guided_probability(prob, rgb, radius=6, eps=0.01)[40]
    after = int((refined > 0.5).argmax())
    assert before == 37 and abs(after - 40) <= 1
    assert refined[40] - refined[39] > 0.3 > prob[40, 40] - prob[40, 39]  # the step is now at the image's edge


def test_segment_from_points_squares_the_outlines_by_default_and_can_be_told_not_to(tmp_path):
    from ritm_qgis.engine.interactive.grabcut_backend import GrabCutBackend
    from ritm_qgis.engine.interactive.predictor import Predictor
    from ritm_qgis.engine.jobs.click_points import ClickPoint, group_clicks, segment_objects
    from ritm_qgis.engine.geo.raster_io import raster_meta

    raster, _, _ = scene(str(tmp_path))
    grid = raster_meta(raster).grid
    x, y = grid.transform * (125.5, 325.5)  # (col, row) in the third building (rows 300-349, cols 80-169)
    objects = group_clicks([ClickPoint(1, x, y, True, None, None)], grid)
    squared = segment_objects(raster, objects, lambda: Predictor(GrabCutBackend()))
    raw = segment_objects(raster, objects, lambda: Predictor(GrabCutBackend()), regularize=False)
    gs, gr = squared[0].geometry.geoms[0], raw[0].geometry.geoms[0]
    assert _corners(gs) == 4 and _right_angles(gs)
    assert _corners(gr) > 4


def test_the_map_tool_squares_outlines_by_default_as_evaluate_as_drawn_does(qgis_app):
    from ritm_qgis.engine.interactive.interactive_settings import TOOL_OUTLINE
    from ritm_qgis.gui.settings import ToolSettings

    outline = ToolSettings().outline()
    assert outline.regularize and outline.regularize_mode == "building"
    assert (outline.regularize, outline.simplify_px, outline.min_area_m2) == (
        TOOL_OUTLINE.regularize, TOOL_OUTLINE.simplify_px, TOOL_OUTLINE.min_area_m2)


def test_squaring_never_gives_back_what_a_negative_click_took_away():
    from ritm_qgis.engine.geo.regularize import square_building

    notched = shapely.box(0, 0, 40, 20).difference(shapely.box(32, 14, 40, 20))  # a corner cut off (6 %)
    corner = shapely.Point(37, 17)
    assert square_building(notched, 0.5).covers(corner)  # alone, the notch is noise: the rectangle
    kept = square_building(notched, 0.5, avoid=corner.buffer(0.5))
    assert kept is None or not kept.intersects(corner)
