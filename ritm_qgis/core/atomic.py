"""Write files so that readers see either the old file or the complete new one, never half.

A file being written carries ``.incomplete`` before its extension (``ious.incomplete.npy``,
``seg.incomplete.gpkg``): visible, so a run killed by SIGKILL leaves a leftover that says what it
is, and the next write of the same file removes it. ``OutputSet`` stages several files of one run
under another name (``ious.staged.incomplete.npy``, so a staged final never shares its name with
the results-so-far a long run keeps under ``.incomplete``) and moves them into place together at
the end, so the outputs of a run are one consistent set: all new, or (after a failure or a
cancel) all as they were. While a run stages a file, or holds its output folder
(``OutputSet.lock``), a second run that wants it is refused: the lock is an ``flock`` on a small
hidden file, so the system releases it when a killed run's process dies.
"""

from __future__ import annotations

import contextlib
import json
import os

from ritm_qgis.core.errors import RitmError

# SQLite companions of a GeoPackage that is being written
_SIDECARS = ("-journal", "-wal", "-shm")
# the files a locked run folder's last run wrote, so that the next run removes the ones it did not write again
MANIFEST = ".ritm-outputs.json"
FOLDER_LOCK = ".ritm-lock"


def incomplete_path(path: str) -> str:
    """Where ``path`` is written before it is complete: 'dir/name.incomplete.ext'."""
    path = os.path.abspath(os.fspath(path))
    stem, ext = os.path.splitext(path)
    return f"{stem}.incomplete{ext}"


def staging_path(path: str) -> str:
    """Where ``OutputSet`` stages ``path``: 'dir/name.staged.incomplete.ext' (never a partial file's name)."""
    path = os.path.abspath(os.fspath(path))
    stem, ext = os.path.splitext(path)
    return f"{stem}.staged.incomplete{ext}"


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


class RunLock:
    """An exclusive lock on ``path`` (a small file) held by this process until ``release``.

    ``flock`` is released by the system when the process dies, so a killed run never blocks the
    next one; the file is removed on release, and an acquirer that finds its file was removed in the
    meantime tries again on the new one.
    """

    def __init__(self, path: str, busy_message: str):
        self.path = path
        self._fd = None
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                _lock_fd(fd)
            except BlockingIOError:
                os.close(fd)
                raise RitmError(busy_message) from None
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(path))
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                return
            os.close(fd)  # the holder removed it as we opened it: lock the new one

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path)
        os.close(self._fd)
        self._fd = None


def _lock_fd(fd: int) -> None:
    """Lock ``fd`` exclusively without waiting; BlockingIOError when another process holds it."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            raise BlockingIOError from None
        return
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def lock_folder(folder: str, what: str = "output folder") -> RunLock:
    """Hold ``folder`` (created if needed) for this run; a second holder gets a RitmError naming ``what``."""
    folder = os.path.abspath(os.fspath(folder))
    os.makedirs(folder, exist_ok=True)
    return RunLock(os.path.join(folder, FOLDER_LOCK),
                   f"The {what} '{folder}' is being written by another ritm_qgis run; wait for it to finish "
                   "or choose another folder.")


def _lock_file(final: str) -> RunLock:
    folder, name = os.path.split(final)
    return RunLock(os.path.join(folder, f".{name}.ritm-lock"),
                   f"'{final}' is being written by another ritm_qgis run; wait for it to finish or choose "
                   "another file name.")


class OutputSet:
    """The files of one run, staged under their staging names and moved into place together.

    ``staged(final)`` returns where to write ``final`` now (and holds ``final`` against other runs);
    ``commit()`` renames every staged file into place (after all of them were written: a staged file
    that is missing is an error and nothing is moved); ``discard()`` removes them. Used as a context
    manager it commits when the block succeeds and discards otherwise, so the previous outputs
    stay as they were after an error or a cancel.

    ``lock(folder)`` holds a run's output folder from the start of the run (before its first
    write) and keeps a manifest there of the files the run wrote: the commit removes the files of
    the previous run's manifest that this run did not write again (stale figures), never others.
    """

    def __init__(self):
        self._pending: dict[str, str] = {}
        self._locks: list[RunLock] = []
        self._folders: list[str] = []
        self._manifests: list[str] = []

    def lock(self, folder: str, what: str = "output folder", manifest: bool = True) -> None:
        """Hold ``folder`` for this run; ``manifest=False`` for a folder whose listing is the user's
        (tiles), where no manifest is kept and nothing stale is removed."""
        folder = os.path.abspath(os.fspath(folder))
        if folder not in self._folders:
            self._locks.append(lock_folder(folder, what))
            self._folders.append(folder)
            if manifest:
                self._manifests.append(folder)

    def _in_locked_folder(self, final: str) -> bool:
        return any(os.path.commonpath([folder, final]) == folder for folder in self._folders)

    def staged(self, final: str) -> str:
        final = os.path.abspath(os.fspath(final))
        if final not in self._pending:
            os.makedirs(os.path.dirname(final), exist_ok=True)
            if not self._in_locked_folder(final):
                self._locks.append(_lock_file(final))
            tmp = staging_path(final)
            remove_file(tmp)
            self._pending[final] = tmp
        return self._pending[final]

    def commit(self) -> None:
        missing = [final for final, tmp in self._pending.items() if not os.path.exists(tmp)]
        if missing:
            self.discard()
            raise RitmError(f"The staged copy of '{missing[0]}' vanished before the run's outputs were moved into "
                            "place, so none of them was replaced; run again.")
        try:
            for final, tmp in self._pending.items():
                os.replace(tmp, final)
                for suffix in _SIDECARS:
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(tmp + suffix)
                remove_file(incomplete_path(final))  # a killed earlier run's leftover of this very file
            for folder in self._manifests:
                self._update_manifest(folder)
        except BaseException:
            for tmp in self._pending.values():  # the ones not moved yet
                remove_file(tmp)
            raise
        finally:
            self._pending.clear()
            self._release()

    def _update_manifest(self, folder: str) -> None:
        written = sorted(os.path.relpath(f, folder) for f in self._pending if os.path.commonpath([folder, f]) == folder)
        manifest = os.path.join(folder, MANIFEST)
        try:
            listed_at = os.stat(manifest).st_mtime
        except OSError:
            listed_at = 0.0
        for rel in set(_read_manifest(manifest)) - set(written):
            path = os.path.normpath(os.path.join(folder, rel))
            if os.path.commonpath([folder, path]) != folder or not os.path.isfile(path) or os.path.islink(path):
                continue  # a manifest names only files under its folder
            if os.stat(path).st_mtime > listed_at + 1:
                continue  # changed since that run wrote it: the user's now
            os.remove(path)
            if os.path.dirname(path) != folder:
                with contextlib.suppress(OSError):  # a subfolder left empty (a model no longer evaluated)
                    os.removedirs(os.path.dirname(path))
        write_text_atomically(manifest, json.dumps({"written_by": "ritm_qgis", "files": written}, indent=1))

    def discard(self) -> None:
        for tmp in self._pending.values():
            remove_file(tmp)
        self._pending.clear()
        self._release()

    def _release(self) -> None:
        for lock in reversed(self._locks):
            lock.release()
        self._locks.clear()
        self._folders.clear()
        self._manifests.clear()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.commit()
        else:
            self.discard()
        return False


def _read_manifest(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return []
    files = data.get("files") if isinstance(data, dict) and data.get("written_by") == "ritm_qgis" else None
    return [f for f in files if isinstance(f, str)] if isinstance(files, list) else []
