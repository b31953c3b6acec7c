"""Rasterizing footprint layers onto a raster grid (ritm_qgis.engine.geo.footprints)."""

import glob

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from conftest import shared_path
from ritm_qgis.core.errors import RitmError
from ritm_qgis.engine.geo.footprints import load_footprints, rasterize_footprints
from ritm_qgis.engine.geo.raster_io import RasterGrid, raster_meta
from ritm_qgis.engine.geo.vectorize import vectorize_mask

GRID = RasterGrid(CRS.from_epsg(32633), Affine(1.0, 0, 500000, 0, -1.0, 5000100), 100, 100)


def buildings(crs="EPSG:32633"):
    geoms = [
        shapely.box(500010, 5000070, 500030, 5000090),  # 20 x 20 m
        shapely.box(500050, 5000010, 500060, 5000040),  # 10 x 30 m
        shapely.box(500015, 5000075, 500020, 5000080),  # a small one on top of the first
    ]
    return gpd.GeoDataFrame({"kind": ["a", "b", "c"]}, geometry=geoms, crs=crs)


def test_union_and_instances():
    m = rasterize_footprints(buildings(), GRID)
    assert m.mask.sum() == 400 + 300
    assert set(np.unique(m.instances)) == {0, 1, 2, 3}
    # the smaller building drawn on top keeps its own pixels
    assert (m.instances == 3).sum() == 25
    assert (m.instances == 1).sum() == 400 - 25
    assert (m.instances[10:30, 10:30] > 0).all()  # rows 10..29 = y 5000090..5000071


def test_layer_in_another_crs_is_reprojected(tmp_path):
    gdf = buildings().to_crs("EPSG:4326")
    path = tmp_path / "fp.gpkg"
    gdf.to_file(path, layer="fp")
    m = rasterize_footprints(path, GRID)
    ref = rasterize_footprints(buildings(), GRID)
    # the reprojection round trip moves edges by far less than a pixel
    assert (m.mask != ref.mask).sum() <= 4
    assert m.mask.sum() == pytest.approx(700, abs=4)


def test_invalid_polygons_are_repaired():
    bowtie = shapely.Polygon([(500010, 5000010), (500030, 5000030), (500030, 5000010),
                              (500010, 5000030), (500010, 5000010)])
    assert not bowtie.is_valid
    gdf = gpd.GeoDataFrame({"id": [1]}, geometry=[bowtie], crs="EPSG:32633")
    fp = load_footprints(gdf, GRID)
    assert all(g.is_valid for g in fp.geometries)
    m = rasterize_footprints(fp, GRID)
    # two triangles of 100 m^2 each; centre-inside rule gives about that many pixels
    assert 170 <= m.mask.sum() <= 230


def test_window_matches_the_full_raster():
    fp = load_footprints(buildings(), GRID)
    full = rasterize_footprints(fp, GRID)
    w = Window(40, 50, 30, 40)
    part = rasterize_footprints(fp, GRID, w)
    assert part.mask.shape == (40, 30)
    assert np.array_equal(part.instances, full.instances[50:90, 40:70])
    assert part.mask.any()
    empty = rasterize_footprints(fp, GRID, Window(80, 0, 20, 20))
    assert not empty.mask.any()


def test_refusals(tmp_path):
    with pytest.raises(RitmError, match="no features"):
        rasterize_footprints(buildings().iloc[:0], GRID)
    far = buildings().translate(10000, 0)
    with pytest.raises(RitmError, match="does not overlap"):
        rasterize_footprints(far, GRID)
    no_crs = buildings().set_crs(None, allow_override=True)
    with pytest.raises(RitmError, match="no CRS"):
        rasterize_footprints(no_crs, GRID)
    lines = gpd.GeoDataFrame(geometry=[shapely.LineString([(500000, 5000000), (500050, 5000050)])],
                             crs="EPSG:32633")
    with pytest.raises(RitmError, match="no polygons"):
        rasterize_footprints(lines, GRID)
    with pytest.raises(RitmError, match="Could not read"):
        rasterize_footprints(tmp_path / "missing.gpkg", GRID)


def test_spacenet_masks_round_trip():
    """Vectorize the real SpaceNet masks, rasterize the polygons back: the same pixels."""
    folder = shared_path("aerial", "spacenet_rio", "masks")
    total = 0
    for path in sorted(glob.glob(str(folder / "*.tif")))[:5]:
        meta = raster_meta(path)
        with rasterio.open(path) as ds:
            mask = ds.read(1) > 0
        polys = vectorize_mask(mask, meta.grid)
        total += len(polys)
        if not len(polys):
            continue
        assert polys.crs.to_epsg() == 4326
        # metres on a local UTM zone: ~0.5 m pixels
        assert (polys.area_m2 / polys.pixels).median() == pytest.approx(0.25, rel=0.15)
        back = rasterize_footprints(polys, meta.grid)
        assert np.array_equal(back.mask, mask)
        assert back.instances.max() == len(polys)
    assert total > 50
