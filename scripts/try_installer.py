"""The dependency installer as a new user meets it, end to end, on this machine's Debian QGIS Python.

    python3 scripts/try_installer.py        # report in build/try_installer/report.json and on stdout

1. unzips the plugin (scripts/package_plugin.sh) into a fresh QGIS profile;
2. asks the installer for its plan with another python3 first on PATH (pyenv's, when there), as a
   QGIS started from such a shell has: the plan must still run Debian's /usr/bin/python3;
3. installs everything with the plugin's own installer (``python3 -m ritm_qgis.deps --install``), as
   it is here: PyTorch's index is out of reach on this machine, so torch must come as the CPU build
   from a local folder (pip's ``PIP_FIND_LINKS``) or the install must stop; pip must not try release
   after release of one package (the caps for QGIS's older numpy and pyproj);
4. runs a shipped model on a real aerial chip with only that folder added (what QGIS imports);
5. removes one package (tqdm) from the folder, as a plugin update that adds a requirement does, and
   installs again: only tqdm may be fetched, everything else must stay;
6. uninstalls: the folder is gone.
Each step's time and what pip said are recorded. Exit 0 when every step held.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "try_installer"
SYSTEM_PYTHON = "/usr/bin/python3"
CHIP = ROOT.parent / "shared" / "data" / "aerial" / "spacenet_rio" / "images" / "3band_013022223130_Public_img50.tif"


def folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 1e6


def main() -> int:
    shutil.rmtree(WORK, ignore_errors=True)
    subprocess.run(["bash", str(ROOT / "scripts" / "package_plugin.sh")], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    version = next(line.split("=", 1)[1].strip() for line in (ROOT / "metadata.txt").read_text().splitlines()
                   if line.startswith("version="))
    plugins = WORK / "profiles" / "default" / "python" / "plugins"
    plugins.mkdir(parents=True)
    with zipfile.ZipFile(ROOT / "dist" / f"ritm_qgis.{version}.zip") as zf:
        zf.extractall(plugins)
    decoy = WORK / "decoy-bin"
    decoy.mkdir()
    other = next((p for p in ("/root/.pyenv/shims/python3", "/usr/local/bin/python3") if os.path.exists(p)), None)
    if other:
        (decoy / "python3").symlink_to(other)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(PATH=f"{decoy}:/usr/bin:/bin", PYTHONPATH=str(plugins))
    report: dict = {"other_python3_first_on_path": other}

    def deps(*args, **kw):
        started = time.monotonic()
        out = subprocess.run([SYSTEM_PYTHON, "-m", "ritm_qgis.deps", *args], env=env, cwd=plugins,
                             capture_output=True, text=True, **kw)
        return out, time.monotonic() - started

    plan, _ = deps("--json")
    plan = json.loads(plan.stdout)
    target = Path(plan["target"])
    report["plan"] = {"python": plan["command"][0], "missing": plan["missing"], "download_mb": plan["download_mb"],
                      "disk_mb": plan["disk_mb"], "notes": plan["notes"]}
    ok = plan["command"][0] == SYSTEM_PYTHON

    out, seconds = deps("--install")
    torch = sorted(p.name for p in target.glob("torch-*.dist-info"))
    fetched: dict[str, set] = {}
    for line in out.stdout.splitlines():  # "Downloading pandas-3.1.1-cp311-....whl", "Processing /x/tqdm-4.70.1-....whl"
        words = line.strip().split()
        if len(words) >= 2 and words[0] in ("Downloading", "Processing") and words[1].endswith(".whl"):
            name, version = os.path.basename(words[1]).split("-")[:2]
            fetched.setdefault(name.lower(), set()).add(version)
    report["install"] = {"rc": out.returncode, "seconds": round(seconds), "folder_mb": round(folder_mb(target)),
                         "torch": torch, "wheels_fetched": sum(len(v) for v in fetched.values()),
                         "releases_tried_and_dropped": {k: sorted(v) for k, v in fetched.items() if len(v) > 1},
                         "last_lines": out.stdout.splitlines()[-3:] + out.stderr.splitlines()[-3:]}
    ok &= out.returncode == 0 and bool(torch) and "+cpu" in torch[0]
    ok &= not report["install"]["releases_tried_and_dropped"]  # pip did not backtrack through releases

    run_env = {k: v for k, v in env.items() if k != "PYTHONPATH"}
    run_env["PYTHONPATH"] = f"{plugins}{os.pathsep}{target}"
    predict = subprocess.run([SYSTEM_PYTHON, "-m", "ritm_qgis", "predict", "--image", str(CHIP), "--click",
                              "200,200,+", "--checkpoint", "aerial-finetuned-h18s", "--out-mask", str(WORK / "mask.png")],
                             env=run_env, cwd=WORK, capture_output=True, text=True)
    report["predict_with_the_folder"] = {"rc": predict.returncode, "said": (predict.stdout + predict.stderr)[-300:]}
    ok &= predict.returncode == 0 and (WORK / "mask.png").exists()

    kept = sorted(p.name for p in target.iterdir())
    for path in list(target.glob("tqdm*")):
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    out, seconds = deps("--install")
    fetched = [line.strip() for line in out.stdout.splitlines()
               if line.strip().startswith(("Collecting", "Downloading", "Processing", "Installing collected"))]
    report["reinstall_one"] = {"rc": out.returncode, "seconds": round(seconds), "pip_fetched": fetched,
                               "everything_else_kept": sorted(p.name for p in target.iterdir()) == kept}
    ok &= out.returncode == 0 and report["reinstall_one"]["everything_else_kept"]
    ok &= all("tqdm" in line for line in fetched if not line.startswith("Installing"))

    out, _ = deps("--uninstall")
    report["uninstall"] = {"rc": out.returncode, "said": out.stdout.strip(), "folder_gone": not target.exists()}
    ok &= out.returncode == 0 and not target.exists()
    report["ok"] = bool(ok)
    (WORK / "report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
