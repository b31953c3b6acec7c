"""``ritm-qgis adapt``: fine-tune a model on the buildings of an area in minutes; ``--remove`` deletes one."""

from __future__ import annotations

import json

from ritm_qgis.cli_progress import ProgressBar

HELP = ("Adapt a model to an area: fine-tune it for --minutes on the buildings of a footprint layer over a raster "
        "(every 5th held out to check it), saved in the model cache as a named model when it did better.")


def add_arguments(p):
    from ritm_qgis.engine.geo.stretch_registry import DEFAULT as DEFAULT_STRETCH, cli_help, cli_metavar

    p.add_argument("--raster", metavar="IMAGE.tif", help="the georeferenced image")
    p.add_argument("--footprints", metavar="FILE", help="building footprints covering part of the raster (polygons)")
    p.add_argument("--layer", help="layer of --footprints in a GeoPackage (default: its only layer)")
    p.add_argument("--model", help="the model to adapt (a name or checkpoint; default: the default model)")
    p.add_argument("--minutes", type=float, default=5.0, help="training time budget (default 5); the hold-out "
                   "checks before and after come on top")
    p.add_argument("--name", help="name of the adapted model (default BASE+LAYER-YYYYMMDD)")
    p.add_argument("--every", type=int, default=5, help="hold out every N-th building to check the result (default 5; "
                   "at least 5 buildings are held out)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads for training (default: PyTorch's, one per core); where other work keeps "
                   "the cores busy, fewer threads can make more steps per minute (measured at load 8: 70 steps "
                   "in 5 minutes with 1 thread, 8 with 2)")
    p.add_argument("--stretch", default=DEFAULT_STRETCH, metavar=cli_metavar(), help=cli_help())
    p.add_argument("--remove", metavar="NAME", help="delete the adapted model NAME from the cache, and do nothing else")
    p.add_argument("--json", action="store_true", help="print the hold-out report as JSON")


def run(args) -> int:
    import math

    from ritm_qgis.core.errors import RitmError
    from ritm_qgis.engine.jobs.limits import MAX_THREADS, check_int

    if args.remove:
        from ritm_qgis.models.adapted import remove_adapted

        remove_adapted(args.remove)
        print(f"removed the adapted model {args.remove}")
        return 0
    if not args.raster or not args.footprints:
        raise RitmError("Give --raster and --footprints (or --remove NAME).")
    if not (math.isfinite(args.minutes) and args.minutes > 0):
        raise RitmError(f"--minutes must be a positive number, not {args.minutes}")
    check_int(args.every, "--every", 2, 1000)
    if args.threads is not None:
        check_int(args.threads, "--threads", 1, MAX_THREADS)
        import torch

        torch.set_num_threads(args.threads)
    from ritm_qgis.engine.geo.stretch import parse_stretch
    from ritm_qgis.engine.jobs.adapt_area import adapt_area
    from ritm_qgis.models.catalog import default_model

    model = args.model or default_model()[0]
    bar = ProgressBar("adapt", unit="s")
    try:
        run_ = adapt_area(args.raster, args.footprints, model, args.minutes, layer_name=args.layer, name=args.name,
                          stretch=parse_stretch(args.stretch), every=args.every, progress=bar, log=bar.write)
    finally:
        bar.close()
    if args.json:
        print(json.dumps({"name": run_.name, "improved": run_.improved, **run_.provenance}, indent=1, default=str))
    else:
        print(run_.message())
        if run_.name:
            print(f"use it by name: --model {run_.name}; remove it with `ritm-qgis adapt --remove {run_.name}`")
    return 0
