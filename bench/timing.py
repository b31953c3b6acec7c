"""Timing shared by the benchmarks (run as `python bench/NAME.py`, so this folder is on sys.path)."""

import time


def best_of_interleaved(fns: dict, repeat: int):
    """Best time of each function over ``repeat`` rounds, the functions taking turns in a round (so
    that a busy spell on the machine hits all of them alike); returns (best times, last outputs)."""
    best = {k: float("inf") for k in fns}
    outs = {}
    for _ in range(repeat):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            outs[k] = fn()
            best[k] = min(best[k], time.perf_counter() - t0)
    return best, outs
