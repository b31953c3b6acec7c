"""What loading a checkpoint file taught (its weights' digest, architecture, input channels, the
modules of its network), remembered by the file's real path, size and modification time in the
build cache (``<build cache>/checkpoints/``), so that a model whose speed-up path is cached can be
ready without reading its weights (``NetworkBackend.from_checkpoint``: reading and building the
PyTorch network is about half of a cached model's load). A file that changed (another size or
time) is not recognised and is read again; an unreadable record is ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import NamedTuple

from ritm_qgis.core.atomic import write_text_atomically
from ritm_qgis.engine.runtime import build_cache

FOLDER = "checkpoints"


def _stamp(path) -> dict | None:
    try:
        real = os.path.realpath(path)
        st = os.stat(real)
    except OSError:
        return None
    return {"path": real, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _record_path(real: str) -> Path:
    return build_cache.root() / FOLDER / f"{hashlib.sha256(real.encode()).hexdigest()[:24]}.json"


def remember(path, **facts) -> None:
    """Keep ``facts`` (plain JSON values) about the checkpoint file ``path`` as it is now."""
    stamp = _stamp(path)
    if stamp is None:
        return
    record = _record_path(stamp["path"])
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(str(record), json.dumps({"file": stamp, "facts": facts}, sort_keys=True))
    except OSError:  # a read-only cache: the file is read in full next time too
        pass


def recall(path) -> dict | None:
    """The facts remembered about ``path`` when the file is still the one they were taken from."""
    stamp = _stamp(path)
    if stamp is None:
        return None
    try:
        with open(_record_path(stamp["path"]), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("file") != stamp or not isinstance(data.get("facts"), dict):
        return None
    return data["facts"]


class NetworkFacts(NamedTuple):
    """What ``NetworkBackend.from_checkpoint`` remembers of a checkpoint's network."""

    weights_sha256: str
    arch: str | None
    with_prev_mask: bool
    modules: list

    @property
    def channels(self) -> int:
        return 4 if self.with_prev_mask else 3


def recall_network(path) -> NetworkFacts | None:
    """The network facts remembered about ``path``, or None when they are not all there."""
    facts = recall(path)
    try:
        return NetworkFacts(facts["weights_sha256"], facts.get("arch"), bool(facts["with_prev_mask"]),
                            [str(m) for m in facts["modules"]])
    except (TypeError, KeyError):
        return None
