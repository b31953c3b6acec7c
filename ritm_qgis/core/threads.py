"""One process-wide thread pool for per-sample NumPy/OpenCV work (both release the GIL).

Used where a batch's samples need independent CPU work between GPU passes (the simulated
user's clicks in evaluation and training): on a GPU machine that work would otherwise run on a
single core while the GPU waits. It has as many threads as the process may use: the cores,
limited by ``$OMP_NUM_THREADS`` and by PyTorch's thread count when PyTorch is loaded (``--threads``
and ``OMP_NUM_THREADS=1`` mean one thread here too).
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache


def omp_threads() -> int | None:
    """The thread count ``$OMP_NUM_THREADS`` sets (its first level), or None when it sets none."""
    try:
        omp = int(os.environ.get("OMP_NUM_THREADS", "").split(",")[0])
    except ValueError:
        return None
    return omp if omp > 0 else None


def worker_count() -> int:
    n = min(16, os.cpu_count() or 1)
    omp = omp_threads()
    if omp is not None:
        n = min(n, omp)
    torch = sys.modules.get("torch")  # not imported here: core stays light
    if torch is not None:
        try:
            n = min(n, int(torch.get_num_threads()))
        except Exception:  # noqa: BLE001 - a half-imported torch: the other limits stand
            pass
    return max(1, n)


@lru_cache(maxsize=4)
def _pool(workers: int):
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ritm-cpu")


def map_samples(fn, items, parallel: bool = True) -> list:
    """[fn(x) for x in items], on the pool when there are several items and several threads allowed; order kept."""
    items = list(items)
    workers = worker_count() if parallel and len(items) > 1 else 1
    if workers > 1:
        return list(_pool(workers).map(fn, items))
    return [fn(x) for x in items]
