"""The one progress convention of the engine: ``progress(done, total, message=None)``.

``done`` out of ``total`` units (samples, tiles, clicks, steps, bytes; ``total`` None when unknown),
and optionally a short text saying what is being done. Cancellation is the other half:
a ``cancel()`` callable polled between units (``core.cancel``).
"""

from __future__ import annotations

from typing import Optional, Protocol


class Progress(Protocol):
    def __call__(self, done: float, total: Optional[float], message: Optional[str] = None) -> None: ...
