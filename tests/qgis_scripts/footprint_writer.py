"""The map tool's writer in a process of its own: commits one building at a time to ``footprints``.

Usage: footprint_writer.py GPKG STOP_FILE. Opens (creates) the ``footprints`` layer of GPKG with
``gui/output.open_output_layer`` and commits buildings through ``append_footprints`` (QGIS's OGR
provider, editing in place) until STOP_FILE exists. Prints ``ready`` after the first commit, then
``ok N`` for each commit QGIS reported saved and ``fail N: message`` for each it did not.
"""

import os
import sys
import time

from qgis.core import QgsApplication, QgsCoordinateReferenceSystem

app = QgsApplication([], False)
app.initQgis()

from ritm_qgis.core.errors import RitmError  # noqa: E402
import shapely  # noqa: E402

from ritm_qgis.engine.interactive.outline_record import OutlineRecord  # noqa: E402
from ritm_qgis.gui.output import append_records, open_output_layer  # noqa: E402

path, stop = sys.argv[1], sys.argv[2]
crs = QgsCoordinateReferenceSystem("EPSG:32633")
layer = open_output_layer(path, crs, add_to_project=False)
n = 0
while not os.path.exists(stop) or n == 0:
    n += 1
    x = 500000 + 3 * n
    box = OutlineRecord(shapely.box(x, 5000000, x + 2, 5000002), area_m2=4.0, perimeter_m=8.0, pixels=16,
                        clicks=((x + 1, 5000001, True),), model="grabcut", stretch="", source="")
    try:
        append_records(layer, [box], crs, label=f"b{n}")
        print(f"ok {n}", flush=True)
    except RitmError as exc:
        print(f"fail {n}: {exc}", flush=True)
    if n == 1:
        print("ready", flush=True)
    time.sleep(0.005)
del layer
app.exitQgis()
