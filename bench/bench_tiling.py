"""Benchmark: tile a 5000 x 5000 3-band GeoTIFF into 100 tiles vs gdal_retile.py.

    python bench/bench_tiling.py [--size 5000] [--tile 500] [--repeat 3]

Generates a georeferenced RGB uint8 GeoTIFF (UTM, 0.3 m, uncompressed, smooth texture), then
times, best of ``--repeat``, writing (size/tile)^2 uncompressed GeoTIFF tiles with

* baseline: ``gdal_retile.py -ps 500 500 -targetDir DIR scene.tif``;
* ours in-process (how the QGIS algorithm and the CLI call it): ``tiling.write_tiles`` (atomic
  temp + rename per tile, names ``{stem}_{row}_{col}``), also with the tile-index GeoPackage;
* ours as a fresh Python process (includes the imports).

Prints each time and the ratio baseline / ours (> 1 means ours is faster); the tiles' pixels are
compared with gdal_retile's for one tile as a sanity check.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ritm_qgis.engine.geo.tiling import write_tiles  # noqa: E402

from timing import best_of_interleaved  # noqa: E402


def make_scene(path: Path, n: int) -> None:
    yy, xx = np.mgrid[0:n, 0:n].astype("float32")
    with rasterio.open(path, "w", driver="GTiff", width=n, height=n, count=3, dtype="uint8",
                       crs="EPSG:32633", transform=Affine(0.3, 0, 500000, 0, -0.3, 5000000),
                       photometric="RGB") as dst:
        for b, f in enumerate((0.01, 0.013, 0.017), start=1):
            band = 127 + 120 * np.sin(xx * f) * np.cos(yy * f * 0.7)
            dst.write(band.astype("uint8"), b)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=5000)
    ap.add_argument("--tile", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    retile = shutil.which("gdal_retile.py")
    if not retile:
        sys.exit("gdal_retile.py not found (apt-get install gdal-bin python3-gdal)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = tmp / "scene.tif"
        make_scene(src, args.size)

        def fresh(name):
            d = tmp / name
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir()
            return d

        def gdal():
            d = fresh("gdal")
            subprocess.run([retile, "-q", "-ps", str(args.tile), str(args.tile), "-targetDir",
                            str(d), str(src)], check=True)

        def ours():
            return write_tiles(src, fresh("ours"), size=args.tile, edge="drop")

        def ours_index():
            d = fresh("ours_idx")
            return write_tiles(src, d, size=args.tile, edge="drop", index_path=d / "index.gpkg")

        code = (f"import sys; sys.path.insert(0, {str(ROOT)!r});"
                "from ritm_qgis.engine.geo.tiling import write_tiles;"
                f"write_tiles({str(src)!r}, {str(tmp / 'proc')!r}, size={args.tile})")

        def ours_process():
            fresh("proc")
            subprocess.run([sys.executable, "-c", code], check=True)

        t, _ = best_of_interleaved(
            {"gdal": gdal, "ours": ours, "idx": ours_index, "proc": ours_process}, args.repeat)
        t_gdal, t_ours, t_idx, t_proc = t["gdal"], t["ours"], t["idx"], t["proc"]
        n_gdal = len(list((tmp / "gdal").glob("*.tif")))
        n_ours = len(list((tmp / "ours").glob("*.tif")))
        # sanity: gdal_retile names tiles 1-based (zero-padded) scene_{row+1}_{col+1}.tif
        g = next(p for p in (tmp / "gdal").glob("scene_*2_*3.tif")
                 if [int(v) for v in p.stem.split("_")[1:]] == [2, 3])
        with rasterio.open(g) as a, \
                rasterio.open(tmp / "ours" / "scene_1_2.tif") as b:
            same = np.array_equal(a.read(), b.read()) and a.transform == b.transform
        print(f"tiles: ours {n_ours}, gdal_retile {n_gdal}; identical pixels+transform: {same}")
        print(f"gdal_retile.py                  {t_gdal:7.3f} s")
        print(f"ours in-process                 {t_ours:7.3f} s")
        print(f"ours in-process + index .gpkg   {t_idx:7.3f} s")
        print(f"ours as a fresh python process  {t_proc:7.3f} s")
        print(f"RATIO gdal_retile / ours(in-process)        = {t_gdal / t_ours:5.2f}x")
        print(f"RATIO gdal_retile / ours(in-process+index)  = {t_gdal / t_idx:5.2f}x")
        print(f"RATIO gdal_retile / ours(fresh process)     = {t_gdal / t_proc:5.2f}x")


if __name__ == "__main__":
    main()
