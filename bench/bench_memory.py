"""Benchmark: memory stays bounded on a 20000 x 20000 raster (windows, tiling, vectorizing).

    python bench/bench_memory.py [--size 20000]

Builds virtual rasters (VRT) that mosaic one small GeoTIFF many times -- 20000 x 20000 px without
20000 x 20000 px on disk -- and runs each stage in a fresh process, printing that process's peak
resident memory (ru_maxrss) next to the size the raster would take in memory if read whole:

1. ``imports``: the engine modules only (the floor);
2. ``read_rgb``: a 3-band uint16 mosaic read window by window (500 x 500) with the raster-wide
   2-98 % stretch (``raster_stretch`` decimated read), every window of the raster;
3. ``write_tiles``: the 3-band uint8 mosaic cut into 500 x 500 GeoTIFF tiles (1600 files, written
   to a temporary folder and removed afterwards);
4. ``vectorize_raster``: a building-mask mosaic (the bench_vectorize mask, 4 x 4 times) traced in
   bands of rows.

The baseline the ratio refers to is the memory a whole-raster approach needs: the raster read
whole (windows, tiles) or the mask plus its 2x upsampled copy (vectorizing in one pass).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

STAGE_CODE = {
    "imports": "",
    "read_rgb": """
from rasterio.windows import Window
st = raster_stretch(SRC)
n = 0
with open_raster(SRC) as ds:
    for r in range(0, ds.height, 500):
        for c in range(0, ds.width, 500):
            w = read_rgb(ds, Window(c, r, 500, 500), stretch=st)
            n += int(w.rgb[0, 0, 0] >= 0)
print("windows", n)
""",
    "write_tiles": """
res = write_tiles(SRC, OUT, size=500)
print("tiles", len(res.paths))
""",
    "vectorize_raster": """
gdf = vectorize_raster(SRC, simplify=0.3)
print("buildings", len(gdf))
""",
}

PRELUDE = """
import resource, sys, time
sys.path.insert(0, {root!r})
from ritm_qgis.engine.geo.raster_io import open_raster, raster_stretch, read_rgb
from ritm_qgis.engine.geo.tiling import write_tiles
from ritm_qgis.engine.geo.vectorize import vectorize_raster
SRC, OUT = {src!r}, {out!r}
t0 = time.perf_counter()
"""
EPILOGUE = """
print("seconds", round(time.perf_counter() - t0, 2))
print("peak_rss_mb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def write_mosaic_vrt(path: Path, tile: Path, n_tiles: int, tile_px: int, dtype: str, count: int,
                     transform: Affine, nodata=None) -> None:
    """A VRT of n_tiles x n_tiles copies of ``tile`` side by side."""
    size = n_tiles * tile_px
    vrt_dtype = {"uint8": "Byte", "uint16": "UInt16"}[dtype]
    gt = ", ".join(repr(float(v)) for v in transform.to_gdal())
    with rasterio.open(tile) as t:
        srs = t.crs.to_wkt()
    lines = [f'<VRTDataset rasterXSize="{size}" rasterYSize="{size}">',
             f"  <SRS>{srs.replace('&', '&amp;').replace('<', '&lt;')}</SRS>",
             f"  <GeoTransform>{gt}</GeoTransform>"]
    for b in range(1, count + 1):
        lines.append(f'  <VRTRasterBand dataType="{vrt_dtype}" band="{b}">')
        if nodata is not None:
            lines.append(f"    <NoDataValue>{nodata}</NoDataValue>")
        for i in range(n_tiles):
            for j in range(n_tiles):
                lines.append(
                    f'    <SimpleSource><SourceFilename relativeToVRT="0">{tile}</SourceFilename>'
                    f"<SourceBand>{b}</SourceBand>"
                    f'<SrcRect xOff="0" yOff="0" xSize="{tile_px}" ySize="{tile_px}"/>'
                    f'<DstRect xOff="{j * tile_px}" yOff="{i * tile_px}" xSize="{tile_px}" '
                    f'ySize="{tile_px}"/></SimpleSource>')
        lines.append("  </VRTRasterBand>")
    lines.append("</VRTDataset>")
    path.write_text("\n".join(lines))


def run_stage(name: str, src: Path, out: Path) -> dict:
    code = PRELUDE.format(root=str(ROOT), src=str(src), out=str(out)) + STAGE_CODE[name] + EPILOGUE
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"stage {name} failed:\n{proc.stderr}")
    vals = {}
    for line in proc.stdout.splitlines():
        k, v = line.split()
        vals[k] = float(v)
    return vals


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=20000)
    args = ap.parse_args()
    from bench_vectorize import make_mask

    transform = Affine(0.3, 0, 500000, 0, -0.3, 5000000)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        tp = 2000
        n = args.size // tp
        yy, xx = np.mgrid[0:tp, 0:tp].astype("float32")
        rgb16 = np.stack([(2000 + 1500 * np.sin(xx * f) * np.cos(yy * f)).astype("uint16")
                          for f in (0.01, 0.013, 0.017)])
        for name, data in (("t16.tif", rgb16), ("t8.tif", (rgb16 // 16).astype("uint8"))):
            with rasterio.open(tmp / name, "w", driver="GTiff", width=tp, height=tp, count=3,
                               dtype=data.dtype, crs="EPSG:32633", transform=transform,
                               tiled=True) as dst:
                dst.write(data)
        write_mosaic_vrt(tmp / "rgb16.vrt", tmp / "t16.tif", n, tp, "uint16", 3, transform)
        write_mosaic_vrt(tmp / "rgb8.vrt", tmp / "t8.tif", n, tp, "uint8", 3, transform)
        mp = 5000
        mask = make_mask(mp, 4000)
        with rasterio.open(tmp / "m.tif", "w", driver="GTiff", width=mp, height=mp, count=1,
                           dtype="uint8", crs="EPSG:32633", transform=transform, nodata=0,
                           tiled=True, compress="deflate") as dst:
            dst.write(mask, 1)
        write_mosaic_vrt(tmp / "mask.vrt", tmp / "m.tif", args.size // mp, mp, "uint8", 1,
                         transform, nodata=0)
        print(f"inputs built in {time.perf_counter() - t0:.1f} s; raster {args.size} x {args.size}")
        whole = {
            "imports": 0,
            "read_rgb": args.size**2 * 3 * 2,
            "write_tiles": args.size**2 * 3,
            "vectorize_raster": args.size**2 * 5,  # mask + its 2x upsampled copy, traced whole
        }
        srcs = {"imports": tmp / "rgb8.vrt", "read_rgb": tmp / "rgb16.vrt",
                "write_tiles": tmp / "rgb8.vrt", "vectorize_raster": tmp / "mask.vrt"}
        floor = 0.0
        for stage in ("imports", "read_rgb", "write_tiles", "vectorize_raster"):
            out = tmp / f"out_{stage}"
            vals = run_stage(stage, srcs[stage], out)
            extra = {k: int(v) for k, v in vals.items() if k not in ("seconds", "peak_rss_mb")}
            line = (f"{stage:17s} peak RSS {vals['peak_rss_mb']:7.0f} MB  {vals['seconds']:6.1f} s"
                    f"  {extra if extra else ''}")
            if stage == "imports":
                floor = vals["peak_rss_mb"]
            else:
                mb = whole[stage] / 2**20
                used = vals["peak_rss_mb"] - floor
                line += (f"| above imports {used:5.0f} MB; whole-raster approach {mb:6.0f} MB, "
                         f"RATIO whole/peak = {mb / vals['peak_rss_mb']:.1f}x")
            print(line, flush=True)
            if out.exists():
                for f in out.iterdir():
                    f.unlink()


if __name__ == "__main__":
    main()
