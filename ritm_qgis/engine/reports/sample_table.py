"""Per-sample results of an evaluation as files: the IoU array and a CSV table."""

from __future__ import annotations

import csv
import io
import os

import numpy as np

from ritm_qgis.core.atomic import atomic_path, write_text_atomically
from ritm_qgis.engine.protocol.noc import noc_per_sample


def write_sample_outputs(folder: str, result, thresholds):
    """ious.npy (samples x clicks, NaN rows = empty samples) and samples.csv, each written atomically."""
    os.makedirs(folder, exist_ok=True)
    arr = result.iou_array
    with atomic_path(os.path.join(folder, "ious.npy")) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, arr)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["sample", "empty", "n_clicks"] + [f"noc@{t:g}" for t in thresholds]
               + [f"iou_{k + 1}" for k in range(result.max_clicks)])
    for name, row, clicks in zip(result.names, arr, result.clicks):
        empty = bool(np.isnan(row).any())
        nocs = ["" if empty else int(noc_per_sample(row[None], t)[0]) for t in thresholds]
        w.writerow([name, int(empty), len(clicks)] + nocs + ["" if np.isnan(v) else f"{v:.6f}" for v in row])
    write_text_atomically(os.path.join(folder, "samples.csv"), buf.getvalue())
