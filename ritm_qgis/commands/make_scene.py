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
    from ritm_qgis.engine.jobs.limits import MAX_BUILDINGS, MAX_SCENE_SIZE, check_int

    check_int(args.size, "--size", 64, MAX_SCENE_SIZE)
    check_int(args.buildings, "--buildings", 1, MAX_BUILDINGS)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise RitmError(f"--out '{args.out}' is a file; give a folder for the scene")
    os.makedirs(args.out, exist_ok=True)
    paths = [os.path.join(args.out, f) for f in ("scene.tif", "footprints.gpkg", "scene_mask.tif")]
    write_scene(make_scene(args.size, args.buildings, args.seed), *paths)
    print("\n".join(paths))
    return 0
