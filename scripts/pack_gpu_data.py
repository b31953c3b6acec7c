"""Copy the data a GPU run needs into one small folder that can travel with the working tree.

A leased GPU machine receives only the repository (64 MiB at most, ``../shared`` stays behind),
so ``scripts/gpu_checks.sh`` reads its data from this folder (ignored by git, named in the lease's
``carry``):

- ``davis/``: the 345 natural images of ``../shared/data/davis``, JPEGs re-encoded at quality 85
  (43 MB -> about half), masks unchanged;
- ``aerial/test``: the 186 held-out buildings (``out/aerial-buildings/test``), PNG unchanged;
- ``aerial/train-zoom``: the 329 training buildings enlarged to the chosen training scale
  (``out/aerial-buildings-zZOOM/train-zoom`` from ``scripts/make_holdout_buildings.py --zoom ZOOM``),
  images as JPEG quality 95, masks PNG unchanged.

    .venv/bin/python scripts/pack_gpu_data.py --zoom 240 [--out .device-data]
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import sys

import cv2


def copy_pairs(src: str, dst: str, jpeg_quality: int | None) -> int:
    os.makedirs(os.path.join(dst, "images"), exist_ok=True)
    os.makedirs(os.path.join(dst, "masks"), exist_ok=True)
    n = 0
    for path in sorted(glob.glob(os.path.join(src, "images", "*"))):
        stem = os.path.splitext(os.path.basename(path))[0]
        if jpeg_quality is None:
            shutil.copy(path, os.path.join(dst, "images", os.path.basename(path)))
        else:
            image = cv2.imread(path, cv2.IMREAD_COLOR)
            cv2.imwrite(os.path.join(dst, "images", stem + ".jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
        n += 1
    for path in glob.glob(os.path.join(src, "masks", "*")):
        shutil.copy(path, os.path.join(dst, "masks", os.path.basename(path)))
    return n


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--zoom", type=int, required=True, help="training scale chosen on the validation set (px)")
    p.add_argument("--data", default="../shared/data")
    p.add_argument("--buildings", default="out/aerial-buildings", help="make_holdout_buildings.py output")
    p.add_argument("--out", default=".device-data")
    a = p.parse_args(argv)
    zoomed = f"{a.buildings}-z{a.zoom}/train-zoom"
    for folder in (os.path.join(a.data, "davis"), os.path.join(a.buildings, "test"), zoomed):
        if not os.path.isdir(os.path.join(folder, "images")):
            sys.exit(f"'{folder}/images' is missing: run scripts/make_holdout_buildings.py "
                     f"(with --zoom {a.zoom} --out {a.buildings}-z{a.zoom} for the enlarged copies) first")
    shutil.rmtree(a.out, ignore_errors=True)
    counts = {
        "davis": copy_pairs(os.path.join(a.data, "davis"), os.path.join(a.out, "davis"), 85),
        "aerial/test": copy_pairs(os.path.join(a.buildings, "test"), os.path.join(a.out, "aerial", "test"), None),
        "aerial/train-zoom": copy_pairs(zoomed, os.path.join(a.out, "aerial", "train-zoom"), 95),
    }
    size = sum(os.path.getsize(f) for f in glob.glob(os.path.join(a.out, "**", "*"), recursive=True)
               if os.path.isfile(f))
    print(", ".join(f"{k} {v}" for k, v in counts.items()) + f"; {size / 2**20:.1f} MiB in {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
