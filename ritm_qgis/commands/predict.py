"""``ritm-qgis predict``: segment one object of an image from a sequence of clicks."""

from __future__ import annotations

import json
import math
import os
import time

import numpy as np

from ritm_qgis.core.atomic import atomic_path, write_text_atomically
from ritm_qgis.core.defaults import MASK_THRESHOLD
from ritm_qgis.core.errors import RitmError
from ritm_qgis.engine.geo.stretch_registry import DEFAULT as DEFAULT_STRETCH, cli_help, cli_metavar
from ritm_qgis.engine.runtime.device import OPTIMIZE_MODES

HELP = ("Segment one object from clicks with a RITM network (or the weight-free GrabCut backend) "
        "and write the mask (0/255 PNG) and optionally the probability map (.npy).")

_POSITIVE = {"+", "pos", "positive", "fg", "1"}
_NEGATIVE = {"-", "neg", "negative", "bg", "0"}


def parse_click(text: str) -> tuple[int, int, bool]:
    """'X,Y,+' or 'X,Y,-' -> (row, col, positive); x is the column, y the row, origin top-left."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 3:
        raise RitmError(f"--click takes X,Y,+ or X,Y,- (pixel column, row, sign), not '{text}'.")
    try:
        x, y = float(parts[0]), float(parts[1])
    except ValueError:
        raise RitmError(f"--click '{text}': X and Y must be pixel numbers, such as 120,45,+.") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise RitmError(f"--click '{text}': X and Y must be pixel numbers inside the image, such as 120,45,+.")
    if x != int(x) or y != int(y):
        raise RitmError(f"--click '{text}': X and Y must be whole pixels.")
    sign = parts[2].lower()
    if sign in _POSITIVE:
        positive = True
    elif sign in _NEGATIVE:
        positive = False
    else:
        raise RitmError(f"--click '{text}': the sign must be + (object) or - (background).")
    return int(y), int(x), positive


def check_clicks_inside(clicks, texts, shape) -> None:
    """Each click on a pixel of an image of ``shape`` (rows, cols), else a sentence naming the click."""
    h, w = shape[:2]
    for (row, col, _), text in zip(clicks, texts):
        if not (0 <= col < w and 0 <= row < h):
            raise RitmError(f"--click '{text}' is outside the image ({w} x {h} pixels): X must be 0 to {w - 1} "
                            f"and Y 0 to {h - 1}.")


def check_output_files(args) -> None:
    """Before any work: each output's folder exists, the mask's format can be written, and no output is
    an input or another output."""
    import cv2

    from ritm_qgis.engine.jobs.same_file import Place, refuse_outputs_among_inputs, same_file

    outputs = [Place(flag, path) for flag, path in (("--out-mask", args.out_mask), ("--out-prob", args.out_prob),
                                                     ("--timings", args.timings)) if path]
    for out in outputs:
        folder = os.path.dirname(os.path.abspath(out.path))
        if not os.path.isdir(folder):
            raise RitmError(f"The folder of {out.name}, '{folder}', does not exist; create it first.")
        if os.path.isdir(out.path):
            raise RitmError(f"{out.name} '{out.path}' is a folder; give a file name.")
    if not cv2.haveImageWriter(args.out_mask):
        raise RitmError(f"--out-mask '{args.out_mask}' has no image extension OpenCV can write; end it with .png.")
    if args.out_prob and not args.out_prob.lower().endswith(".npy"):
        raise RitmError(f"--out-prob '{args.out_prob}' must end with .npy.")
    inputs = [Place("--image", args.image)]
    if os.path.isfile(args.checkpoint):
        inputs.append(Place("--checkpoint", args.checkpoint))
    refuse_outputs_among_inputs(outputs, inputs)
    for i, a in enumerate(outputs):
        for b in outputs[i + 1:]:
            if same_file(a.path, b.path):
                raise RitmError(f"{a.name} and {b.name} name the same file '{a.path}'; give each its own file.")


def add_arguments(p):
    p.add_argument("--checkpoint", required=True, metavar="FILE|NAME",
                   help="network checkpoint (.pth file or name of a downloaded official model), "
                        "or 'grabcut' for the weight-free GrabCut backend ('grabcut-multi' for many objects per image)")
    p.add_argument("--image", required=True, metavar="IMG", help="the image (PNG, JPEG, TIFF)")
    p.add_argument("--click", action="append", default=[], metavar="X,Y,+|-",
                   help="a click in pixels (X = column, Y = row, origin top-left) and its sign: "
                        "+ on the object, - on the background; repeat, in order")
    p.add_argument("--no-zoom-in", action="store_true",
                   help="always run on the whole image (resized to at most 800 px on the longer side)")
    p.add_argument("--protocol-zoom", action="store_true",
                   help="the evaluation's zoom-in (first click on the whole image at full resolution, crops "
                        "400 px on the longer side) instead of RITM's interactive demo settings (every click "
                        "on a 400x400 focus crop; the default)")
    p.add_argument("--no-flip", action="store_true", help="skip the mirrored second pass")
    p.add_argument("--threshold", type=float, default=MASK_THRESHOLD,
                   help=f"mask = probability > this (default {MASK_THRESHOLD})")
    p.add_argument("--device", default="auto", help="auto (default: CUDA if available), cpu, cuda or cuda:N")
    p.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "bf16"),
                   help="autocast precision on CUDA (default fp32)")
    p.add_argument("--optimize", default="auto", choices=OPTIMIZE_MODES,
                   help="network speed-up: auto (default: bf16 on CPUs with bf16 in hardware, else openvino-int8 "
                        "where the openvino package is installed, else onednn; fold below AVX2 and on a GPU), bf16 "
                        "(onednn in bfloat16 past the fp32 input layers; CPUs with bf16 in hardware only), "
                        "openvino-int8 (OpenVINO with HRNet's stages in int8, calibrated on shipped aerial crops, "
                        "built once per model and cached beside the weights; CPU), openvino (fp32 "
                        "through OpenVINO, converted once per model and cached beside the weights; CPU), int8 "
                        "(the HRNet quantized to int8, calibrated; CPU), onednn "
                        "(fold + oneDNN fused convolutions on prepacked weights, CPU), fold (BatchNorm "
                        "folding + channels-last), none (the unmodified network: RITM's arithmetic)")
    p.add_argument("--stretch", default=DEFAULT_STRETCH, metavar=cli_metavar(), help=cli_help())
    p.add_argument("--out-mask", required=True, metavar="MASK.png", help="output mask, 0/255 PNG")
    p.add_argument("--out-prob", metavar="PROB.npy", help="also write the probability map (float32, image size)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads for the network (default: PyTorch's, one per core)")
    p.add_argument("--timings", metavar="FILE.json",
                   help='write the wall time of each click\'s prediction (model loading excluded): '
                        '{"clicks": [{"ms": ...}, ...], "optimize": "...", "threads": N, "paths": {...}, '
                        '"ready_s": S, "loaded_in_background": B}; optimize is the path that ran (after any '
                        'fallback), paths the forward passes per path, ready_s the seconds the model took to '
                        'load, build and warm up once the command had started; a model whose OpenVINO network '
                        'is cached is loaded, with one pass at the clicks\' size, in the background while the '
                        'command starts (loaded_in_background true; ready_s is then the wait for it)')


def run(args) -> int:
    import cv2

    from ritm_qgis.engine.geo.stretch import parse_stretch, read_image_rgb
    from ritm_qgis.engine.interactive.interactive_settings import (interactive_predictor, load_in_background,
                                                                   load_interactive_backend)
    from ritm_qgis.engine.interactive.predictor import Predictor
    from ritm_qgis.engine.jobs.limits import MAX_THREADS, check_fraction, check_int

    clicks = [parse_click(c) for c in args.click]
    if not clicks:
        raise RitmError("Give at least one --click X,Y,+ on the object.")
    check_fraction(args.threshold, "--threshold", lo_open=False)
    if args.threads is not None:
        check_int(args.threads, "--threads", 1, MAX_THREADS)
    stretch = parse_stretch(args.stretch)
    check_output_files(args)
    load_in_background(args.checkpoint, args.device, args.precision, args.optimize, args.threads,
                       flip=not args.no_flip, zoom_in=not (args.protocol_zoom or args.no_zoom_in))
    image = read_image_rgb(args.image, stretch).rgb  # as a raster window is read: nodata left out, black
    check_clicks_inside(clicks, args.click, image.shape)
    threads = set_threads(args.threads)
    t_load = time.perf_counter()
    backend = load_interactive_backend(args.checkpoint, args.device, args.precision, args.optimize,
                                       flip=not args.no_flip)
    ready_s = time.perf_counter() - t_load
    if args.protocol_zoom:
        session = Predictor(backend, zoom_in=not args.no_zoom_in, flip=not args.no_flip, threshold=args.threshold)
    else:
        session = interactive_predictor(backend, args.threshold, flip=not args.no_flip, zoom_in=not args.no_zoom_in)
    session.set_image(image)
    pred, click_ms = None, []
    for row, col, positive in clicks:
        t0 = time.perf_counter()
        pred = session.add_click(row, col, positive)
        click_ms.append((time.perf_counter() - t0) * 1e3)
    with atomic_path(args.out_mask) as tmp:
        if not cv2.imwrite(tmp, pred.mask.astype(np.uint8) * 255):
            raise RitmError(f"Could not write the mask to '{args.out_mask}'; use a .png path in a writable folder.")
    if args.out_prob:
        with atomic_path(args.out_prob) as tmp:
            np.save(tmp, pred.prob.astype(np.float32))
    optimize = getattr(backend, "optimize", "none")
    background = bool(getattr(backend, "loaded_in_background", False))
    if args.timings:
        write_text_atomically(args.timings, json.dumps(
            {"clicks": [{"ms": round(ms, 3)} for ms in click_ms], "optimize": optimize, "threads": threads,
             "paths": dict(getattr(backend, "paths_run", {})), "ready_s": round(ready_s, 3),
             "loaded_in_background": background}, indent=1))
    h, w = pred.mask.shape
    print(f"{backend.name}: {len(clicks)} click(s) on a {w}x{h} image (stretch {stretch.label}), "
          f"{int(pred.mask.sum())} object pixels "
          f"-> {args.out_mask}" + (f", {args.out_prob}" if args.out_prob else ""))
    paths = dict(getattr(backend, "paths_run", {}))
    shown = optimize if set(paths) <= {optimize} else \
        f"{optimize} ({', '.join(f'{k}: {v} pass(es)' for k, v in sorted(paths.items()))})"
    print(timing_line(click_ms, shown, threads) + f"; model ready in {ready_s:.1f} s"
          + (" (loaded in the background while starting)" if background else "")
          + (f" -> {args.timings}" if args.timings else ""))
    return 0


def set_threads(threads: int | None) -> int:
    import torch

    if threads:
        torch.set_num_threads(int(threads))
    return int(torch.get_num_threads())


def timing_line(click_ms: list, optimize: str, threads: int) -> str:
    """'first click X ms, later clicks median Y ms (first/later Z), optimize ..., N thread(s)'."""
    text = f"first click {click_ms[0]:.0f} ms"
    if len(click_ms) > 1:
        later = float(np.median(click_ms[1:]))
        text += f", later clicks median {later:.0f} ms (first / later {click_ms[0] / later:.2f})"
    return text + f"; optimize {optimize}, {threads} thread(s)"
