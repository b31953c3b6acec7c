"""Loading a model's cached OpenVINO network in the background while the process still starts.

A new ``ritm-qgis predict`` spends 1-2 s importing PyTorch before it loads the model, and the
first pass of an OpenVINO network at a new input size pays about 0.1 s for fresh memory
(``bench/bench_first_pass.py``). ``start`` does, in a thread and without PyTorch, what loading a
model used before does with its cached network (compile it from the build cache, check it
against the logits stored at its build: ``openvino_cpu.load_entry``), then starts one pass at the
size the clicks will have. ``load_entry`` takes the network instead of compiling
(``offer_loaded``), waiting for the compile and check where they are not done, but not for that
pass: it is stopped where it is (the part done has already prepared part of the memory).

It is a guess made before the load decides anything: when the load ends up elsewhere (another
path, another thread count, a network to build, a file that changed) nothing is taken, and the
guess only cost a background thread. A network the check refuses is left to the load, which
says why and builds it again.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from pathlib import Path

import numpy as np

from ritm_qgis.core.threads import omp_threads
from ritm_qgis.engine.runtime import build_cache, checkpoint_index, openvino_cpu, openvino_int8

log = logging.getLogger(__name__)

OPENVINO_MODES = ("auto", "openvino", "openvino-int8")


def checkpoint_file(spec: str) -> Path | None:
    """The file of a checkpoint path or shipped / downloaded name, found without PyTorch and not
    verified (the load verifies a downloaded file before it takes anything)."""
    path = Path(spec)
    if path.is_file():
        return path
    if os.sep in spec or "/" in spec:
        return None
    from ritm_qgis.models.catalog import file_location

    path = file_location(spec)
    return path if path.is_file() else None


def cached_entry(spec: str, optimize: str):
    """(cache entry, accept) that loading ``spec`` with ``optimize`` on the CPU would read, or None
    where it would read none (never loaded here, no cached network, or a network to build)."""
    path = checkpoint_file(spec)
    facts = checkpoint_index.recall_network(path) if path is not None else None
    if facts is None:
        return None
    digest, channels, modules = facts.weights_sha256, facts.channels, facts.modules
    if optimize in ("auto", "openvino-int8"):
        entry = build_cache.lookup(openvino_int8._key(digest, channels, modules))
        if entry is None:
            return None  # the load builds the int8 network
        if openvino_int8._refusal(entry) is None:
            return entry, openvino_int8._agrees
    entry = build_cache.lookup(openvino_cpu.cache_key(digest, channels, modules))
    return (entry, openvino_cpu._exact) if entry is not None else None


def _load(entry, accept, threads: int, warm_shape):
    """(compiled network, its warm-up pass under way or None), or None when it fails its check."""
    compiled, (ok, _) = openvino_cpu.compile_checked(entry, threads, accept)
    if not ok:
        return None
    if warm_shape is None:
        return compiled, None
    batch, height, width = warm_shape
    channels = int(compiled.inputs[0].get_partial_shape()[1].get_length())
    warm = np.zeros((batch, channels, height, width), np.float32)
    click = np.array([[[height / 2, width / 2, 0.0], [-1.0, -1.0, -1.0]]] * batch, np.float32)
    request = compiled.create_infer_request()  # its buffers are the network's: the clicks find them ready
    request.start_async([warm, click])
    return compiled, request


def _stop(request) -> None:
    """Stop a warm-up pass that has not finished: the load does not wait for it (a part done helps)."""
    request.cancel()
    try:
        request.wait()
    except RuntimeError:  # 'cancelled'
        pass


def start(spec: str, optimize: str, threads: int, warm_shape: tuple[int, int, int] | None = None) -> bool:
    """Begin loading ``spec``'s cached OpenVINO network for ``threads`` in the background, with one
    pass at ``warm_shape`` = (batch, height, width) when given (stopped where it is when the load
    takes the network). False when ``optimize`` is not an OpenVINO path or 'auto', or the openvino
    package is missing; otherwise the thread itself finds out whether there is a cached network to
    load (a model used before: its compiled form kept)."""
    if optimize not in OPENVINO_MODES or not openvino_cpu.available():
        return False
    result = {}

    def run():
        try:
            found = cached_entry(str(spec), optimize)
            if found is not None and any((found[0] / "compiled").glob("*")):
                loaded = _load(*found, threads, warm_shape)
                if loaded is not None:
                    result["entry"], result["network"], result["warm_up"] = found[0], *loaded
        except Exception as exc:  # noqa: BLE001 - a guess: the load itself says what is wrong
            log.debug("No background load of %s: %s", spec, exc)

    thread = threading.Thread(target=run, name="ritm-openvino-load")  # not a daemon: an early exit waits for it
    thread.start()

    def stop_warm_up():  # also at exit, when never taken: OpenVINO must not be computing then
        if result.get("warm_up") is not None:
            _stop(result.pop("warm_up"))

    def wait():
        thread.join()
        stop_warm_up()
        return (result["entry"], result["network"]) if "network" in result else None

    openvino_cpu.offer_loaded(threads, wait)
    atexit.register(stop_warm_up)
    return True


def default_threads() -> int:
    """The number of threads PyTorch takes when none is set (``OMP_NUM_THREADS``, else the physical
    cores), found without importing it: a guess, used only where it matches."""
    omp = omp_threads()
    if omp is not None:
        return omp
    cores, ids = set(), {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("physical id", "core id"):
                    ids[key] = value.strip()
                elif not key and ids:
                    cores.add((ids.get("physical id"), ids.get("core id")))
                    ids = {}
        if ids:
            cores.add((ids.get("physical id"), ids.get("core id")))
    except OSError:
        pass
    return len(cores) if cores else max(1, os.cpu_count() or 1)
