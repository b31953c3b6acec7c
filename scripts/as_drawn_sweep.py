"""Explore the map tool's settings on held-out buildings, scored as drawn (issue 22).

Pools the per-building samples of the held-out SpaceNet chips img50-54 (``raster:`` samples, so
the map tool's window sees the chip around each building), takes every ``--every``-th, clicks
them as the map tool does (``evaluate --as-drawn``'s sessions) with the settings given, and
prints one JSON line: mean IoU and boundary F at clicks 1/3/5, share of clicks lowering IoU by
> 0.1, NoC@85 within the budget. Usage::

    OMP_NUM_THREADS=1 python scripts/as_drawn_sweep.py --model aerial-finetuned-h18s --every 4 \\
        --first-crop 128 --expansion 1.8 --min-crop 64
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def pooled_dataset(data: str, footprints: str, chips: str, every: int):
    from ritm_qgis.engine.data.datasets import Dataset
    from ritm_qgis.engine.data.geo_dataset import raster_footprint_dataset

    parts = []
    for gpkg in sorted(glob.glob(os.path.join(footprints, "*.gpkg"))):
        chip = os.path.splitext(os.path.basename(gpkg))[0]
        if chip not in chips.split(","):
            continue
        image = glob.glob(os.path.join(data, "aerial", "spacenet_rio", "images", f"*_{chip}.tif"))[0]
        parts.append(raster_footprint_dataset(image, gpkg, mode="buildings"))
    index = [(p, i) for p in parts for i in range(len(p))][::every]
    return Dataset("holdout-buildings", [p.names[i] for p, i in index], lambda k: index[k][0][index[k][1]])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="aerial-finetuned-h18s")
    ap.add_argument("--data", default="/work/shared/data")
    ap.add_argument("--footprints", default="out/aerial-buildings/footprints")
    ap.add_argument("--chips", default="img50,img51,img52,img53,img54")
    ap.add_argument("--dataset", default=None, help="a dataset spec instead of the pooled chips")
    ap.add_argument("--every", type=int, default=4)
    ap.add_argument("--limit", type=int, default=None, help="only the first N samples (after --every)")
    ap.add_argument("--clicks", type=int, default=5)
    ap.add_argument("--first-crop", type=int, default=0)
    ap.add_argument("--first-crop-m", type=float, default=0)
    ap.add_argument("--network-m", type=float, default=0)
    ap.add_argument("--min-crop-m", type=float, default=0)
    ap.add_argument("--min-crop-floor-m", type=float, default=0,
                    help="later crops cover at least this much ground (the map tool: 90)")
    ap.add_argument("--expansion", type=float, default=1.4)
    ap.add_argument("--min-crop", type=int, default=200)
    ap.add_argument("--target", type=int, default=400)
    ap.add_argument("--threshold", type=float, default=0.49)
    ap.add_argument("--no-flip", action="store_true")
    ap.add_argument("--window", type=int, default=None, help="the window rule's minimum side")
    ap.add_argument("--simplify", type=float, default=1.0)
    ap.add_argument("--regularize", default="off")
    ap.add_argument("--refine", default="none")
    ap.add_argument("--raw", action="store_true", help="score the raw mask on the sample (the paper's way)")
    ap.add_argument("--paper", action="store_true", help="with --raw: the paper's predictor settings")
    ap.add_argument("--save", default=None, metavar="IOUS.npy", help="also write the IoU array")
    args = ap.parse_args(argv)

    from ritm_qgis.engine.interactive.backends import build_backend
    from ritm_qgis.engine.interactive.interactive_settings import interactive_predictor
    from ritm_qgis.engine.interactive.raster_session import OutlineSettings
    from ritm_qgis.engine.interactive.zoom_in import ZoomInParams
    from ritm_qgis.engine.protocol.as_drawn import DrawnSession
    from ritm_qgis.engine.protocol.click_quality import click_quality
    from ritm_qgis.engine.protocol.evaluation import evaluate
    from ritm_qgis.engine.protocol.noc import noc_per_sample

    if args.dataset:
        from ritm_qgis.engine.data.registry import open_dataset, parse_dataset_spec

        ds = open_dataset(parse_dataset_spec(args.dataset))
        idx = list(range(0, len(ds), args.every))
    else:
        ds = pooled_dataset(args.data, args.footprints, args.chips, args.every)
        idx = list(range(len(ds)))
    idx = idx[:args.limit] if args.limit else idx
    backend = build_backend(args.model, "cpu")
    zoom = ZoomInParams(target_size=(args.target, args.target), skip_clicks=-1, expansion_ratio=args.expansion,
                        min_crop_size=args.min_crop, first_crop=args.first_crop or None,
                        first_crop_m=args.first_crop_m or None, network_pixel_m=args.network_m or None,
                        min_crop_m=args.min_crop_m or None, min_crop_floor_m=args.min_crop_floor_m or None)
    outline = OutlineSettings(threshold=args.threshold, simplify_px=args.simplify,
                              regularize=args.regularize != "off", min_area_m2=2.0,
                              regularize_mode=args.regularize if args.regularize != "off" else "building")
    if args.refine != "none":
        outline = OutlineSettings(**{**outline.__dict__, "refine": args.refine})

    def factory():
        return interactive_predictor(backend, threshold=args.threshold, flip=not args.no_flip, zoom_in=zoom)

    def make():
        if args.raw and args.paper:
            from ritm_qgis.engine.interactive.predictor import Predictor

            return Predictor(backend, zoom_in=ZoomInParams(target_size=400))
        if args.raw:
            return factory()
        return DrawnSession(factory, outline, min_size=args.window)

    t0 = time.perf_counter()
    res = evaluate(ds, make, args.model, args.clicks, indices=idx)
    ious = res.iou_array
    keep = ~np.isnan(ious).all(axis=1)
    out = dict(vars(args), n=int(keep.sum()), seconds=round(time.perf_counter() - t0, 1),
               noc85=float(noc_per_sample(ious[keep], 0.85).mean()),
               **{f"noc{c}_85": float(noc_per_sample(ious[keep][:, :c], 0.85).mean())
                  for c in (10, 20) if ious.shape[1] >= c},
               **click_quality(ious, res.boundary_array(1), res.boundary_array(2)))
    print(json.dumps(out))
    if args.save:
        np.save(args.save, ious)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
