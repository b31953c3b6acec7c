"""The one list of models: shipped, the paper's, RITM's official ones, and the user's own files.

The CLI (``model-info --list``, ``download-weights``), the map tool's dock and every Processing
algorithm read this module; nothing else keeps a list of model names.

Each entry says where its file comes from and which digest was *published* for it:

* the project's shipped models live in ``models/weights/NAME.pth``; an entry whose builder loads no
  weights (``builders.Builder.weights`` False: GrabCut) has no file;
* the paper's three models are files in the authors' fork of RITM; the only digest published for
  them is the git blob SHA-1 of the file (``git-blob-sha1:<hex>``: SHA-1 of ``b"blob <size>\\0"``
  followed by the bytes), which is what ``git ls-tree`` shows;
* RITM's official models are release assets; no digest is published for them;
* any other ``NAME.pth`` in the cache was downloaded (``--url``) or imported (``--from``) by the user.

A file that passed its published digest gets a ``NAME.pth.sha256`` note beside it in the cache
(``sha256 size``). Every load of a cached file checks it: against the published digest when there
is one (a ``--sha256`` can never replace it), else against the note, which must then be there and
well-formed (a missing or garbled note is refused with the command that re-verifies the file).
Downloads go to ``$RITM_QGIS_WEIGHTS_MIRROR/NAME.pth`` instead of the entry's URL when that
variable (or the dock's mirror setting, passed as ``mirror=``) names a base URL.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ritm_qgis.core.errors import RitmError
from ritm_qgis.core.progress import Progress

from .builders import NETWORK, Builder
from .adapted import entry_fields as adapted_entry_fields
from .cache_files import discard, open_fresh, write_note
from .download_policy import DownloadLimits, size_cap
from .weights import OFFICIAL_WEIGHTS, DownloadResult, cache_dir, cached_path, download, file_sha256

__all__ = [
    "ModelEntry",
    "ModelStatus",
    "MIRROR_ENV",
    "PAPER_RAW_BASE",
    "add_entry",
    "remove_entry",
    "entries",
    "entry",
    "model_statuses",
    "model_choices",
    "default_model",
    "resolve_file",
    "download_model",
    "download_weights",
    "import_model",
    "download_url",
    "git_blob_sha1",
    "file_digest",
    "file_digests",
    "check_digest",
    "record_verified",
    "check_recorded",
    "BEST_SHIPPED",
]

MIRROR_ENV = "RITM_QGIS_WEIGHTS_MIRROR"
PAPER_REPO = "tanguy-magne/ritm_interactive_segmentation"
# GitHub's raw download form for a file of a branch (it redirects to raw.githubusercontent.com)
PAPER_RAW_BASE = f"https://github.com/{PAPER_REPO}/raw/master/"
SHIPPED_DIR = Path(__file__).resolve().parent / "weights"
_GRABCUT = "ritm_qgis.engine.interactive.grabcut_backend:GrabCutBackend.build"
_DIGEST_KINDS = ("git-blob-sha1", "sha256")


@dataclass(frozen=True)
class ModelEntry:
    name: str
    arch: str  # registry name of the network (models/registry.py), or the weight-free method's name
    training_data: str
    good_for: str  # one line: what it is good for
    source: str  # shipped | paper | ritm | user
    url: Optional[str] = None  # canonical download URL (downloadable entries)
    digest: Optional[str] = None  # the published digest, "git-blob-sha1:<hex>" or "sha256:<hex>"
    size: Optional[int] = None  # bytes, when known exactly
    size_text: Optional[str] = None  # as advertised when the exact size is not known
    published: Optional[str] = None  # figures published by the model's authors (not measured here)
    builder: Builder = NETWORK  # what builds its backend, whether it loads a file, the input it takes
    listed: bool = True  # offered in the model list
    # offered in the dock as a tool for outlining buildings one at a time; False for demonstrations
    # that get worse with more clicks and for whole-tile methods (a group of their own, last)
    for_buildings: bool = True

    @property
    def downloadable(self) -> bool:
        return self.url is not None

    @property
    def weights(self) -> bool:
        """Whether the model is a weights file (False: a weight-free method, nothing to ship or download)."""
        return self.builder.weights


@dataclass(frozen=True)
class ModelStatus:
    entry: ModelEntry
    status: str  # shipped | downloaded | downloadable
    path: Optional[Path] = None

    @property
    def name(self) -> str:
        return self.entry.name

    def size_label(self) -> str:
        size = self.path.stat().st_size if self.path is not None and self.path.is_file() else self.entry.size
        if size is not None:
            return f"{size / 1e6:.1f} MB"
        return self.entry.size_text or ""

    def as_dict(self) -> dict:
        e = self.entry
        size = self.path.stat().st_size if self.path is not None and self.path.is_file() else e.size
        digest = e.digest
        if digest is None and self.path is not None and self.path.is_file():
            digest = "sha256:" + (_recorded_sha256(self.path) or file_sha256(self.path))
        return {
            "name": e.name,
            "status": self.status,
            "arch": e.arch,
            "training_data": e.training_data,
            "url": e.url,
            "digest": digest,
            "size": size,
            "size_text": e.size_text,
            "good_for": e.good_for,
            "source": e.source,
            "published": e.published,
            "weights": e.weights,
            "for_buildings": e.for_buildings,
            "inputs": e.builder.inputs.as_dict(),
            "path": str(self.path) if self.path is not None else None,
            "downloaded": self.status == "downloaded",
        }


def _shipped(name, arch, data, good_for, for_buildings=True) -> ModelEntry:
    return ModelEntry(name, arch, data, good_for, "shipped", for_buildings=for_buildings)


_SHIPPED = [
    ModelEntry("grabcut", "grabcut", "none (weight-free)",
               "no weights needed: OpenCV GrabCut from the clicks, one building at a time", "shipped",
               builder=Builder(_GRABCUT, weights=False, options=(("prior", "box"),))),
    ModelEntry("grabcut-multi", "grabcut", "none (weight-free)",
               "OpenCV GrabCut from the clicks, several objects per image (whole tiles: demo, evaluate)", "shipped",
               builder=Builder(_GRABCUT, weights=False, options=(("prior", "clicks"),)), for_buildings=False),
    _shipped("aerial-finetuned-h18s", "hrnet18s", "natural images, then 329 SpaceNet Rio building windows",
             "fewest clicks per building of the shipped models; the default until paper-finetune is there"),
    _shipped("aerial-finetuned-tiny", "hrnet_tiny", "natural images, then 329 SpaceNet Rio building windows",
             "tiny network (0.4 M parameters) trained per building on a CPU; a demonstration", for_buildings=False),
    _shipped("aerial-finetuned-tiles-tiny", "hrnet_tiny", "natural images, then SpaceNet Rio + INRIA kitsap11 tiles",
             "tiny network trained on whole tiles; a demonstration of the paper's tile protocol", for_buildings=False),
    _shipped("aerial-scratch-tiny", "hrnet_tiny", "SpaceNet Rio + INRIA kitsap11 tiles (from scratch)",
             "tiny network, aerial data only; the paper's 'from scratch' regime in miniature", for_buildings=False),
    _shipped("natural-tiny", "hrnet_tiny", "DAVIS (natural images)",
             "tiny network, natural images only; shows the domain gap on aerial images", for_buildings=False),
]

_PAPER_TABLE1 = "paper Table 1, 500x500 INRIA test tiles (published, not measured here): "
_PAPER = [
    ModelEntry("paper-finetune", "hrnet18", "COCO+LVIS, then fine-tuned on INRIA aerial tiles",
               "the best for buildings: the paper's HRNet18 fine-tuned on aerial tiles",
               "paper", PAPER_RAW_BASE + "weights/finetune.pth",
               "git-blob-sha1:569fa9e7e4360c7fb274a6ca0bff263cc9d22d27", size_text="about 41 MB",
               published=_PAPER_TABLE1 + "NoC20@80 5.66, NoC20@90 14.58, >=20@80 0.135, Avg20 IoU 0.875"),
    ModelEntry("paper-scratch", "hrnet18", "INRIA aerial tiles only (from scratch)",
               "the paper's HRNet18 trained on aerial tiles only",
               "paper", PAPER_RAW_BASE + "weights/train_from_scratch.pth",
               "git-blob-sha1:da71796c1296e50b22ef20ad4a27f2692def6500", size_text="about 41 MB",
               published=_PAPER_TABLE1 + "NoC20@80 10.81, NoC20@90 18.05, >=20@80 0.333, Avg20 IoU 0.827"),
    ModelEntry("paper-notrain", "hrnet18", "COCO+LVIS (natural images)",
               "the paper's 'no training' reference: RITM's natural-image baseline",
               "paper", PAPER_RAW_BASE + "pretrained_models/coco_lvis_h18_baseline.pth",
               "git-blob-sha1:35124d030931747dc1e421f523c53ec75f6f4a50", size_text="about 39 MB",
               published=_PAPER_TABLE1 + "NoC20@80 16.22, NoC20@90 18.60, >=20@80 0.648, Avg20 IoU 0.718"),
]

# RITM's README table (NoC@85 / NoC@90 on natural-image benchmarks), published, not measured here.
_RITM_PUBLISHED = {
    "coco_lvis_h18_baseline": "GrabCut 1.54/1.70, Berkeley NoC@90 2.48, DAVIS 4.79/6.00",
    "coco_lvis_h18s_itermask": "GrabCut 1.54/1.68, Berkeley NoC@90 2.60, DAVIS 4.70/5.98",
    "coco_lvis_h18_itermask": "GrabCut 1.42/1.54, Berkeley NoC@90 2.26, DAVIS 4.36/5.74",
    "coco_lvis_h32_itermask": "GrabCut 1.46/1.56, Berkeley NoC@90 2.10, DAVIS 4.11/5.34",
    "sbd_h18_itermask": "GrabCut 1.76/2.04, Berkeley NoC@90 3.22, DAVIS 4.94/6.71",
}
_RITM = [
    ModelEntry(w.name, w.arch, w.training_data,
               f"RITM {w.description}; natural images, not aerial",
               "ritm", w.url, None, size_text=w.size_hint,
               published="RITM README, NoC@85/NoC@90 (published, not measured here): " + _RITM_PUBLISHED[w.name])
    for w in OFFICIAL_WEIGHTS.values()
]

_ENTRIES: Dict[str, ModelEntry] = {e.name: e for e in _SHIPPED + _PAPER + _RITM}

# The shipped backend that needs the fewest clicks per building on held-out aerial data from
# more than one place (docs/evaluation.md, "Choosing the default model"): the default until
# paper-finetune is downloaded. Measured: NoC20@85 per building, 20 clicks.
BEST_SHIPPED = "aerial-finetuned-h18s"
BEST_SHIPPED_REASON = ("the shipped model that needed the fewest clicks per building on held-out aerial data from "
                       "two places (NoC20@85 16.30 over 198 buildings of SpaceNet Rio and INRIA Kitsap, against "
                       "17.32 for aerial-finetuned-tiny and 19.27 for GrabCut; docs/evaluation.md)")
BEST_DOWNLOADABLE = "paper-finetune"


def add_entry(e: ModelEntry) -> None:
    """Register one more downloadable entry (organisation-specific files, tests)."""
    if e.name in _ENTRIES:
        raise RitmError(f"A model named {e.name!r} is already in the list; choose another name.")
    _check_name(e.name)
    _ENTRIES[e.name] = e


def remove_entry(name: str) -> None:
    _ENTRIES.pop(name, None)


def entries() -> List[ModelEntry]:
    """The listed entries (the ones a model choice offers), in the list's order."""
    return [e for e in _ENTRIES.values() if e.listed]


def entry(name: str) -> Optional[ModelEntry]:
    return _ENTRIES.get(name)


def _check_name(name: str) -> None:
    known = _ENTRIES.get(name)
    if (not name or any(c in name for c in "/\\") or name.startswith(".")
            or (known is not None and not known.weights)):
        raise RitmError(f"{name!r} cannot be used as a model name; choose a plain name.")


# --------------------------------------------------------------------------- status


def _user_files(directory: Path) -> List[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob("*.pth") if p.is_file() and p.stem not in _ENTRIES)


def model_statuses(directory: Optional[os.PathLike] = None) -> List[ModelStatus]:
    """Every model with its status: shipped first, then downloaded, adapted, downloadable."""
    folder = Path(directory) if directory is not None else cache_dir()
    shipped, downloaded, downloadable = [], [], []
    for e in entries():
        if not e.weights:  # a weight-free method comes with the plugin: nothing to ship or download
            shipped.append(ModelStatus(e, "shipped"))
            continue
        if e.source == "shipped":
            path = SHIPPED_DIR / f"{e.name}.pth"
            if path.is_file():
                shipped.append(ModelStatus(e, "shipped", path))
            continue
        path = folder / f"{e.name}.pth"
        if path.is_file():
            downloaded.append(ModelStatus(e, "downloaded", path))
        elif e.downloadable:
            downloadable.append(ModelStatus(e, "downloadable"))
    adapted = []
    for path in _user_files(folder):  # arch unknown until read (model-info reads it; the list does not)
        fields = adapted_entry_fields(path)  # a model adapted to the user's area (models/adapted.py)
        if fields is not None:
            adapted.append(ModelStatus(ModelEntry(path.stem, source="adapted", **fields), "adapted", path))
            continue
        e = ModelEntry(path.stem, "unknown", "yours (downloaded with --url or imported with --from)",
                       "a checkpoint you added to the cache", "user")
        downloaded.append(ModelStatus(e, "downloaded", path))
    return shipped + downloaded + adapted + downloadable


def model_choices(directory: Optional[os.PathLike] = None, available_only: bool = False) -> List[str]:
    """Model names for a choice widget, in the listing's order."""
    return [s.name for s in model_statuses(directory) if not available_only or s.status != "downloadable"]


def default_model(directory: Optional[os.PathLike] = None) -> Tuple[str, str]:
    """``(name, reason)``: the best model available here for outlining buildings."""
    folder = Path(directory) if directory is not None else cache_dir()
    best = folder / f"{BEST_DOWNLOADABLE}.pth"
    if best.is_file():
        refused = _default_refusal(best)
        if refused:  # a file that would be refused at load never becomes the default
            return BEST_SHIPPED, f"{BEST_SHIPPED}, because {refused}"
        return BEST_DOWNLOADABLE, (f"{BEST_DOWNLOADABLE} is downloaded: the paper's model fine-tuned on aerial "
                                   "images, the best available for buildings.")
    return BEST_SHIPPED, (f"{BEST_SHIPPED}: {BEST_SHIPPED_REASON}. Download {BEST_DOWNLOADABLE} (the paper's "
                          "model fine-tuned on aerial images, about 41 MB) for better outlines.")


# default_model runs for every algorithm's parameters and help when QGIS starts: the digest of the
# 41 MB file is checked once per state of the file, its note and its published digest (every load
# still checks it in full through resolve_file)
_DEFAULT_CHECKS: Dict[tuple, str] = {}


def _default_refusal(path: Path) -> str:
    """'' when the cached best model passes ``check_recorded``, else the sentence why not."""
    def state(p: Path):
        try:
            st = p.stat()
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_size, st.st_mtime_ns

    e = _ENTRIES.get(BEST_DOWNLOADABLE)
    key = (str(path), state(path), state(_note_path(path)), e.digest if e is not None else None)
    if key not in _DEFAULT_CHECKS:
        try:
            check_recorded(path, BEST_DOWNLOADABLE)
            _DEFAULT_CHECKS[key] = ""
        except RitmError as exc:
            _DEFAULT_CHECKS[key] = str(exc)
    return _DEFAULT_CHECKS[key]


# --------------------------------------------------------------------------- digests


def git_blob_sha1(path: os.PathLike, chunk: int = 1 << 20) -> str:
    """The SHA-1 git gives the file as a blob: over ``b"blob <size>\\0"`` and the bytes."""
    size = os.path.getsize(path)
    h = hashlib.sha1(f"blob {size}\0".encode())
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _parse_digest(digest: str) -> Tuple[str, str]:
    kind, _, value = digest.partition(":")
    value = value.strip().lower()
    n = 40 if kind == "git-blob-sha1" else 64
    if kind not in _DIGEST_KINDS or len(value) != n or any(c not in "0123456789abcdef" for c in value):
        raise RitmError(f"{digest!r} is not a digest this project checks (git-blob-sha1:<40 hex> or sha256:<64 hex>).")
    return kind, value


def file_digest(path: os.PathLike, kind: str) -> str:
    return git_blob_sha1(path) if kind == "git-blob-sha1" else file_sha256(path)


def check_digest(path: os.PathLike, digest: str) -> Optional[str]:
    """None when ``path`` has ``digest``, else the digest it has (same kind)."""
    kind, expected = _parse_digest(digest)
    actual = file_digest(path, kind)
    return None if actual == expected else f"{kind}:{actual}"


def file_digests(path: os.PathLike, chunk: int = 1 << 20) -> Dict[str, str]:
    """Both digests of ``path`` in one read: ``{"sha256": hex, "git-blob-sha1": hex}``."""
    sha256 = hashlib.sha256()
    blob = hashlib.sha1(f"blob {os.path.getsize(path)}\0".encode())
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            sha256.update(block)
            blob.update(block)
    return {"sha256": sha256.hexdigest(), "git-blob-sha1": blob.hexdigest()}


def _note_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def record_verified(path: os.PathLike, sha256: Optional[str] = None) -> str:
    """Write ``NAME.pth.sha256`` (``<sha256> <size>``) beside a verified file; returns the SHA-256."""
    path = Path(path)
    sha256 = sha256 or file_sha256(path)
    write_note(_note_path(path), f"{sha256} {path.stat().st_size}\n")
    return sha256


def _read_note(path: Path) -> Tuple[Optional[Tuple[str, int]], str]:
    """``((sha256, size), "")`` from a well-formed note, else ``(None, what is wrong with it)``."""
    note = _note_path(path)
    if not note.is_file():
        return None, "no"
    try:
        text = note.read_text(encoding="ascii", errors="replace")[:200]
    except OSError:
        return None, "an unreadable"
    if not text.strip():
        return None, "an empty"
    parts = text.split()
    sha = parts[0].lower()
    if len(parts) < 2 or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha) or not parts[1].isdigit():
        return None, "an unreadable"
    return (sha, int(parts[1])), ""


def _recorded_sha256(path: Path) -> Optional[str]:
    recorded, _ = _read_note(path)
    return recorded[0] if recorded else None


def _reverify_hint(name: str, path: Path) -> str:
    e = _ENTRIES.get(name)
    again = f"`ritm-qgis download-weights {name} --force`" if e is not None and e.downloadable else \
        f"`ritm-qgis download-weights {name} --url URL --force`"
    return (f"re-verify it with `ritm-qgis download-weights {name} --from {path} --sha256 HEX` (HEX: its SHA-256 "
            f"from a source you trust) or download it again with {again}")


def check_recorded(path: os.PathLike, name: Optional[str] = None) -> None:
    """Refuse a cached file that does not match its published digest or its note (``NAME.pth.sha256``).

    A file with a published digest is checked against it (and against its note, when there is one);
    any other file needs a well-formed note: a missing, empty or unreadable one is refused, with the
    command that re-verifies the file."""
    path = Path(path)
    name = name or path.stem
    e = _ENTRIES.get(name)
    recorded, why = _read_note(path)
    published = e.digest if e is not None else None
    if recorded is None and published is None:
        raise RitmError(f"{path.name} in the cache has {why} checksum note ({_note_path(path).name}), so it cannot "
                        f"be verified and was not loaded; {_reverify_hint(name, path)}.")
    actual = file_digests(path)
    if recorded is not None and (path.stat().st_size != recorded[1] or actual["sha256"] != recorded[0]):
        raise RitmError(f"{path.name} in the cache has changed since it was verified (damaged or replaced); "
                        f"delete it and download it again with `ritm-qgis download-weights {name} --force`.")
    if published is not None:
        kind, expected = _parse_digest(published)
        if actual[kind] != expected:
            raise RitmError(f"{path.name} in the cache is not the published {name} ({kind}:{actual[kind]}, expected "
                            f"{published}); download it again with `ritm-qgis download-weights {name} --force`.")


# --------------------------------------------------------------------------- files


def file_location(name: str, directory: Optional[os.PathLike] = None) -> Path:
    """Where the file of a model name is (shipped) or would be (in the cache), not checked."""
    e = _ENTRIES.get(name)
    if e is not None and e.source == "shipped":
        return SHIPPED_DIR / f"{name}.pth"
    return (Path(directory) if directory is not None else cache_dir()) / f"{name}.pth"


def resolve_file(name: str, directory: Optional[os.PathLike] = None) -> Optional[Path]:
    """The file of a model name (shipped or in the cache, checked against its note), or None if unknown.

    Raises when the name is known but its file is not downloaded yet."""
    e = _ENTRIES.get(name)
    path = file_location(name, directory)
    if e is not None and e.source == "shipped":
        return path if path.is_file() else None
    if path.is_file():
        check_recorded(path, name)
        return path
    if e is not None and e.downloadable:
        raise RitmError(f"The model {name!r} is not downloaded yet; choose it in the RITM dock or run "
                        f"`ritm-qgis download-weights {name}`.")
    return None


def download_url(e: ModelEntry, mirror: Optional[str] = None) -> str:
    """Where to fetch ``e``: ``<mirror>/<name>.pth`` when a mirror is set, else its own URL."""
    base = (mirror if mirror is not None else os.environ.get(MIRROR_ENV, "")).strip()
    if base:
        return base.rstrip("/") + f"/{e.name}.pth"
    return e.url


def _expected_digest(name: str, e: Optional[ModelEntry], sha256: Optional[str]) -> Optional[str]:
    """The digest a file of ``name`` must have: the published one, which ``--sha256`` can only repeat."""
    given = f"sha256:{sha256.strip().lower()}" if sha256 else None
    if given is not None:
        _parse_digest(given)
    if e is not None and e.digest is not None:
        if given is not None and given != e.digest.lower():
            raise RitmError(f"{name} has a published digest ({e.digest}) that --sha256 cannot replace; run the command "
                            f"without --sha256 (only the published file is ever accepted as {name}).")
        return e.digest
    return given


def _note_matches(path: Path) -> bool:
    recorded, _ = _read_note(path)
    return recorded is not None and path.stat().st_size == recorded[1] and file_sha256(path) == recorded[0]


def download_model(
    name: str,
    *,
    url: Optional[str] = None,
    sha256: Optional[str] = None,
    directory: Optional[os.PathLike] = None,
    progress: Optional[Progress] = None,
    force: bool = False,
    mirror: Optional[str] = None,
    limits: Optional[DownloadLimits] = None,
) -> DownloadResult:
    """Fetch ``name`` into the cache, verify it against its published digest, record its SHA-256.

    ``name`` is a downloadable entry, or any plain name when ``url`` is given. Skipped when the
    file is already there and matches. A file that does not match is deleted (RitmError).
    ``limits`` (tests: small thresholds) is capped at the size the list knows for ``name``."""
    e = _ENTRIES.get(name)
    if (e is None or not e.downloadable) and url is None:
        if e is not None:
            raise RitmError(f"{name!r} is a shipped model; it needs no download.")
        raise RitmError(f"Unknown weights {name!r}; choose one of {', '.join(downloadable_names())} or give --url.")
    _check_name(name)
    if e is not None and e.source == "shipped":
        raise RitmError(f"{name!r} is a shipped model; it cannot be replaced.")
    source = url or download_url(e, mirror)
    digest = _expected_digest(name, e, sha256)
    dest = cached_path(name, directory)
    if dest.is_file() and not dest.is_symlink() and not force:
        if (check_digest(dest, digest) is None) if digest is not None else _note_matches(dest):
            sha = record_verified(dest) if digest is not None else _recorded_sha256(dest)
            return DownloadResult(dest, sha, dest.stat().st_size, skipped=True)
    limits = limits or DownloadLimits()
    cap = size_cap(e.size, e.size_text) if e is not None else limits.max_bytes
    limits = replace(limits, max_bytes=min(limits.max_bytes, cap))
    kind = digest.partition(":")[0] if digest else None
    result = download(source, dest, sha256=digest.partition(":")[2] if kind == "sha256" else None,
                      progress=progress, verify=(lambda p: _verify_part(p, digest, source)) if kind == "git-blob-sha1"
                      else None, limits=limits)
    record_verified(dest, result.sha256)  # unverifiable files too: later loads still notice damage
    return result


def download_weights(name: str, *, url: Optional[str] = None, sha256: Optional[str] = None,
                     directory: Optional[os.PathLike] = None, progress: Optional[Progress] = None,
                     force: bool = False) -> DownloadResult:
    """The older name of :func:`download_model` (no mirror argument)."""
    return download_model(name, url=url, sha256=sha256, directory=directory, progress=progress, force=force)


def _verify_part(part: Path, digest: str, source: str) -> None:
    actual = check_digest(part, digest)
    if actual is not None:
        part.unlink()
        raise RitmError(f"The file downloaded from {source} is not the published one ({actual}, expected "
                        f"{digest}); it was deleted. Check the URL or mirror, then retry.")


def downloadable_names() -> List[str]:
    return [e.name for e in _ENTRIES.values() if e.downloadable]


def import_model(name: str, source_file: os.PathLike, *, sha256: Optional[str] = None,
                 directory: Optional[os.PathLike] = None) -> DownloadResult:
    """Copy a file fetched elsewhere into the cache as ``name``, after checking it against the
    published digest of ``name`` (or ``sha256`` for a name without one). A file that does not
    match is refused and nothing is left in the cache."""
    _check_name(name)
    e = _ENTRIES.get(name)
    if e is not None and e.source == "shipped":
        raise RitmError(f"{name!r} is a shipped model; it cannot be replaced.")
    digest = _expected_digest(name, e, sha256)
    if digest is None:
        known = "has no published digest" if e is not None else "is not in the model list"
        raise RitmError(f"{name!r} {known}; give --sha256 HEX (the file's SHA-256 from a source you trust) "
                        "to import it.")
    source_file = Path(source_file)
    if not source_file.is_file():
        raise RitmError(f"{str(source_file)!r} does not exist; give the path of the downloaded file.")
    actual = check_digest(source_file, digest)
    if actual is not None:
        raise RitmError(f"{source_file.name} is not {name} ({actual}, expected {digest}); nothing was imported.")
    dest = cached_path(name, directory)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        with open_fresh(part, dest.parent) as out, open(source_file, "rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
        if check_digest(part, digest) is not None:  # the copy itself went wrong (disk full, ...)
            raise RitmError(f"Copying {source_file.name} into the cache failed; nothing was imported.")
        os.replace(part, dest)
    except OSError as exc:
        raise RitmError(f"Could not copy {source_file.name} into {dest.parent} ({exc.strerror}); "
                        "nothing was imported.") from None
    finally:
        discard(part)
    sha = record_verified(dest)
    return DownloadResult(dest, sha, dest.stat().st_size)
