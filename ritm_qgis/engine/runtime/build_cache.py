"""On-disk cache of what a speed-up path builds from a network (a converted model, ...).

An entry is a folder under ``<model cache>/built/`` (``models.weights.cache_dir()``, beside the
downloaded weights; ``$RITM_QGIS_BUILD_CACHE`` instead when set) named after the path and keyed
by everything its content depends on: the weights' digest, the runtime and its version, and the
CPU as the runtime sees it (model name, instruction-set flags, a oneDNN ISA ceiling). An entry
appears whole or not at all: it is written in a ``*.incomplete.*`` folder that is renamed into
place with its ``key.json`` last written; a folder without a readable, matching ``key.json`` is
not an entry. A reader that finds an entry it cannot use calls ``discard`` and builds again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
import uuid
from functools import lru_cache
from pathlib import Path

KEY_FILE = "key.json"
_ISA_ENVS = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
_STALE_S = 3600  # an unfinished folder older than this was left by a run that died


ROOT_ENV = "RITM_QGIS_BUILD_CACHE"  # another place for the entries (the tests use a folder of their own)


def root() -> Path:
    if os.environ.get(ROOT_ENV):
        return Path(os.environ[ROOT_ENV]).expanduser()
    from ritm_qgis.models.weights import cache_dir

    return cache_dir() / "built"


@lru_cache(maxsize=1)
def _cpu_text() -> str:
    """The CPU's model name and flags (Linux), else what the platform module says."""
    import platform

    name, flags = platform.processor() or platform.machine(), ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and name == (platform.processor() or platform.machine()):
                    name = value.strip()
                elif key == "flags" and not flags:
                    flags = " ".join(sorted(value.split()))
                if flags and name:
                    break
    except OSError:
        pass
    return f"{name}|{flags}"


def cpu_key() -> dict:
    """What a compiled network depends on about the processor."""
    key = {"cpu": hashlib.sha256(_cpu_text().encode()).hexdigest()[:16],
           "cpu_name": _cpu_text().split("|", 1)[0]}
    for var in _ISA_ENVS:
        if os.environ.get(var):
            key[var] = os.environ[var].strip().upper()
    return key


def entry_key(path: str, weights_digest: str, runtime: str, **extra) -> dict:
    return {"path": path, "weights_sha256": weights_digest, "runtime": runtime, **cpu_key(),
            **{k: str(v) for k, v in sorted(extra.items())}}


def entry_dir(key: dict, base: Path | None = None) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in key["path"])
    return Path(base if base is not None else root()) / f"{safe}-{key['weights_sha256'][:12]}-{digest}"


def lookup(key: dict, base: Path | None = None) -> Path | None:
    """The entry's folder when it is complete and its key matches, else None (a damaged one is removed)."""
    entry = entry_dir(key, base)
    if not entry.is_dir():
        return None
    try:
        with open(entry / KEY_FILE, encoding="utf-8") as f:
            if json.load(f) == key:
                return entry
    except (OSError, ValueError):
        pass
    discard(entry)
    return None


def discard(entry: Path) -> None:
    """Remove an entry that cannot be used (renamed away first, so no reader sees half of it)."""
    gone = entry.with_name(f"{entry.name}.incomplete.{uuid.uuid4().hex[:8]}")
    try:
        os.replace(entry, gone)
    except OSError:
        return
    shutil.rmtree(gone, ignore_errors=True)


@contextlib.contextmanager
def writing(key: dict, base: Path | None = None):
    """Yields an empty folder to write the entry's files into; on success it becomes the entry
    (when another process stored the same entry meanwhile, that one is kept). Returns nothing
    useful on failure: the folder is removed and the exception propagates."""
    entry = entry_dir(key, base)
    entry.parent.mkdir(parents=True, exist_ok=True)
    for old in entry.parent.glob(f"{entry.name}.incomplete.*"):  # left by a run that was killed
        with contextlib.suppress(OSError):
            if time.time() - old.stat().st_mtime > _STALE_S:
                shutil.rmtree(old, ignore_errors=True)
    tmp = entry.with_name(f"{entry.name}.incomplete.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        yield tmp
        with open(tmp / KEY_FILE, "w", encoding="utf-8") as f:
            json.dump(key, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        lookup(key, base)  # removes a damaged entry in the way
        try:
            os.replace(tmp, entry)
        except OSError:  # another process put a complete entry there first
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
