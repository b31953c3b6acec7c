#!/usr/bin/env python3
"""Is the plugin zip publishable? The release setting, qgis-plugin-ci and plugins.qgis.org's rules.

  release_check.py apply SETTINGS METADATA   write the setting's addresses into a staged metadata.txt
  release_check.py check SETTINGS STAGE ZIP  exit 0 only when the zip can be uploaded as it is

``check`` reports every problem, one sentence each: an empty or malformed value in the release
setting (SETTINGS, ``release.toml``: the one place the project's public addresses are written);
``qgis-plugin-ci package`` run on the staged plugin (STAGE, the git repository
``scripts/package_plugin.sh`` zips from); and the upload rules of the QGIS plugin repository
(required metadata, URLs, LICENSE, no compiled or hidden folders, one top folder, size), which are
checked here offline, so whether the addresses answer is not checked.
"""

from __future__ import annotations

import configparser
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
SETTINGS_KEYS = ("homepage", "repository", "tracker", "email")
URL_KEYS = ("homepage", "repository", "tracker")
# what plugins.qgis.org refuses an upload without
REPOSITORY_REQUIRED = ("name", "description", "version", "qgisMinimumVersion", "author", "email", "about",
                       "tracker", "repository")
MAX_UPLOAD_BYTES = 25_000_000
FORBIDDEN_FOLDERS = ("__MACOSX", ".git", "__pycache__")
PLUGIN_CI = ROOT / ".venv" / "tools" / "qgis-plugin-ci" / "bin" / "qgis-plugin-ci"


def read_settings(path: Path) -> dict[str, str]:
    """The [release] table of ``path``, every key of SETTINGS_KEYS present (empty when unset)."""
    try:
        with open(path, "rb") as fh:
            table = tomllib.load(fh).get("release", {})
    except FileNotFoundError:
        raise SystemExit(f"release check: the release setting '{path}' does not exist; "
                         "copy release.toml from the repository and fill it in.") from None
    except tomllib.TOMLDecodeError as exc:
        raise SystemExit(f"release check: '{path}' is not valid TOML ({exc}); fix it.") from None
    return {key: str(table.get(key, "") or "").strip() for key in SETTINGS_KEYS}


def settings_problems(settings: dict[str, str], path: Path) -> list[str]:
    problems = []
    for key in SETTINGS_KEYS:
        value = settings[key]
        if not value:
            problems.append(f"'{key}' is empty in {path} ([release] table); set it to the project's public "
                            f"{'address' if key != 'email' else 'contact e-mail'} (nothing is invented for it).")
        elif key in URL_KEYS:
            parts = urlsplit(value)
            if parts.scheme not in ("https", "http") or not parts.netloc:
                problems.append(f"'{key}' in {path} is '{value}', not a web address; give a full https:// URL.")
        elif not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
            problems.append(f"'email' in {path} is '{value}', not an e-mail address.")
    return problems


def apply_settings(settings: dict[str, str], metadata: Path) -> None:
    """Set (or replace) the non-empty addresses in the [general] section of ``metadata``."""
    lines = metadata.read_text(encoding="utf-8").splitlines()
    given = {key: value for key, value in settings.items() if value}
    kept = [line for line in lines if line.split("=", 1)[0].strip() not in given]
    at = next((i + 1 for i, line in enumerate(kept) if line.strip() == "[general]"), None)
    if at is None:
        raise SystemExit(f"release check: '{metadata}' has no [general] section.")
    kept[at:at] = [f"{key}={value}" for key, value in given.items()]
    metadata.write_text("\n".join(kept) + "\n", encoding="utf-8")


def zip_problems(zip_path: Path) -> list[str]:
    """plugins.qgis.org's upload rules, checked on the zip itself."""
    if not zip_path.is_file():
        return [f"The plugin zip '{zip_path}' was not built; run `make zip` and read its first error."]
    problems = []
    size = zip_path.stat().st_size
    if size > MAX_UPLOAD_BYTES:
        problems.append(f"The zip is {size / 1e6:.1f} MB; the plugin repository takes at most "
                        f"{MAX_UPLOAD_BYTES / 1e6:.0f} MB.")
    with zipfile.ZipFile(zip_path) as zf:
        names = zf.namelist()
        bad = zf.testzip()
        if bad:
            problems.append(f"'{bad}' in the zip is damaged (CRC error); build the zip again.")
        tops = sorted({name.split("/", 1)[0] for name in names})
        if len(tops) != 1:
            problems.append(f"The zip must hold one folder, not {', '.join(tops)}.")
        top = tops[0] if tops else ""
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]+", top):
            problems.append(f"The zip's folder '{top}' must start with a letter and hold only letters, digits, "
                            "'-' and '_'.")
        for name in names:
            parts = name.split("/")
            if ".." in parts or name.startswith("/"):
                problems.append(f"The zip entry '{name}' holds a path outside the plugin folder.")
            elif name.endswith(".pyc") or any(folder in parts for folder in FORBIDDEN_FOLDERS):
                problems.append(f"The zip entry '{name}' is not accepted by the plugin repository "
                                "(compiled Python or a __pycache__, .git or __MACOSX folder).")
        for required in ("__init__.py", "metadata.txt", "LICENSE"):
            if f"{top}/{required}" not in names:
                problems.append(f"The zip lacks {top}/{required}.")
        if f"{top}/metadata.txt" in names:
            problems += metadata_problems(zf.read(f"{top}/metadata.txt").decode("utf-8"), names, top)
    return problems


def metadata_problems(text: str, names: list[str], top: str) -> list[str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    try:
        parser.read_string(text)
    except configparser.Error as exc:
        return [f"The zip's metadata.txt cannot be read ({exc})."]
    if not parser.has_section("general"):
        return ["The zip's metadata.txt has no [general] section."]
    general = dict(parser.items("general"))
    problems = [f"The zip's metadata.txt has no '{key}'." for key in REPOSITORY_REQUIRED
                if not general.get(key, "").strip()]
    if "/" in general.get("author", ""):
        problems.append("The metadata's author must not contain '/'.")
    icon = general.get("icon", "").removeprefix("./")
    if icon and f"{top}/{icon}" not in names:
        problems.append(f"The metadata names the icon '{icon}', which is not in the zip.")
    return problems


def plugin_ci_problems(stage: Path, version: str) -> list[str]:
    """``qgis-plugin-ci package VERSION`` on the staged plugin: its own metadata checks."""
    if not PLUGIN_CI.exists():
        return [f"qgis-plugin-ci is not installed at {PLUGIN_CI}; run `make setup`."]
    config = stage / ".qgis-plugin-ci"
    config.write_text("plugin_path: ritm_qgis\ngithub_organization_slug: ritm-qgis\nproject_slug: ritm_qgis\n"
                      "changelog_include: false\n", encoding="utf-8")
    out_zip = stage / f"ritm_qgis.{version}.zip"
    out_zip.unlink(missing_ok=True)
    env = dict(os.environ, PATH=f"{PLUGIN_CI.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    run = subprocess.run([str(PLUGIN_CI), "package", version], cwd=stage, capture_output=True, text=True, env=env)
    if run.returncode != 0 or not out_zip.exists():
        said = [line.split("||")[-1].strip() for line in (run.stdout + run.stderr).splitlines()
                if "ERROR" in line or "Error" in line] or (run.stdout + run.stderr).strip().splitlines()[-1:]
        return [f"qgis-plugin-ci refused the plugin: {'; '.join(said) or f'exit {run.returncode}'}."]
    return []


def check(settings_path: Path, stage: Path, zip_path: Path) -> int:
    settings = read_settings(settings_path)
    problems = settings_problems(settings, settings_path)
    problems += zip_problems(zip_path)
    version = re.search(r"^version=(.+)$", (stage / "ritm_qgis" / "metadata.txt").read_text(encoding="utf-8"),
                        re.M)
    problems += plugin_ci_problems(stage, version.group(1).strip() if version else "0.0.0")
    if problems:
        print(f"release check: {zip_path.name} is fine for installing from a zip, but not publishable:")
        for problem in dict.fromkeys(problems):
            print(f"  - {problem}")
        return 1
    print(f"release check: {zip_path.name} passes qgis-plugin-ci and the plugin repository's upload rules.")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "apply":
        apply_settings(read_settings(Path(argv[1])), Path(argv[2]))
        return 0
    if len(argv) == 4 and argv[0] == "check":
        return check(Path(argv[1]), Path(argv[2]), Path(argv[3]))
    print(__doc__.split("\n\n")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
