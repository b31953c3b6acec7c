"""``ritm-qgis make-scene``: write the synthetic georeferenced aerial-like scene (demo and tests)."""

from __future__ import annotations

import os

HELP = "Write a synthetic georeferenced aerial-like scene: image GeoTIFF, mask GeoTIFF and footprints GeoPackage."


def add_arguments(p):
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--size", type=int, default=512, help="width and height in pixels (default 512)")
    p.add_argument("--buildings", type=int, default=9, help="number of buildings (default 9)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def run(args) -> int:
    from ritm_qgis.core.errors import RitmError
    from ritm_qgis.engine.geo.synthetic_scene import make_scene, write_scene

    if args.size < 64 or args.buildings < 1:
        raise RitmError("--size must be at least 64 and --buildings at least 1")
    os.makedirs(args.out, exist_ok=True)
    paths = [os.path.join(args.out, f) for f in ("scene.tif", "footprints.gpkg", "scene_mask.tif")]
    write_scene(make_scene(args.size, args.buildings, args.seed), *paths)
    print("\n".join(paths))
    return 0
