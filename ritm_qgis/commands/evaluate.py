"""``ritm-qgis evaluate``: the paper's protocol for one or more models on a dataset, side by side."""

from __future__ import annotations

import json
import os
import sys

import numpy as np

from ritm_qgis.cli_progress import ProgressBar
from ritm_qgis.core.atomic import OutputSet, incomplete_path
from ritm_qgis.core.errors import RitmError
from ritm_qgis.engine.geo.stretch_registry import DEFAULT as DEFAULT_STRETCH, cli_help, cli_metavar, parse_stretch
from ritm_qgis.engine.data.registry import usage as dataset_usage
from ritm_qgis.engine.interactive.backends import model_label
from ritm_qgis.engine.jobs.limits import MAX_BATCH_SIZE, MAX_CLICKS, MAX_ZOOM_IN, check_int
from ritm_qgis.engine.protocol.noc import parse_thresholds
from ritm_qgis.engine.runtime.device import OPTIMIZE_MODES
from ritm_qgis.engine.reports.sample_table import (
    IOUS_FILE,
    SAMPLES_FILE,
    write_sample_outputs,
)

HELP = ("Evaluate models with simulated clicks (NoC, >=max, Avg IoU, per-click IoU) on a dataset and write "
        "IoU arrays, per-sample CSVs, report.json, a Markdown table and figures.")


def add_arguments(p):
    p.add_argument("--model", action="append", required=True, metavar="NAME|FILE",
                   help="a checkpoint file, a model name, or 'grabcut' (repeat for several models)")
    p.add_argument("--dataset", required=True, metavar="SPEC",
                   help=f"one of: {dataset_usage()}")
    p.add_argument("--max-clicks", type=int, default=20,
                   help=f"click budget per sample (default 20, at most {MAX_CLICKS})")
    p.add_argument("--thresholds", default="0.8,0.85,0.9", help="IoU thresholds for NoC (default 0.8,0.85,0.9)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--stretch", default=DEFAULT_STRETCH, metavar=cli_metavar(), help=cli_help())
    p.add_argument("--batch-size", type=int, default=8, help="samples that go through the network together")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda or cuda:N")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N samples")
    p.add_argument("--optimize", default="auto", choices=OPTIMIZE_MODES,
                   help="network speed-up: auto (default: the arithmetic of interactive use, bf16 on CPUs with "
                        "bf16 in hardware, else openvino-int8 where the openvino package is installed, else onednn; "
                        "fold below AVX2 and on a GPU), openvino-int8 (HRNet's stages in int8: NoC20@85 within 0.1 of "
                        "fp32 with the clicks held fixed; cached), openvino (fp32 through OpenVINO, RITM's "
                        "probabilities to 1e-6; its "
                        "conversion is cached beside the weights), onednn (fp32, RITM's probabilities to "
                        "1e-6), bf16 (refused on CPUs without bf16 hardware), int8 (HRNet quantized, "
                        "calibrated; CPU), fold, or none (the unmodified network: RITM's arithmetic)")
    p.add_argument("--no-figures", action="store_true", help="skip the best/worst sample figures")
    p.add_argument("--as-drawn", action="store_true",
                   help="click each sample as the map tool does (its window around the clicks, zoom-in and settings) "
                        "and score the outline it draws (simplified, squared polygon rasterised back), not the raw "
                        "mask; without it, the paper's protocol")
    p.add_argument("--zoom-in-size", default="400", metavar="N|HxW",
                   help="network input of RITM's zoom-in: N (default 400) resizes each crop to N on its longer "
                        "side, as RITM does; HxW (e.g. 400x400) resizes every crop to that one size, so each "
                        "batch is a single forward pass (faster on a GPU; crops are stretched)")


def parse_zoom_in_size(text: str):
    """'400' -> 400 (longer side); '400x400' -> (400, 400) (one common size)."""
    parts = str(text).lower().split("x")
    try:
        sizes = [int(v) for v in parts]
    except ValueError:
        sizes = []
    if len(sizes) not in (1, 2) or not 16 <= min(sizes, default=0) <= max(sizes, default=0) <= MAX_ZOOM_IN:
        raise RitmError(f"--zoom-in-size '{text}' is not a size: give N (e.g. 400) or HxW (e.g. 400x400), "
                        f"from 16 to {MAX_ZOOM_IN} pixels")
    return sizes[0] if len(sizes) == 1 else tuple(sizes)



def write_extreme_figures(folder: str, dataset, result, make_session, how_many: int = 2, staging=None):
    """Overlay + error map of the best and worst samples (by IoU at the last click), replaying their clicks."""
    from ritm_qgis.engine.reports.visualize import error_map, overlay, save_rgb_png

    arr = result.iou_array
    valid = [i for i in range(len(arr)) if not np.isnan(arr[i]).any()]
    if not valid:
        return []
    ranked = sorted(valid, key=lambda i: (arr[i, -1], result.names[i]))
    picks = [("worst", i) for i in ranked[:how_many]] + [("best", i) for i in ranked[::-1][:how_many]]
    written = []
    index = {n: k for k, n in enumerate(dataset.names)}
    for tag, i in picks:
        sample = dataset[index[result.names[i]]]
        session = make_session()
        session.set_image(sample.image)
        for c in result.clicks[i]:
            session.add_click(c.row, c.col, c.is_positive)
        pred = session.mask
        panel = np.concatenate([overlay(sample.image, pred, result.clicks[i]),
                                np.full((pred.shape[0], 8, 3), 255, np.uint8),
                                error_map(sample.gt, pred, sample.ignore)], axis=1)
        path = os.path.join(folder, f"{tag}_{result.names[i]}.png")
        written.append(save_rgb_png(staging.staged(path) if staging is not None else path, panel))
    return written


def quality_lines(summary: dict) -> str:
    """Mean IoU and boundary F (2 px) at clicks 1/3/5, and the share of clicks that hurt, per model."""
    lines = []
    for name, v in summary.items():
        iou = "/".join(f"{x:.3f}" for x in v["mean_iou_at"].values())
        bf = "/".join(f"{x:.3f}" for x in v.get("boundary_f2px_at", {}).values())
        lines.append(f"- {name}: mean IoU at clicks {'/'.join(v['mean_iou_at'])} {iou}; boundary F 2 px {bf}; "
                     f"clicks lowering IoU by > 0.1: {v['worsening_clicks_share']:.1%}")
    return "\n".join(lines)


def _distributed(device: str):
    """This process's place when launched by torchrun (one shard of the samples per process)."""
    from ritm_qgis.engine.runtime.device import resolve_device
    from ritm_qgis.engine.training.distributed import setup

    dev = resolve_device(device)
    info = setup(dev.type)
    if info.enabled and dev.type == "cuda":
        device = f"cuda:{info.local_rank}"
    return info, device


def check_arguments(args) -> tuple:
    """Every argument checked before any work (flags named as typed): (thresholds, labels)."""
    from ritm_qgis.engine.geo.output_paths import check_writable

    thresholds = parse_thresholds(args.thresholds, "--thresholds")
    args.zoom_in_size = parse_zoom_in_size(args.zoom_in_size)
    check_int(args.max_clicks, "--max-clicks", 1, MAX_CLICKS)
    check_int(args.batch_size, "--batch-size", 1, MAX_BATCH_SIZE)
    if args.limit is not None:
        check_int(args.limit, "--limit", 1)
    labels = [model_label(m) for m in args.model]
    if len(set(labels)) != len(labels):
        raise RitmError("two --model values have the same name; rename one of the files")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise RitmError(f"--out '{args.out}' is a file; give a folder for the outputs")
    check_writable(os.path.join(args.out, "report.json"), "--out folder")
    return thresholds, labels


def run(args) -> int:
    from ritm_qgis.engine.data.registry import open_dataset, parse_dataset_spec
    from ritm_qgis.engine.training.distributed import cleanup

    thresholds, labels = check_arguments(args)
    stretch = parse_stretch(args.stretch)  # once: the dataset, the as-drawn sessions and the report take this rule
    dataset = open_dataset(parse_dataset_spec(args.dataset), stretch=stretch)
    indices = list(range(min(len(dataset), args.limit) if args.limit else len(dataset)))
    if dataset.repaired_footprints:
        from ritm_qgis.engine.jobs.geo_evaluation import repaired_warning

        print(f"evaluate: warning: {repaired_warning(dataset.repaired_footprints, 'the footprint layer')}",
              file=sys.stderr)
    info, device = _distributed(args.device)
    try:
        return _evaluate_all(args, dataset, indices, info, device, thresholds, labels, stretch)
    finally:
        cleanup()


def _evaluate_all(args, dataset, indices, info, device, thresholds, labels, stretch) -> int:
    """Every model in turn; the outputs of the run are moved into place together at the end.

    While a model runs, its results so far are rewritten after every batch as
    ``<model>/ious.incomplete.npy`` and ``samples.incomplete.csv`` (readable, and marked as
    partial), so an interrupted run leaves the previous run's outputs as they were.
    """
    from ritm_qgis.engine.interactive.backends import build_backend
    from ritm_qgis.engine.interactive.predictor import Predictor
    from ritm_qgis.engine.interactive.zoom_in import ZoomInParams
    from ritm_qgis.engine.protocol.as_drawn import drawn_session_factory
    from ritm_qgis.engine.protocol.click_quality import click_quality
    from ritm_qgis.engine.protocol.evaluation import evaluate, merge_results, shard
    from ritm_qgis.engine.protocol.noc import noc_report
    from ritm_qgis.engine.reports.figures import plot_iou_curves
    from ritm_qgis.engine.reports.report_table import (
        TABLE_NOTES,
        markdown_table,
        text_table,
    )
    from ritm_qgis.engine.training.distributed import all_gather_objects

    backends = {label: build_backend(spec, device, optimize=args.optimize)
                for spec, label in zip(args.model, labels)}  # bad models: now
    staging = OutputSet()
    if info.is_main:  # held until the commit: a second run on this folder is refused before it writes
        staging.lock(args.out, "--out folder")
    reports, summary = [], {}
    partial_files = []
    try:
        for spec, label in zip(args.model, labels):
            backend = backends[label]

            def make_session(backend=backend, zoom=ZoomInParams(target_size=args.zoom_in_size)):
                return Predictor(backend, zoom_in=zoom)

            if args.as_drawn:
                make_session = drawn_session_factory(backend, stretch=stretch)

            folder = os.path.join(args.out, label)
            partial_files += [incomplete_path(os.path.join(folder, n)) for n in (IOUS_FILE, SAMPLES_FILE)]
            if info.enabled:  # each process evaluates its shard; rank 0 merges them in dataset order and writes
                part = evaluate(dataset, make_session, label, args.max_clicks, args.batch_size,
                                indices=shard(indices, info.rank, info.world_size),
                                progress=ProgressBar(f"{label} [rank {info.rank}]", "sample") if info.is_main else None)
                result = merge_results(all_gather_objects(info, part))
                if not info.is_main:
                    continue
            else:
                result = evaluate(dataset, make_session, label, args.max_clicks, args.batch_size,
                                  progress=ProgressBar(label, "sample"), indices=indices,
                                  on_batch=lambda r, folder=folder: write_sample_outputs(
                                      folder, r, thresholds, incomplete=True))
            write_sample_outputs(folder, result, thresholds, staging=staging)
            report = noc_report(label, result.iou_array, thresholds)
            reports.append(report)
            summary[label] = dict(report.to_json(), model=spec, seconds=result.seconds,
                                  n_clicks=result.n_clicks, seconds_per_click=result.seconds_per_click,
                                  optimize=getattr(backend, "optimize", None),
                                  paths=dict(getattr(backend, "paths_run", {})),
                                  ious_file=os.path.join(label, IOUS_FILE),
                                  **click_quality(result.iou_array, result.boundary_array(1),
                                                  result.boundary_array(2)))
            if not args.no_figures:
                write_extreme_figures(folder, dataset, result, make_session, staging=staging)
        if not info.is_main:
            return 0
        meta = {"dataset": args.dataset, "stretch": stretch.label, "processes": info.world_size, "n_dataset_samples": len(dataset),
                "max_clicks": args.max_clicks, "thresholds": list(thresholds), "batch_size": args.batch_size,
                "zoom_in_size": args.zoom_in_size, "as_drawn": bool(args.as_drawn),
                "repaired_footprints": list(dataset.repaired_footprints), "models": summary}
        with open(staging.staged(os.path.join(args.out, "report.json")), "w", encoding="utf-8") as f:
            f.write(json.dumps(meta, indent=2))
        table = markdown_table(reports)
        spc = "\n".join(f"- {k}: {v['seconds_per_click']:.3f} s per click ({v['n_clicks']} clicks)"
                        for k, v in summary.items())
        with open(staging.staged(os.path.join(args.out, "table.md")), "w", encoding="utf-8") as f:
            f.write(f"Dataset: `{args.dataset}`\n\n{table}\n\n{TABLE_NOTES}\n\nSeconds per click (RITM's SPC):\n{spc}\n")
        plot_iou_curves(reports, staging.staged(os.path.join(args.out, "iou_vs_clicks.png")),
                        title=f"IoU vs clicks: {dataset.name}")
    except BaseException:
        staging.discard()
        if any(os.path.exists(p) for p in partial_files):
            print(f"evaluate: the previous outputs in {args.out}/ were left as they were; the results so far are "
                  f"in <model>/{os.path.basename(partial_files[0])}", file=sys.stderr)
        raise
    staging.commit()  # also removes the results-so-far (the staged finals' .incomplete files)
    print(text_table(reports))
    print(quality_lines(summary))
    print(spc)
    print(f"\nevaluate: outputs in {args.out}/ (report.json, table.md, iou_vs_clicks.png, <model>/ious.npy, samples.csv)")
    return 0
