"""Check the import layers with import-linter (contracts in pyproject.toml, [tool.importlinter]).

The repository keeps ``models/`` and ``algorithms/`` beside ``ritm_qgis/``; they are the
subpackages ``ritm_qgis.models`` and ``ritm_qgis.algorithms`` only once assembled, as in the
plugin zip. import-linter reads packages from the file system, so this script assembles the
Python sources in that layout under ``build/layers`` and runs ``lint-imports`` on it.

    python scripts/check_layers.py        # exit 0 when every contract holds
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYOUT = {"ritm_qgis": "ritm_qgis", "models": "ritm_qgis/models", "algorithms": "ritm_qgis/algorithms"}


def source_files(folder: str) -> list[str]:
    """The Python files git knows of under ``folder`` (tracked, plus new files not ignored)."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", folder],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [f for f in out.splitlines() if f.endswith(".py") and (ROOT / f).is_file()]


def assemble(dest: Path) -> Path:
    """Copy the package's Python sources into ``dest`` in the installed layout; returns ``dest``."""
    shutil.rmtree(dest, ignore_errors=True)
    for src, target in LAYOUT.items():
        for f in source_files(src):
            out = dest / target / Path(f).relative_to(src)
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / f, out)
    return dest


def lint(assembled: Path) -> subprocess.CompletedProcess:
    """Run lint-imports (from this Python's environment) on an assembled tree."""
    exe = Path(sys.executable).with_name("lint-imports")
    env = dict(os.environ, PYTHONPATH=str(assembled))
    return subprocess.run([str(exe), "--no-cache", str(ROOT / "pyproject.toml")], cwd=assembled, env=env,
                          capture_output=True, text=True)


def main() -> int:
    result = lint(assemble(ROOT / "build" / "layers"))
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
