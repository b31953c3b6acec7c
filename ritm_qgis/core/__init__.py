"""The ground floor: what the models and the engine both stand on. Imports nothing of the project.

- ``errors.RitmError``: the one exception for problems a user can fix (its text is a sentence);
- ``atomic.atomic_path`` / ``write_text_atomically``: files appear whole or not at all;
- ``threads.map_samples``: the process-wide pool for per-sample NumPy/OpenCV work;
- ``defaults.MASK_THRESHOLD``: the paper's probability threshold;
- ``geos_compat.load_geo_stack_isolated``: keeps the pip geo stack off QGIS's GDAL/PROJ/GEOS.
"""
