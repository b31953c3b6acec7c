"""Georeferenced rasters and vectors (rasterio, shapely, geopandas; no QGIS).

- ``raster_io``: open a raster, its grid and metadata, read a window as the model's RGB (``read_rgb``),
  stretches, pixel <-> map coordinates;
- ``image_norm``: any array -> the RGB the predictors take;
- ``footprints``: load a footprint layer onto a raster grid, rasterize union and instances;
- ``tiling``: the tile grid and GeoTIFF tiles;
- ``vectorize`` / ``regularize``: masks -> building polygons, squared outlines;
- ``vector_io``: read layers, write GeoPackages atomically; ``output_paths``: check outputs before work;
- ``synthetic_scene``: a georeferenced scene made from scratch (demo, tests).
"""
