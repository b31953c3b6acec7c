"""Per-sample outputs of an evaluation: ``ious.npy`` (samples x clicks, NaN rows = empty samples,
the authors' format) and ``samples.csv`` (sample, empty, n_clicks, NoC@t..., IoU per click)."""

from __future__ import annotations

import csv
import io
import os

import numpy as np

from ritm_qgis.core.atomic import atomic_path, incomplete_path

__all__ = ["IOUS_FILE", "SAMPLES_FILE", "BOUNDARY_FILES", "write_sample_outputs", "samples_csv_text"]

IOUS_FILE = "ious.npy"
SAMPLES_FILE = "samples.csv"
BOUNDARY_FILES = {1: "boundary_f1px.npy", 2: "boundary_f2px.npy"}  # same layout as ious.npy


def samples_csv_text(result, thresholds) -> str:
    from ritm_qgis.engine.protocol.noc import noc_per_sample

    arr = result.iou_array
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["sample", "empty", "n_clicks"] + [f"noc@{t:g}" for t in thresholds]
               + [f"iou_{k + 1}" for k in range(result.max_clicks)])
    for name, row, clicks in zip(result.names, arr, result.clicks):
        empty = bool(np.isnan(row).any())
        nocs = ["" if empty else int(noc_per_sample(row[None], t)[0]) for t in thresholds]
        w.writerow([name, int(empty), len(clicks)] + nocs + ["" if np.isnan(v) else f"{v:.6f}" for v in row])
    return buf.getvalue()


def _write_bytes_like(path: str, write) -> None:
    with atomic_path(path) as tmp:
        write(tmp)


def write_sample_outputs(folder: str, result, thresholds, *, staging=None, incomplete: bool = False) -> dict:
    """Write both files into ``folder``; returns {'ious': path, 'samples': path} as written.

    ``incomplete=True`` writes them as ``ious.incomplete.npy`` / ``samples.incomplete.csv``
    (results so far, marked as such); ``staging`` (an ``OutputSet``) stages them to be moved
    into place with the run's other outputs; otherwise each is written atomically in place.
    """
    os.makedirs(folder, exist_ok=True)
    arrays = {"ious": result.iou_array}
    files = [("ious", IOUS_FILE), ("samples", SAMPLES_FILE)]
    for px, name in BOUNDARY_FILES.items():
        if len(getattr(result, f"bf{px}", [])) == len(result.ious) and result.ious:
            arrays[f"bf{px}"] = result.boundary_array(px)
            files.append((f"bf{px}", name))
    text = samples_csv_text(result, thresholds)
    written = {}
    for key, name in files:
        final = os.path.join(folder, name)
        target = incomplete_path(final) if incomplete else final

        def write(path, key=key):
            if key in arrays:
                with open(path, "wb") as f:
                    np.save(f, arrays[key])
            else:
                with open(path, "w", encoding="utf-8", newline="") as f:
                    f.write(text)

        if staging is not None and not incomplete:
            target = staging.staged(final)
            write(target)
        else:
            _write_bytes_like(target, write)
        written[key] = target
    return written
