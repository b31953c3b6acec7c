"""The map tool's engine without QGIS: context windows around clicks and the raster click session."""

import numpy as np
import pytest
import rasterio
from affine import Affine

from ritm_qgis.engine.interactive.context_window import WindowBox, context_window, keeps_window, pixel_index
from ritm_qgis.core.errors import RitmError
from ritm_qgis.engine.interactive.grabcut_backend import GrabCutBackend
from ritm_qgis.engine.interactive.predictor import Predictor
from ritm_qgis.engine.geo.raster_io import pixel_to_map
from ritm_qgis.engine.interactive.raster_session import OutlineSettings, RasterSession
from ritm_qgis.engine.geo.synthetic_scene import make_scene, write_scene


def test_window_is_min_size_centred_on_one_click():
    w = context_window([(500.5, 300.5)], 2000, 1000, min_size=256, margin=32)
    assert (w.width, w.height) == (256, 256)
    assert w.contains(500.5, 300.5)
    assert abs((w.col_off + w.width / 2) - 500.5) <= 1 and abs((w.row_off + w.height / 2) - 300.5) <= 1


def test_window_grows_with_spread_clicks_and_is_never_the_whole_raster():
    small = context_window([(500, 500)], 4000, 4000, min_size=256, margin=32)
    big = context_window([(500, 500), (900, 620)], 4000, 4000, min_size=256, margin=32)
    assert big.width == 900 - 500 + 1 + 64 and big.height == 256
    assert big.width > small.width
    assert big.contains(500, 500) and big.contains(900, 620)
    capped = context_window([(0, 0), (3999, 3999)], 4000, 4000, min_size=256, max_size=1024)
    assert capped.width == 1024 and capped.height == 1024


def test_window_is_shifted_inside_the_raster_and_clipped_only_when_the_raster_is_smaller():
    w = context_window([(3, 3)], 1000, 1000, min_size=256)
    assert (w.col_off, w.row_off, w.width, w.height) == (0, 0, 256, 256)
    w = context_window([(998, 5)], 1000, 1000, min_size=256)
    assert (w.col_off, w.width) == (1000 - 256, 256)
    w = context_window([(50, 50)], 100, 300, min_size=256)
    assert (w.col_off, w.width, w.height) == (0, 100, 256)


def test_keeps_window_until_a_click_nears_an_inner_side():
    w = WindowBox(100, 100, 256, 256)
    assert keeps_window(w, [(228, 228)], 2000, 2000, margin=32)
    assert not keeps_window(w, [(228, 228), (120, 228)], 2000, 2000, margin=32)
    # at the raster's own edge no margin is needed
    edge = WindowBox(0, 0, 256, 256)
    assert keeps_window(edge, [(2, 2)], 2000, 2000, margin=32)
    assert not keeps_window(edge, [(250, 2)], 2000, 2000, margin=32)
    assert pixel_index(3.99, -0.01) == (3, -1)


@pytest.fixture(scope="module")
def scene_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("scene")
    scene = make_scene(size=768, n_buildings=9, seed=3)
    write_scene(scene, str(d / "scene.tif"), mask_path=str(d / "mask.tif"))
    return scene, d


def _iou(a, b):
    return float((a & b).sum() / (a | b).sum())


def _centre(scene, k):
    pts = scene.polygons_px[k]
    return pts.mean(axis=0)  # (col, row)


def _instance(scene, k):
    import cv2

    m = np.zeros(scene.mask.shape, np.uint8)
    cv2.fillPoly(m, [scene.polygons_px[k].round().astype(np.int32)], 1)
    return m.astype(bool)


def test_session_segments_a_building_from_one_click_in_a_window(scene_files):
    scene, d = scene_files
    session = RasterSession(str(d / "scene.tif"), lambda: Predictor(GrabCutBackend()), min_size=256, margin=32)
    col, row = _centre(scene, 4)
    x, y = pixel_to_map(scene.transform, col, row)
    step = session.add_click(float(x), float(y), True)
    assert (step.window.width, step.window.height) == (256, 256)  # a window, not the 768 x 768 raster
    full = np.zeros(scene.mask.shape, bool)
    w = step.window
    full[w.row_off:w.row_off + w.height, w.col_off:w.col_off + w.width] = step.prob > 0.49
    score = _iou(full, _instance(scene, 4))
    assert score > 0.8, score
    gdf = session.outline(OutlineSettings(simplify_px=0.5))
    assert len(gdf) == 1 and gdf.crs.to_epsg() == 32618
    assert abs(gdf.area_m2.iloc[0] - full.sum() * 0.25) / (full.sum() * 0.25) < 0.05


def test_session_undo_is_exact_across_a_window_change(scene_files):
    scene, d = scene_files
    session = RasterSession(str(d / "scene.tif"), lambda: Predictor(GrabCutBackend()), min_size=256, margin=32)
    c, r = _centre(scene, 4)
    x, y = pixel_to_map(scene.transform, c, r)
    s1 = session.add_click(float(x), float(y), True)
    first = session.outline().geometry.iloc[0].wkb
    s2 = session.add_click(float(x) + 2.0, float(y), False)  # same window
    assert s2.window == s1.window and not s2.replayed
    x3, y3 = pixel_to_map(scene.transform, c + 200, r)  # far: the window must grow, clicks replayed
    s3 = session.add_click(float(x3), float(y3), False)
    assert s3.replayed and s3.window.width > s1.window.width and session.reads == 2
    assert session.undo() is s2
    assert session.undo() is s1
    assert session.outline().geometry.iloc[0].wkb == first
    np.testing.assert_array_equal(session.current.predictor.prob, s1.prob)
    assert session.undo() is None and session.clicks == []


def test_session_refuses_clicks_outside_or_on_nodata(tmp_path):
    rgb = np.full((3, 300, 300), 120, np.uint16)
    rgb[:, :, :100] = 0
    path = tmp_path / "nodata16.tif"
    t = Affine.translation(1000, 2000) * Affine.scale(1, -1)
    with rasterio.open(path, "w", driver="GTiff", width=300, height=300, count=3, dtype="uint16",
                       crs="EPSG:32631", transform=t, nodata=0) as ds:
        ds.write(rgb)
    session = RasterSession(str(path), lambda: Predictor(GrabCutBackend()), min_size=128)
    with pytest.raises(RitmError, match="outside the raster"):
        session.add_click(999.0, 1990.0, True)
    with pytest.raises(RitmError, match="nodata"):
        session.add_click(1050.0, 1850.0, True)
    assert session.clicks == []
    step = session.add_click(1200.0, 1850.0, True)  # 16-bit data goes through the engine's stretch
    assert step.image.rgb.dtype == np.uint8 and session.stretch is not None
