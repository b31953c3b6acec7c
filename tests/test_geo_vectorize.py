"""Vectorize, simplify, regularise (ritm_qgis.engine.geo.vectorize / regularize)."""

import math

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from rasterio import features
from rasterio.crs import CRS
from shapely import affinity

from ritm_qgis.core.errors import RitmError
from ritm_qgis.engine.geo.footprints import rasterize_footprints
from ritm_qgis.engine.geo.raster_io import RasterGrid
from ritm_qgis.engine.geo.regularize import regularize_polygon, within_tolerance
from ritm_qgis.engine.geo.vectorize import (
    metric_area_perimeter,
    trace_polygons,
    vectorize_mask,
    vectorize_raster,
)

UTM = CRS.from_epsg(32633)
GRID = RasterGrid(UTM, Affine(0.5, 0, 500000, 0, -0.5, 5000200), 400, 400)


def known_buildings():
    """Rotated rectangles, an L, a courtyard building (with a hole), in map units."""
    x0, y0 = 500000, 5000000
    geoms = []
    for i, ang in enumerate([0, 17, 35, 62]):
        b = shapely.box(0, 0, 24, 14)
        geoms.append(affinity.translate(affinity.rotate(b, ang, origin=(0, 0)), x0 + 20 + 45 * i, y0 + 150))
    ell = shapely.Polygon([(0, 0), (30, 0), (30, 10), (10, 10), (10, 25), (0, 25)])
    geoms.append(affinity.translate(affinity.rotate(ell, 25, origin=(0, 0)), x0 + 40, y0 + 70))
    court = shapely.box(0, 0, 40, 40).difference(shapely.box(12, 12, 28, 28))
    geoms.append(affinity.translate(court, x0 + 120, y0 + 40))
    return gpd.GeoDataFrame({"n": range(len(geoms))}, geometry=geoms, crs=UTM)


def iou(a, b):
    ua, ub = shapely.union_all(a), shapely.union_all(b)
    return ua.intersection(ub).area / ua.union(ub).area


def test_round_trip_iou_and_holes():
    truth = known_buildings()
    mask = rasterize_footprints(truth, GRID).mask
    out = vectorize_mask(mask, GRID, simplify=0.5)
    assert out.crs == UTM
    assert len(out) == len(truth)
    assert iou(out.geometry.values, truth.geometry.values) > 0.95
    assert out.geometry.is_valid.all()
    assert sorted(shapely.get_num_interior_rings(out.geometry.values).tolist()) == [0] * 5 + [1]
    court = out.geometry.values[shapely.get_num_interior_rings(out.geometry.values) == 1][0]
    assert court.interiors[0].envelope.area == pytest.approx(16 * 16, rel=0.1)
    # simplification removes the pixel staircase
    raw = vectorize_mask(mask, GRID)
    assert shapely.get_num_coordinates(out.geometry.values).sum() < 0.5 * shapely.get_num_coordinates(raw.geometry.values).sum()
    # attributes in metres (UTM): area of pixel outline == pixels * 0.25 m^2
    assert np.allclose(raw.area_m2, raw.pixels * 0.25)
    assert np.allclose(raw.perimeter_m, raw.geometry.length)


def test_trace_is_exact_pixel_outline():
    rng = np.random.default_rng(3)
    b = (rng.random((40, 50)) < 0.45).astype(np.uint8)
    g = trace_polygons(b)
    assert shapely.is_valid(g).all()
    assert shapely.area(g).sum() == b.sum()
    back = features.rasterize(g, out_shape=b.shape, transform=Affine.identity())
    assert np.array_equal(back, b)
    # 4-connectivity: pixels touching at a corner are two buildings
    diag = np.array([[1, 0], [0, 1]], dtype=np.uint8)
    assert len(trace_polygons(diag)) == 2


def test_bands_give_the_same_polygons():
    truth = known_buildings()
    mask = rasterize_footprints(truth, GRID).mask
    one = vectorize_mask(mask, GRID)
    banded = vectorize_mask(mask, GRID, band_rows=37)
    assert len(banded) == len(one)
    a = shapely.union_all(one.geometry.values)
    b = shapely.union_all(banded.geometry.values)
    assert a.symmetric_difference(b).area == pytest.approx(0, abs=1e-6)
    assert sorted(banded.pixels) == sorted(one.pixels)


def test_min_area_removes_specks_and_threshold():
    prob = np.zeros((100, 100), dtype="float32")
    prob[10:40, 10:40] = 0.9
    prob[60, 60] = 0.95  # a one-pixel speck
    prob[70:73, 70:73] = 0.8  # 9 px
    prob[80:90, 80:90] = 0.3  # below the threshold
    g = RasterGrid(UTM, Affine(0.5, 0, 0, 0, -0.5, 50), 100, 100)
    out = vectorize_mask(prob, g)  # default threshold 0.49
    assert sorted(out.pixels.tolist()) == [1, 9, 900]
    assert sorted(vectorize_mask(prob, g, min_pixels=5).pixels.tolist()) == [9, 900]
    assert vectorize_mask(prob, g, min_area=3.0).pixels.tolist() == [900]  # 9 px = 2.25 m^2
    assert sorted(vectorize_mask(prob, g, threshold=0.2).pixels.tolist()) == [1, 9, 100, 900]
    inv = np.zeros_like(prob, dtype=bool)
    inv[:, :25] = True
    assert 900 not in vectorize_mask(prob, g, invalid=inv).pixels.tolist()
    with pytest.raises(RitmError, match="does not match"):
        vectorize_mask(prob[:50], g)


def _angles(poly):
    c = np.asarray(poly.exterior.coords)
    d = np.diff(c, axis=0)
    a = np.degrees(np.arctan2(d[:, 1], d[:, 0]))
    turn = np.diff(np.r_[a, a[0]])
    return np.mod(turn, 180)


def test_regularised_l_shape_right_angles_within_tolerance():
    ell = shapely.Polygon([(0, 0), (30, 0), (30, 10), (10, 10), (10, 25), (0, 25)])
    ell = affinity.translate(affinity.rotate(ell, 25, origin=(0, 0)), 500060, 5000080)
    truth = gpd.GeoDataFrame(geometry=[ell], crs=UTM)
    mask = rasterize_footprints(truth, GRID).mask
    tol = 1.0
    raw = vectorize_mask(mask, GRID)
    reg = vectorize_mask(mask, GRID, regularize=tol)
    assert reg.regularized.tolist() == [True]
    poly = reg.geometry.iloc[0]
    assert len(poly.exterior.coords) == 7  # six corners
    assert np.allclose(_angles(poly), 90, atol=1e-6)
    assert within_tolerance(poly, raw.geometry.iloc[0], tol)
    assert shapely.hausdorff_distance(poly, raw.geometry.iloc[0], densify=0.01) <= tol
    assert shapely.hausdorff_distance(poly, ell, densify=0.01) < 0.5
    # orientation recovered (25 degrees, modulo 90)
    c = np.asarray(poly.exterior.coords)
    angle = math.degrees(math.atan2(c[1, 1] - c[0, 1], c[1, 0] - c[0, 0])) % 90
    assert angle == pytest.approx(25, abs=1.5)


def test_regularise_falls_back_beyond_tolerance():
    # a right triangle's hypotenuse cannot be squared within 1 m
    tri = shapely.Polygon([(500050, 5000050), (500090, 5000050), (500050, 5000090)])
    mask = rasterize_footprints(gpd.GeoDataFrame(geometry=[tri], crs=UTM), GRID).mask
    out = vectorize_mask(mask, GRID, simplify=0.3, regularize=1.0)
    assert out.regularized.tolist() == [False]
    assert out.geometry.iloc[0].equals(vectorize_mask(mask, GRID, simplify=0.3).geometry.iloc[0])
    disk = shapely.Point(500100, 5000100).buffer(10)
    assert regularize_polygon(disk, 0.2) is None
    # with a generous tolerance the result is square-cornered and within it
    sq = regularize_polygon(disk, 5.0)
    assert sq is not None and np.allclose(_angles(sq), 90, atol=1e-6)
    assert within_tolerance(sq, disk, 5.0)
    assert not within_tolerance(sq, disk, 0.5)


def test_metric_attributes_geographic_and_feet():
    # a 100 m x 50 m rectangle in UTM 33N, expressed in WGS84 and in US survey feet
    rect = shapely.box(500000, 5000000, 500100, 5000050)
    geo = gpd.GeoSeries([rect], crs=UTM).to_crs(4326).values
    area, perim = metric_area_perimeter(np.asarray(geo, dtype=object), CRS.from_epsg(4326))
    assert area[0] == pytest.approx(5000, rel=1e-3) and perim[0] == pytest.approx(300, rel=1e-3)
    feet = CRS.from_epsg(2263)  # NY Long Island, US survey feet
    sq = shapely.box(0, 0, 100, 100)
    a, p = metric_area_perimeter(np.array([sq], dtype=object), feet)
    assert a[0] == pytest.approx(10000 * 0.3048006096**2, rel=1e-6)
    assert p[0] == pytest.approx(400 * 0.3048006096, rel=1e-6)
    a, p = metric_area_perimeter(np.array([sq], dtype=object), None)
    assert np.isnan(a[0]) and np.isnan(p[0])


def test_vectorize_raster_reads_in_bands(tmp_path):
    truth = known_buildings()
    mask = rasterize_footprints(truth, GRID).mask.astype("uint8") * 255
    mask[:5, :5] = 7  # nodata pixels are background
    path = tmp_path / "mask.tif"
    with rasterio.open(path, "w", driver="GTiff", width=400, height=400, count=1, dtype="uint8",
                       crs=UTM, transform=GRID.transform, nodata=7) as dst:
        dst.write(mask, 1)
    out = vectorize_raster(path, band_rows=64, simplify=0.5)
    assert len(out) == len(truth) and out.crs == UTM
    assert iou(out.geometry.values, truth.geometry.values) > 0.95
    with pytest.raises(RitmError, match="Band 2"):
        vectorize_raster(path, band=2)


def test_regularise_in_geographic_crs_gives_ground_right_angles():
    ell = shapely.Polygon([(0, 0), (30, 0), (30, 10), (10, 10), (10, 25), (0, 25)])
    ell = affinity.translate(affinity.rotate(ell, 25, origin=(0, 0)), 500060, 5000080)
    truth_geo = gpd.GeoSeries([ell], crs=UTM).to_crs(4326)
    geo_grid_t = Affine(6e-6, 0, truth_geo.total_bounds[0] - 6e-5, 0, -4.5e-6,
                        truth_geo.total_bounds[3] + 6e-5)
    grid = RasterGrid(CRS.from_epsg(4326), geo_grid_t, 120, 120)
    mask = rasterize_footprints(gpd.GeoDataFrame(geometry=truth_geo), grid).mask
    tol_deg = 1.5e-5  # about 1.1 m of longitude at 45 N
    out = vectorize_mask(mask, grid, regularize=tol_deg)
    assert out.regularized.tolist() == [True]
    on_ground = gpd.GeoSeries(out.geometry, crs=4326).to_crs(UTM).iloc[0]
    assert np.allclose(_angles(on_ground), 90, atol=0.05)
    raw = vectorize_mask(mask, grid).geometry.iloc[0]
    assert within_tolerance(out.geometry.iloc[0], raw, tol_deg)
