"""Per-click latency of the interactive session: the default path against RITM's arithmetic.

Headline (printed first): for each network and thread count, the default backend
(``--optimize auto``) and ``--optimize none`` (the unmodified fp32 network: RITM's own
arithmetic, its predictor measured identical in output and speed) segment the same image with
the same clicks (those of the simulated user on the 'none' predictions), through the same
``Predictor`` (RITM's zoom-in, 400 on the longer side from the 2nd click). The two sessions
advance click by click, taking turns (A, B, then B, A on the next click, ...), over
``--rounds`` fresh sessions after one untimed warm-up session each, so that the load of this
shared machine falls on both alike. Printed: click p50 / p95 (wall ms) of each, the ratio
p95(none) / p95(default) over all rounds and its spread over the rounds (min..max of the
per-round ratios), the median ratio, whether both fed the network the same input sizes, and
how far their outputs are apart (max |probability difference| and the smallest mask IoU
over the clicks).

With ``--other-baselines`` the former table follows, labelled: each ``--modes`` mode against
one plain forward pass at the image's size (not like for like: the zoom-in makes the clicks
smaller than the image) and at 400 x 400.

Networks (``--models``): registry names (random weights: timing only) or checkpoints (files
or shipped names such as aerial-finetuned-h18s).

    .venv/bin/python bench/bench_click_latency.py [--models aerial-finetuned-h18s,hrnet18]
        [--threads 1,2] [--rounds 3] [--clicks 20] [--fast auto] [--flip] [--other-baselines]
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings

import numpy as np
import torch

from ritm_qgis.engine.interactive import zoom_in as zi
from ritm_qgis.engine.protocol.clicker import ClickHistory, next_click
from ritm_qgis.engine.interactive.predictor import NetworkBackend, Predictor
from ritm_qgis.models import create_model
from ritm_qgis.models.testing import randomize_


def scene(size: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    img = rng.normal(90, 25, (size, size, 3))
    img += np.linspace(0, 30, size)[None, :, None]
    gt = np.zeros((size, size), bool)
    r0, c0 = int(size * 0.36), int(size * 0.40)
    gt[r0:r0 + int(size * 0.24), c0:c0 + int(size * 0.18)] = True
    img[gt] = rng.normal(200, 10, (gt.sum(), 3))
    return np.clip(img, 0, 255).astype(np.uint8), gt


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def pct(values, q):
    return float(np.percentile(np.asarray(values), q))


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plain_input(hw, device):
    return (torch.rand(1, 4, *hw, generator=torch.Generator().manual_seed(1)).to(device),
            torch.tensor([[[hw[0] / 2, hw[1] / 2, 0.0], [-1.0, -1.0, -1.0]]], device=device))


def time_stem(model, hw, repeats):
    fe = model.feature_extractor
    x = torch.rand(1, 3, *hw, device=next(model.parameters()).device)
    times = []
    with torch.no_grad():
        for _ in range(2):
            fe.relu(fe.bn1(fe.conv1(x)))
        for _ in range(repeats):
            t = time.perf_counter()
            fe.relu(fe.bn1(fe.conv1(x)))
            times.append(time.perf_counter() - t)
    return times


def simulated_clicks(backend, img, gt, n, flip):
    """The click sequence of the simulated user on this backend's predictions."""
    session = Predictor(backend, zoom_in=True, flip=flip)
    session.set_image(img)
    hist = ClickHistory(gt.shape)
    pred = np.zeros_like(gt)
    for _ in range(n):
        c = next_click(gt, pred, None, hist.not_clicked)
        if c is None:
            break
        hist.add(c)
        pred = session.add_click(c.row, c.col, c.is_positive).mask
    return hist.clicks


def run_session(backend, img, clicks, flip, plains=()):
    """Times each click (wall, CPU); each (net, x, pts) of ``plains`` (plain forward passes) is
    timed right after each click too, so that all series see the same machine load."""
    session = Predictor(backend, zoom_in=True, flip=flip)
    session.set_image(img)
    wall, cpu, probs, shapes = [], [], [], []
    ref = [([], []) for _ in plains]
    for c in clicks:
        t, tc = time.perf_counter(), time.process_time()
        p = session.add_click(c.row, c.col, c.is_positive)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - tc)
        probs.append(p.prob)
        shapes.append(zi.crop_size(p.roi, 400) if p.roi is not None else img.shape[:2])
        for (net, x, pts), (rw, rc) in zip(plains, ref):
            sync(x.device)
            t, tc = time.perf_counter(), time.process_time()
            with torch.no_grad():
                net(x, pts)
            sync(x.device)
            rw.append(time.perf_counter() - t)
            rc.append(time.process_time() - tc)
    return wall, cpu, ref, probs, shapes


def logits_gap(plain, backend, device, hw=(400, 400)):
    x = torch.rand(1, 4, *hw, generator=torch.Generator().manual_seed(2)).to(device)
    pts = torch.tensor([[[200.0, 180.0, 0.0], [120.0, 300.0, 2.0], [50.0, 60.0, 1.0], [-1.0, -1.0, -1.0]]],
                       device=device)
    with torch.no_grad():
        ref = plain(x, pts)["instances"]
    got = backend.forward(x, pts).to(device)
    return float((ref - got).abs().max())


def load_network(name, device):
    """A registry name -> random weights; anything else -> a checkpoint (file or shipped name)."""
    from ritm_qgis.models.checkpoint import load_model
    from ritm_qgis.models.registry import list_models

    if name in list_models():
        return randomize_(create_model(name), seed=0).eval().to(device), f"{name} (random weights)"
    net, _ = load_model(name, device)
    return net.eval(), name


def interleaved_sessions(backends, img, clicks, flip, rounds):
    """Time every click of ``rounds`` fresh sessions per backend, the backends taking turns
    click by click (order reversed on every other click); one untimed session each first.
    Returns {key: [[ms per click] per round]}, {key: [Prediction of round 0]}, {key: [input hw]}."""
    keys = list(backends)
    for k in keys:
        run_session(backends[k], img, clicks, flip)  # warm-up: weights, allocator, oneDNN kernels
    times = {k: [] for k in keys}
    preds = {k: [] for k in keys}
    shapes = {k: [] for k in keys}
    for r in range(rounds):
        sessions = {}
        for k in keys:
            sessions[k] = Predictor(backends[k], zoom_in=True, flip=flip)
            sessions[k].set_image(img)
            times[k].append([])
        for i, c in enumerate(clicks):
            order = keys if (i + r) % 2 == 0 else keys[::-1]
            for k in order:
                t = time.perf_counter()
                p = sessions[k].add_click(c.row, c.col, c.is_positive)
                times[k][-1].append((time.perf_counter() - t) * 1e3)
                if r == 0:
                    preds[k].append(p)
                    shapes[k].append(zi.crop_size(p.roi, 400) if p.roi is not None else img.shape[:2])
    return times, preds, shapes


def mask_iou(a, b):
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def headline(args, device, img, gt):
    print("== Headline: default path vs --optimize none (RITM's arithmetic), same image, same clicks, "
          f"interleaved, {args.rounds} rounds of {args.clicks} clicks after a warm-up session; wall ms")
    print(f"{'network':34} {'thr':>3} {'default':>8} {'none p50/p95':>14} {'default p50/p95':>16} "
          f"{'p95 ratio':>9} {'spread':>11} {'p50 ratio':>9} {'1st/later':>9} {'same crops':>10} "
          f"{'max|dprob|':>10} {'min IoU':>8}")
    for name in args.models.split(","):
        net, label = load_network(name, device)
        for threads in [int(t) for t in str(args.threads or torch.get_num_threads()).split(",")]:
            torch.set_num_threads(threads)
            base = NetworkBackend(net, device=device, optimize="none", cuda_graphs=False)
            fast = NetworkBackend(net, device=device, optimize=args.fast, cuda_graphs=False)
            clicks = simulated_clicks(base, img, gt, args.clicks, args.flip)
            times, preds, shapes = interleaved_sessions({"none": base, "fast": fast}, img, clicks, args.flip,
                                                        args.rounds)
            allt = {k: np.concatenate(v) for k, v in times.items()}
            p95 = {k: pct(v, 95) for k, v in allt.items()}
            p50 = {k: pct(v, 50) for k, v in allt.items()}
            per_round = [pct(a, 95) / pct(b, 95) for a, b in zip(times["none"], times["fast"])]
            later = np.median([t for rnd in times["fast"] for t in rnd[1:]])
            first = np.median([rnd[0] for rnd in times["fast"]])
            dprob = max(float(np.abs(a.prob - b.prob).max()) for a, b in zip(preds["none"], preds["fast"]))
            iou = min(mask_iou(a.mask, b.mask) for a, b in zip(preds["none"], preds["fast"]))
            same = "yes" if shapes["none"] == shapes["fast"] else \
                f"{sum(a == b for a, b in zip(shapes['none'], shapes['fast']))}/{len(clicks)}"
            print(f"{label[:34]:34} {threads:3d} {fast.optimize:>8} {p50['none']:6.0f}/{p95['none']:<6.0f} "
                  f"  {p50['fast']:6.0f}/{p95['fast']:<6.0f}  {p95['none'] / p95['fast']:8.2f}x "
                  f"{min(per_round):4.2f}-{max(per_round):4.2f}x {p50['none'] / p50['fast']:8.2f}x "
                  f"{first / later:8.2f}x {same:>10} {dprob:10.1e} {iou:8.4f}", flush=True)
    print("p95 ratio = p95(none) / p95(default) over all timed clicks; spread = the same ratio per round; "
          "1st/later = the default path's first click / its median later click.\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="aerial-finetuned-h18s,hrnet18",
                    help="registry names (random weights) or checkpoints, comma-separated")
    ap.add_argument("--rounds", type=int, default=3, help="timed sessions per backend (headline)")
    ap.add_argument("--fast", default="auto", help="the --optimize mode compared with 'none' (default: auto)")
    ap.add_argument("--other-baselines", action="store_true",
                    help="also print the former table against plain whole-image forward passes")
    ap.add_argument("--modes", default="none,fold,onednn",
                    help="optimize modes; MODE+graphs replays CUDA graphs (CUDA only; without it they are off)")
    ap.add_argument("--warmup-sessions", type=int, default=1,
                    help="untimed sessions before the timed one (2 on CUDA: shapes captured, steady state)")
    ap.add_argument("--size", type=int, default=500)
    ap.add_argument("--clicks", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=20, help="stem passes timed")
    ap.add_argument("--threads", default=None, help="torch intra-op threads, comma-separated (default: torch's)")
    ap.add_argument("--flip", action="store_true", help="with RITM's flip averaging (a batch of 2 per click)")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]")
    ap.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "bf16"),
                    help="autocast precision of the optimised modes on CUDA ('none' stays fp32: the baseline)")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    warnings.filterwarnings("ignore")
    modes = args.modes.split(",")
    img, gt = scene(args.size)
    print(f"torch {torch.__version__}, {cpu_name()}, image {args.size}x{args.size}, {args.clicks} clicks, "
          f"zoom-in on (target 400), flip {'on' if args.flip else 'off'}, device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))
    headline(args, device, img, gt)
    if not args.other_baselines:
        return
    print("== Other baselines (not like for like): each mode's clicks against plain forward passes")
    if args.threads:
        torch.set_num_threads(int(str(args.threads).split(",")[0]))
    for name in args.models.split(","):
        net, _ = load_network(name, device)
        stem = time_stem(net, (400, 400), args.repeats)
        base = NetworkBackend(net, device=device, optimize="none", cuda_graphs=False)
        clicks = simulated_clicks(base, img, gt, args.clicks, args.flip)
        print(f"\n== {name}: image-only stem (cacheable) {np.median(stem) * 1e3:.1f} ms at 400x400")
        print(f"per click, wall ms (CPU ms); 'plain' = plain forwards at {args.size}x{args.size} and 400x400 "
              "timed right after each click; ratios = plain p50 / click p95")
        print(f"{'mode':12} {'warm-up':>8} {'click p50':>14} {'click p95':>14} {'plain image':>14} {'plain 400':>14} "
              f"{'vs image':>12} {'vs 400':>12} {'1st click':>9} {'max|dprob|':>10} {'max|dlogit|':>11}  inputs")
        plains = [(net, *plain_input((args.size, args.size), device)), (net, *plain_input((400, 400), device))]
        ref_probs, plain400 = None, None
        for mode in modes:
            backend = NetworkBackend(net, device=device, optimize=mode.split("+")[0], cuda_graphs="+graphs" in mode,
                                     precision="fp32" if mode == "none" else args.precision)
            t = time.perf_counter()
            for _ in range(args.warmup_sessions):  # warm-up (same shapes)
                run_session(backend, img, clicks, args.flip)
            warm = time.perf_counter() - t
            wall, cpu, ref, probs, shapes = run_session(backend, img, clicks, args.flip, plains)
            if ref_probs is None:
                ref_probs = probs
            dprob = max(float(np.abs(a - b).max()) for a, b in zip(ref_probs, probs))
            dlogit = logits_gap(net, backend, device)
            sizes = sorted({f"{h}x{w}" for h, w in shapes})
            ms = lambda v: f"{v * 1e3:5.0f}"  # noqa: E731
            cols = [f"{ms(np.median(w))} ({ms(np.median(c))})" for w, c in ref]
            ratios = [f"{np.median(w) / pct(wall, 95):5.2f} ({np.median(c) / pct(cpu, 95):4.2f})" for w, c in ref]
            print(f"{mode:12} {warm:7.1f}s {ms(np.median(wall))} ({ms(np.median(cpu))}) "
                  f"{ms(pct(wall, 95))} ({ms(pct(cpu, 95))}) {cols[0]:>14} {cols[1]:>14} "
                  f"{ratios[0]:>12} {ratios[1]:>12} {ms(wall[0])}ms {dprob:10.1e} {dlogit:11.1e}  {', '.join(sizes)}")
            plain400 = plain400 or np.median(ref[1][0])
        print(f"the stem is {100 * np.median(stem) / plain400:.1f}% of a plain 400x400 pass")


if __name__ == "__main__":
    main()
