"""``ritm-qgis noc-report``: Table 1 and Figure 1 of the paper from per-sample IoU arrays."""

from __future__ import annotations

import json
import os

from ritm_qgis.core.errors import RitmError
from ritm_qgis.engine.jobs.limits import MAX_CLICKS, check_int
from ritm_qgis.engine.protocol.noc import DEFAULT_THRESHOLDS, noc_report, parse_thresholds
from ritm_qgis.engine.reports.iou_arrays import read_iou_array
from ritm_qgis.engine.reports.report_table import TABLE_NOTES, text_table

HELP = "Print NoC / >=max / Avg IoU (the paper's Table 1) from per-sample IoU arrays (.npy, samples x clicks)."



def parse_named_file(spec: str) -> tuple[str, str]:
    name, sep, path = spec.partition("=")
    if not sep:
        path = spec
        name = os.path.splitext(os.path.basename(spec))[0]
    if not name or not path:
        raise RitmError(f"--ious takes NAME=FILE.npy, not '{spec}'")
    return name, path



def add_arguments(p):
    p.add_argument("--ious", action="append", required=True, metavar="NAME=FILE.npy",
                   help="per-sample IoU array of one model (repeat for several models)")
    p.add_argument("--thresholds", default=",".join(str(t) for t in DEFAULT_THRESHOLDS),
                   help="IoU thresholds, comma-separated (default 0.8,0.85,0.9)")
    p.add_argument("--max-clicks", type=int, default=None,
                   help="click budget (default: all clicks in the arrays, 20 for the paper's)")
    p.add_argument("--json", action="store_true", help="print one JSON object per model instead of the table")
    p.add_argument("--plot", metavar="CURVE.png", help="also write the IoU-vs-clicks figure")


def build_reports(args):
    thresholds = parse_thresholds(args.thresholds)
    if args.max_clicks is not None:
        check_int(args.max_clicks, "--max-clicks", 1, MAX_CLICKS)
    named = [parse_named_file(spec) for spec in args.ious]
    if args.plot:
        from ritm_qgis.engine.geo.output_paths import check_writable
        from ritm_qgis.engine.jobs.same_file import Place, refuse_outputs_among_inputs

        refuse_outputs_among_inputs([Place("--plot", args.plot)], [Place("--ious", path) for _, path in named])
        check_writable(args.plot, "--plot figure")
    reports = []
    for name, path in named:
        reports.append(noc_report(name, read_iou_array(path), thresholds, args.max_clicks))
    if len({r.max_clicks for r in reports}) > 1:
        raise RitmError("the arrays hold different numbers of clicks; pass --max-clicks to compare them on one budget")
    return reports


def run(args) -> int:
    from ritm_qgis.engine.protocol.click_quality import click_quality_beside

    reports = build_reports(args)
    quality = {parse_named_file(spec)[0]: click_quality_beside(parse_named_file(spec)[1]) for spec in args.ious}
    if args.json:
        print(json.dumps({r.name: dict(r.to_json(), **quality[r.name]) for r in reports}, indent=2))
    else:
        print(text_table(reports))
        for name, q in quality.items():
            bf = q.get("boundary_f2px_at")
            print(f"- {name}: mean IoU at clicks {'/'.join(q['mean_iou_at'])} "
                  f"{'/'.join(f'{v:.3f}' for v in q['mean_iou_at'].values())}"
                  + (f"; boundary F 2 px {'/'.join(f'{v:.3f}' for v in bf.values())}" if bf else "")
                  + f"; clicks lowering IoU by > 0.1: {q['worsening_clicks_share']:.1%}")
        print()
        print(TABLE_NOTES)
    if args.plot:
        from ritm_qgis.engine.reports.figures import plot_iou_curves

        plot_iou_curves(reports, args.plot)
        if not args.json:
            print(f"\nfigure written to {args.plot}")
    return 0
