"""Try the plugin as a new user would, in the real QGIS desktop (/usr/bin/qgis) on an X server of its own.

    python3 scripts/try_desktop.py              # report on stdout, details in build/try_desktop/report.json
    python3 scripts/try_desktop.py --shots docs/models   # also save the screenshots there

What it does, as a user would:
1. builds the plugin zip (scripts/package_plugin.sh, what `make zip` makes) and unzips it into
   the plugins folder of a fresh QGIS profile (``--profiles-path build/try_desktop/profiles``), enabled
   in that profile's QGIS3.ini;
2. installs the plugin's Python packages with the plugin's own installer (``python3 -m ritm_qgis.deps
   --install``, Debian's Python, into ``<profile>/python/ritm_qgis_deps``), where the plugin finds them
   when QGIS loads it. That folder is kept between runs (``--fresh`` removes it): installing torch
   takes minutes;
3. starts ``qgis --nologo --noversioncheck --code scripts/try_desktop_in_qgis.py`` under ``xvfb-run``
   with a real aerial chip of ../shared/data (when there), which opens the dock, outlines the chip's
   largest building with one click and Enter, reads the model list,
   types part of a model name into the model box key by key, counts the messages QGIS logs or shows
   meanwhile, then (unless ``--no-download``) downloads paper-finetune through the dock from a
   loopback mirror that serves a file that is not the published one: Cancel half-way, then to the
   end, where it must be refused and deleted. It takes screenshots and quits.

Exit 0 when the dock offers the shipped aerial models and the paper's three by name and typing
raised no warning; 1 otherwise, with the reason.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "try_desktop"
SYSTEM_PYTHON = "/usr/bin/python3"  # the Python QGIS embeds on Debian
QGIS = "/usr/bin/qgis"
RASTER = ROOT.parent / "shared" / "data" / "aerial" / "spacenet_rio" / "images" / "3band_013022223130_Public_img50.tif"
MASK = ROOT.parent / "shared" / "data" / "aerial" / "spacenet_rio" / "masks" / RASTER.name
PAPER = ["paper-finetune", "paper-scratch", "paper-notrain"]


def build_zip() -> Path:
    subprocess.run(["bash", str(ROOT / "scripts" / "package_plugin.sh")], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    version = next(line.split("=", 1)[1].strip() for line in (ROOT / "metadata.txt").read_text().splitlines()
                   if line.startswith("version="))
    return ROOT / "dist" / f"ritm_qgis.{version}.zip"


def fresh_profile(profiles: Path, zip_path: Path, fresh: bool) -> Path:
    """profiles/profiles/default with the plugin unzipped and enabled; the installed packages kept unless ``fresh``."""
    profile = profiles / "profiles" / "default"
    for sub in ([profile] if fresh else [profile / "python" / "plugins", profile / "QGIS"]):
        shutil.rmtree(sub, ignore_errors=True)
    for name in ("profiles.ini",):
        (profiles / name).unlink(missing_ok=True)
    plugins = profile / "python" / "plugins"
    plugins.mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(plugins)
    ini = profile / "QGIS" / "QGIS3.ini"
    ini.parent.mkdir(parents=True)
    ini.write_text("[PythonPlugins]\nritm_qgis=true\n\n[qgis]\nshowTips=false\ncheckVersion=false\n")
    return profile


def user_env(**extra) -> dict:
    """The environment of a user starting QGIS: no venv, no source tree on the path."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "QT_QPA_PLATFORM", "RITM_QGIS_CACHE")}
    env["PATH"] = "/usr/bin:/bin"
    env.update(extra)
    return env


def install_packages(profile: Path) -> None:
    plugins = profile / "python" / "plugins"
    env = user_env(PYTHONPATH=str(plugins))
    check = subprocess.run([SYSTEM_PYTHON, "-m", "ritm_qgis.deps"], env=env, cwd=plugins, capture_output=True,
                           text=True)
    if check.returncode == 0:
        print("packages: already installed in the profile")
        return
    print("packages: installing with the plugin's installer (python3 -m ritm_qgis.deps --install; minutes)")
    subprocess.run([SYSTEM_PYTHON, "-m", "ritm_qgis.deps", "--install"], env=env, cwd=plugins, check=True)


class FakeMirror(http.server.BaseHTTPRequestHandler):
    """A mirror on the loopback interface whose NAME.pth files are not the published ones, sent slowly
    enough (about 4 s) for a progress bar and a Cancel half-way."""

    requests: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 (http.server's name)
        FakeMirror.requests.append(self.path)
        body = b"not the published file " * 200_000  # 4.6 MB
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            for i in range(0, len(body), 1 << 17):
                self.wfile.write(body[i:i + (1 << 17)])
                self.wfile.flush()
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):  # the download was cancelled
            pass


def run_qgis(profiles: Path, out: Path, shots: Path | None, typed: str, mirror: str) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").unlink(missing_ok=True)
    shutil.rmtree(out / "model-cache", ignore_errors=True)
    env = user_env(RITM_TRY_DESKTOP_OUT=str(out), RITM_TRY_DESKTOP_TYPE=typed, RITM_TRY_DESKTOP_MIRROR=mirror,
                   RITM_TRY_DESKTOP_RASTER=str(RASTER) if RASTER.is_file() else "",
                   RITM_TRY_DESKTOP_MASK=str(MASK) if MASK.is_file() else "",
                   RITM_TRY_DESKTOP_SHOTS=str(shots) if shots else "",
                   RITM_QGIS_CACHE=str(out / "model-cache"))  # no model a developer downloaded shows as "downloaded"
    cmd = ["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", QGIS, "--profiles-path", str(profiles), "--nologo",
           "--noversioncheck", "--code", str(ROOT / "scripts" / "try_desktop_in_qgis.py")]
    print("running:", " ".join(cmd))
    with open(out / "qgis.log", "w") as log:
        proc = subprocess.run(cmd, env=env, cwd=out, stdout=log, stderr=subprocess.STDOUT, timeout=600)
    report_file = out / "report.json"
    if not report_file.is_file():
        sys.exit(f"QGIS exited ({proc.returncode}) without a report; see {out / 'qgis.log'}")
    return json.loads(report_file.read_text())


def summary(report: dict) -> list[str]:
    """Print what was seen; the problems found (empty: none)."""
    problems = list(report.get("errors", []))
    print(f"plugin loaded: {report.get('plugin_loaded')}; dock open: {report.get('dock_open')}; "
          f"model loaded: {report.get('model_loaded')}; in use: {report.get('in_use_before')}")
    print(f"toolbar button: {report.get('toolbar_button')}")
    print(f"default line: {report.get('default_line')}; button: {report.get('get_best_button')}")
    offered = {}
    for group in report.get("groups", []):
        print(f"[{group['heading']}]")
        for m in group["models"]:
            offered[m["name"]] = m["status"]
            print(f"  {m['text']}")
    typing = report.get("typing", {})
    print(f"typed {report.get('typed')!r} into the model box: the list highlighted, key after key, "
          f"{report.get('highlighted_after_each_key')}")
    print(f"dialogs open at startup: {report.get('dialogs_at_startup')}")
    print(f"while typing: {typing.get('warnings')} warnings, log {typing.get('log_messages')}, "
          f"message bar {typing.get('message_bar_items')}, download started: {typing.get('download_started')}, "
          f"model {typing.get('model_before')} -> {typing.get('model_after')}")
    aerial = [n for n, s in offered.items() if s == "shipped" and n.startswith("aerial-")]
    if not aerial:
        problems.append("no shipped aerial model is offered")
    problems += [f"{n} is not offered" for n in PAPER if n not in offered]
    if typing.get("warnings", 1) != 0:
        problems.append(f"{typing.get('warnings')} warnings while typing")
    if report.get("dialogs_at_startup"):
        problems.append(f"dialogs open at startup: {report['dialogs_at_startup']}")
    if typing.get("download_started") or typing.get("model_before") != typing.get("model_after"):
        problems.append("typing changed the model or started a download")
    startup = [m for m in report.get("startup_log", []) if m[1] in ("warning", "critical") and "ritm" in
               (m[0] + m[2]).lower()]
    problems += [f"at startup: {m}" for m in startup]
    print(f"shipped aerial models offered: {aerial}; paper's offered: {[n for n in PAPER if n in offered]}")
    outline = report.get("outline")
    if outline is not None:
        print(f"one click on the largest building, then Enter: {outline}")
        if not outline.get("features"):
            problems.append("the accepted building did not reach the output layer")
    download = report.get("download")
    if download is not None:
        print(f"download through the dock from the loopback mirror (requests {report.get('mirror_requests')}):")
        for key, value in download.items():
            print(f"  {key}: {value}")
        cancelled, second = download.get("after_cancel", {}), download.get("after_second_try", {})
        if not (download.get("task_in_qgis_task_manager") and download.get("progress_shown")):
            problems.append("the download showed no task or no progress")
        if download.get("cancel_ended_task_within_s") is None or cancelled.get("files_left"):
            problems.append("Cancel did not end the download, or left a file")
        if "is not the published paper-finetune" not in second.get("status", "") or second.get("files_left"):
            problems.append("the file that is not the published one was not refused, or was kept")
    return problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shots", type=Path, help="folder for the screenshots (e.g. docs/models)")
    ap.add_argument("--type", default="paper-fi", help="what to type into the model box (default: paper-fi)")
    ap.add_argument("--fresh", action="store_true", help="also reinstall the packages (minutes)")
    ap.add_argument("--no-download", dest="download", action="store_false",
                    help="skip the download through the dock from a loopback mirror")
    args = ap.parse_args(argv)
    for tool in (QGIS, SYSTEM_PYTHON, shutil.which("xvfb-run")):
        if not tool or not os.path.exists(tool):
            sys.exit("needs /usr/bin/qgis, /usr/bin/python3 and xvfb-run (apt-get install qgis python3-qgis xvfb)")
    profiles = WORK / "profiles"
    profile = fresh_profile(profiles, build_zip(), args.fresh)
    install_packages(profile)
    if args.shots:
        args.shots.mkdir(parents=True, exist_ok=True)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeMirror)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    mirror = f"http://127.0.0.1:{server.server_address[1]}/mirror"
    try:
        report = run_qgis(profiles, WORK / "run", args.shots.resolve() if args.shots else None, args.type,
                          mirror if args.download else "")
    finally:
        server.shutdown()
    report["mirror_requests"] = FakeMirror.requests
    problems = summary(report)
    for p in problems:
        print("PROBLEM:", p)
    print(f"details: {WORK / 'run' / 'report.json'}, QGIS's output: {WORK / 'run' / 'qgis.log'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
