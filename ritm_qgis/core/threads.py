"""One process-wide thread pool for per-sample NumPy/OpenCV work (both release the GIL).

Used where a batch's samples need independent CPU work between GPU passes (the simulated
user's clicks in evaluation and training): on a GPU machine that work would otherwise run on a
single core while the GPU waits.
"""

from __future__ import annotations

import os
from functools import lru_cache


@lru_cache(maxsize=1)
def _pool():
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=min(16, os.cpu_count() or 1), thread_name_prefix="ritm-cpu")


def map_samples(fn, items, parallel: bool = True) -> list:
    """[fn(x) for x in items], on the pool when there are several items and several cores; order kept."""
    items = list(items)
    if parallel and len(items) > 1 and (os.cpu_count() or 1) > 1:
        return list(_pool().map(fn, items))
    return [fn(x) for x in items]
