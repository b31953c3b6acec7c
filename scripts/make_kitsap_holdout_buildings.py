"""Per-building held-out samples from a second place: INRIA kitsap11 (USA), held-out quadrant.

The top-left 500x500 quadrant of ``aerial/inria_kitsap11_1.5m`` (tiles ``kitsap11_[01]_[01]``) is
excluded from every shipped model's training (docs/training.md); SpaceNet Rio's img50-54
(``scripts/make_holdout_buildings.py``) is the first place. Each building (a 4-connected component
of the thresholded mask, at least ``--min-pixels``) becomes one window, as the Rio set does: its
bounding box plus 40 % per side, at least 64 px, cut at the quadrant's edge; that building 255,
everything else 0 (neighbours are background), in the ``grabcut:`` layout. ``--every K`` keeps
every K-th building (in row-major order of their first pixel), a fixed subset for a short run.

    .venv/bin/python scripts/make_kitsap_holdout_buildings.py [--data ../shared/data] \
        [--out out/kitsap-buildings] [--every 1]
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np


def build(data: str, out: str, every: int = 1, min_pixels: int = 16, quadrant: int = 500) -> int:
    import cv2

    root = os.path.join(data, "aerial", "inria_kitsap11_1.5m")
    bgr = cv2.imread(os.path.join(root, "kitsap11_rgb.png"), cv2.IMREAD_COLOR)
    gt = cv2.imread(os.path.join(root, "kitsap11_gt.png"), cv2.IMREAD_GRAYSCALE)
    if bgr is None or gt is None:
        raise SystemExit(f"kitsap11_rgb.png / kitsap11_gt.png not found under '{root}'")
    bgr, gt = bgr[:quadrant, :quadrant], gt[:quadrant, :quadrant] > 127
    n, labels, stats, _ = cv2.connectedComponentsWithStats(gt.astype(np.uint8), connectivity=4)
    for sub in ("images", "masks"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    kept = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= min_pixels][::every]
    for i in kept:
        x, y, w, h = (int(v) for v in stats[i, :4])
        px, py = max(int(round(0.4 * w)), (64 - w + 1) // 2), max(int(round(0.4 * h)), (64 - h + 1) // 2)
        x0, y0 = max(0, x - px), max(0, y - py)
        x1, y1 = min(quadrant, x + w + px), min(quadrant, y + h + py)
        name = f"kitsap11_q00_b{i:03d}"
        cv2.imwrite(os.path.join(out, "images", name + ".png"), bgr[y0:y1, x0:x1])
        cv2.imwrite(os.path.join(out, "masks", name + ".png"),
                    np.where(labels[y0:y1, x0:x1] == i, 255, 0).astype(np.uint8))
    return len(kept)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="../shared/data")
    p.add_argument("--out", default="out/kitsap-buildings")
    p.add_argument("--every", type=int, default=1, help="keep every K-th building (a fixed subset)")
    p.add_argument("--min-pixels", type=int, default=16)
    args = p.parse_args(argv)
    n = build(args.data, args.out, args.every, args.min_pixels)
    print(f"{n} buildings -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
