"""What the dependency installer asks of the network: is PyTorch's index reachable, and pip's own wheel.

Standard library only, like ``deps``: it runs in a QGIS Python that has nothing else yet.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.parse
import urllib.request

PIP_JSON_ENV = "RITM_QGIS_PIP_JSON"
PIP_JSON_URL = "https://pypi.org/pypi/pip/json"  # the registry's description of pip's latest release
MAX_PIP_WHEEL_BYTES = 20_000_000
_reachable: dict[str, str | None] = {}


def unreachable_reason(url: str, timeout: float = 5.0) -> str | None:
    """None when ``url`` answers within ``timeout`` seconds, else why not (asked once per process)."""
    if url not in _reachable:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
                _reachable[url] = None
        except urllib.error.HTTPError as exc:
            # an index answers its root with 403/404 on some mirrors: it is there, pip can use it
            _reachable[url] = None if exc.code < 500 else f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            _reachable[url] = str(getattr(exc, "reason", exc))
    return _reachable[url]


def fetch_pip_wheel(folder: str, timeout: float = 30.0) -> str:
    """Download pip's latest wheel from the registry into ``folder``, checked against the digest the
    registry publishes for it; returns its path. ``OSError``/``ValueError`` with a sentence otherwise."""
    api = os.environ.get(PIP_JSON_ENV) or PIP_JSON_URL
    try:
        with urllib.request.urlopen(api, timeout=timeout) as answer:
            release = json.loads(answer.read(2_000_000))
        wheel = next(f for f in release["urls"]
                     if f.get("packagetype") == "bdist_wheel" and f["filename"].endswith("-py3-none-any.whl"))
        url, digest, name = wheel["url"], wheel["digests"]["sha256"], os.path.basename(wheel["filename"])
    except (urllib.error.URLError, OSError, ValueError, KeyError, StopIteration) as exc:
        raise OSError(f"pip's package could not be found on {api} ({getattr(exc, 'reason', exc)})") from None
    if urllib.parse.urlsplit(url).scheme not in ("https", "http") or "/" in name or not name.startswith("pip-"):
        raise ValueError(f"{api} names an unexpected file for pip ({url})")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    part = path + ".part"
    sha = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer, open(part, "wb") as out:
            size = 0
            while block := answer.read(1 << 16):
                size += len(block)
                if size > MAX_PIP_WHEEL_BYTES:
                    raise ValueError(f"{url} is larger than pip's package can be")
                sha.update(block)
                out.write(block)
        if sha.hexdigest() != digest:
            raise ValueError(f"{url} is not the file the registry published (SHA-256 differs)")
        os.replace(part, path)
    except (urllib.error.URLError, OSError) as exc:
        raise OSError(f"pip's package could not be downloaded from {url} ({getattr(exc, 'reason', exc)})") from None
    finally:
        if os.path.exists(part):
            os.remove(part)
    return path
