"""A georeferenced aerial-like scene made from scratch, for the demo and for tests.

Roofs of varied shape (rectangles and L-shapes, some rotated), colour and size with cast shadows,
trees, roads and sensor noise on textured ground, 0.5 m pixels in UTM zone 18N; with the exact
building footprints as polygons in map coordinates and as a mask on the raster's grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from affine import Affine

CRS = "EPSG:32618"
PIXEL_SIZE = 0.5
ORIGIN = (583000.0, 4507000.0)  # upper-left corner, map units (metres)


@dataclass
class Scene:
    rgb: np.ndarray  # (H, W, 3) uint8
    mask: np.ndarray  # (H, W) bool, union of buildings
    polygons_px: list  # per building, (N, 2) float array of (col, row) vertices
    crs: str = CRS

    @property
    def transform(self) -> Affine:
        from affine import Affine  # the geo stack only where a georeference is used

        return Affine.translation(*ORIGIN) * Affine.scale(PIXEL_SIZE, -PIXEL_SIZE)


def _building_outline(rng, cx, cy, size):
    w, h = size * rng.uniform(0.7, 1.3), size * rng.uniform(0.6, 1.1)
    if rng.random() < 0.4:  # L-shape
        a, b = w * rng.uniform(0.45, 0.6), h * rng.uniform(0.45, 0.6)
        pts = np.array([[0, 0], [w, 0], [w, b], [a, b], [a, h], [0, h]], float)
    else:
        pts = np.array([[0, 0], [w, 0], [w, h], [0, h]], float)
    pts -= pts.mean(axis=0)
    angle = rng.choice([0.0, rng.uniform(-0.6, 0.6)])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return pts @ rot.T + [cx, cy]


def make_scene(size: int = 512, n_buildings: int = 9, seed: int = 0) -> Scene:
    rng = np.random.default_rng(seed)
    ground = rng.normal(0, 1, (size // 8, size // 8, 3)).astype(np.float32)
    ground = cv2.resize(ground, (size, size), interpolation=cv2.INTER_CUBIC)
    img = np.clip(np.array([105, 115, 90], np.float32) + 12 * ground, 0, 255)
    for _ in range(2):  # roads
        y = int(rng.integers(size // 6, size - size // 6))
        width = int(rng.integers(14, 24))
        if rng.random() < 0.5:
            img[y:y + width, :] = [128, 126, 122]
        else:
            img[:, y:y + width] = [128, 126, 122]
    mask = np.zeros((size, size), np.uint8)
    polys = []
    cells = int(np.ceil(np.sqrt(n_buildings)))
    step = size / cells
    for k in range(n_buildings):
        cy, cx = (k // cells + 0.5) * step, (k % cells + 0.5) * step
        cx += rng.uniform(-0.12, 0.12) * step
        cy += rng.uniform(-0.12, 0.12) * step
        pts = _building_outline(rng, cx, cy, step * rng.uniform(0.35, 0.55))
        shadow = (pts + [size * 0.012, size * 0.012]).round().astype(np.int32)
        cv2.fillPoly(img, [shadow], (45, 45, 50))
        colour = rng.choice([[178, 84, 64], [196, 192, 186], [92, 96, 104], [160, 140, 110]]) + rng.normal(0, 8, 3)
        cv2.fillPoly(img, [pts.round().astype(np.int32)], colour.tolist())
        cv2.fillPoly(mask, [pts.round().astype(np.int32)], 1)
        polys.append(pts)
    for _ in range(int(rng.integers(6, 12))):  # trees, partly over roofs
        c = rng.integers(0, size, 2)
        cv2.circle(img, (int(c[0]), int(c[1])), int(rng.integers(5, 12)), (60, 95, 50), -1)
    img += rng.normal(0, 4, img.shape).astype(np.float32)
    return Scene(np.clip(img, 0, 255).astype(np.uint8), mask.astype(bool), polys)


def write_scene(scene: Scene, raster_path: str, footprints_path: str | None = None, mask_path: str | None = None):
    """The scene as a GeoTIFF, its footprints as a GeoPackage layer 'buildings', its mask as a 0/255 GeoTIFF."""
    import geopandas as gpd
    import rasterio
    from shapely.geometry import Polygon

    h, w = scene.mask.shape
    profile = dict(driver="GTiff", width=w, height=h, crs=scene.crs, transform=scene.transform)
    with rasterio.open(raster_path, "w", count=3, dtype="uint8", **profile) as dst:
        dst.write(np.moveaxis(scene.rgb, -1, 0))
    if mask_path:
        with rasterio.open(mask_path, "w", count=1, dtype="uint8", **profile) as dst:
            dst.write((scene.mask * 255).astype(np.uint8)[None])
    if footprints_path:
        geoms = [Polygon([scene.transform * (float(c), float(r)) for c, r in pts]) for pts in scene.polygons_px]
        gpd.GeoDataFrame({"building": list(range(1, len(geoms) + 1))}, geometry=geoms, crs=scene.crs).to_file(
            footprints_path, layer="buildings", driver="GPKG")
