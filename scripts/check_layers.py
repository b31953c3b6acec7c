"""Check the import layers with import-linter (contracts in pyproject.toml, [tool.importlinter]).

The source tree has the installed layout (``ritm_qgis/models``, ``ritm_qgis/algorithms``; the
top-level ``models`` and ``algorithms`` are symlinks into it), so plain ``lint-imports`` in the
repository root checks it (``make test`` runs it there); this script does the same:

    python scripts/check_layers.py        # exit 0 when every contract holds

``copy_package`` and ``lint`` also let tests check a changed copy of the package
(tests/test_layers.py adds a forbidden import to a copy and expects it to be caught).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def copy_package(dest: Path) -> Path:
    """Copy the Python files git knows of under ``ritm_qgis/`` (tracked, plus new files not
    ignored) into ``dest/ritm_qgis``; returns ``dest``."""
    shutil.rmtree(dest, ignore_errors=True)
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", "ritm_qgis"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for f in out.splitlines():
        if f.endswith(".py") and (ROOT / f).is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / f, dest / f)
    return dest


def lint(tree: Path = ROOT) -> subprocess.CompletedProcess:
    """Run lint-imports (from this Python's environment) on the ``ritm_qgis`` package under
    ``tree``: the repository itself by default, or a copy made by :func:`copy_package`."""
    exe = Path(sys.executable).with_name("lint-imports")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(tree), os.environ.get("PYTHONPATH")])))
    return subprocess.run([str(exe), "--no-cache", str(ROOT / "pyproject.toml")], cwd=tree, env=env,
                          capture_output=True, text=True)


def main() -> int:
    result = lint()
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
