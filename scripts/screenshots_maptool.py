"""Screenshots of the map tool in the real QGIS desktop under Xvfb, for docs/canvas.md.

    .venv/bin/python scripts/screenshots_maptool.py [--out docs] [--model aerial-finetuned-h18s]

Makes a 1-band uint16 scene with nodata from the SpaceNet Rio chip img50 (its grey levels x 16,
a nodata strip, two extreme pixels, so QGIS's Min/Max and the 2-98 % stretches differ) or, without
the shared data, from the project's synthetic scene; then starts ``/usr/bin/qgis`` under
``xvfb-run`` with a fresh profile and runs ``tests/qgis_scripts/maptool_screenshots.py`` inside
it (``--code``), which starts the plugin, chooses a model in the dock (screenshot of the dock
while busy), clicks buildings with real mouse events, accepts them with Enter, and saves the main
window with the accepted outlines. Writes ``maptool_busy.png`` and ``maptool_uint16_outlines.png``.
"""

from __future__ import annotations

import argparse
import os
import site
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHIP = os.path.join("aerial", "spacenet_rio", "images", "3band_013022223130_Public_img50.tif")
CHIP_MASK = os.path.join("aerial", "spacenet_rio", "masks", "3band_013022223130_Public_img50.tif")


def make_uint16_scene(folder: str, shared: str) -> tuple[str, str]:
    """(uint16 raster, 0/255 building mask on its grid)."""
    import rasterio

    chip = os.path.join(shared, CHIP)
    if os.path.exists(chip):
        with rasterio.open(chip) as src:
            grey = src.read().astype(np.float64).mean(axis=0)
            profile = src.profile
        with rasterio.open(os.path.join(shared, CHIP_MASK)) as m:
            mask = m.read(1)
    else:
        from ritm_qgis.engine.geo.synthetic_scene import make_scene, write_scene

        sc = make_scene(size=512, n_buildings=12, seed=3)
        tmp = os.path.join(folder, "synthetic.tif")
        write_scene(sc, tmp)
        with rasterio.open(tmp) as src:
            grey = src.read().astype(np.float64).mean(axis=0)
            profile = src.profile
        mask = sc.mask.astype(np.uint8) * 255
    band = np.clip(grey * 16 + 60, 60, 5000).astype(np.uint16)
    band[3, 40], band[4, 60] = 59, 5982  # the extremes QGIS's Min/Max stretch uses
    band[:, :20] = 0  # nodata
    profile.update(count=1, dtype="uint16", nodata=0, photometric="minisblack")
    raster = os.path.join(folder, "city_uint16.tif")
    with rasterio.open(raster, "w", **profile) as dst:
        dst.write(band[None])
    mask_path = os.path.join(folder, "buildings.tif")
    profile.update(dtype="uint8", nodata=None)
    with rasterio.open(mask_path, "w", **profile) as dst:
        dst.write((mask > 0).astype(np.uint8)[None] * 255)
    return raster, mask_path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "docs"))
    ap.add_argument("--model", default="aerial-finetuned-h18s",
                    help="model chosen in the dock (default: the shipped hrnet18s aerial model)")
    ap.add_argument("--shared", default=os.environ.get("SHARED_DATA", os.path.join(ROOT, "..", "shared", "data")))
    args = ap.parse_args(argv)
    work = tempfile.mkdtemp(prefix="ritm_shots_")
    os.makedirs(args.out, exist_ok=True)
    raster, mask = make_uint16_scene(work, args.shared)
    env = dict(os.environ, RITM_SHOT_RASTER=raster, RITM_SHOT_MASK=mask, RITM_SHOT_OUT=os.path.abspath(args.out),
               RITM_SHOT_MODEL=args.model, RITM_SHOT_SITE=site.getsitepackages()[0], RITM_SHOT_WORK=work)
    env.pop("QT_QPA_PLATFORM", None)  # a real X display (Xvfb), not offscreen
    # the venv's packages first, as for qgis_process in docs/processing.md (its numpy, pandas, sympy, torch)
    env["PYTHONPATH"] = os.pathsep.join([site.getsitepackages()[0], ROOT] + [env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    code = os.path.join(ROOT, "tests", "qgis_scripts", "maptool_screenshots.py")
    cmd = ["xvfb-run", "-a", "-s", "-screen 0 1500x950x24", "qgis", "--nologo", "--noversioncheck",
           "--noplugins", "--profiles-path", os.path.join(work, "profiles"), "--code", code]
    proc = subprocess.run(cmd, env=env, timeout=600, capture_output=True, text=True)
    log = os.path.join(work, "log.txt")
    with open(os.path.join(work, "qgis_output.txt"), "w") as f:
        f.write(proc.stdout + proc.stderr)
    print(open(log).read() if os.path.exists(log) else "")
    print(f"QGIS's own output: {os.path.join(work, 'qgis_output.txt')}")
    shots = [os.path.join(args.out, n) for n in ("maptool_busy.png", "maptool_uint16_outlines.png")]
    missing = [s for s in shots if not os.path.exists(s)]
    if missing:
        print(f"screenshots missing: {missing} (QGIS exit code {proc.returncode})", file=sys.stderr)
        return 1
    print("wrote", ", ".join(shots))
    return 0


if __name__ == "__main__":
    sys.exit(main())
