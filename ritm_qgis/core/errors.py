"""The one exception type the engine raises for problems a user can fix.

Its message is a complete sentence that says what is wrong and what to do; the CLI prints it
without a traceback and the QGIS glue turns it into a QgsProcessingException or a message-bar
entry.
"""

import errno


class RitmError(Exception):
    """A problem with the user's input or environment, explained in the message."""


def _causes(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


# what the OS or GDAL/SQLite said -> what it is, in words a user can act on
_FULL = "the disk is full; free some space or choose another location, then run again"
_READ_ONLY = "the file or its folder is on a read-only disk; choose another location"
_DENIED = "permission denied; choose a location you can write to, or change its permissions"
_LOCKED = ("the file is locked by another program (QGIS editing the layer, for example); close it there or save "
           "its edits, then run again")
_BY_ERRNO = {errno.ENOSPC: _FULL, errno.EROFS: _READ_ONLY, errno.EACCES: _DENIED, errno.EPERM: _DENIED}
_BY_TEXT = (("no space left on device", _FULL), ("disk full", _FULL), ("database or disk is full", _FULL),
            ("read-only file system", _READ_ONLY), ("permission denied", _DENIED),
            ("database is locked", _LOCKED), ("database table is locked", _LOCKED))
# a GDAL message that says a file could not be read (only then may it be truncated or corrupt)
_READ_WORDS = ("read", "truncat", "corrupt", "not recognized", "not a supported", "unexpected end", "malformed")


def _what_it_is(chain) -> str | None:
    for e in chain:
        if isinstance(e, OSError) and e.errno in _BY_ERRNO:
            return _BY_ERRNO[e.errno]
    text = " ".join(str(e) for e in chain).lower()
    for words, meaning in _BY_TEXT:
        if words in text:
            return meaning
    return None


def _where(chain) -> str:
    for e in chain:
        if getattr(e, "filename", None):
            return f"'{e.filename}'"
    return "a file"


def file_error_message(exc: BaseException) -> str | None:
    """A sentence for a file that could not be read or written (truncated raster, full disk, unwritable
    or locked file), or None when ``exc`` is not such an error (then it is a bug, and stays a traceback)."""
    chain = list(_causes(exc))
    from_gdal = [e for e in chain if type(e).__module__.startswith(("rasterio", "pyogrio", "fiona"))]
    from_sqlite = [e for e in chain if type(e).__module__.startswith(("sqlite3", "_sqlite3"))]
    oserrors = [e for e in chain if isinstance(e, OSError)]
    if not (from_gdal or from_sqlite or oserrors):
        return None
    meaning = _what_it_is(chain)
    if from_gdal or from_sqlite:
        source = (from_gdal or from_sqlite)[-1]
        detail = str(source).strip().rstrip(".") or type(source).__name__
        if meaning:
            return f"A raster or vector file could not be written or read ({detail}): {meaning}."
        if any(w in detail.lower() for w in _READ_WORDS):
            return (f"A raster or vector file could not be read ({detail}); it may be truncated or corrupt "
                    "(check it with gdalinfo or ogrinfo, or export it again).")
        return (f"A raster or vector file could not be read or written ({detail}); check the path, the free "
                "disk space and the folder's permissions.")
    error = oserrors[0]
    reason = error.strerror or str(error)
    if meaning:
        return f"Could not read or write {_where(chain)} ({reason}): {meaning}."
    return f"Could not read or write {_where(chain)} ({reason}); check the path and its permissions."
