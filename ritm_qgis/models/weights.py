"""The official RITM weights and a small, careful HTTP(S) downloader.

Files go to a cache directory (``$RITM_QGIS_CACHE``, else ``~/.cache/ritm_qgis``) as
``<name>.pth``. A download is written to ``<name>.pth.part`` and renamed into place only once it
is complete and (when a checksum is known) verified; an interrupted download is resumed with an
HTTP ``Range`` request when the server supports it. The ``.part`` file is never a link
(:mod:`.cache_files`); sizes, rates and redirects follow :mod:`.download_policy`.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterable, Optional

from ritm_qgis.core.errors import RitmError
from ritm_qgis.core.progress import Progress

from .cache_files import discard, open_partial
from .download_policy import DownloadLimits, RateGuard, check_url, too_large_message

__all__ = [
    "WeightsEntry",
    "OFFICIAL_WEIGHTS",
    "DownloadResult",
    "cache_dir",
    "cached_path",
    "download",
    "file_sha256",
]

_RELEASE = "https://github.com/saic-vul/ritm_interactive_segmentation/releases/download/v1.0/"


@dataclass(frozen=True)
class WeightsEntry:
    name: str
    url: str
    arch: str  # registry name of the backbone
    training_data: str
    description: str
    size_hint: Optional[str] = None  # as advertised in RITM's README (not exact bytes)
    sha256: Optional[str] = None  # None: not published; the CLI prints the computed hash


def _entry(name, arch, data, description, size_hint):
    return WeightsEntry(name, _RELEASE + name + ".pth", arch, data, description, size_hint)


# The one table of official checkpoints (RITM README, "Interactive segmentation models").
OFFICIAL_WEIGHTS: Dict[str, WeightsEntry] = {
    e.name: e
    for e in (
        _entry("coco_lvis_h18s_itermask", "hrnet18s", "COCO+LVIS", "HRNet18s, iterative training with mask", "16.5 MB"),
        _entry("coco_lvis_h18_itermask", "hrnet18", "COCO+LVIS", "HRNet18, iterative training with mask", "38.8 MB"),
        _entry("coco_lvis_h32_itermask", "hrnet32", "COCO+LVIS", "HRNet32, iterative training with mask", "119 MB"),
        _entry("sbd_h18_itermask", "hrnet18", "SBD", "HRNet18, iterative training with mask", "38.8 MB"),
        _entry("coco_lvis_h18_baseline", "hrnet18", "COCO+LVIS", "HRNet18 baseline without previous-mask input", "38.8 MB"),
    )
}


@dataclass
class DownloadResult:
    path: Path
    sha256: str
    size: int
    resumed_from: int = 0  # bytes already present in a partial file when this call started
    skipped: bool = False  # the final file already existed (and matched the checksum if known)


def cache_dir() -> Path:
    env = os.environ.get("RITM_QGIS_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ritm_qgis"


def cached_path(name: str, directory: Optional[os.PathLike] = None) -> Path:
    return Path(directory if directory is not None else cache_dir()) / f"{name}.pth"


def file_sha256(path: os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _norm_hex(value: Optional[str]) -> Optional[str]:
    if value is None:
        return None
    value = value.strip().lower()
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise RitmError(f"{value!r} is not a SHA-256 checksum (64 hexadecimal digits expected).")
    return value


def _parse_content_range(header: Optional[str]):
    """``'bytes 100-199/200'`` -> (100, 200); total None when '*'; None if unparsable."""
    if not header or not header.startswith("bytes "):
        return None
    try:
        span, total = header[6:].split("/")
        start = int(span.split("-")[0])
        return start, (None if total.strip() == "*" else int(total))
    except ValueError:
        return None


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to a URL the download policy allows (urllib alone follows ftp://)."""

    def __init__(self, configured):
        super().__init__()
        self.configured = configured

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        check_url(newurl, self.configured)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _open(url: str, offset: int, timeout: float, configured):
    request = urllib.request.Request(url, headers={"User-Agent": "ritm-qgis"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    opener = urllib.request.build_opener(_CheckedRedirects(configured))
    return opener.open(request, timeout=timeout)


def download(
    url: str,
    dest: os.PathLike,
    *,
    sha256: Optional[str] = None,
    progress: Optional[Progress] = None,
    timeout: float = 60.0,
    chunk_size: int = 1 << 16,
    verify: Optional[Callable[[Path], None]] = None,
    limits: Optional[DownloadLimits] = None,
    configured: Iterable[str] = (),
) -> DownloadResult:
    """Download ``url`` to ``dest`` (temp ``.part`` file, resume, verify, atomic rename).

    ``progress(done_bytes, total_bytes_or_None)`` is called as data arrives. On a checksum
    mismatch the partial file is deleted and :class:`RitmError` raised; after a network error
    the partial file is kept so that the next call resumes it. ``verify(part_path)``, when
    given, checks the complete file before the rename (it deletes it and raises on a mismatch).
    ``limits`` caps the size and the slowness (:mod:`.download_policy`); ``url`` and the
    ``configured`` URLs (a mirror) are the only origins plain http may reach, redirects included.
    """
    configured = [url, *configured]
    check_url(url, configured)
    limits = limits or DownloadLimits()
    expected = _norm_hex(sha256)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    out, offset = open_partial(part, dest.parent)
    try:
        with out:
            result = _transfer(url, out, offset, part, expected, progress, timeout, chunk_size, limits, configured)
    except BaseException:
        if os.path.isfile(part) and os.path.getsize(part) == 0:  # nothing to resume: no empty leftover
            discard(part)
        raise
    if result is None:  # the server refused our range (416): the partial file is no prefix of it
        discard(part)
        return download(url, dest, sha256=sha256, progress=progress, timeout=timeout, chunk_size=chunk_size,
                        verify=verify, limits=limits, configured=configured[1:])
    digest, done, resumed_from = result
    if expected is not None and digest != expected:
        discard(part)
        raise RitmError(
            f"The file downloaded from {url} is not the expected one (SHA-256 {digest}, "
            f"expected {expected}); it was deleted. Check the URL and checksum, then retry."
        )
    if verify is not None:
        verify(part)
    os.replace(part, dest)
    return DownloadResult(dest, digest, done, resumed_from=resumed_from)


def _transfer(url, out, offset, part, expected, progress, timeout, chunk_size, limits, configured):
    """Stream ``url`` into the open ``out``; ``(sha256, size, resumed_from)``, or None after a 416."""
    hasher = hashlib.sha256()
    # a read blocks at most one rate window: a server sending nothing is as slow as one sending too little
    wait = min(timeout, limits.rate_window_s)
    try:
        response = _open(url, offset, wait, configured)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            return None
        raise RitmError(f"Download of {url} failed: HTTP {exc.code} {exc.reason}.") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise RitmError(
            f"Could not reach {url} ({reason}); check the network connection or pass --url."
        ) from None

    with response:
        status = getattr(response, "status", 200)
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        resumed_from = 0
        if offset and status == 206:
            span = _parse_content_range(response.headers.get("Content-Range"))
            if span is None or span[0] != offset:
                raise RitmError(f"Download of {url} failed: the server answered an unexpected byte range.")
            resumed_from = offset
            out.seek(0)
            for block in iter(lambda: out.read(1 << 20), b""):  # hash what we already have
                hasher.update(block)
        else:  # fresh start (or the server ignored Range): drop any partial content
            out.seek(0)
            out.truncate()
        total = resumed_from + length if length is not None else None
        if total is not None and total > limits.max_bytes:
            discard(part)
            raise RitmError(too_large_message(url, limits.max_bytes))
        done = resumed_from
        guard = RateGuard(limits)
        if progress:
            progress(done, total)
        try:
            while True:
                block = response.read1(chunk_size)  # what has arrived, not a full chunk: a trickle is seen
                if not block:
                    break
                if done + len(block) > limits.max_bytes:
                    discard(part)
                    raise RitmError(too_large_message(url, limits.max_bytes))
                out.write(block)
                hasher.update(block)
                done += len(block)
                guard.add(len(block))
                slow = guard.too_slow()
                if slow:
                    raise RitmError(slow.replace("The download", f"The download from {url}", 1))
                if progress:
                    progress(done, total)
        except TimeoutError:
            raise RitmError(f"The download from {url} was stopped: no data came for {wait:g} s; check the network "
                            "or choose a faster mirror, then run the command again to resume it.") from None
        except (http.client.IncompleteRead, OSError, http.client.HTTPException) as exc:
            raise RitmError(
                f"Download of {url} was interrupted after {done} bytes ({type(exc).__name__}); "
                "run the command again to resume it."
            ) from None
    if total is not None and done != total:
        raise RitmError(
            f"Download of {url} is incomplete: received {done} of {total} bytes; run the "
            "command again to resume it."
        )
    return hasher.hexdigest(), done, resumed_from
