"""Georeferenced rasters and vectors (rasterio, shapely, geopandas; no QGIS).

- ``raster_io``: open a raster, its grid and metadata, read a window as the model's RGB (``read_rgb``),
  pixel <-> map coordinates; ``read_image``: the one reader of image files;
- ``band_stretch``: the stretch's numbers and arithmetic (one percentile rule, nodata left out);
  ``stretch``: the user's choice of stretch resolved on a raster, an image file or an array;
- ``image_norm``: any array -> the RGB the predictors take;
- ``footprints``: load a footprint layer onto a raster grid, rasterize union and instances;
- ``tiling``: the tile grid and GeoTIFF tiles;
- ``vectorize`` / ``regularize``: masks -> building polygons, squared outlines;
- ``vector_io``: read layers, write GeoPackages atomically; ``output_paths``: check outputs before work;
- ``synthetic_scene``: a georeferenced scene made from scratch (demo, tests).
"""
