"""Writing into the weights cache without following anything planted there.

A ``NAME.pth.part`` (or a note, or its temporary) that is a symbolic link, a hard link to another
file or not a regular file is never opened for writing: a fresh file is created with ``O_EXCL`` and
``O_NOFOLLOW`` (a link in its place makes the open fail instead of writing through it), and a
partial file is resumed only when it is a regular file with one link, in the cache folder itself.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import BinaryIO, Tuple

from ritm_qgis.core.errors import RitmError

__all__ = ["open_fresh", "open_partial", "write_note", "discard"]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # absent on Windows, where links need privileges to plant
_BINARY = getattr(os, "O_BINARY", 0)


def _in_folder(path: Path, folder: Path) -> Path:
    path = Path(path)
    if path.name in ("", ".", "..") or Path(os.path.abspath(path.parent)) != Path(os.path.abspath(folder)):
        raise RitmError(f"{path} is not a file of the weights cache {folder}; choose a plain model name.")
    return path


def discard(path: Path) -> None:
    """Remove ``path`` itself (a link is removed, never its target); a folder in its way is an error."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        raise RitmError(f"{path} is a folder where the cache keeps a file; remove it and retry.")
    os.unlink(path)


def open_fresh(path: Path, folder: Path) -> BinaryIO:
    """A new, empty regular file at ``path`` in ``folder``, whatever was there before."""
    path = _in_folder(path, folder)
    discard(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _BINARY, 0o644)
    except FileExistsError:  # something was planted between the removal and the open
        raise RitmError(f"{path} appeared while the cache was writing it; another program is writing into the "
                        "cache, retry once it is done.") from None
    return os.fdopen(fd, "wb")


def open_partial(path: Path, folder: Path) -> Tuple[BinaryIO, int]:
    """``(file open for reading and appending, its size)`` for a partial download to resume, or
    ``(fresh file, 0)`` when there is none or it cannot be trusted (a link, or not a plain file)."""
    path = _in_folder(path, folder)
    try:
        fd = os.open(path, os.O_RDWR | _NOFOLLOW | _BINARY)
    except (FileNotFoundError, OSError):  # absent, or a symbolic link (ELOOP): start afresh
        return open_fresh(path, folder), 0
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or os.path.islink(path):
        os.close(fd)
        return open_fresh(path, folder), 0
    fh = os.fdopen(fd, "r+b")
    fh.seek(0, os.SEEK_END)
    return fh, st.st_size


def write_note(path: Path, text: str) -> None:
    """Replace the small file ``path`` (a checksum note) by ``text``, through a fresh temporary."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open_fresh(tmp, path.parent) as fh:
            fh.write(text.encode())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            discard(tmp)
