"""What a file is before PyTorch reads it, and what its tensors claim before anything copies them.

``torch.save`` writes a zip archive (``*/data.pkl`` and one ``*/data/N`` per storage), or, before
PyTorch 1.6, a pickle stream that starts with a fixed magic number. Anything else is not a
checkpoint: a bare pickle is scanned opcode by opcode (``pickletools``, nothing executed) to tell
a pickle that names Python callables (code, refused for safety) from a cut-off file (a truncated
download) and from bytes that are no pickle at all.

After the restricted load, every tensor is a view of storages read from the file; a view may
declare far more elements than its storage holds (stride 0), and the first copy of it would
allocate that much. :func:`check_tensor_sizes` refuses such files before any copy.
"""

from __future__ import annotations

import pickletools
import re
import zipfile
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

from ritm_qgis.core.errors import RitmError

__all__ = ["check_file_kind", "check_tensor_sizes", "unsafe_message", "PLAUSIBLE_FACTOR"]

_ZIP_MAGIC = b"PK\x03\x04"
# pickle protocol 2, LONG1 of 10 bytes: torch's legacy magic number 0x1950a86a20f9469cfc6c
_LEGACY_MAGIC = b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
_SCAN_LIMIT = 64 << 20  # bytes of a bare pickle looked at
PLAUSIBLE_FACTOR = 2  # tensors may share storages (tied weights), not many times over
_PLAUSIBLE_MARGIN = 1 << 20
_IDENTIFIER = re.compile(r"^[A-Za-z_][\w.]*$")


def unsafe_message(name: str, what: Optional[str] = None) -> str:
    named = f" ({what})" if what else ""
    return (f"Refusing to load {name}: it holds code or Python objects{named} that are not plain weights, so it "
            "was refused for safety; use a checkpoint from a trusted source.")


def _truncated(name: str) -> str:
    return (f"{name} is not a readable PyTorch checkpoint: it ends early, as a truncated download does; "
            "download or copy it again.")


def _not_a_checkpoint(name: str, why: str) -> str:
    return f"{name} is not a readable PyTorch checkpoint: {why}; check that it is the .pth file you meant."


def check_file_kind(path: Path) -> None:
    """Raise unless ``path`` is laid out as a file ``torch.save`` writes (zip archive or legacy stream)."""
    name = path.name
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(len(_LEGACY_MAGIC))
        if head.startswith(_ZIP_MAGIC):
            _check_zip(path, name, size)
            return
        if head == _LEGACY_MAGIC:
            return
        fh.seek(0)
        data = fh.read(_SCAN_LIMIT)
    if not data:
        raise RitmError(_not_a_checkpoint(name, "it is empty"))
    globals_named, outcome = _scan_pickle(data)
    if globals_named:
        raise RitmError(unsafe_message(name, ", ".join(dict.fromkeys(globals_named[:3]))))
    if outcome == "truncated" and len(data) == size:  # a longer file was only looked at in part
        raise RitmError(_truncated(name))
    if outcome == "complete":
        raise RitmError(_not_a_checkpoint(name, "it is a plain Python pickle, not a PyTorch file of tensors"))
    raise RitmError(_not_a_checkpoint(name, "it is neither a zip archive nor a pickle of tensors"))


def _check_zip(path: Path, name: str, size: int) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise RitmError(_truncated(name)) from None
    if not any(i.filename.endswith("data.pkl") for i in infos):
        raise RitmError(_not_a_checkpoint(name, "it is a zip archive without PyTorch's data.pkl"))
    declared = sum(i.file_size for i in infos)
    if declared > PLAUSIBLE_FACTOR * size + _PLAUSIBLE_MARGIN:
        raise RitmError(_size_bomb(name, declared, size))


def _scan_pickle(data: bytes) -> Tuple[List[str], str]:
    """``(callables named, "complete" | "truncated" | "garbage")`` of a pickle, read without running it."""
    named: List[str] = []
    strings: List[str] = []  # the string constants most recently pushed, for STACK_GLOBAL
    memo = {}
    try:
        for opcode, arg, _ in pickletools.genops(data):
            op = opcode.name
            if op in ("GLOBAL", "INST"):
                named.append(str(arg).replace(" ", "."))
            elif op == "STACK_GLOBAL":
                named.append(".".join(strings[-2:]) if len(strings) >= 2 else "a callable")
            elif isinstance(arg, str) and "UNICODE" in op or op in ("STRING", "BINSTRING", "SHORT_BINSTRING"):
                strings.append(str(arg))
            elif op == "MEMOIZE" and strings:
                memo[len(memo)] = strings[-1]
            elif op in ("BINPUT", "LONG_BINPUT", "PUT") and strings:
                memo[arg] = strings[-1]
            elif op in ("BINGET", "LONG_BINGET", "GET") and arg in memo:
                strings.append(memo[arg])
            if op == "STOP":
                return _plausible(named), "complete"
    except ValueError as exc:  # genops: unknown opcode, or the data ended before STOP
        return _plausible(named), "garbage" if "unknown" in str(exc) else "truncated"
    return _plausible(named), "truncated"


def _plausible(named: List[str]) -> List[str]:
    """Names that could be Python callables (random bytes rarely read as ``module.name``)."""
    return [n for n in named if _IDENTIFIER.match(n) and "." in n]


def _size_bomb(name: str, declared: int, size: int) -> str:
    return (f"{name} declares {declared / 1e6:.1f} MB of tensor data but the file holds {size / 1e6:.1f} MB; it is "
            "damaged or crafted and was refused before reading it.")


def _tensors(obj, limit: int = 1_000_000) -> Iterator:
    import torch

    stack, seen = [obj], 0
    while stack and seen < limit:
        item = stack.pop()
        seen += 1
        if isinstance(item, torch.Tensor):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)


def check_tensor_sizes(data, path: Path) -> None:
    """Refuse tensors that claim more bytes than their storage holds, or more than the file plausibly holds."""
    size = path.stat().st_size
    bound = PLAUSIBLE_FACTOR * size + _PLAUSIBLE_MARGIN
    total, beyond_storage, storages = 0, False, {}
    for t in _tensors(data):  # numel() is arithmetic on the declared shape: nothing is allocated
        nbytes = t.numel() * t.element_size()
        total += nbytes
        storage = t.untyped_storage()
        beyond_storage = beyond_storage or nbytes > storage.nbytes()
        storages[storage.data_ptr()] = storage.nbytes()
    # a legacy (pre-zip) file declares each storage's size itself; the zip layout's come from the archive
    total = max(total, sum(storages.values()))
    if beyond_storage or total > bound:
        raise RitmError(_size_bomb(path.name, total, size))
