"""Measure the adaptation recipe on a scene split by area (issue 23, docs/evaluation.md).

Adapts a model on one part's per-building windows (``--train``; every 5th held out for the
adaptation's own check) and scores networks on the other part (``--test``), no building in both.
By default the parts are SpaceNet Rio's training chips (img55-57, img63, img64) and its held-out
chips img50-54 (``scripts/make_holdout_buildings.py`` writes both); any ``raster:`` scene split by
``scripts/split_footprints_by_area.py`` works too::

    python scripts/make_holdout_buildings.py --data ../shared/data --out out/aerial-buildings
    python scripts/adapt_sweep.py --buildings out/aerial-buildings --minutes 5 [--part last --lr 5e-5 ...]
    # train only, keeping the network at 1, 2 and 5 minutes; score them afterwards (or on another core)
    python scripts/adapt_sweep.py --minutes 5 --keep-at 1,2 --save-dir out/sweep/run1 --no-test
    python scripts/adapt_sweep.py --score aerial-finetuned-h18s out/sweep/run1/min1.pth grabcut

Prints JSON lines: the recipe, the adaptation's own hold-out before/after, steps, the machine's load,
and the test part's NoC10@85 and mean IoU at clicks 1 and 3 (``--test-clicks 3``: NoC3@85).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def scores(model, dataset, indices, max_clicks: int = 10):
    """NoC@85 and mean IoU at clicks 1 and 3 of a network or "grabcut" (``holdout_scores``' protocol)."""
    if model != "grabcut":
        from ritm_qgis.engine.training.adapt import holdout_scores

        return holdout_scores(model, dataset, indices, max_clicks)
    from ritm_qgis.engine.interactive.backends import build_backend
    from ritm_qgis.engine.interactive.predictor import Predictor
    from ritm_qgis.engine.protocol.evaluation import evaluate
    from ritm_qgis.engine.protocol.noc import noc_report
    from ritm_qgis.engine.training.adapt import HoldoutScore

    backend = build_backend("grabcut")
    res = evaluate(dataset, lambda: Predictor(backend), "grabcut", max_clicks, indices=indices)
    rep = noc_report("grabcut", res.iou_array, (0.85,))
    per_click = rep.mean_iou_per_click
    return HoldoutScore(rep.noc[0.85], per_click[0], per_click[min(2, len(per_click) - 1)], rep.n_samples)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--buildings", default="out/aerial-buildings",
                   help="a make_holdout_buildings.py folder: trains on its train/, tests on its test/")
    p.add_argument("--train", help="dataset spec to adapt on instead (e.g. raster:SCENE.tif:TRAIN.gpkg:buildings)")
    p.add_argument("--test", help="dataset spec to test on instead (e.g. raster:SCENE.tif:TEST.gpkg:buildings)")
    p.add_argument("--model", default="aerial-finetuned-h18s")
    p.add_argument("--minutes", type=float, default=5)
    p.add_argument("--part", default="last")
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--backbone-lr-mult", type=float, default=0.1)
    p.add_argument("--bn", choices=("frozen", "train"), default="frozen")
    p.add_argument("--seed", type=int, default=0, help="the recipe's random seed (windows, crops, clicks)")
    p.add_argument("--window-px", type=int, default=160, help="0: native scale")
    p.add_argument("--crop", type=int, default=160)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--max-next-clicks", type=int, default=3, help="RITM's iterative clicks per step: 0..N")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                   help="training passes (auto: bf16 where the CPU has it in hardware)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--test-every", type=int, default=1, help="score every N-th test building")
    p.add_argument("--test-clicks", type=int, default=10, help="clicks per test building (NoC at this many)")
    p.add_argument("--max-holdout", type=int, default=16, help="adaptation's own hold-out: at most N buildings")
    p.add_argument("--check-clicks", type=int, default=10,
                   help="clicks of the adaptation's own check (1: a cheap check when only the test part counts)")
    p.add_argument("--checks", type=int, default=2, help="hold-out checks while training (default 2)")
    p.add_argument("--keep-at", default="", help="comma-separated minutes: keep (and score) the network at each")
    p.add_argument("--save-dir", help="write the network at the end (last.pth) and at --keep-at (minM.pth) here")
    p.add_argument("--no-test", action="store_true", help="train only (score the saved networks later with --score)")
    p.add_argument("--no-base", action="store_true", help="skip scoring the base model on the test part")
    p.add_argument("--score", nargs="+", metavar="MODEL",
                   help="only score these models (names, checkpoints or 'grabcut') on the test part")
    a = p.parse_args(argv)

    import torch

    from ritm_qgis.engine.data.registry import open_dataset, parse_dataset_spec
    from ritm_qgis.engine.training.adapt import AdaptRecipe, adapt
    from ritm_qgis.models import load_model

    torch.set_num_threads(a.threads or max(1, torch.get_num_threads()))
    test = open_dataset(parse_dataset_spec(a.test or f"grabcut:{a.buildings}/test"))
    test_idx = list(range(0, len(test), a.test_every))
    if a.score:
        for name in a.score:
            t, load = time.perf_counter(), os.getloadavg()[0]
            net = name if name == "grabcut" else load_model(name, device="cpu")[0]
            s = scores(net, test, test_idx, a.test_clicks)
            print(json.dumps({"model": name, "test": a.test or a.buildings, "test_buildings": len(test_idx),
                              "clicks": a.test_clicks, "scores": s.as_dict(), "seconds": round(time.perf_counter() - t),
                              "load": [load, os.getloadavg()[0]]}), flush=True)
        return
    train = open_dataset(parse_dataset_spec(a.train or f"grabcut:{a.buildings}/train"))
    model, _ = load_model(a.model, device="cpu")
    recipe = AdaptRecipe(part=a.part, lr=a.lr, backbone_lr_mult=a.backbone_lr_mult, freeze_bn=a.bn == "frozen",
                         window_px=a.window_px or None, crop_size=(a.crop, a.crop), batch_size=a.batch_size,
                         max_next_clicks=a.max_next_clicks, seed=a.seed, precision=a.precision)
    out = {"recipe": recipe.as_dict(), "minutes": a.minutes, "model": a.model, "test_buildings": len(test_idx),
           "clicks": a.test_clicks, "threads": torch.get_num_threads(), "load_before": os.getloadavg()[0]}
    if not (a.no_base or a.no_test):
        t = time.perf_counter()
        out["test_before"] = scores(model, test, test_idx, a.test_clicks).as_dict()
        out["test_before_s"] = round(time.perf_counter() - t, 1)
    keep_at = tuple(float(m) for m in a.keep_at.split(",") if m)
    res = adapt(model, train, a.minutes, recipe, max_holdout=a.max_holdout, checks=a.checks, keep_at=keep_at,
                check_clicks=a.check_clicks, log=lambda s: print(s, file=sys.stderr, flush=True))
    out["adapt"] = res.metadata()
    out["load_after_training"] = os.getloadavg()[0]
    out["snapshot_steps"] = {str(m): steps for m, (steps, _) in sorted(res.snapshots.items())}
    if a.save_dir:
        from ritm_qgis.models import save_checkpoint

        os.makedirs(a.save_dir, exist_ok=True)
        meta = {"adaptation": res.metadata()}
        save_checkpoint(os.path.join(a.save_dir, "last.pth"), res.last_model, metadata=meta)
        for m, (steps, net) in res.snapshots.items():
            save_checkpoint(os.path.join(a.save_dir, f"min{m:g}.pth"), net, metadata={**meta, "steps": steps})
    if not a.no_test:
        # the adapted network whatever its own check said, so that the recipe itself is measured
        t = time.perf_counter()
        out["test_after"] = scores(res.last_model, test, test_idx, a.test_clicks).as_dict()
        out["test_after_s"] = round(time.perf_counter() - t, 1)
        out["curve"] = [{"minutes": m, "steps": steps, "test": scores(net, test, test_idx, a.test_clicks).as_dict()}
                        for m, (steps, net) in sorted(res.snapshots.items()) if m < a.minutes]
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
