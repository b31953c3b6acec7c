"""Evaluation and training samples.

- ``specs``: typed dataset specs (``MaskFolderSpec``, ``InriaSpec``, ``RasterSpec``, ``PairSpec``);
- ``registry``: ``open_dataset(spec)``, and ``parse_dataset_spec(text)`` for the CLI's ``KIND:PATH``;
  to add a format, write its module and add one line to ``registry._FORMATS``;
- ``datasets``: ``Dataset``/``Sample`` and the mask-folder and INRIA-crop formats;
- ``geo_dataset``: a raster + footprint layer as tiles or per-building windows;
- ``pair_tiles``: one large image + mask cut into tiles; ``inria``: cut INRIA tiles into the paper's crops.
"""
