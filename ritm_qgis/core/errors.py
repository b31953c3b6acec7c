"""The one exception type the engine raises for problems a user can fix.

Its message is a complete sentence that says what is wrong and what to do; the CLI prints it
without a traceback and the QGIS glue turns it into a QgsProcessingException or a message-bar
entry.
"""


class RitmError(Exception):
    """A problem with the user's input or environment, explained in the message."""


def _causes(exc: BaseException):
    while exc is not None:
        yield exc
        exc = exc.__cause__ or exc.__context__


def file_error_message(exc: BaseException) -> str | None:
    """A sentence for a file that could not be read or written (truncated raster, unwritable path),
    or None when ``exc`` is not such an error (then it is a bug, and stays a traceback)."""
    chain = list(_causes(exc))
    from_gdal = [e for e in chain if type(e).__module__.startswith(("rasterio", "pyogrio", "fiona"))]
    if from_gdal:
        detail = str(from_gdal[-1]).strip().rstrip(".") or type(from_gdal[-1]).__name__
        return (f"A raster or vector file could not be read or written ({detail}); it may be truncated or "
                "corrupt (check it with gdalinfo, or export it again) or its folder may not be writable.")
    if isinstance(exc, OSError):
        what = f"'{exc.filename}'" if getattr(exc, "filename", None) else "a file"
        reason = exc.strerror or str(exc)
        return f"Could not read or write {what} ({reason}); check the path and its permissions."
    return None
