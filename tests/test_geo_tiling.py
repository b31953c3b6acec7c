"""Tiling: grid layout, edge policies, names, GeoTIFF output and cancellation."""

import os

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine

from conftest import shared_path
from ritm_qgis.core.errors import RitmError
from ritm_qgis.engine.geo.tiling import tile_grid, write_tiles

T = Affine(0.3, 0, 600000, 0, -0.3, 4500000)


def make_raster(path, width=230, height=170, count=3, nodata=None, dtype="uint8"):
    rng = np.random.default_rng(1)
    data = rng.integers(1, 250, size=(count, height, width)).astype(dtype)
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=count,
                       dtype=dtype, crs="EPSG:32631", transform=T, nodata=nodata) as dst:
        dst.write(data)
    return path, data


def test_grid_edge_policies():
    drop = tile_grid(230, 170, size=100, edge="drop", stem="a")
    assert [(t.row, t.col) for t in drop] == [(0, 0), (0, 1)]
    assert all(t.window.width == 100 and t.col_off + 100 <= 230 for t in drop)
    pad = tile_grid(230, 170, size=100, edge="pad", stem="a")
    assert len(pad) == 2 * 3
    assert pad[-1].name == "a_1_2" and (pad[-1].col_off, pad[-1].row_off) == (200, 100)
    shift = tile_grid(230, 170, size=100, edge="shift", stem="a")
    assert len(shift) == 6
    assert (shift[-1].col_off, shift[-1].row_off) == (130, 70)  # shifted inward, still full size
    assert shift[1].col_off == 100  # interior tiles keep the stride
    ov = tile_grid(230, 170, size=100, overlap=30, edge="drop", stem="a")
    assert sorted({t.col_off for t in ov}) == [0, 70]
    assert sorted({t.row_off for t in ov}) == [0, 70]
    exact = tile_grid(1000, 500, edge="drop", stem="kitsap11")
    assert [t.name for t in exact] == ["kitsap11_0_0", "kitsap11_0_1"]
    with pytest.raises(RitmError, match="edge policy"):
        tile_grid(10, 10, edge="wrap")
    with pytest.raises(RitmError, match="overlap"):
        tile_grid(10, 10, size=5, overlap=5)
    with pytest.raises(RitmError, match="cannot be shifted"):
        tile_grid(50, 50, size=100, edge="shift")
    assert tile_grid(50, 50, size=100, edge="pad")[0].window.width == 100


def test_write_tiles_keeps_crs_transform_and_pixels(tmp_path):
    src, data = make_raster(tmp_path / "scene.tif")
    fractions = []
    res = write_tiles(src, tmp_path / "tiles", size=100, edge="shift",
                      index_path=tmp_path / "tiles" / "index.gpkg", progress=lambda done, total: fractions.append(done / total))
    assert not res.cancelled and len(res.paths) == 6
    assert fractions[-1] == pytest.approx(1.0) and fractions == sorted(fractions)
    names = sorted(p.name for p in res.paths)
    assert names[0] == "scene_0_0.tif" and names[-1] == "scene_1_2.tif"
    for tile, path in zip(res.tiles, res.paths):
        with rasterio.open(path) as ds:
            assert ds.crs.to_epsg() == 32631
            assert ds.transform == T * Affine.translation(tile.col_off, tile.row_off)
            assert ds.shape == (100, 100) and ds.count == 3
            r, c = tile.row_off, tile.col_off
            assert np.array_equal(ds.read(), data[:, r:r + 100, c:c + 100])
    idx = gpd.read_file(res.index_path, layer="tiles")
    assert len(idx) == 6 and set(idx.columns) >= {"name", "row", "col", "path"}
    assert idx.crs.to_epsg() == 32631
    row = idx[idx.name == "scene_1_2"].iloc[0]
    with rasterio.open(row.path) as ds:
        assert idx.geometry[idx.name == "scene_1_2"].iloc[0].bounds == pytest.approx(tuple(ds.bounds))
    assert not [f for f in os.listdir(tmp_path / "tiles") if ".part" in f]


def test_pad_fills_nodata(tmp_path):
    src, data = make_raster(tmp_path / "s.tif", nodata=None, count=1, dtype="uint16")
    res = write_tiles(src, tmp_path / "t", size=100, edge="pad")
    assert len(res.paths) == 6
    with rasterio.open(tmp_path / "t" / "s_1_2.tif") as ds:
        a = ds.read(1)
        assert ds.nodata == 0 and ds.dtypes[0] == "uint16"
        assert np.array_equal(a[:70, :30], data[0, 100:170, 200:230])
        assert (a[70:, :] == 0).all() and (a[:, 30:] == 0).all()
    # drop: only full tiles
    res = write_tiles(src, tmp_path / "d", size=100, edge="drop")
    assert sorted(p.name for p in res.paths) == ["s_0_0.tif", "s_0_1.tif"]


def test_cancel_leaves_no_partial_tile(tmp_path):
    src, _ = make_raster(tmp_path / "s.tif")
    calls = {"n": 0}

    def cancel():
        calls["n"] += 1
        return calls["n"] > 2  # stop before the third tile

    out = tmp_path / "t"
    res = write_tiles(src, out, size=50, edge="drop", cancel=cancel,
                      index_path=out / "index.gpkg")
    assert res.cancelled and len(res.paths) == 2
    files = sorted(os.listdir(out))
    assert files == ["index.gpkg", "s_0_0.tif", "s_0_1.tif"]
    for p in res.paths:
        with rasterio.open(p) as ds:
            assert ds.read().shape == (3, 50, 50)
    assert len(gpd.read_file(out / "index.gpkg")) == 2


def test_failure_mid_tile_removes_the_temp_file(tmp_path):
    src, _ = make_raster(tmp_path / "s.tif")
    out = tmp_path / "t"
    out.mkdir()
    (out / "s_0_1.tif").mkdir()  # the 2nd tile's rename must fail after its data was written
    with pytest.raises(OSError):
        write_tiles(src, out, size=50, edge="drop")
    assert sorted(os.listdir(out)) == ["s_0_0.tif", "s_0_1.tif"]
    assert os.listdir(out / "s_0_1.tif") == []
    with rasterio.open(out / "s_0_0.tif") as ds:
        assert ds.read().shape == (3, 50, 50)


def test_spacenet_chip_tiles(tmp_path):
    img = shared_path("aerial", "spacenet_rio", "images", "3band_013022223130_Public_img50.tif")
    res = write_tiles(img, tmp_path, size=200, edge="pad", stem="img50")
    assert len(res.paths) == 3 * 3
    with rasterio.open(img) as src, rasterio.open(tmp_path / "img50_2_2.tif") as t:
        assert t.crs == src.crs
        assert t.transform == src.transform * Affine.translation(400, 400)
        # 438 x 406 px: the last tile holds 38 x 6 real pixels, the rest is padding
        assert np.array_equal(t.read()[:, :6, :38], src.read(window=((400, 406), (400, 438))))


def test_skip_empty_tiles_of_real_masks(tmp_path):
    empty = shared_path("aerial", "spacenet_rio", "masks", "3band_013022223130_Public_img58.tif")
    res = write_tiles(empty, tmp_path / "e", size=100, edge="pad", skip_empty=True)
    assert res.paths == () and not res.cancelled
    busy = shared_path("aerial", "spacenet_rio", "masks", "3band_013022223130_Public_img50.tif")
    every = write_tiles(busy, tmp_path / "all", size=100, edge="pad")
    some = write_tiles(busy, tmp_path / "some", size=100, edge="pad", skip_empty=True)
    assert 0 < len(some.paths) < len(every.paths) == 5 * 5
    for p in some.paths:
        with rasterio.open(p) as ds:
            assert (ds.read(1) == 255).any()
