"""docs/architecture.md names only files that exist, and the names it says a file holds are in it."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"
BASES = (ROOT, ROOT / "ritm_qgis")  # paths are written from the repository root or inside the package


def _path_tokens(text):
    """Backticked tokens that look like paths: `ritm_qgis/gui/`, `core/atomic.py`, `runtime/device.OPTIMIZE_MODES`."""
    for token in re.findall(r"`([^`\s]+)`", text):
        if "/" in token and not re.search(r"[:(\"',]", token):
            yield token


def _file_of(token):
    """(the file or folder a token names, an attribute it names inside, or None)."""
    if token.endswith("/"):
        return token, None
    head, _, last = token.rpartition("/")
    if last.endswith((".py", ".md", ".txt", ".toml")):
        return token, None
    module, _, attribute = last.partition(".")
    return f"{head}/{module}.py", attribute.split(".")[-1] or None


def _exists(relative):
    return any((base / relative).exists() for base in BASES)


def test_every_path_named_in_architecture_md_exists():
    text = DOC.read_text(encoding="utf-8")
    tokens = list(_path_tokens(text))
    assert len(tokens) > 40  # the parser finds the table's paths
    missing = []
    for token in tokens:
        path, attribute = _file_of(token)
        if not _exists(path):
            missing.append(token)
        elif attribute:
            source = next((base / path) for base in BASES if (base / path).exists()).read_text(encoding="utf-8")
            if not re.search(rf"\b{re.escape(attribute)}\b", source):
                missing.append(token)
    assert not missing, f"docs/architecture.md names what does not exist: {missing}"


def test_the_names_architecture_md_places_in_a_file_are_there():
    """`NAME` in `ritm_qgis/...py` (a registration list, a function) is written in that file."""
    text = DOC.read_text(encoding="utf-8")
    pairs = re.findall(r"`([\w.]+)` (?:in|of) `(ritm_qgis/[\w/]+\.py)`", text)
    assert len(pairs) >= 8
    missing = [f"{name} in {path}" for name, path in pairs
               if not re.search(rf"\b{re.escape(name.split('.')[-1])}\b", (ROOT / path).read_text(encoding="utf-8"))]
    assert not missing, f"docs/architecture.md places names where they are not: {missing}"
