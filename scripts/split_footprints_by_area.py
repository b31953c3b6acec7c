"""Split a footprint layer by area: buildings west of a vertical line train, east of it test (issue 23).

The measurement of ``ritm-qgis adapt`` needs a scene split by area with no building in both parts.
Buildings whose bounds come closer to the line than ``--gap`` metres (or the CRS's unit) are in
neither part, so a training window (the building's box + 40 % per side) does not show a test
building as its target's neighbour either. ``--line`` is the line's x as a fraction of the
layer's extent (0.5: the middle). Writes ``OUT/train.gpkg`` and ``OUT/test.gpkg``::

    python scripts/split_footprints_by_area.py out/kitsap-full/scene.gpkg --out out/kitsap-full --gap 60
"""

from __future__ import annotations

import argparse
import os


def main(argv=None) -> int:
    import geopandas as gpd

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("footprints")
    p.add_argument("--out", required=True)
    p.add_argument("--line", type=float, default=0.5)
    p.add_argument("--gap", type=float, default=60.0)
    a = p.parse_args(argv)
    fp = gpd.read_file(a.footprints)
    x0, _, x1, _ = fp.total_bounds
    x = x0 + a.line * (x1 - x0)
    b = fp.bounds
    train, test = fp[b.maxx < x - a.gap], fp[b.minx > x + a.gap]
    os.makedirs(a.out, exist_ok=True)
    train.to_file(os.path.join(a.out, "train.gpkg"), layer="footprints")
    test.to_file(os.path.join(a.out, "test.gpkg"), layer="footprints")
    print(f"{len(train)} buildings west of x={x:.1f} - {a.gap}, {len(test)} east of it + {a.gap}; "
          f"{len(fp) - len(train) - len(test)} in neither")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
