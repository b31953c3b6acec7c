"""The one set of rules every weights download follows (the CLI's urllib downloader and the dock's
QGIS task alike): which URLs a transfer may go to, how many bytes it may bring, and how slow it may be.

* Schemes: every hop is ``https``; ``http`` only to the origin the user configured (the mirror,
  ``--url``, or the entry's own URL when that is http), so a redirect cannot lead to ``ftp://``,
  ``file://`` or an http host nobody chose.
* Size: a download stops once it exceeds the size the catalogue knows plus a margin, or
  :data:`UNKNOWN_SIZE_CAP` when nothing is known.
* Rate: after a window of :attr:`DownloadLimits.rate_window_s` seconds, fewer than
  :attr:`DownloadLimits.min_rate` bytes per second over the last window stops it.
"""

from __future__ import annotations

import re
import time
import urllib.parse
from dataclasses import dataclass
from typing import Iterable, Optional

from ritm_qgis.core.errors import RitmError

__all__ = [
    "DownloadLimits",
    "RateGuard",
    "UNKNOWN_SIZE_CAP",
    "approximate_size",
    "check_url",
    "size_cap",
]

UNKNOWN_SIZE_CAP = 2 << 30  # 2 GiB: far above any RITM checkpoint (HRNet32: 119 MB)
SIZE_MARGIN = 1 << 20  # over an exact size: a proxy's rounding is no reason to fail, a stream is
APPROXIMATE_FACTOR = 1.5  # over an advertised "about 41 MB"


@dataclass(frozen=True)
class DownloadLimits:
    """The thresholds of one download; tests pass small ones."""

    max_bytes: int = UNKNOWN_SIZE_CAP
    min_rate: float = 1024.0  # bytes per second, averaged over the window
    rate_window_s: float = 60.0


def approximate_size(text: Optional[str]) -> Optional[int]:
    """Bytes of an advertised size such as ``"about 41 MB"`` or ``"16.5 MB"``; None if unreadable."""
    m = re.search(r"([0-9]+(?:\.[0-9]+)?)\s*([kKMG])B", text or "")
    if not m:
        return None
    return int(float(m.group(1)) * {"k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9}[m.group(2)])


def size_cap(exact: Optional[int] = None, advertised: Optional[str] = None) -> int:
    """The most bytes a download of a file of this size may bring."""
    if exact is not None:
        return exact + SIZE_MARGIN
    approx = approximate_size(advertised)
    if approx is not None:
        return int(approx * APPROXIMATE_FACTOR) + SIZE_MARGIN
    return UNKNOWN_SIZE_CAP


def _origin(url: str):
    parts = urllib.parse.urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def check_url(url: str, configured: Iterable[Optional[str]] = ()) -> None:
    """Raise unless ``url`` may be fetched: https, or http on the origin of a ``configured`` URL."""
    try:
        scheme, host, _ = _origin(url)
    except ValueError:
        scheme, host = "", ""
    if scheme == "https" and host:
        return
    if scheme == "http" and host and _origin(url) in {_origin(c) for c in configured if c}:
        return
    raise RitmError(f"Refusing to download from {url}: only https:// addresses (and http:// to the mirror or "
                    "URL you configured) are allowed, also after a redirect.")


def too_large_message(url: str, limit: int) -> str:
    return (f"The download from {url} was stopped after {limit} bytes, more than the file can be; the server "
            "is not sending the expected file (check the URL or mirror).")


class RateGuard:
    """Notices a transfer slower than ``limits.min_rate`` over the last ``limits.rate_window_s``."""

    def __init__(self, limits: DownloadLimits, clock=time.monotonic):
        self.limits = limits
        self.clock = clock
        self.start = clock()
        self.marks = [(self.start, 0)]  # (time, total bytes) at most one window back
        self.total = 0

    def add(self, n: int) -> None:
        self.total += n
        self.marks.append((self.clock(), self.total))

    def too_slow(self) -> Optional[str]:
        """The sentence to stop with, or None while the rate is acceptable."""
        now = self.clock()
        window = self.limits.rate_window_s
        if now - self.start < window:
            return None
        while len(self.marks) > 1 and self.marks[1][0] <= now - window:
            self.marks.pop(0)
        got = self.total - self.marks[0][1]
        if got >= self.limits.min_rate * window:
            return None
        return (f"The download was stopped: it brought {got} bytes in the last {window:g} s, less than "
                f"{self.limits.min_rate:g} bytes per second; check the network or choose a faster mirror.")
