"""Read a per-sample IoU array for a report, refusing files that hold something else."""

from __future__ import annotations

import numpy as np

from ritm_qgis.core.errors import RitmError


def read_iou_array(path: str) -> np.ndarray:
    """The .npy array at ``path`` (samples x clicks), refused in a sentence when it is not made of real
    numbers (strings, objects, complex numbers); shape and range are checked by the report itself."""
    from ritm_qgis.engine.protocol.noc import load_iou_array

    arr = load_iou_array(path)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
            or arr.dtype == np.bool_):
        raise RitmError(f"'{path}' holds {arr.dtype} values, not IoUs; give a .npy array of numbers between 0 and 1 "
                        "(samples x clicks) written by 'evaluate' or by RITM.")
    return arr.astype(np.float64)
