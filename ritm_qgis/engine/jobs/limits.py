"""The bounds of the numbers a user gives, one table for the CLI flags and the Processing parameters.

Each bound keeps a run within memory and time a desktop has: a click budget of a billion, a
20000-pixel zoom-in crop or a 100000-pixel tile would fail with a memory error hours later.
"""

from __future__ import annotations

import math

from ritm_qgis.core.errors import RitmError

MAX_CLICKS = 100  # click budget per sample (the paper's is 20)
MAX_BATCH_SIZE = 256  # samples through the network together
MAX_EVAL_TILE = 4000  # evaluation tile / annotation window side, pixels
MAX_ZOOM_IN = 2000  # zoom-in network input side, pixels
MAX_RASTER_TILE = 10000  # tile_raster's tile side, pixels
MAX_SCENE_SIZE = 8192  # make-scene's side, pixels
MAX_BUILDINGS = 1000
MAX_THREADS = 1024
MAX_CROP = 5000  # prepare-inria's crop side (an INRIA tile is 5000 px)


def check_int(value, name: str, lo: int, hi: int | None = None) -> int:
    """``value`` when it is a whole number in [lo, hi], else a RitmError naming ``name`` (a CLI flag or a
    Processing parameter)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise RitmError(f"{name} must be a whole number, not {value}.")
    if value < lo:
        raise RitmError(f"{name} must be at least {lo}, not {value}.")
    if hi is not None and value > hi:
        raise RitmError(f"{name} must be at most {hi}, not {value}.")
    return int(value)


def check_fraction(value: float, name: str, lo_open: bool = True) -> float:
    """``value`` in (0, 1] (or [0, 1] with ``lo_open=False``), finite; else a RitmError naming ``name``."""
    ok = math.isfinite(value) and (0 < value <= 1 if lo_open else 0 <= value <= 1)
    if not ok:
        span = "(0, 1]" if lo_open else "between 0 and 1"
        raise RitmError(f"{name} must lie {'in ' if lo_open else ''}{span}, not {value}.")
    return float(value)
