"""`make package`'s release check: the release setting, qgis-plugin-ci and plugins.qgis.org's upload rules.

The zips are built by the real scripts/package_plugin.sh and checked by the real qgis-plugin-ci
(installed by `make setup` in .venv/tools, an environment of its own).
"""

import importlib.util
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECK = ROOT / "scripts" / "release_check.py"
COMPLETE = ('[release]\nhomepage = "https://example.org/ritm"\nrepository = "https://example.org/ritm.git"\n'
            'tracker = "https://example.org/ritm/issues"\nemail = "maintainers@example.org"\n')


def load_release_check():
    spec = importlib.util.spec_from_file_location("release_check", CHECK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def plugin_ci():
    tool = load_release_check().PLUGIN_CI
    if not tool.exists():
        pytest.fail(f"qgis-plugin-ci is missing at {tool}: `make setup` installs it")
    return tool


def build(version: str, release: Path) -> Path:
    env = dict(os.environ, RELEASE=str(release))
    out = subprocess.run(["bash", str(ROOT / "scripts" / "package_plugin.sh"), version], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    return ROOT / "dist" / f"ritm_qgis.{version}.zip"


def check(release: Path, zip_path: Path):
    return subprocess.run([sys.executable, str(CHECK), "check", str(release), str(ROOT / "build" / "plugin"),
                           str(zip_path)], capture_output=True, text=True)


def test_the_repositorys_release_setting_names_each_missing_address(plugin_ci):
    zip_path = build("0.0.1", ROOT / "release.toml")
    try:
        run = check(ROOT / "release.toml", zip_path)
    finally:
        zip_path.unlink(missing_ok=True)
    assert run.returncode == 1, run.stdout + run.stderr
    for key in ("homepage", "repository", "tracker", "email"):
        assert f"'{key}' is empty in" in run.stdout
    assert "qgis-plugin-ci refused the plugin" in run.stdout and "tracker" in run.stdout


def test_a_complete_release_setting_gives_a_zip_qgis_plugin_ci_and_the_repository_accept(plugin_ci, tmp_path):
    release = tmp_path / "release.toml"
    release.write_text(COMPLETE)
    zip_path = build("0.0.1", release)
    try:
        run = check(release, zip_path)
        with zipfile.ZipFile(zip_path) as zf:
            metadata = zf.read("ritm_qgis/metadata.txt").decode()
            notice = zf.read("ritm_qgis/NOTICE").decode()
    finally:
        zip_path.unlink(missing_ok=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "tracker=https://example.org/ritm/issues" in metadata and "email=maintainers@example.org" in metadata
    assert metadata.count("homepage=") == 1
    assert "CC BY-SA 4.0" in notice and "MIT" in notice


def test_malformed_addresses_are_refused(tmp_path):
    module = load_release_check()
    release = tmp_path / "release.toml"
    release.write_text(COMPLETE.replace("https://example.org/ritm.git", "example.org/ritm")
                       .replace("maintainers@example.org", "maintainers"))
    problems = module.settings_problems(module.read_settings(release), release)
    assert len(problems) == 2
    assert "'repository'" in problems[0] and "not a web address" in problems[0]
    assert "'email'" in problems[1]


def test_the_upload_rules_refuse_compiled_files_hidden_folders_and_a_missing_licence(tmp_path):
    module = load_release_check()
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("ritm_qgis/__init__.py", "")
        zf.writestr("ritm_qgis/metadata.txt", "[general]\nname=x\nauthor=a/b\n")
        zf.writestr("ritm_qgis/__pycache__/plugin.cpython-311.pyc", b"\0")
        zf.writestr("ritm_qgis/.git/HEAD", "ref")
    problems = "\n".join(module.zip_problems(bad))
    assert "__pycache__/plugin.cpython-311.pyc" in problems
    assert ".git/HEAD" in problems
    assert "lacks ritm_qgis/LICENSE" in problems
    assert "has no 'tracker'" in problems and "has no 'email'" in problems
    assert "author must not contain '/'" in problems
