"""Write files so that readers see either the old file or the complete new one, never half.

A file being written carries ``.incomplete`` before its extension (``ious.incomplete.npy``,
``seg.incomplete.gpkg``): visible, so a run killed by SIGKILL leaves a leftover that says what it
is, and the next write of the same file removes it. ``OutputSet`` stages several files of one run
that way and moves them into place together at the end, so the outputs of a run are one
consistent set: all new, or (after a failure or a cancel) all as they were.
"""

from __future__ import annotations

import contextlib
import os

# SQLite companions of a GeoPackage that is being written
_SIDECARS = ("-journal", "-wal", "-shm")


def incomplete_path(path: str) -> str:
    """Where ``path`` is written before it is complete: 'dir/name.incomplete.ext'."""
    path = os.path.abspath(os.fspath(path))
    stem, ext = os.path.splitext(path)
    return f"{stem}.incomplete{ext}"


def remove_file(path: str) -> None:
    """Remove ``path`` and its SQLite companions, if present."""
    for suffix in ("",) + _SIDECARS:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path + suffix)


def fresh_incomplete_path(path: str) -> str:
    """``incomplete_path(path)``, with the leftover of an earlier killed run removed."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = incomplete_path(path)
    remove_file(tmp)
    return tmp


@contextlib.contextmanager
def atomic_path(path: str, suffix: str | None = None):
    """Yield a temporary path beside ``path``; rename it into place only if the block succeeds.

    ``suffix`` (e.g. '.png') replaces the extension of the temporary name, for writers that
    choose the format from it.
    """
    tmp = fresh_incomplete_path(path)
    if suffix is not None:
        tmp = os.path.splitext(tmp)[0] + suffix
        remove_file(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        remove_file(tmp)


@contextlib.contextmanager
def output_path(path: str, staging: "OutputSet | None" = None):
    """Where to write ``path`` now: staged in ``staging`` (moved into place with the run's other
    outputs by its ``commit``), or on its own with ``atomic_path``. Removed if the block fails."""
    if staging is None:
        with atomic_path(path) as tmp:
            yield tmp
        return
    tmp = staging.staged(path)
    try:
        yield tmp
    except BaseException:
        remove_file(tmp)
        raise


def write_text_atomically(path: str, text: str):
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
    return path


class OutputSet:
    """The files of one run, staged under their incomplete names and moved into place together.

    ``staged(final)`` returns where to write ``final`` now; ``commit()`` renames every staged file
    into place (after all of them were written); ``discard()`` removes them. Used as a context
    manager it commits when the block succeeds and discards otherwise, so the previous outputs
    stay as they were after an error or a cancel.
    """

    def __init__(self):
        self._pending: dict[str, str] = {}

    def staged(self, final: str) -> str:
        final = os.path.abspath(os.fspath(final))
        if final not in self._pending:
            self._pending[final] = fresh_incomplete_path(final)
        return self._pending[final]

    def commit(self) -> None:
        for final, tmp in self._pending.items():
            if os.path.exists(tmp):
                os.replace(tmp, final)
            for suffix in _SIDECARS:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(tmp + suffix)
        self._pending.clear()

    def discard(self) -> None:
        for tmp in self._pending.values():
            remove_file(tmp)
        self._pending.clear()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.commit()
        else:
            self.discard()
        return False
