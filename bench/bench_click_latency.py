"""Per-click latency of the interactive session, next to one plain forward pass of the network.

For each network (random weights: timing only) a 500 x 500 synthetic scene (one bright
"building" on textured ground) is segmented with 20 clicks of the simulated user, through
``Predictor(NetworkBackend(net, optimize=MODE), zoom_in=True, flip=...)``. From the second click
on, RITM's zoom-in feeds the network a crop resized to 400 on its longer side; the first
click runs on the whole 500 x 500 image. Each mode first runs one untimed warm-up session with
the same clicks (its wall time is reported as "warm-up"), then the timed one.

The reference is one plain forward pass of the unmodified network, fp32, eager, under
torch.no_grad, at the image's resolution (500 x 500: what every click would cost without the
zoom-in) and at 400 x 400 (the zoom-in's resolution, to isolate the network speed-up).

"vs image" = plain forward at the image's size (median) / per-click p95: the issue's target
(>= 1.5x). "vs 400" = the same against the 400 x 400 forward. On a shared machine wall-clock
times swing with the load, so both plain forwards are timed right after every click (same
load) and CPU times (``time.process_time``, robust to other processes when torch runs one
thread) are printed in brackets, with their own ratios. "max |dprob|" compares each mode's probability maps
with the 'none' session's, click by click (same click sequence); "max |dlogit|" compares the
optimised network's logits at 400 x 400 with the plain network's.

Also printed: the share of a forward pass spent in the image-only stem (conv1 + bn1 + relu of
the HRNet, before the click features are added): the part that could be cached per image.

    .venv/bin/python bench/bench_click_latency.py [--models hrnet18s,hrnet18] [--modes none,fold,onednn]
        [--threads N] [--flip] [--clicks 20] [--size 500] [--device cuda --precision fp16]
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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="hrnet18s,hrnet18")
    ap.add_argument("--modes", default="none,fold,onednn",
                    help="optimize modes; MODE+graphs replays CUDA graphs (CUDA only; without it they are off)")
    ap.add_argument("--warmup-sessions", type=int, default=1,
                    help="untimed sessions before the timed one (2 on CUDA: shapes captured, steady state)")
    ap.add_argument("--size", type=int, default=500)
    ap.add_argument("--clicks", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=20, help="stem passes timed")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--flip", action="store_true", help="with RITM's flip averaging (a batch of 2 per click)")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]")
    ap.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "bf16"),
                    help="autocast precision of the optimised modes on CUDA ('none' stays fp32: the baseline)")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    warnings.filterwarnings("ignore")
    if args.threads:
        torch.set_num_threads(args.threads)
    modes = args.modes.split(",")
    img, gt = scene(args.size)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} thread(s), image {args.size}x{args.size}, {args.clicks} clicks, "
          f"zoom-in on (target 400), flip {'on' if args.flip else 'off'}, device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))
    for name in args.models.split(","):
        net = randomize_(create_model(name), seed=0).eval().to(device)
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
