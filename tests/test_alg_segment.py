"""segment_from_points through processing.run: click layers -> one polygon per building."""

import geopandas as gpd
import numpy as np
import pytest
import rasterio

from data_builders import (BUILDINGS, cancelling_feedback, point_layer, provider, scene, scene_arrays,  # noqa: F401
                           transform, write_raster)

qgis_core = pytest.importorskip("qgis.core", reason="PyQGIS (Debian's python3-qgis) is not installed")


def run(params, feedback=None):
    import processing

    params = {"MODEL": "grabcut", **params}  # the figures below were measured with GrabCut, not the default
    return processing.run("ritm_qgis:segment_from_points", params, feedback=feedback)


def centre(b, tr=None):
    """The map coordinates of the centre of the building's middle pixel."""
    r, c, h, w = b
    return (tr or transform()) * (c + w // 2 + 0.5, r + h // 2 + 0.5)


def clicks_for(buildings, obj_ids=None):
    """A positive click at each building's centre and a negative one just outside its left edge."""
    pts = []
    for k, b in enumerate(buildings):
        oid = obj_ids[k] if obj_ids else k + 1
        x, y = centre(b)
        pts.append((x, y, {"sign": 1, "obj": oid, "ord": 1}))
        r, c, h, w = b
        xn, yn = transform() * (c - 7.5, r + h // 2 + 0.5)
        pts.append((xn, yn, {"sign": 0, "obj": oid, "ord": 2}))
    return pts


def test_many_buildings_in_one_run_with_mask(provider, tmp_path):
    raster, _, gt = scene(str(tmp_path))
    layer = point_layer(clicks_for(BUILDINGS[:3], obj_ids=[10, 20, 30]))
    res = run({"INPUT": raster, "POINTS": layer, "SIGN_FIELD": "sign", "OBJECT_FIELD": "obj",
               "ORDER_FIELD": "ord", "MODEL": "grabcut",
               "OUTPUT": str(tmp_path / "out.gpkg"), "OUTPUT_MASK": str(tmp_path / "mask.tif")})
    gdf = gpd.read_file(res["OUTPUT"])
    assert list(gdf["object_id"]) == [10, 20, 30]
    assert list(gdf["n_clicks"]) == [2, 2, 2] and set(gdf["model"]) == {"grabcut"}
    for (_, _, h, w), area in zip(BUILDINGS[:3], gdf["area_m2"]):
        assert area == pytest.approx(h * w * 0.25, rel=0.15)
    assert gdf.crs.to_epsg() == 32633
    with rasterio.open(res["OUTPUT_MASK"]) as m:
        mask = m.read(1) > 0
        assert m.transform == transform() and m.width == gt.shape[1]
    truth = gt.copy()
    for r, c, h, w in BUILDINGS[3:]:
        truth[r:r + h, c:c + w] = False
    iou = (mask & truth).sum() / (mask | truth).sum()
    assert iou > 0.8


def test_points_in_another_crs_are_reprojected(provider, tmp_path):
    from pyproj import Transformer

    raster, _, _ = scene(str(tmp_path))
    tr = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True)
    pts = [(*tr.transform(x, y), a) for x, y, a in clicks_for(BUILDINGS[:1])]
    utm = run({"INPUT": raster, "POINTS": point_layer(clicks_for(BUILDINGS[:1])), "SIGN_FIELD": "sign",
               "OUTPUT": str(tmp_path / "utm.gpkg")})
    wgs = run({"INPUT": raster, "POINTS": point_layer(pts, crs="EPSG:4326"), "SIGN_FIELD": "sign",
               "OUTPUT": str(tmp_path / "wgs.gpkg")})
    a, b = gpd.read_file(utm["OUTPUT"]), gpd.read_file(wgs["OUTPUT"])
    assert len(a) == len(b) == 1
    assert a.geometry.iloc[0].equals(b.geometry.iloc[0])


def test_boolean_sign_field_and_single_object(provider, tmp_path):
    raster, _, _ = scene(str(tmp_path))
    x, y = centre(BUILDINGS[1])
    layer = point_layer([(x, y, {"sign": True})], fields=(("sign", "bool"),))
    res = run({"INPUT": raster, "POINTS": layer, "SIGN_FIELD": "sign",
               "OUTPUT": str(tmp_path / "one.gpkg")})
    gdf = gpd.read_file(res["OUTPUT"])
    assert len(gdf) == 1 and gdf["object_id"].iloc[0] == 1
    assert gdf["area_m2"].iloc[0] == pytest.approx(70 * 50 * 0.25, rel=0.15)


def test_one_band_uint16_with_nodata_is_stretched(provider, tmp_path):
    img, _ = scene_arrays()
    grey = img.mean(axis=0).astype(np.uint16) * 100 + 1000
    grey[:, :20] = 0  # nodata strip
    raster = write_raster(tmp_path / "u16.tif", grey, nodata=0)
    x, y = centre(BUILDINGS[0])
    res = run({"INPUT": raster, "POINTS": point_layer([(x, y, {"sign": 1})]), "SIGN_FIELD": "sign",
               "OUTPUT": str(tmp_path / "g.gpkg")})
    gdf = gpd.read_file(res["OUTPUT"])
    assert gdf["area_m2"].iloc[0] == pytest.approx(60 * 80 * 0.25, rel=0.15)
    # a click on the nodata strip is refused, naming the feature
    xn, yn = transform() * (5, 300)
    layer = point_layer([(x, y, {"sign": 1}), (xn, yn, {"sign": 0})])
    with pytest.raises(qgis_core.QgsProcessingException, match=r"feature id\(s\) 2 lie on nodata"):
        run({"INPUT": raster, "POINTS": layer, "SIGN_FIELD": "sign", "OUTPUT": str(tmp_path / "h.gpkg")})


def test_clicks_outside_the_raster_are_reported_by_feature_id(provider, tmp_path):
    raster, _, _ = scene(str(tmp_path))
    x, y = centre(BUILDINGS[0])
    layer = point_layer([(x, y, {"sign": 1}), (x + 10_000, y, {"sign": 1}), (x, y + 5_000, {"sign": 0})])
    with pytest.raises(qgis_core.QgsProcessingException, match=r"2 click point\(s\) lie outside the raster "
                                                              r"\(feature id\(s\) 2, 3\)"):
        run({"INPUT": raster, "POINTS": layer, "SIGN_FIELD": "sign", "OUTPUT": str(tmp_path / "o.gpkg")})
    assert not (tmp_path / "o.gpkg").exists()


def test_bad_signs_and_negative_only_objects(provider, tmp_path):
    raster, _, _ = scene(str(tmp_path))
    x, y = centre(BUILDINGS[0])
    with pytest.raises(qgis_core.QgsProcessingException, match="not a click sign"):
        run({"INPUT": raster, "POINTS": point_layer([(x, y, {"sign": 5})]), "SIGN_FIELD": "sign",
             "OUTPUT": str(tmp_path / "s.gpkg")})
    with pytest.raises(qgis_core.QgsProcessingException, match="only negative clicks"):
        run({"INPUT": raster, "POINTS": point_layer([(x, y, {"sign": 0, "obj": 4})]), "SIGN_FIELD": "sign",
             "OBJECT_FIELD": "obj", "OUTPUT": str(tmp_path / "s.gpkg")})


def test_rgba_alpha_is_nodata(provider, tmp_path):
    from rasterio.enums import ColorInterp

    img, _ = scene_arrays()
    alpha = np.full((1,) + img.shape[1:], 255, np.uint8)
    alpha[:, :, 600:] = 0
    raster = write_raster(tmp_path / "rgba.tif", np.concatenate([img, alpha]),
                          colorinterp=[ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha])
    x, y = centre(BUILDINGS[2])
    res = run({"INPUT": raster, "POINTS": point_layer([(x, y, {"sign": 1})]), "SIGN_FIELD": "sign",
               "OUTPUT": str(tmp_path / "a.gpkg")})
    assert gpd.read_file(res["OUTPUT"])["area_m2"].iloc[0] == pytest.approx(50 * 90 * 0.25, rel=0.15)
    xa, ya = transform() * (620, 100)
    with pytest.raises(qgis_core.QgsProcessingException, match="nodata"):
        run({"INPUT": raster, "POINTS": point_layer([(xa, ya, {"sign": 1})]), "SIGN_FIELD": "sign",
             "OUTPUT": str(tmp_path / "b.gpkg")})


def test_cancel_between_buildings_leaves_no_output(provider, tmp_path):
    raster, _, _ = scene(str(tmp_path))
    fb = cancelling_feedback(1)
    out = tmp_path / "c.gpkg"
    with pytest.raises(qgis_core.QgsProcessingException, match="cancelled"):
        run({"INPUT": raster, "POINTS": point_layer(clicks_for(BUILDINGS)), "SIGN_FIELD": "sign",
             "OBJECT_FIELD": "obj", "OUTPUT": str(out), "OUTPUT_MASK": str(tmp_path / "c.tif")},
            feedback=fb)
    assert fb.isCanceled()
    assert not out.exists() and not (tmp_path / "c.tif").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_network_checkpoint_backend(provider, tmp_path):
    from tiny_model import tiny_checkpoint

    raster, _, _ = scene(str(tmp_path))
    ckpt = tiny_checkpoint(tmp_path)
    res = run({"INPUT": raster, "POINTS": point_layer(clicks_for(BUILDINGS[:2])), "SIGN_FIELD": "sign",
               "OBJECT_FIELD": "obj", "ORDER_FIELD": "ord", "CHECKPOINT": ckpt, "DEVICE": "cpu",
               "OUTPUT": str(tmp_path / "n.gpkg")})
    gdf = gpd.read_file(res["OUTPUT"])
    assert list(gdf["object_id"]) == [1, 2] and set(gdf["model"]) == {"tiny"}


def test_stretch_is_a_parameter_recorded_per_building_and_simplify_is_in_pixels(provider, tmp_path):
    """The same uint16 raster seen through two stretches, and a 1.5-pixel tolerance that means 1.5
    pixels whatever the CRS's unit (EPSG:4326 degrees here, where 1.5 map units would erase the building)."""
    from affine import Affine

    from data_builders import uint16_scene

    raster = uint16_scene(tmp_path / "u16.tif")
    layer = point_layer(clicks_for(BUILDINGS[1:2]))
    outs = {}
    for stretch in ("minmax", "150,1100"):
        res = run({"INPUT": raster, "POINTS": layer, "SIGN_FIELD": "sign", "MODEL": "grabcut",
                   "STRETCH": stretch, "OUTPUT": str(tmp_path / f"{stretch.replace(',', '_')}.gpkg")})
        outs[stretch] = gpd.read_file(res["OUTPUT"])
    assert list(outs["minmax"]["stretch"]) == ["minmax"] and list(outs["150,1100"]["stretch"]) == ["150,1100"]

    img, _ = scene_arrays()
    deg = Affine(1e-5, 0, 10.0, 0, -1e-5, 45.0)
    geo = write_raster(tmp_path / "deg.tif", img, crs="EPSG:4326", transform_=deg)
    x, y = deg * (200 + 25.5, 150 + 35.5)
    pts = point_layer([(x, y, {"sign": 1, "obj": 1, "ord": 1})], crs="EPSG:4326")
    exact = gpd.read_file(run({"INPUT": geo, "POINTS": pts, "SIGN_FIELD": "sign", "MODEL": "grabcut",
                               "OUTPUT": str(tmp_path / "exact.gpkg")})["OUTPUT"]).geometry.iloc[0]
    simple = gpd.read_file(run({"INPUT": geo, "POINTS": pts, "SIGN_FIELD": "sign", "MODEL": "grabcut",
                                "SIMPLIFY": 1.5, "OUTPUT": str(tmp_path / "simple.gpkg")})["OUTPUT"]).geometry.iloc[0]
    assert not simple.is_empty and simple.area == pytest.approx(exact.area, rel=0.1)
    assert exact.hausdorff_distance(simple) <= 1.5 * 1e-5 + 1e-12
