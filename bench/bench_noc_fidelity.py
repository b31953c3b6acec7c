"""How far a faster arithmetic moves NoC: the same simulated clicks, RITM's arithmetic as the user.

The simulated user is chaotic: one pixel that flips in a mask moves the next click, and from there
the two trajectories have nothing in common (``evaluate --optimize onednn``, within 1e-6 of
'none', already changes one building's NoC@85 by 5 clicks in 30). Comparing two free ``evaluate``
runs therefore measures that chaos, not the arithmetic. This bench holds the clicks fixed:

- the reference session (``--optimize none``: the unmodified fp32 network, RITM's arithmetic)
  drives the simulated user, exactly as ``evaluate`` does (same clicker, same zoom-in, flip on);
- every ``--modes`` session receives the *same* click at each step, keeps its own previous mask
  (the 4th input channel), and is scored against the same ground truth.

So every difference in IoU, and hence in NoC, comes from the arithmetic alone: what a user who
clicks the same places would see. Printed and written (``--out`` JSON, updated after every batch so
a stopped run keeps what it measured): NoC20@t per mode, the difference to 'none', how many samples
changed NoC and by how much, mean IoU at the last click and the largest per-click IoU difference.

    .venv/bin/python bench/bench_noc_fidelity.py --model aerial-finetuned-h18s \\
        --dataset grabcut:out/aerial-buildings/test --limit 0 --modes bf16 [--threads 1] [--batch-size 8] \\
        [--max-clicks 20] [--thresholds 0.8,0.85,0.9] [--shard 0/2] [--out out/noc_fidelity/aerial.json]

The defaults (6 GrabCut images) are a quick check; ``--limit 0`` runs a whole set
(``out/aerial-buildings`` comes from ``scripts/make_holdout_buildings.py``).

``--shard I/N`` takes every N-th sample from I (run N processes, then ``--merge`` their JSONs).
``--replay`` takes the clicks and the 'none' IoUs recorded in earlier ``--out`` JSONs of the same set
instead of running 'none' again (3-4 times faster when the other modes are bf16).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
from bench_click_latency import cpu_name

from ritm_qgis.engine.data.registry import open_dataset, parse_dataset_spec
from ritm_qgis.engine.interactive.click_encoding import Click
from ritm_qgis.engine.interactive.predictor import NetworkBackend, Predictor, predict_batch
from ritm_qgis.engine.interactive.zoom_in import ZoomInParams
from ritm_qgis.engine.protocol.clicker import ClickHistory, next_click
from ritm_qgis.engine.protocol.metrics import mask_iou
from ritm_qgis.engine.protocol.noc import noc_per_sample
from ritm_qgis.models.checkpoint import load_model


def run_samples(dataset, indices, backends, max_clicks, batch_size, on_batch, replay=None):
    """IoU per click for every backend, the clicks coming from the simulated user on 'none'.

    Returns {"names": [...], "ious": {mode: [list per sample]}, "clicks": {name: [[row, col, positive], ...]}};
    ``on_batch`` gets it after each batch. ``replay`` ({name: (clicks, 'none' IoUs)} of an earlier
    run of the same set) stands in for the 'none' session, which is then not run.
    """
    modes = list(backends)
    ref_mode = "none"
    out = {"names": [], "ious": {m: [] for m in [ref_mode, *modes]}, "clicks": {}}
    for b0 in range(0, len(indices), batch_size):
        samples = [dataset[i] for i in indices[b0:b0 + batch_size]]
        samples = [s for s in samples if s.gt.any()]
        sessions = {m: [] for m in modes}
        for s in samples:
            for m in modes:
                p = Predictor(backends[m], zoom_in=ZoomInParams(target_size=400))
                p.set_image(s.image)
                sessions[m].append(p)
        ious = {m: np.full((len(samples), max_clicks), np.nan) for m in [ref_mode, *modes]}
        hist = [ClickHistory(s.gt.shape) for s in samples]
        active = list(range(len(samples)))
        for k in range(max_clicks):
            steps = []
            for j in active:
                if replay is None:
                    c = next_click(samples[j].gt, sessions[ref_mode][j].mask, samples[j].ignore, hist[j].not_clicked)
                else:
                    recorded = replay[samples[j].name][0]
                    c = Click(*recorded[k]) if k < len(recorded) else None
                if c is None:  # the reference is perfect: no click left; every mode keeps its last IoU
                    for m in ious:
                        ious[m][j, k:] = ious[m][j, k - 1] if k else 1.0
                    continue
                steps.append((j, c))
            active = [j for j, _ in steps]
            if not steps:
                break
            for m in modes:
                preds = predict_batch([(sessions[m][j], c) for j, c in steps])
                for (j, _), pred in zip(steps, preds):
                    ious[m][j, k] = mask_iou(samples[j].gt, pred.mask, samples[j].ignore)
            for j, c in steps:
                hist[j].add(c)
        if replay is not None:
            ious[ref_mode] = np.array([replay[s.name][1] for s in samples], float).reshape(len(samples), -1)
        out["names"] += [s.name for s in samples]
        for m in ious:
            out["ious"][m] += ious[m].tolist()
        out["clicks"].update({s.name: [[c.row, c.col, bool(c.is_positive)] for c in h.clicks]
                              for s, h in zip(samples, hist)})
        on_batch(out, len(out["names"]))
    return out


def load_replay(paths):
    """{name: (clicks, 'none' IoUs)} from the ``--out`` JSONs of an earlier run."""
    replay = {}
    for p in paths:
        with open(p) as f:
            part = json.load(f)
        if "clicks" not in part:
            raise SystemExit(f"{p} has no recorded clicks (written before --replay existed); run 'none' again")
        for name, ious in zip(part["names"], part["ious"]["none"]):
            replay[name] = (part["clicks"][name], ious)
    return replay


def make_backend(net, mode):
    """A backend for an --optimize mode (openvino-int8 included), or for openvino-f32 /
    openvino-bf16 (bench_openvino.py; OpenVINO must be installed beside the project)."""
    if mode.startswith("openvino-") and mode not in NetworkBackend.OPTIMIZE:
        from bench_openvino import OpenVinoBackend

        return OpenVinoBackend(net, precision=mode.split("-", 1)[1])
    return NetworkBackend(net, device="cpu", optimize=mode, cuda_graphs=False)


def summary(result, thresholds):
    ref = np.asarray(result["ious"]["none"], float)
    rows = {}
    for m, values in result["ious"].items():
        ious = np.asarray(values, float)
        row = {"mean_iou_last": float(ious[:, -1].mean()) if len(ious) else float("nan"),
               "max_abs_diou": float(np.abs(ious - ref).max()) if len(ious) else 0.0,
               "mean_abs_diou": float(np.abs(ious - ref).mean()) if len(ious) else 0.0}
        for t in thresholds:
            noc, noc_ref = noc_per_sample(ious, t), noc_per_sample(ref, t)
            d = noc - noc_ref
            row[f"noc@{t:g}"] = float(noc.mean())
            row[f"delta@{t:g}"] = float(d.mean())
            row[f"changed@{t:g}"] = int((d != 0).sum())
            row[f"max_abs_change@{t:g}"] = int(np.abs(d).max()) if len(d) else 0
        rows[m] = row
    return rows


def print_table(rows, thresholds, n):
    print(f"{n} samples; NoC20@t (delta to 'none'; samples whose NoC changed, largest change)")
    head = f"{'mode':8}" + "".join(f" {'NoC@' + format(t, 'g'):>22}" for t in thresholds)
    print(head + f" {'IoU@last':>9} {'max|dIoU|':>9} {'mean|dIoU|':>10}")
    for m, r in rows.items():
        cells = "".join(f" {r[f'noc@{t:g}']:6.3f} ({r[f'delta@{t:g}']:+.3f}; {r[f'changed@{t:g}']},"
                        f"{r[f'max_abs_change@{t:g}']:>2})" for t in thresholds)
        print(f"{m:8}{cells} {r['mean_iou_last']:9.4f} {r['max_abs_diou']:9.2e} {r['mean_abs_diou']:10.2e}")


def merge(paths):
    merged = None
    for p in paths:
        with open(p) as f:
            part = json.load(f)
        if merged is None:
            merged = {k: v for k, v in part.items() if k not in ("names", "ious", "summary", "clicks")}
            merged.update(names=[], ious={m: [] for m in part["ious"]}, clicks={})
        merged["names"] += part["names"]
        merged["clicks"].update(part.get("clicks", {}))
        for m, v in part["ious"].items():
            merged["ious"][m] += v
    return merged


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="aerial-finetuned-h18s")
    ap.add_argument("--dataset", default="grabcut:../shared/data/grabcut")
    ap.add_argument("--modes", default="bf16", help="comma-separated --optimize modes compared with 'none', "
                    "openvino-int8 included (also openvino-f32 and openvino-bf16, with OpenVINO installed)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-clicks", type=int, default=20)
    ap.add_argument("--thresholds", default="0.8,0.85,0.9")
    ap.add_argument("--limit", type=int, default=6, help="only the first N samples (0: all; the default keeps "
                    "`make bench` short)")
    ap.add_argument("--shard", default="0/1")
    ap.add_argument("--out", default="")
    ap.add_argument("--merge", nargs="+", metavar="JSON", help="print the summary of these shard outputs")
    ap.add_argument("--replay", nargs="+", metavar="JSON", help="take the clicks and 'none' IoUs from these "
                    "outputs of an earlier run on the same set (same --max-clicks) instead of running 'none'")
    args = ap.parse_args(argv)
    thresholds = [float(t) for t in args.thresholds.split(",")]
    if args.merge:
        result = merge(args.merge)
        rows = summary(result, thresholds)
        print(f"{result.get('model')} on {result.get('dataset')}; machine: {result.get('cpu')}")
        print_table(rows, thresholds, len(result["names"]))
        if args.out:
            result["summary"] = rows
            with open(args.out, "w") as f:
                json.dump(result, f)
        return 0

    torch.set_num_threads(args.threads)
    net, _ = load_model(args.model, torch.device("cpu"))
    net.eval()
    replay = load_replay(args.replay) if args.replay else None
    modes = ([] if replay else ["none"]) + [m for m in args.modes.split(",") if m and m != "none"]
    backends = {m: make_backend(net, m) for m in modes}
    for m, b in backends.items():
        print(f"{m}: runs as {getattr(b, 'optimize', m)}", file=sys.stderr)
    dataset = open_dataset(parse_dataset_spec(args.dataset))
    rank, world = (int(x) for x in args.shard.split("/"))
    indices = list(range(len(dataset)))[: args.limit or None][rank::world]
    if replay is not None:
        missing = [dataset.names[i] for i in indices if dataset.names[i] not in replay]
        lengths = {len(ious) for _, ious in replay.values()}
        if missing or lengths != {args.max_clicks}:
            raise SystemExit(f"--replay does not cover this run: {len(missing)} samples missing, "
                             f"{sorted(lengths)} clicks recorded against --max-clicks {args.max_clicks}")
    meta = {"model": args.model, "dataset": args.dataset, "modes": ["none", *modes] if replay else modes,
            "threads": args.threads, "shard": args.shard, "max_clicks": args.max_clicks, "cpu": cpu_name(),
            "torch": torch.__version__}
    start = time.perf_counter()

    def on_batch(result, done):
        print(f"[{time.perf_counter() - start:7.0f} s] {done}/{len(indices)} samples", file=sys.stderr, flush=True)
        if args.out:
            os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
            tmp = args.out + ".tmp"
            with open(tmp, "w") as f:
                json.dump({**meta, **result, "seconds": time.perf_counter() - start}, f)
            os.replace(tmp, args.out)

    result = run_samples(dataset, indices, backends, args.max_clicks, args.batch_size, on_batch, replay)
    print(f"{args.model} on {args.dataset} (shard {args.shard}), {args.threads} thread(s); {meta['cpu']}")
    print_table(summary(result, thresholds), thresholds, len(result["names"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
