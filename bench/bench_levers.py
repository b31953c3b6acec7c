"""Each CPU speed lever at equal input: one forward pass per backend mode, p95 against 'none'.

For each network and thread count, every ``--modes`` backend (``NetworkBackend(net,
optimize=MODE)``) runs the same input (``--size`` square, 4 channels, batch ``--batch``: 2 is
a click with RITM's flip) ``--repeats`` times, the modes taking turns pass by pass (A, B, C, A,
B, C, ...) so that the load of a shared machine falls on all alike. Printed per mode: p50 / p95
wall ms, the ratio p95(none) / p95(mode), and the max |probability difference| to 'none' on
that input. Extra rows:

* 'channels-last': the unmodified network with channels-last input and weights (no folding);
* 'bf16-all': the whole network in bf16, input included (the 'bf16' mode before its input side,
  normalisation, click encoder and first convolution, stayed in fp32);
* 'none@S' / 'bf16@S' for each ``--sizes-too`` S: the same at a smaller zoom-in target, ratio
  still against 'none' at ``--size`` (speed only; what a smaller target costs in NoC is measured
  with ``ritm-qgis evaluate --zoom-in-size``).

    .venv/bin/python bench/bench_levers.py [--models aerial-finetuned-h18s,hrnet18] [--threads 1,2]
        [--modes none,fold,onednn,bf16,int8] [--size 400] [--batch 2] [--repeats 10] [--sizes-too 320]
        [--dataset grabcut:out/aerial-buildings/test --crops 8]

First line: the click disks of 20 clicks on the input (2x400x400) rasterised on the whole image
for every click (``disk_maps``, RITM's way and 'none''s) against a window around each click
(``disk_maps_local``, every other mode; identical maps), p50 ms.

With ``--dataset``, the probabilities are also compared on real objects: ``--crops`` samples
(every 5th), each resized to ``--size`` square with one positive click at the centroid of its
ground truth, batch 1; printed per mode: mean |probability difference| to 'none' and the pixels
whose mask (probability > 0.49) differs from 'none''s, summed over the crops.
"""

from __future__ import annotations

import argparse
import copy
import time
import warnings

import numpy as np
import torch

from bench_click_latency import cpu_name, load_network
from ritm_qgis.engine.interactive.predictor import NetworkBackend


def inputs(size, batch):
    g = torch.Generator().manual_seed(3)
    x = torch.rand(batch, 4, size, size, generator=g)
    x[:, 3] = (x[:, 3] > 0.7).float()
    pts = torch.tensor([[[size * 0.5, size * 0.45, 0.0], [size * 0.55, size * 0.5, 1.0],
                         [size * 0.1, size * 0.2, 2.0], [-1.0, -1.0, -1.0]]] * batch)
    return x, pts


class Bf16All:
    """The whole network in bf16, input included (``cpu_bf16.bf16_model(keep_fp32=())``)."""

    optimize = "bf16-all"

    def __init__(self, net):
        from ritm_qgis.engine.runtime import cpu_bf16
        from ritm_qgis.engine.runtime.device import fold_batchnorms

        self.model = cpu_bf16.bf16_model(fold_batchnorms(net), inputs(400, 1), keep_fp32=())

    def forward(self, x, pts):
        with torch.inference_mode():
            x = x.to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
            return self.model(x, pts)["instances"].float()


def real_crops(spec, count, size):
    """(image (1, 4, size, size), points) for every 5th object of a dataset: one click at its centroid."""
    import cv2

    from ritm_qgis.engine.data.registry import open_dataset, parse_dataset_spec

    dataset = open_dataset(parse_dataset_spec(spec))
    crops = []
    for i in range(0, len(dataset), 5):
        sample = dataset[i]
        if not sample.gt.any():
            continue
        img = sample.image.astype(np.float32)
        img = img / 255.0 if img.max() > 1.5 else img
        rows, cols = np.nonzero(sample.gt)
        h, w = sample.gt.shape
        x = torch.zeros(1, 4, size, size)
        x[0, :3] = torch.from_numpy(cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR).transpose(2, 0, 1))
        crops.append((x, torch.tensor([[[rows.mean() * size / h, cols.mean() * size / w, 0.0], [-1.0, -1.0, -1.0]]])))
        if len(crops) == count:
            break
    return crops


def real_gaps(backends, crops):
    """{mode: (mean |dprob| to 'none', differing mask pixels)} over ``crops``."""
    ref = [torch.sigmoid(backends["none"].forward(x, p)) for x, p in crops]
    gaps = {}
    for k, b in backends.items():
        if "@" in k:
            continue
        probs = ref if k == "none" else [torch.sigmoid(b.forward(x, p)) for x, p in crops]
        gaps[k] = (float(np.mean([float((a - r).abs().mean()) for a, r in zip(probs, ref)])),
                   sum(int(((a > 0.49) != (r > 0.49)).sum()) for a, r in zip(probs, ref)))
    return gaps


def print_disk_lever(size, batch, repeats, clicks=20):
    from ritm_qgis.models.network import disk_maps, disk_maps_local

    g = torch.Generator().manual_seed(5)
    points = torch.rand(batch, 2 * clicks, 3, generator=g) * size
    points[:, clicks // 2:clicks] = -1.0  # 10 positive, 10 negative clicks: padding rows as RITM has them
    points[:, clicks + clicks // 2:] = -1.0
    assert torch.equal(disk_maps(points, size, size, 5), disk_maps_local(points, size, size, 5))
    times = {f: [] for f in (disk_maps, disk_maps_local)}
    for _ in range(repeats):
        for f in times:
            t0 = time.perf_counter()
            f(points, size, size, 5)
            times[f].append((time.perf_counter() - t0) * 1e3)
    whole, local = (np.percentile(v, 50) for v in times.values())
    print(f"click disks, {clicks} clicks, {batch}x{size}x{size}, {torch.get_num_threads()} thread(s): whole image "
          f"{whole:.1f} ms, local windows {local:.2f} ms (same maps): {whole / local:.0f}x")


class ChannelsLast:
    """The unmodified network, weights and input in channels-last (the layout lever alone)."""

    optimize = "channels-last"

    def __init__(self, net):
        self.model = copy.deepcopy(net).to(memory_format=torch.channels_last)

    def forward(self, x, pts):
        with torch.inference_mode():
            return self.model(x.contiguous(memory_format=torch.channels_last), pts)["instances"].float()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="aerial-finetuned-h18s,hrnet18")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--modes", default="none,channels-last,fold,onednn,bf16,int8")
    ap.add_argument("--size", type=int, default=400)
    ap.add_argument("--batch", type=int, default=2, help="2 = one click with RITM's flip")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--sizes-too", default="320", help="smaller zoom-in targets timed for 'none' and the fastest mode")
    ap.add_argument("--dataset", default="", help="also compare probabilities on real objects of this dataset spec")
    ap.add_argument("--crops", type=int, default=8)
    args = ap.parse_args(argv)
    crops = real_crops(args.dataset, args.crops, args.size) if args.dataset else []
    warnings.filterwarnings("ignore")
    print(f"torch {torch.__version__}, {cpu_name()}, input {args.batch}x4x{args.size}x{args.size}, "
          f"{args.repeats} passes per mode, interleaved; wall ms")
    print_disk_lever(args.size, args.batch, args.repeats)
    for name in args.models.split(","):
        net, label = load_network(name, "cpu")
        for threads in [int(t) for t in args.threads.split(",")]:
            torch.set_num_threads(threads)
            backends, built = {}, {}
            for mode in args.modes.split(","):
                t0 = time.perf_counter()
                special = {"channels-last": ChannelsLast, "bf16-all": Bf16All}.get(mode)
                backends[mode] = special(net) if special else NetworkBackend(net, device="cpu", optimize=mode)
                built[mode] = time.perf_counter() - t0
            runs = {m: inputs(args.size, args.batch) for m in backends}
            fastest = "bf16" if "bf16" in backends else list(backends)[-1]
            for s in [int(v) for v in args.sizes_too.split(",") if v]:
                for m in ("none", fastest):
                    backends[f"{m}@{s}"] = backends[m]
                    runs[f"{m}@{s}"] = inputs(s, args.batch)
            outs = {k: torch.sigmoid(b.forward(*runs[k])) for k, b in backends.items()}  # warm-up + outputs
            times = {k: [] for k in backends}
            for _ in range(args.repeats):
                for k, b in backends.items():
                    t0 = time.perf_counter()
                    b.forward(*runs[k])
                    times[k].append((time.perf_counter() - t0) * 1e3)
            ref = np.percentile(times["none"], 95)
            print(f"\n== {label}, {threads} thread(s)")
            print(f"{'mode':16} {'runs as':>13} {'build s':>7} {'p50':>7} {'p95':>7} {'p95 none/mode':>13} {'max|dprob|':>10}")
            for k, b in backends.items():
                base = k.split("@")[0]
                same = "@" not in k
                gap = float((outs[k] - outs["none"]).abs().max()) if same else float("nan")
                print(f"{k:16} {b.optimize:>13} {built.get(base, 0) if same else 0:7.1f} "
                      f"{np.percentile(times[k], 50):7.0f} {np.percentile(times[k], 95):7.0f} "
                      f"{ref / np.percentile(times[k], 95):12.2f}x {gap:10.1e}", flush=True)
            if crops:
                print(f"on {len(crops)} objects of {args.dataset}, one click each, {args.size}x{args.size}:")
                for k, (mean_gap, flips) in real_gaps(backends, crops).items():
                    print(f"{k:16} mean|dprob| {mean_gap:9.2e}   mask pixels changed {flips:6d}", flush=True)


if __name__ == "__main__":
    main()
