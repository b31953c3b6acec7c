"""A held-out scene in none of ../shared's formats (issue 22): 1-band uint16, nodata, UTM, 0.6 m.

From one held-out SpaceNet Rio chip (RGB uint8, EPSG:4326, 0.5 m) and its footprints
(``scripts/make_holdout_buildings.py``): the chip is reprojected to UTM zone 23S (EPSG:32723) at
0.6 m (bilinear), turned into one grey band stored as uint16 the way a 16-bit sensor product is
(about 200..3300, a few saturated pixels at 16000 so that min/max and 2-98 % stretches differ),
with nodata 0 where the reprojection has no data and in a 24-pixel strip on the left. The
footprints are reprojected to the same CRS. Evaluate with
``--dataset raster:OUT/scene.tif:OUT/scene.gpkg:buildings``. Usage::

    python scripts/make_uint16_scene.py --chip img53 --out out/uint16-scene
"""

from __future__ import annotations

import argparse
import glob
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None) -> int:
    import geopandas as gpd
    import rasterio
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/work/shared/data")
    ap.add_argument("--footprints", default="out/aerial-buildings/footprints")
    ap.add_argument("--chip", default="img53")
    ap.add_argument("--crs", default="EPSG:32723")
    ap.add_argument("--res", type=float, default=0.6)
    ap.add_argument("--out", default="out/uint16-scene")
    args = ap.parse_args(argv)

    image = glob.glob(os.path.join(args.data, "aerial", "spacenet_rio", "images", f"*_{args.chip}.tif"))[0]
    os.makedirs(args.out, exist_ok=True)
    with rasterio.open(image) as src:
        rgb = src.read().astype(np.float32)
        grey = 0.3 * rgb[0] + 0.59 * rgb[1] + 0.11 * rgb[2]
        valid = (rgb > 0).any(axis=0)
        transform, width, height = calculate_default_transform(src.crs, args.crs, src.width, src.height,
                                                               *src.bounds, resolution=args.res)
        band = np.zeros((height, width), np.float32)
        reproject(np.where(valid, grey * 12.0 + 200.0, 0).astype(np.float32), band, src_transform=src.transform,
                  src_crs=src.crs, src_nodata=0, dst_transform=transform, dst_crs=args.crs, dst_nodata=0,
                  resampling=Resampling.bilinear)
    out = np.clip(np.round(band), 0, 65535).astype(np.uint16)
    rng = np.random.default_rng(0)
    hot = rng.integers(0, out.size, out.size // 2000)
    out.flat[hot] = np.where(out.flat[hot] > 0, 16000, 0)
    out[:, :24] = 0
    profile = dict(driver="GTiff", width=width, height=height, count=1, dtype="uint16", crs=args.crs,
                   transform=transform, nodata=0, tiled=True, blockxsize=256, blockysize=256, compress="deflate")
    with rasterio.open(os.path.join(args.out, "scene.tif"), "w", **profile) as dst:
        dst.write(out, 1)
    fp = gpd.read_file(os.path.join(args.footprints, f"{args.chip}.gpkg")).to_crs(args.crs)
    fp.to_file(os.path.join(args.out, "scene.gpkg"), layer="footprints")
    print(f"{args.out}/scene.tif: {width} x {height} px uint16, {args.crs}, {args.res} m; {len(fp)} buildings")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
