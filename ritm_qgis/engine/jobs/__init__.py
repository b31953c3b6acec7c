"""Whole runs on georeferenced data, called by the CLI commands and the Processing algorithms.

- ``geo_evaluation``: NoC evaluation of a raster against a footprint layer, with all its outputs;
- ``geo_annotate`` / ``annotation_outputs``: the paper's demo on a raster, its figures and layers;
- ``click_points``: one building per object from clicks given as map points.
To add a Processing algorithm: its job here (when it is more than a call), one file in
``algorithms/``, one line in ``algorithms/__init__.py``.
"""
