"""``ritm-qgis demo``: the paper's online demo on one image and its target mask, for one or more models."""

from __future__ import annotations

import json
import os

import numpy as np

from ritm_qgis.core.errors import RitmError
from ritm_qgis.engine.geo.stretch import STRETCH_HELP, STRETCH_METAVAR

HELP = ("Simulate clicks on an image until a target IoU (the paper's demo) and write, per model, the overlay, "
        "the error map, the IoU-per-click plot and the number of clicks; a GeoTIFF also yields footprints and clicks "
        "as GeoPackage layers.")


def add_arguments(p):
    p.add_argument("--image", required=True, metavar="IMG", help="the image (PNG, JPEG or a georeferenced GeoTIFF)")
    p.add_argument("--target", required=True, metavar="MASK",
                   help="the target mask image: converted to grayscale and binarized at > 128")
    p.add_argument("--model", action="append", metavar="NAME|FILE",
                   help="checkpoint file, model name or 'grabcut' (repeat; default: grabcut)")
    p.add_argument("--target-iou", type=float, default=0.9, help="stop once this IoU is reached (default 0.9)")
    p.add_argument("--max-clicks", type=int, default=20, help="click budget (default 20)")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda or cuda:N")
    p.add_argument("--stretch", default="percentile", metavar=STRETCH_METAVAR, help=STRETCH_HELP)
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")


def _is_georeferenced(path: str) -> bool:
    if not path.lower().endswith((".tif", ".tiff")):
        return False
    import rasterio

    with rasterio.open(path) as ds:
        return ds.crs is not None and not ds.transform.is_identity


def load_demo_inputs(image_path: str, target_path: str, stretch=None):
    """(rgb uint8, target bool, invalid bool | None, grid | None); ``stretch``: the input rule."""
    from ritm_qgis.engine.data.datasets import read_image_gray, read_image_rgb

    for label, path in (("image", image_path), ("target mask", target_path)):
        if not os.path.isfile(path):
            raise RitmError(f"no {label} at '{path}'")
    grid, invalid = None, None
    if _is_georeferenced(image_path):
        from ritm_qgis.engine.geo.stretch import resolve_stretch

        win = resolve_stretch(stretch, image_path).read(image_path)
        rgb, invalid, grid = win.rgb, (win.invalid if win.invalid.any() else None), win.grid
    else:
        from ritm_qgis.engine.geo.stretch import stretch_image

        rgb = stretch_image(read_image_rgb(image_path), stretch)
    if target_path.lower().endswith((".tif", ".tiff")):
        import rasterio

        with rasterio.open(target_path) as ds:
            raw = ds.read(1) if ds.count < 3 else np.dot(np.moveaxis(ds.read([1, 2, 3]), 0, -1), [0.299, 0.587, 0.114])
    else:
        raw = read_image_gray(target_path)
    target = np.asarray(raw) > 128
    if target.shape != rgb.shape[:2]:
        raise RitmError(f"the target mask is {target.shape[1]}x{target.shape[0]} but the image is "
                        f"{rgb.shape[1]}x{rgb.shape[0]}; they must have the same size")
    if not target.any():
        raise RitmError("the target mask has no pixel above 128; nothing to segment")
    return rgb, target, invalid, grid


def write_geo_outputs(folder: str, ann, grid, model: str, stretch: str = "percentile"):
    """footprints.gpkg (the final mask as polygons) and clicks.gpkg (sign, order) in the raster's CRS."""
    from ritm_qgis.engine.geo.vector_io import write_gpkg
    from ritm_qgis.engine.jobs.annotation_outputs import annotation_frames

    polys, clicks = annotation_frames(ann, grid, model)
    polys["stretch"] = stretch
    write_gpkg(polys, os.path.join(folder, "footprints.gpkg"), layer="footprints")
    write_gpkg(clicks, os.path.join(folder, "clicks.gpkg"), layer="clicks")


def run(args) -> int:
    from ritm_qgis.engine.data.datasets import Sample
    from ritm_qgis.engine.interactive.backends import build_backend, model_label
    from ritm_qgis.engine.interactive.predictor import Predictor
    from ritm_qgis.engine.jobs.annotation_outputs import write_annotation_figures
    from ritm_qgis.engine.protocol.evaluation import annotate

    if not 0 < args.target_iou <= 1:
        raise RitmError("--target-iou must lie in (0, 1]")
    if args.max_clicks < 1:
        raise RitmError("--max-clicks must be at least 1")
    from ritm_qgis.engine.geo.stretch import parse_stretch

    stretch = parse_stretch(args.stretch)
    rgb, target, invalid, grid = load_demo_inputs(args.image, args.target, stretch)
    sample = Sample(os.path.splitext(os.path.basename(args.image))[0], rgb, target & (invalid is None or ~invalid), invalid)
    summary = {}
    for spec in args.model or ["grabcut"]:
        label = model_label(spec)
        folder = os.path.join(args.out, label)
        os.makedirs(folder, exist_ok=True)
        ann = annotate(sample, Predictor(build_backend(spec, args.device, optimize="auto")), args.target_iou, args.max_clicks)
        write_annotation_figures(rgb, sample.gt, ann, invalid, overlay_path=os.path.join(folder, "overlay.png"),
                                 error_map_path=os.path.join(folder, "error_map.png"),
                                 curve_path=os.path.join(folder, "iou_per_click.png"),
                                 target_iou=args.target_iou, title=label)
        if grid is not None:
            write_geo_outputs(folder, ann, grid, label, stretch.label)
        reached = bool(ann.ious and ann.ious[-1] >= args.target_iou)
        summary[label] = {"model": spec, "n_clicks": ann.n_clicks, "final_iou": ann.ious[-1] if ann.ious else None,
                          "reached_target": reached, "ious": ann.ious}
        state = "reached" if reached else "did not reach"
        print(f"{label}: {ann.n_clicks} clicks, IoU {ann.ious[-1]:.3f} ({state} the target {args.target_iou:g}) "
              f"-> {folder}/")
    from ritm_qgis.core.atomic import write_text_atomically

    write_text_atomically(os.path.join(args.out, "demo.json"),
                          json.dumps({"image": args.image, "target": args.target, "target_iou": args.target_iou,
                                      "max_clicks": args.max_clicks, "stretch": stretch.label,
                                      "models": summary}, indent=2))
    return 0
