"""Clicks in, masks out: the interactive predictor and what feeds it.

- ``click_encoding``: ``Click`` (row, col, sign) and the networks' ``points`` input;
- ``zoom_in``: RITM's zoom-in around the object; ``transforms``: zoom-in, longest-side limit and
  flip as objects with forward and inverse, composed by the predictor;
- ``predictor``: ``Predictor`` (one image, many clicks, undo) over a ``Backend``; ``predict_batch``;
- ``backends``: ``build_backend(spec)`` (a model name, a checkpoint or GrabCut); ``grabcut_backend``;
- ``interactive_settings``: RITM's demo settings for a person clicking (400x400 focus crop from
  the first click, longest side 800) and a backend warmed up at load; ``calibration``: inputs
  for int8 quantization;
- ``context_window`` / ``raster_session``: the window of a raster the map tool's model sees, and
  clicking building after building on a raster: the one road from clicks in map coordinates to a
  building (map tool, ``segment_from_points``, ``ritm-qgis segment``); ``outline_record``: the
  building as every interface saves it (``OutlineRecord``, its one field set and writer).
To add a model backend: a class with ``predict`` in its own module, and one line in ``backends``.
"""
