"""The simulated user clicking as in the map tool, scored on the outline the tool draws.

``DrawnSession`` looks like a ``Predictor`` to the evaluation loop (``set_sample``, ``add_click``,
``mask``) but does what the map tool does with each click: a ``RasterSession`` on the raster
(the window rule of ``context_window``, the interactive zoom-in and settings of the predictor
factory it is given), then ``RasterSession.outline`` (threshold, simplification, squaring,
minimum area, as the dock sets them), and the polygons rasterised back on the sample's grid
(pixel centres inside). The simulated user's next click is placed on the error of that drawn
mask, as a person would click on what they see.

Where the sample comes from: a sample of a ``raster:`` dataset carries its raster and window
(``meta["raster"]``, ``meta["window"]``), so the session reads around the click with all the
context the tool would have. Any other sample (a PNG window of a building) is the whole raster:
its image becomes an in-memory GeoTIFF of ``pixel_m`` metres per pixel (the minimum area of the
outline is in square metres) and the window rule is clipped to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ritm_qgis.core.errors import RitmError
from ritm_qgis.engine.interactive.raster_session import OutlineSettings, RasterSession

__all__ = ["DrawnSession", "DrawnPrediction", "rasterize_outline", "drawn_session_factory", "DEFAULT_PIXEL_M"]

DEFAULT_PIXEL_M = 0.5  # metres per pixel assumed for samples without a georeference (SpaceNet, most orthophotos)


@dataclass
class DrawnPrediction:
    mask: np.ndarray  # (h, w) bool on the sample's grid: the drawn outline
    prob: np.ndarray  # same, as float32 (the clicker and the figures read either)


def rasterize_outline(gdf, grid) -> np.ndarray:
    """Polygons (GeoDataFrame in the grid's CRS) -> bool mask of the grid (pixel centres inside)."""
    from rasterio.features import rasterize

    if gdf is None or not len(gdf):
        return np.zeros(grid.shape, bool)
    shapes = [(g, 1) for g in gdf.geometry if g is not None and not g.is_empty]
    if not shapes:
        return np.zeros(grid.shape, bool)
    return rasterize(shapes, out_shape=grid.shape, transform=grid.transform, fill=0, dtype="uint8").astype(bool)


def _memory_raster(image: np.ndarray, pixel_m: float):
    """An in-memory north-up GeoTIFF (EPSG:3857, ``pixel_m`` m pixels) of an RGB uint8 image:
    a rasterio ``MemoryFile`` whose ``name`` opens like a path until it is closed."""
    from affine import Affine
    from rasterio.io import MemoryFile

    rgb = np.asarray(image)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    h, w = rgb.shape[:2]
    memfile = MemoryFile(ext=".tif")
    profile = dict(driver="GTiff", width=w, height=h, count=3, dtype="uint8", crs="EPSG:3857",
                   transform=Affine(pixel_m, 0, 0, 0, -pixel_m, h * pixel_m))
    with memfile.open(**profile) as ds:
        ds.write(np.ascontiguousarray(rgb[:, :, :3].transpose(2, 0, 1)).astype(np.uint8))
    return memfile


@dataclass
class DrawnSession:
    """One building clicked as in the map tool (see module doc); one per sample."""

    predictor_factory: object
    outline: OutlineSettings = field(default_factory=OutlineSettings)
    min_size: int | None = None  # the window rule's minimum side (None: the tool's default)
    stretch: object = None
    pixel_m: float = DEFAULT_PIXEL_M
    batched = False  # each click is a map-tool click, never batched with other samples
    session: RasterSession | None = None
    grid: object = None
    _memory: object = None  # the MemoryFile of a sample without a raster
    _mask: np.ndarray | None = None
    refused: int = 0  # clicks the tool refused (spread too wide): the outline stays as it was

    def set_sample(self, sample) -> None:
        meta = sample.meta or {}
        kwargs = {} if self.min_size is None else {"min_size": int(self.min_size)}
        if meta.get("raster") and meta.get("grid") is not None:
            path, self.grid = meta["raster"], meta["grid"]
            self.session = RasterSession(path, self.predictor_factory, stretch=self.stretch, **kwargs)
        else:
            self.close()
            self._memory = _memory_raster(sample.image, self.pixel_m)
            self.session = RasterSession(self._memory.name, self.predictor_factory, **kwargs)
            self.grid = self.session.grid
        self._mask = np.zeros(sample.gt.shape, bool)

    def set_image(self, image) -> None:
        from ritm_qgis.engine.data.datasets import Sample

        self.set_sample(Sample("image", image, np.zeros(np.asarray(image).shape[:2], bool)))

    @property
    def mask(self) -> np.ndarray:
        return self._mask

    @property
    def prob(self) -> np.ndarray:
        return self._mask.astype(np.float32)

    def add_click(self, row: int, col: int, positive: bool = True) -> DrawnPrediction:
        x, y = self.grid.transform * (col + 0.5, row + 0.5)
        try:
            self.session.add_click(x, y, positive)
        except RitmError:
            self.refused += 1
        else:
            self._mask = rasterize_outline(self.session.outline(self.outline), self.grid)
        return DrawnPrediction(self._mask, self.prob)

    def close(self) -> None:
        if self._memory is not None:
            self._memory.close()
            self._memory = None


def drawn_session_factory(backend, outline: OutlineSettings | None = None, *, min_size: int | None = None,
                          stretch=None, pixel_m: float = DEFAULT_PIXEL_M):
    """``make_session`` for ``evaluate``: fresh ``DrawnSession``s with the map tool's predictor and outline."""
    from ritm_qgis.engine.interactive.interactive_settings import TOOL_OUTLINE, interactive_predictor

    outline = TOOL_OUTLINE if outline is None else outline

    def make():
        return DrawnSession(lambda: interactive_predictor(backend), outline, min_size=min_size,
                            stretch=stretch, pixel_m=pixel_m)

    return make
