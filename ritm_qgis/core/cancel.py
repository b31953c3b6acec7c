"""The one cancellation convention: long work polls a ``cancel()`` callable and raises ``Cancelled``.

Interfaces map it to their own words (the CLI: "interrupted", Processing: a sentence saying that
nothing was written); outputs are written only after the work, so a cancelled run leaves the
previous outputs as they were.
"""

from __future__ import annotations

from typing import Callable


class Cancelled(Exception):
    """The caller's cancel check returned True; the work stopped and wrote nothing more."""


def check_cancel(cancel: Callable[[], bool] | None) -> None:
    """Raise ``Cancelled`` when ``cancel()`` says so (None: never)."""
    if cancel is not None and cancel():
        raise Cancelled()
