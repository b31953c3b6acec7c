"""Small georeferenced rasters and layers generated inside the tests (no downloads).

``scene`` draws bright rectangular "roofs" on a textured dark ground, so GrabCut (and any sensible
model) can separate them; the same rectangles are returned as footprints in the raster's CRS.
"""

from __future__ import annotations

import glob
import os

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from affine import Affine

UTM = "EPSG:32633"
ORIGIN = (500000.0, 5000600.0)
PIXEL = 0.5  # metres

# (row0, col0, height, width) in pixels
BUILDINGS = [(40, 50, 60, 80), (150, 200, 70, 50), (300, 80, 50, 90), (420, 330, 80, 60), (520, 560, 40, 40)]


def transform(pixel=PIXEL, origin=ORIGIN) -> Affine:
    return Affine(pixel, 0, origin[0], 0, -pixel, origin[1])


def scene_arrays(height=600, width=640, buildings=BUILDINGS, seed=0):
    rng = np.random.default_rng(seed)
    img = np.empty((3, height, width), np.uint8)
    img[:] = (rng.integers(30, 70, (height, width)))[None]
    img[1] += 20  # greenish ground
    mask = np.zeros((height, width), bool)
    buildings = [b for b in buildings if b[0] + b[2] <= height and b[1] + b[3] <= width]
    for k, (r, c, h, w) in enumerate(buildings):
        colour = np.array([200, 190 - 20 * (k % 3), 170], np.uint8)
        img[:, r:r + h, c:c + w] = colour[:, None, None] + rng.integers(0, 15, (3, h, w)).astype(np.uint8)
        mask[r:r + h, c:c + w] = True
    return img, mask


def write_raster(path, data, *, crs=UTM, transform_=None, nodata=None, colorinterp=None, dtype=None) -> str:
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    profile = dict(driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                   dtype=dtype or data.dtype.name, transform=transform_ if transform_ is not None else transform())
    if crs is not None:
        profile["crs"] = crs
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data.astype(profile["dtype"]))
        if colorinterp is not None:
            dst.colorinterp = colorinterp
    return str(path)


def footprints(buildings=BUILDINGS, tr=None, crs=UTM) -> gpd.GeoDataFrame:
    """The buildings' pixel rectangles as map polygons (exact pixel edges)."""
    tr = tr or transform()
    geoms = []
    for r, c, h, w in buildings:
        x0, y0 = tr * (c, r)
        x1, y1 = tr * (c + w, r + h)
        geoms.append(shapely.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
    return gpd.GeoDataFrame({"bid": list(range(1, len(geoms) + 1))}, geometry=geoms, crs=crs)


def scene(folder, name="scene", **kw):
    """(raster path, footprint GeoPackage path, gt mask) of a generated UTM scene."""
    img, mask = scene_arrays(**kw)
    raster = write_raster(os.path.join(folder, f"{name}.tif"), img)
    fp = footprints(kw.get("buildings", BUILDINGS))
    gpkg = os.path.join(folder, f"{name}_footprints.gpkg")
    fp.to_file(gpkg, layer="footprints")
    return raster, gpkg, mask


def spacenet_chips(root):
    """[(image, mask)] of the SpaceNet Rio chips in ``root`` (images/*.tif, masks/*.tif)."""
    images = sorted(glob.glob(os.path.join(root, "images", "*.tif")))
    return [(p, os.path.join(root, "masks", os.path.basename(p))) for p in images]


def spacenet_reference(mask_path, out_gpkg) -> str:
    """A reference footprint layer built from a chip's 0/255 mask with the engine's vectorize_mask."""
    from ritm_qgis.engine.geo.raster_io import raster_meta
    from ritm_qgis.engine.geo.vectorize import vectorize_mask

    with rasterio.open(mask_path) as ds:
        m = ds.read(1)
    grid = raster_meta(mask_path).grid
    gdf = vectorize_mask(m > 128, grid)
    gdf.to_file(out_gpkg, layer="footprints")
    return str(out_gpkg)


# ---------------------------------------------------------------------------------------------
# QGIS side (imported lazily: the helpers above work without PyQGIS)

import pytest  # noqa: E402


@pytest.fixture(scope="module")
def provider(qgis_app, qgis_processing):
    """The ritm_qgis provider registered once per module (a reference is kept, as QGIS needs)."""
    from qgis.core import QgsApplication

    from ritm_qgis.provider import RitmProvider

    registry = QgsApplication.processingRegistry()
    existing = registry.providerById("ritm_qgis")
    if existing is not None:
        yield existing
        return
    p = RitmProvider()
    assert registry.addProvider(p)
    yield p
    registry.removeProvider(p)


def cancelling_feedback(at_progress: float):
    """A QgsProcessingFeedback that cancels itself once progress reaches ``at_progress`` (0-100)."""
    from qgis.core import QgsProcessingFeedback

    fb = QgsProcessingFeedback()
    seen = []

    def on_progress(p):
        seen.append(p)
        if p >= at_progress and p < 100:
            fb.cancel()

    fb.progressChanged.connect(on_progress)
    fb.seen = seen
    return fb


def point_layer(points, crs=UTM, fields=(("sign", "int"), ("obj", "int"), ("ord", "int"))):
    """A memory point layer from [(x, y, {field: value})]."""
    from qgis.core import QgsFeature, QgsField, QgsGeometry, QgsPointXY, QgsVectorLayer
    from qgis.PyQt.QtCore import QVariant

    types = {"int": QVariant.Int, "bool": QVariant.Bool, "str": QVariant.String, "double": QVariant.Double}
    layer = QgsVectorLayer(f"Point?crs={crs}", "clicks", "memory")
    pr = layer.dataProvider()
    pr.addAttributes([QgsField(n, types[t]) for n, t in fields])
    layer.updateFields()
    feats = []
    for x, y, attrs in points:
        f = QgsFeature(layer.fields())
        f.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(x, y)))
        for k, v in attrs.items():
            f[k] = v
        feats.append(f)
    assert pr.addFeatures(feats)[0]
    layer.updateExtents()
    return layer


def uint16_scene(path, height=300, width=320, seed=1) -> str:
    """A 1-band uint16 city scene with nodata 0 (a border strip), mostly dark with a few very bright
    pixels, as a real 16-bit orthophoto: its min/max (59..5982) and 2-98 % stretches differ a lot."""
    rng = np.random.default_rng(seed)
    band = rng.integers(150, 400, (height, width)).astype(np.uint16)
    for r, c, h, w in BUILDINGS:
        if r + h <= height and c + w <= width:
            band[r:r + h, c:c + w] = rng.integers(800, 1100, (h, w))
    band[5, 50], band[6, 300] = 59, 5982  # the extremes Min/Max sees
    band[:, :12] = 0  # nodata strip
    return write_raster(path, band, nodata=0)
