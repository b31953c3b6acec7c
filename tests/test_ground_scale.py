"""Areas and pixel sizes on the ground in a CRS whose unit is not a ground metre (Web Mercator)."""

import math

import geopandas as gpd
import numpy as np
import pytest
import shapely
from affine import Affine
from rasterio.crs import CRS

from ritm_qgis.engine.geo.ground_scale import ground_pixel_size
from ritm_qgis.engine.geo.raster_io import RasterGrid
from ritm_qgis.engine.geo.vectorize import metric_area_perimeter, vectorize_mask

LAT = 50.0  # Web Mercator's scale there is 1 / cos(50 degrees) = 1.56


def ground_rectangle_in(epsg: int, width_m: float = 20.0, height_m: float = 10.0):
    """A 20 m x 10 m rectangle on the ground (built in its UTM zone, 31N) expressed in ``epsg``."""
    x0, y0 = 500000.0, 5538000.0  # about (3 E, 50 N)
    rect = shapely.box(x0, y0, x0 + width_m, y0 + height_m)
    return gpd.GeoSeries([rect], crs=32631).to_crs(epsg).values


def test_area_in_web_mercator_is_the_ground_area_not_the_map_area():
    geoms = np.asarray(ground_rectangle_in(3857), dtype=object)
    planar = shapely.area(geoms)[0]
    assert planar == pytest.approx(200 / math.cos(math.radians(LAT)) ** 2, rel=0.01)  # what the map says
    area, perim = metric_area_perimeter(geoms, CRS.from_epsg(3857))
    assert area[0] == pytest.approx(200.0, rel=2e-3)
    assert perim[0] == pytest.approx(60.0, rel=2e-3)


def test_utm_and_national_grids_keep_their_planar_figures():
    geoms = np.asarray(ground_rectangle_in(32631), dtype=object)
    area, _ = metric_area_perimeter(geoms, CRS.from_epsg(32631))
    assert area[0] == shapely.area(geoms)[0]
    lambert = np.asarray(ground_rectangle_in(2154), dtype=object)  # France, Lambert 93
    area, _ = metric_area_perimeter(lambert, CRS.from_epsg(2154))
    assert area[0] == shapely.area(lambert)[0]


def test_pixel_size_in_web_mercator_is_on_the_ground():
    x, y = gpd.GeoSeries.from_xy([3.0], [LAT], crs=4326).to_crs(3857).iloc[0].coords[0]
    grid = RasterGrid(CRS.from_epsg(3857), Affine(0.3, 0, x, 0, -0.3, y), 1000, 1000)
    assert ground_pixel_size(grid) == pytest.approx(0.3 * math.cos(math.radians(LAT)), rel=2e-3)
    utm = RasterGrid(CRS.from_epsg(32631), Affine(0.3, 0, 500000, 0, -0.3, 5538000), 1000, 1000)
    assert ground_pixel_size(utm) == 0.3


def test_traced_building_in_web_mercator_reports_its_ground_area():
    x, y = gpd.GeoSeries.from_xy([3.0], [LAT], crs=4326).to_crs(3857).iloc[0].coords[0]
    pixel = 0.5 / math.cos(math.radians(LAT))  # 0.5 m on the ground
    grid = RasterGrid(CRS.from_epsg(3857), Affine(pixel, 0, x, 0, -pixel, y), 200, 200)
    mask = np.zeros((200, 200), bool)
    mask[50:90, 60:80] = True  # 40 x 20 px = 20 m x 10 m on the ground
    polys = vectorize_mask(mask, grid)
    assert polys["area_m2"].iloc[0] == pytest.approx(200.0, rel=5e-3)
    assert polys["perimeter_m"].iloc[0] == pytest.approx(60.0, rel=5e-3)
