"""The import layers hold (import-linter contracts in pyproject.toml), and a reversed import is caught."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("check_layers", ROOT / "scripts" / "check_layers.py")
check_layers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_layers)


def test_every_contract_is_kept_in_the_repository_itself():
    result = check_layers.lint()  # plain lint-imports in the repository root
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_copy_of_the_package_is_linted_as_it_is(tmp_path):
    result = check_layers.lint(check_layers.copy_package(tmp_path / "tree"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _broken_by(tmp_path, module: str, line: str) -> str:
    tree = check_layers.copy_package(tmp_path / "tree")
    target = tree / module
    target.write_text(target.read_text() + "\n" + line + "\n")
    result = check_layers.lint(tree)
    assert result.returncode != 0, f"'{line}' in {module} was not caught"
    return result.stdout


def test_a_reversed_import_breaks_the_layers(tmp_path):
    out = _broken_by(tmp_path, "ritm_qgis/core/errors.py", "import ritm_qgis.engine.protocol.noc")
    assert "ritm_qgis.core is not allowed to import ritm_qgis.engine" in out


def test_a_function_local_import_of_a_command_is_caught(tmp_path):
    out = _broken_by(tmp_path, "ritm_qgis/algorithms/noc_report.py",
                     "def _hidden():\n    from ritm_qgis.commands import evaluate")
    assert "ritm_qgis.algorithms is not allowed to import ritm_qgis.commands" in out


def test_qgis_in_the_engine_is_caught(tmp_path):
    out = _broken_by(tmp_path, "ritm_qgis/engine/geo/tiling.py", "import qgis.core")
    assert "is not allowed to import qgis" in out
