"""Benchmark: vectorize a 5000 x 5000 building mask vs gdal_polygonize.py on the same file.

    python bench/bench_vectorize.py [--size 5000] [--buildings 3000] [--repeat 3]

Generates a georeferenced mask (UTM, 0.3 m, uint8 0/255, nodata 0 so that gdal_polygonize.py
emits only the building polygons, as we do) with a few thousand rotated rectangles and L-shapes,
then times, best of ``--repeat``:

* baseline A: ``gdal_polygonize.py mask.tif -f GPKG out.gpkg`` (no simplification);
* baseline B: A followed by ``ogr2ogr -simplify`` (the same simplification as ours);
* ours, in-process (how the QGIS algorithm and the CLI call it): read the raster, vectorize,
  simplify (0.3 m), attributes area_m2/perimeter_m, write a GeoPackage (vector_io.write_gpkg);
* ours, as a fresh Python process doing the same (includes importing geopandas & co).

Prints each time and the ratio baseline / ours (> 1 means ours is faster).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import rasterio
from affine import Affine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ritm_qgis.engine.geo.vector_io import write_gpkg  # noqa: E402
from ritm_qgis.engine.geo.vectorize import vectorize_raster  # noqa: E402

from timing import best_of_interleaved  # noqa: E402

SIMPLIFY = 0.3  # metres (1 pixel)


def make_mask(n: int, count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m = np.zeros((n, n), np.uint8)
    for _ in range(count):
        cx, cy = rng.uniform(20, n - 20, 2)
        w, h = rng.uniform(8, 40, 2)
        a = rng.uniform(0, 180)
        pts = cv2.boxPoints(((cx, cy), (w, h), a))
        cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 255)
        if rng.random() < 0.3:  # an L: a second wing on one side
            c = (cx + w / 2 * np.cos(np.radians(a)), cy + w / 2 * np.sin(np.radians(a)))
            pts = cv2.boxPoints((c, (w / 2, h * 1.5), a))
            cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 255)
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=5000)
    ap.add_argument("--buildings", type=int, default=4000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    polygonize = shutil.which("gdal_polygonize.py")
    ogr2ogr = shutil.which("ogr2ogr")
    if not polygonize or not ogr2ogr:
        sys.exit("gdal_polygonize.py / ogr2ogr not found (apt-get install gdal-bin python3-gdal)")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        mask = make_mask(args.size, args.buildings)
        src = tmp / "mask.tif"
        with rasterio.open(src, "w", driver="GTiff", width=args.size, height=args.size, count=1,
                           dtype="uint8", crs="EPSG:32633", nodata=0,
                           transform=Affine(0.3, 0, 500000, 0, -0.3, 5000000)) as dst:
            dst.write(mask, 1)
        print(f"mask {args.size}x{args.size}, foreground {100 * (mask > 0).mean():.1f} %")

        def gdal_a():
            out = tmp / "gdal.gpkg"
            out.unlink(missing_ok=True)
            subprocess.run([polygonize, "-q", str(src),
                            "-f", "GPKG", str(out)], check=True)

        def gdal_b():
            gdal_a()
            out = tmp / "gdal_simpl.gpkg"
            out.unlink(missing_ok=True)
            subprocess.run([ogr2ogr, "-simplify", str(SIMPLIFY), "-f", "GPKG", str(out),
                            str(tmp / "gdal.gpkg")], check=True)

        def ours():
            gdf = vectorize_raster(src, simplify=SIMPLIFY)
            write_gpkg(gdf, tmp / "ours.gpkg", layer="buildings")
            return gdf

        code = (f"import sys; sys.path.insert(0, {str(ROOT)!r});"
                "from ritm_qgis.engine.geo.vectorize import vectorize_raster;"
                "from ritm_qgis.engine.geo.vector_io import write_gpkg;"
                f"write_gpkg(vectorize_raster({str(src)!r}, simplify={SIMPLIFY}),"
                f" {str(tmp / 'ours_proc.gpkg')!r})")

        def ours_process():
            subprocess.run([sys.executable, "-c", code], check=True)

        gdf = ours()
        import pyogrio

        t, _ = best_of_interleaved(
            {"a": gdal_a, "b": gdal_b, "ours": ours, "proc": ours_process}, args.repeat)
        t_a, t_b, t_ours, t_proc = t["a"], t["b"], t["ours"], t["proc"]
        n_gdal = pyogrio.read_info(tmp / "gdal.gpkg")["features"]
        print(f"buildings: ours {len(gdf)}, gdal_polygonize {n_gdal}")
        print(f"gdal_polygonize.py                      {t_a:7.3f} s")
        print(f"gdal_polygonize.py + ogr2ogr -simplify  {t_b:7.3f} s")
        print(f"ours in-process (vectorize+simplify+attrs+gpkg) {t_ours:7.3f} s")
        print(f"ours as a fresh python process          {t_proc:7.3f} s")
        print(f"RATIO gdal_polygonize / ours(in-process)            = {t_a / t_ours:5.2f}x")
        print(f"RATIO (gdal_polygonize+simplify) / ours(in-process) = {t_b / t_ours:5.2f}x")
        print(f"RATIO gdal_polygonize / ours(fresh process)         = {t_a / t_proc:5.2f}x")


if __name__ == "__main__":
    main()
