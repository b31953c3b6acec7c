"""Batched evaluation vs the same evaluation with batch size 1, in one process.

With --against-ritm the baseline is RITM's evaluation loop instead: batch size 1 and
``--optimize none`` (the unmodified fp32 network), against the default evaluation (batch size
--batch-size, ``--optimize auto``), same network, same tiles, same thread count; the runs are
interleaved (baseline, ours, baseline, ours, ... for --rounds rounds) and each round's ratio is
printed, then the best-of ratio. --checkpoint NAME|FILE uses trained weights (e.g.
aerial-finetuned-h18s) instead of --arch's random ones. Target: >= 2x on a CPU.

Samples x clicks per second for hrnet18s (random weights: speed does not depend on them) on
synthetic 500x500 aerial-like tiles, RITM's default inference (zoom-in 400, flip). Also prints
the extrapolated time of the paper's full protocol (1940 tiles x 20 clicks) on this device.
Target: not slower on a CPU, >= 3x on a GPU.
--zoom-square: zoom-in crops resized to 400x400 (one common size, so a whole batch is one forward
pass) instead of RITM's 400 on the longer side (crops of different shapes go through in groups of
equal shape).
Run: .venv/bin/python bench/bench_evaluate.py [--device cuda] [--arch hrnet18] [--tiles 8] [--clicks 3] [--zoom-square]
     .venv/bin/python bench/bench_evaluate.py --against-ritm [--checkpoint aerial-finetuned-h18s] [--threads 1]
"""

import argparse
import time

import numpy as np
import torch

from ritm_qgis.engine.data.datasets import Dataset, Sample
from ritm_qgis.engine.protocol.evaluation import evaluate
from ritm_qgis.engine.interactive.predictor import NetworkBackend, Predictor
from ritm_qgis.engine.geo.synthetic_scene import make_scene
from ritm_qgis.engine.interactive.zoom_in import ZoomInParams
from ritm_qgis.models import create_model
from ritm_qgis.models.testing import randomize_


def tiles_dataset(n):
    scenes = [make_scene(500, 4, seed=i) for i in range(n)]
    return Dataset("synthetic", [f"t{i}" for i in range(n)], lambda i: Sample(f"t{i}", scenes[i].rgb, scenes[i].mask))


def against_ritm(args, net, ds, zoom):
    """RITM's loop (batch 1, optimize none) vs the default evaluation, interleaved rounds."""
    configs = {"RITM loop (none, batch 1)": (NetworkBackend(net, device=args.device, optimize="none"), 1),
               f"default ({args.optimize}, batch {args.batch_size})":
                   (NetworkBackend(net, device=args.device, optimize=args.optimize), args.batch_size)}
    for backend, bs in configs.values():  # warm-up
        evaluate(ds, lambda b=backend: Predictor(b, zoom_in=zoom), max_clicks=1, batch_size=bs, indices=[0, 1])
    rates, arrays = {k: [] for k in configs}, {}
    for _ in range(args.rounds):
        for name, (backend, bs) in configs.items():
            t0 = time.perf_counter()
            r = evaluate(ds, lambda b=backend: Predictor(b, zoom_in=zoom), max_clicks=args.clicks, batch_size=bs)
            rates[name].append(r.n_clicks / (time.perf_counter() - t0))
            arrays[name] = r.iou_array
    (base, fast), names = rates.values(), list(configs)
    opt = configs[names[1]][0].optimize
    print(f"{args.checkpoint or args.arch + ' (random weights)'}, {args.tiles} tiles x {args.clicks} clicks, "
          f"{torch.get_num_threads()} thread(s), optimize {args.optimize} -> {opt}, zoom-in to "
          f"{'400x400' if args.zoom_square else '400 on the longer side'}")
    for name in names:
        print(f"  {name:28}: " + ", ".join(f"{v:6.2f}" for v in rates[name]) + " sample-clicks/s per round")
    per_round = [f / b for b, f in zip(base, fast)]
    print("  ratio per round            : " + ", ".join(f"{v:.2f}x" for v in per_round))
    print(f"  ratio, best of each        : {max(fast) / max(base):.2f}x (target >= 2)")
    a, b = arrays[names[0]], arrays[names[1]]
    print(f"  max |IoU difference|       : {float(np.nanmax(np.abs(a - b))):.2e}; mean IoU at the last click "
          f"{np.nanmean(a[:, -1]):.4f} vs {np.nanmean(b[:, -1]):.4f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="hrnet18s")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--tiles", type=int, default=8)
    ap.add_argument("--clicks", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--zoom-square", action="store_true", help="zoom-in crops resized to 400x400")
    ap.add_argument("--no-cuda-graphs", action="store_true", help="eager forward passes on CUDA")
    ap.add_argument("--against-ritm", action="store_true",
                    help="baseline = RITM's loop (batch 1, --optimize none) instead of batch 1 of the same backend")
    ap.add_argument("--checkpoint", default=None, help="trained weights (file or shipped name) instead of --arch")
    ap.add_argument("--optimize", default="auto", help="the default evaluation's --optimize (with --against-ritm)")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds (with --against-ritm)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.checkpoint:
        from ritm_qgis.models.checkpoint import load_model

        net = load_model(args.checkpoint, "cpu")[0]
    else:
        net = randomize_(create_model(args.arch), seed=0)
    ds = tiles_dataset(args.tiles)
    zoom = ZoomInParams(target_size=(400, 400)) if args.zoom_square else ZoomInParams()
    if args.against_ritm:
        return against_ritm(args, net, ds, zoom)
    backend = NetworkBackend(net, device=args.device, precision=args.precision,
                             cuda_graphs=not args.no_cuda_graphs)
    make = lambda: Predictor(backend, zoom_in=zoom)  # noqa: E731
    evaluate(ds, make, max_clicks=1, batch_size=args.batch_size, indices=[0, 1])  # warm-up
    rates, arrays = {}, {}
    for bs in (1, args.batch_size, 1, args.batch_size):  # interleaved, best of two
        t0 = time.perf_counter()
        r = evaluate(ds, make, max_clicks=args.clicks, batch_size=bs)
        rate = r.n_clicks / (time.perf_counter() - t0)
        rates[bs] = max(rates.get(bs, 0.0), rate)
        arrays[bs] = r.iou_array
    diff = float(np.nanmax(np.abs(arrays[1] - arrays[args.batch_size])))
    print(f"device {backend.device}, {args.arch}, {args.tiles} tiles x {args.clicks} clicks, precision {args.precision}, "
          f"zoom-in to {'400x400' if args.zoom_square else '400 on the longer side'}, "
          f"CUDA graphs {'off' if args.no_cuda_graphs else 'on'}")
    print(f"  batch size 1          : {rates[1]:7.2f} sample-clicks/s")
    print(f"  batch size {args.batch_size:<11d}: {rates[args.batch_size]:7.2f} sample-clicks/s")
    print(f"  speed-up              : {rates[args.batch_size] / rates[1]:.2f}x (target: >= 1 on CPU, >= 3 on GPU)")
    print(f"  max |IoU difference|  : {diff:.2e}")
    full = 1940 * 20 / rates[args.batch_size]
    print(f"  paper protocol (1940 tiles x 20 clicks) extrapolated on this device: {full / 60:.1f} min")


if __name__ == "__main__":
    main()
