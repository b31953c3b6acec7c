"""The engine: everything the plugin, the Processing algorithms and the CLI do, without QGIS.

Rooms (each package's ``__init__`` names its public API; import from the modules themselves):

- ``geo``: rasters, footprint layers, tiling, vectorizing and writing GeoPackages;
- ``data``: dataset formats behind typed specs, and the one registry that opens them;
- ``interactive``: click encoding, RITM's zoom-in, the predictor session and its backends;
- ``protocol``: the paper's simulated user, metrics, NoC and the evaluation loop;
- ``reports``: tables, HTML, figures and per-sample files drawn from results;
- ``runtime``: where and how the networks run (device, oneDNN fusion, CUDA graphs);
- ``training``: RITM's iterative training (sampler, losses, loop, DDP);
- ``jobs``: whole runs on georeferenced data that the commands and algorithms call.

Layers inside: jobs -> (reports, training) -> protocol -> interactive -> (data, geo, runtime);
``lint-imports`` (contracts in pyproject.toml) keeps imports going down and free of cycles.
"""
