"""The held-out Kitsap quadrant as a georeferenced scene at 1.5 m, for ``evaluate --as-drawn`` (issue 22).

``../shared``'s INRIA kitsap11 is a PNG without georeference (1.5 m after the shared copy's
downsampling). The map tool needs a raster it can read around each click, so the top-left
500x500 quadrant (held out of every shipped model's training, docs/evaluation.md) is written as a
GeoTIFF in UTM zone 10N (EPSG:32610, where Kitsap County lies; an arbitrary origin) with 1.5 m
pixels, and its buildings (4-connected components of the ground truth, at least ``--min-pixels``)
as a GeoPackage vectorized with the engine. Evaluate with
``--dataset raster:OUT/scene.tif:OUT/scene.gpkg:buildings``. Usage::

    python scripts/make_kitsap_scene.py --out out/kitsap-scene
"""

from __future__ import annotations

import argparse
import os
import sys


sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None) -> int:
    import cv2
    import rasterio
    from affine import Affine

    from ritm_qgis.engine.geo.raster_io import RasterGrid
    from ritm_qgis.engine.geo.vectorize import vectorize_mask

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/work/shared/data")
    ap.add_argument("--out", default="out/kitsap-scene")
    ap.add_argument("--quadrant", type=int, default=500)
    ap.add_argument("--min-pixels", type=int, default=16)
    args = ap.parse_args(argv)
    root = os.path.join(args.data, "aerial", "inria_kitsap11_1.5m")
    bgr = cv2.imread(os.path.join(root, "kitsap11_rgb.png"), cv2.IMREAD_COLOR)[:args.quadrant, :args.quadrant]
    gt = cv2.imread(os.path.join(root, "kitsap11_gt.png"), cv2.IMREAD_GRAYSCALE)[:args.quadrant, :args.quadrant] > 127
    os.makedirs(args.out, exist_ok=True)
    h, w = gt.shape
    transform = Affine(1.5, 0, 520000.0, 0, -1.5, 5280000.0)
    with rasterio.open(os.path.join(args.out, "scene.tif"), "w", driver="GTiff", width=w, height=h, count=3,
                       dtype="uint8", crs="EPSG:32610", transform=transform) as dst:
        dst.write(bgr[:, :, ::-1].transpose(2, 0, 1))
    fp = vectorize_mask(gt, RasterGrid(rasterio.crs.CRS.from_epsg(32610), transform, w, h),
                        min_pixels=args.min_pixels)
    fp.to_file(os.path.join(args.out, "scene.gpkg"), layer="footprints")
    print(f"{args.out}/scene.tif: {w} x {h} px RGB, EPSG:32610, 1.5 m; {len(fp)} buildings")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
