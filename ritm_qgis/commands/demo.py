"""``ritm-qgis demo``: the paper's online demo on one image and its target mask, for one or more models."""

from __future__ import annotations

import json
import os

import numpy as np

from ritm_qgis.core.errors import RitmError
from ritm_qgis.engine.geo.stretch_registry import DEFAULT as DEFAULT_STRETCH, cli_help, cli_metavar

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
    p.add_argument("--stretch", default=DEFAULT_STRETCH, metavar=cli_metavar(), help=cli_help())
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")


def _is_georeferenced(path: str) -> bool:
    if not path.lower().endswith((".tif", ".tiff")):
        return False
    import rasterio

    with rasterio.open(path) as ds:
        return ds.crs is not None and not ds.transform.is_identity


def load_demo_inputs(image_path: str, target_path: str, stretch=None):
    """(rgb uint8, target bool, invalid bool | None, grid | None); ``stretch``: the input rule."""
    from ritm_qgis.engine.data.datasets import read_image_gray

    for label, path in (("image", image_path), ("target mask", target_path)):
        if not os.path.isfile(path):
            raise RitmError(f"no {label} at '{path}'")
    grid, invalid = None, None
    if _is_georeferenced(image_path):
        from ritm_qgis.engine.geo.stretch import resolve_stretch

        win = resolve_stretch(stretch, image_path).read(image_path)
        rgb, invalid, grid = win.rgb, (win.invalid if win.invalid.any() else None), win.grid
    else:
        from ritm_qgis.engine.geo.stretch import read_image_rgb

        win = read_image_rgb(image_path, stretch)
        rgb, invalid = win.rgb, (win.invalid if win.invalid.any() else None)
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


GEO_LAYERS = (("footprints.gpkg", "footprints"), ("clicks.gpkg", "clicks"))
FIGURES = ("overlay.png", "error_map.png", "iou_per_click.png")


def write_geo_outputs(folder: str, ann, grid, model: str, stretch: str = "percentile", staging=None):
    """footprints.gpkg (the final mask as polygons) and clicks.gpkg (sign, order) in the raster's CRS."""
    from ritm_qgis.engine.geo.vector_io import write_gpkg
    from ritm_qgis.engine.jobs.annotation_outputs import annotation_frames

    polys, clicks = annotation_frames(ann, grid, model)
    polys["stretch"] = stretch
    for (name, layer), frame in zip(GEO_LAYERS, (polys, clicks)):
        write_gpkg(frame, os.path.join(folder, name), layer=layer, staging=staging)


def check_outputs(args, labels, georeferenced: bool) -> None:
    """Before any work: no output is an input, and no layer the user wrote would be replaced."""
    from ritm_qgis.engine.geo.vector_io import LayerExists, list_layers, written_by_us
    from ritm_qgis.engine.jobs.same_file import Place, refuse_outputs_among_inputs

    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise RitmError(f"--out '{args.out}' is a file; give a folder for the outputs")
    names = list(FIGURES) + ([n for n, _ in GEO_LAYERS] if georeferenced else [])
    outputs = [Place("--out", os.path.join(args.out, "demo.json"))]
    outputs += [Place("--out", os.path.join(args.out, label, n)) for label in labels for n in names]
    refuse_outputs_among_inputs(outputs, [Place("--image", args.image), Place("--target", args.target)])
    for label in labels if georeferenced else ():
        for name, layer in GEO_LAYERS:
            path = os.path.join(args.out, label, name)
            existing = [n.lower() for n in list_layers(path)] if os.path.isfile(path) else []
            if layer in existing and not written_by_us(path, layer):
                raise LayerExists(path, layer, "choose another --out folder")


def run(args) -> int:
    from ritm_qgis.core.atomic import OutputSet
    from ritm_qgis.engine.data.datasets import Sample
    from ritm_qgis.engine.geo.stretch import parse_stretch
    from ritm_qgis.engine.interactive.backends import build_backend, model_label
    from ritm_qgis.engine.interactive.predictor import Predictor
    from ritm_qgis.engine.jobs.annotation_outputs import write_annotation_figures
    from ritm_qgis.engine.jobs.limits import MAX_CLICKS, check_fraction, check_int
    from ritm_qgis.engine.protocol.evaluation import annotate

    check_fraction(args.target_iou, "--target-iou")
    check_int(args.max_clicks, "--max-clicks", 1, MAX_CLICKS)
    stretch = parse_stretch(args.stretch)
    specs = args.model or ["grabcut"]
    labels = [model_label(spec) for spec in specs]
    if len(set(labels)) != len(labels):
        raise RitmError("two --model values have the same name; rename one of the files")
    rgb, target, invalid, grid = load_demo_inputs(args.image, args.target, stretch)
    check_outputs(args, labels, grid is not None)
    backends = [build_backend(spec, args.device, optimize="auto") for spec in specs]  # bad models: now
    sample = Sample(os.path.splitext(os.path.basename(args.image))[0], rgb, target & (invalid is None or ~invalid), invalid)
    summary = {}
    # every file of the run is staged and moved into place at the end: a failure leaves the previous outputs
    with OutputSet() as staging:
        staging.lock(args.out, "--out folder")
        for spec, label, backend in zip(specs, labels, backends):
            folder = os.path.join(args.out, label)
            ann = annotate(sample, Predictor(backend), args.target_iou, args.max_clicks)
            overlay, errors, curve = (staging.staged(os.path.join(folder, n)) for n in FIGURES)
            write_annotation_figures(rgb, sample.gt, ann, invalid, overlay_path=overlay, error_map_path=errors,
                                     curve_path=curve, target_iou=args.target_iou, title=label)
            if grid is not None:
                write_geo_outputs(folder, ann, grid, label, stretch.label, staging=staging)
            reached = bool(ann.ious and ann.ious[-1] >= args.target_iou)
            summary[label] = {"model": spec, "n_clicks": ann.n_clicks, "final_iou": ann.ious[-1] if ann.ious else None,
                              "reached_target": reached, "ious": ann.ious}
        with open(staging.staged(os.path.join(args.out, "demo.json")), "w", encoding="utf-8") as f:
            f.write(json.dumps({"image": args.image, "target": args.target, "target_iou": args.target_iou,
                                "max_clicks": args.max_clicks, "stretch": stretch.label, "models": summary}, indent=2))
    for label, info in summary.items():
        state = "reached" if info["reached_target"] else "did not reach"
        print(f"{label}: {info['n_clicks']} clicks, IoU {info['final_iou']:.3f} ({state} the target "
              f"{args.target_iou:g}) -> {os.path.join(args.out, label)}/")
    return 0
