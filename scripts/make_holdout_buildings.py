"""Rebuild the per-building aerial evaluation and training sets from ../shared/data (reproducible).

The issue-6 held-out aerial set (docs/training.md, "Held-out aerial set") is evaluated per *tile*
(the paper's protocol, ``out/holdout``). This script adds the map-tool user's level: one sample
per *building*, that building alone is the target, its neighbours are background (the engine's
``raster:...:buildings`` mode, ``ritm_qgis/engine/data/geo_dataset.py``):

1. every SpaceNet Rio mask (GeoTIFF, same grid as its image) is vectorized with the engine's
   ``vectorize_raster`` into ``OUT/footprints/imgNN.gpkg`` (exact pixel outlines, EPSG:4326);
   polygons under ``--min-pixels`` (16 px = 4 m^2: slivers of buildings cut by the chip edge)
   are dropped. Buildings whose pixels touch in the mask become one polygon (4-connectivity).
2. ``raster_footprint_dataset(image, footprints, mode="buildings")`` gives one window per building
   (its bounding box + 40 % per side, at least 64 px); the samples are written in the ``grabcut:``
   mask convention so the ignore mask survives: 255 the building, 0 background (other buildings
   included), 128 ignored (pixels past the chip edge and nodata).

   - ``OUT/test``  -- held-out chips img50-img54 (the same chips as the tile-level held-out set);
   - ``OUT/train`` -- the training chips with buildings (img55-57, img63, img64); never a held-out chip;
   - ``OUT/val``   -- the windows of img63 and img64 again, at 0.5 m: the validation set on which
     hyperparameters (the training scale) are chosen, by runs that train on img55-57 only
     (``--include '^img5[5-7]_'``); the final model is then refit on all training chips;
   - ``OUT/train-zoom`` -- the same training windows resized so that their longer side is
     ``--zoom`` pixels (160, the scale chosen on the validation set; image bilinear, mask nearest).
     At evaluation, from the second click on, RITM's zoom-in shows the network the whole (small)
     window enlarged to a longer side of 400 px, so a building is seen larger than at 0.5 m; these
     copies show the network buildings nearer that scale, whole inside a 160x240 training crop.
     The shipped per-building models were fine-tuned on these copies only (docs/training.md:
     native-scale windows and copies where the building filled the crop gave worse models).

Evaluate with ``ritm-qgis evaluate --dataset grabcut:OUT/test ...``; train with
``--data grabcut:OUT/train``. Usage::

    .venv/bin/python scripts/make_holdout_buildings.py [--data ../shared/data] [--out out/aerial-buildings]
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import sys

import numpy as np

HELD_OUT = re.compile(r"img5[0-4]$")  # the fixed held-out SpaceNet chips (docs/training.md)
VALIDATION = re.compile(r"img6[34]$")  # training chips set aside to choose hyperparameters
PREFIX = "3band_013022223130_Public_"


def chip_name(path: str) -> str:
    """'.../3band_013022223130_Public_img50.tif' -> 'img50'."""
    return os.path.splitext(os.path.basename(path))[0].replace(PREFIX, "")


def vectorize_chip(mask_path: str, out_gpkg: str, min_pixels: int = 16) -> int:
    """Footprints of one SpaceNet mask GeoTIFF -> GeoPackage; returns the number of buildings."""
    from ritm_qgis.engine.geo.vector_io import write_gpkg
    from ritm_qgis.engine.geo.vectorize import vectorize_raster

    gdf = vectorize_raster(mask_path, min_pixels=min_pixels)
    if len(gdf) == 0:
        return 0
    write_gpkg(gdf, out_gpkg, layer="buildings")
    return len(gdf)


def grabcut_mask(gt: np.ndarray, ignore: np.ndarray | None) -> np.ndarray:
    """0 background, 255 object, 128 ignored (the grabcut: reader's convention)."""
    m = np.where(gt, 255, 0).astype(np.uint8)
    if ignore is not None:
        m[ignore & ~gt] = 128
    return m


def zoomed(image: np.ndarray, mask: np.ndarray, longer: int):
    """Resize a window so that its longer side is ``longer`` px (image bilinear, mask nearest)."""
    import cv2

    h, w = mask.shape
    f = longer / max(h, w)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    return (cv2.resize(image, size, interpolation=cv2.INTER_LINEAR),
            cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST))


def export_buildings(image_path: str, gpkg: str, out: str, prefix: str, zoom_out: str | None = None,
                     zoom: int = 160) -> int:
    """One image/mask pair per building of ``gpkg`` on ``image_path`` into OUT/{images,masks}
    (and a copy resized to a longer side of ``zoom`` px into ZOOM_OUT/{images,masks})."""
    import cv2

    from ritm_qgis.engine.data.geo_dataset import raster_footprint_dataset

    outs = [out] + ([zoom_out] if zoom_out else [])
    for o in outs:
        os.makedirs(os.path.join(o, "images"), exist_ok=True)
        os.makedirs(os.path.join(o, "masks"), exist_ok=True)
    ds = raster_footprint_dataset(image_path, gpkg, mode="buildings")
    n = 0
    for s in ds:
        if not s.gt.any():  # cannot happen for a vectorized mask, but never write an empty target
            continue
        name = f"{prefix}_b{int(s.meta['building_id']):03d}"
        bgr, mask = np.ascontiguousarray(s.image[:, :, ::-1]), grabcut_mask(s.gt, s.ignore)
        cv2.imwrite(os.path.join(out, "images", name + ".png"), bgr)
        cv2.imwrite(os.path.join(out, "masks", name + ".png"), mask)
        if zoom_out:
            zb, zm = zoomed(bgr, mask, zoom)
            cv2.imwrite(os.path.join(zoom_out, "images", name + ".png"), zb)
            cv2.imwrite(os.path.join(zoom_out, "masks", name + ".png"), zm)
        n += 1
    return n


def build(data: str, out: str, min_pixels: int = 16, zoom: int = 160) -> dict:
    root = os.path.join(data, "aerial", "spacenet_rio")
    masks = sorted(glob.glob(os.path.join(root, "masks", "*.tif")))
    if not masks:
        raise SystemExit(f"no SpaceNet masks under '{root}/masks'")
    os.makedirs(os.path.join(out, "footprints"), exist_ok=True)
    counts = {"test": {}, "train": {}, "val": {}}
    for mask_path in masks:
        chip = chip_name(mask_path)
        gpkg = os.path.join(out, "footprints", chip + ".gpkg")
        n = vectorize_chip(mask_path, gpkg, min_pixels)
        if n == 0:
            continue  # img58-img62: no buildings
        split = "test" if HELD_OUT.search(chip) else "train"
        image_path = os.path.join(root, "images", os.path.basename(mask_path))
        zoom_out = os.path.join(out, "train-zoom") if split == "train" else None  # never the test chips
        counts[split][chip] = export_buildings(image_path, gpkg, os.path.join(out, split), chip, zoom_out, zoom)
        if VALIDATION.search(chip):
            counts["val"][chip] = export_buildings(image_path, gpkg, os.path.join(out, "val"), chip)
    return counts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="../shared/data")
    p.add_argument("--out", default="out/aerial-buildings")
    p.add_argument("--min-pixels", type=int, default=16)
    p.add_argument("--zoom", type=int, default=160, help="longer side of the train-zoom copies (px; 160 was chosen "
                   "on the validation set)")
    a = p.parse_args(argv)
    for split in ("test", "train", "train-zoom", "val"):  # rebuild from nothing: no stale samples
        for sub in ("images", "masks"):
            for f in glob.glob(os.path.join(a.out, split, sub, "*.png")):
                os.remove(f)
    counts = build(a.data, a.out, a.min_pixels, a.zoom)
    for split, per_chip in counts.items():
        print(f"{split}: {sum(per_chip.values())} buildings "
              + ", ".join(f"{k} {v}" for k, v in per_chip.items()) + f" -> {os.path.join(a.out, split)}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    sys.exit(main())
