"""Per-building held-out samples from a second place: INRIA kitsap11 (USA), held-out quadrant.

The top-left 500x500 quadrant of ``aerial/inria_kitsap11_1.5m`` (tiles ``kitsap11_[01]_[01]``) is
excluded from every shipped model's training (docs/training.md); SpaceNet Rio's img50-54
(``scripts/make_holdout_buildings.py``) is the first place. Each building (a 4-connected component
of the thresholded mask, at least ``--min-pixels``) becomes one window, as the Rio set does: its
bounding box plus 40 % per side, at least 64 px, cut at the quadrant's edge; that building 255,
everything else 0 (neighbours are background), in the ``grabcut:`` layout. ``--every K`` keeps
every K-th building (in row-major order of their first pixel), a fixed subset for a short run.

``--split train`` writes the other buildings instead, for training: those of the whole 1000x1000
image whose window lies entirely outside the held-out quadrant, resized to a longer side of
``--zoom`` px as the Rio training windows are (``make_holdout_buildings.py``).

    .venv/bin/python scripts/make_kitsap_holdout_buildings.py [--data ../shared/data] \
        [--out out/kitsap-buildings] [--every 1] [--split test|train] [--zoom 160]
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np


def window(stats_row, height: int, width: int):
    """The building's bounding box plus 40 % per side, at least 64 px, cut at the image's edge."""
    x, y, w, h = (int(v) for v in stats_row[:4])
    px, py = max(int(round(0.4 * w)), (64 - w + 1) // 2), max(int(round(0.4 * h)), (64 - h + 1) // 2)
    return max(0, x - px), max(0, y - py), min(width, x + w + px), min(height, y + h + py)


def build(data: str, out: str, every: int = 1, min_pixels: int = 16, quadrant: int = 500,
          split: str = "test", zoom: int | None = None) -> int:
    import cv2

    from make_holdout_buildings import zoomed

    root = os.path.join(data, "aerial", "inria_kitsap11_1.5m")
    bgr = cv2.imread(os.path.join(root, "kitsap11_rgb.png"), cv2.IMREAD_COLOR)
    gt = cv2.imread(os.path.join(root, "kitsap11_gt.png"), cv2.IMREAD_GRAYSCALE)
    if bgr is None or gt is None:
        raise SystemExit(f"kitsap11_rgb.png / kitsap11_gt.png not found under '{root}'")
    if split == "test":
        bgr, gt = bgr[:quadrant, :quadrant], gt[:quadrant, :quadrant]
    gt = gt > 127
    height, width = gt.shape
    n, labels, stats, _ = cv2.connectedComponentsWithStats(gt.astype(np.uint8), connectivity=4)
    for sub in ("images", "masks"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    kept = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= min_pixels]
    if split == "train":  # no pixel of the held-out quadrant in any training window
        kept = [i for i in kept if max(window(stats[i], height, width)[:2]) >= quadrant]
    kept = kept[::every]
    for i in kept:
        x0, y0, x1, y1 = window(stats[i], height, width)
        image = bgr[y0:y1, x0:x1]
        mask = np.where(labels[y0:y1, x0:x1] == i, 255, 0).astype(np.uint8)
        if zoom:
            image, mask = zoomed(image, mask, zoom)
        name = f"kitsap11_{'q00' if split == 'test' else 'train'}_b{i:03d}"
        cv2.imwrite(os.path.join(out, "images", name + ".png"), image)
        cv2.imwrite(os.path.join(out, "masks", name + ".png"), mask)
    return len(kept)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="../shared/data")
    p.add_argument("--out", default="out/kitsap-buildings")
    p.add_argument("--every", type=int, default=1, help="keep every K-th building (a fixed subset)")
    p.add_argument("--min-pixels", type=int, default=16)
    p.add_argument("--split", choices=("test", "train"), default="test",
                   help="test: the held-out quadrant; train: the buildings whose window lies outside it")
    p.add_argument("--zoom", type=int, default=None, help="resize each window to this longer side (px)")
    args = p.parse_args(argv)
    n = build(args.data, args.out, args.every, args.min_pixels, split=args.split, zoom=args.zoom)
    print(f"{n} buildings -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
