"""Measure the adaptation recipe on SpaceNet Rio split by area (issue 23, docs/evaluation.md).

Trains on the per-building windows of the training chips (img55-57, img63, img64; every 5th held
out for the adaptation's own check) and scores the base model and the adapted one on the
held-out chips img50-54 (``scripts/make_holdout_buildings.py`` writes both sets)::

    python scripts/make_holdout_buildings.py --data ../shared/data --out out/aerial-buildings
    python scripts/adapt_sweep.py --buildings out/aerial-buildings --minutes 5 [--part last --lr 5e-5 ...]

Prints one JSON line: the recipe, the adaptation's own hold-out before/after and the test part's
NoC10@85 and mean IoU at clicks 1 and 3 before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def grabcut_scores(dataset, indices, max_clicks: int = 10):
    """NoC10@85 and mean IoU at clicks 1 and 3 of GrabCut (the same protocol as ``holdout_scores``)."""
    from ritm_qgis.engine.interactive.backends import build_backend
    from ritm_qgis.engine.interactive.predictor import Predictor
    from ritm_qgis.engine.protocol.evaluation import evaluate
    from ritm_qgis.engine.protocol.noc import noc_report
    from ritm_qgis.engine.training.adapt import HoldoutScore

    backend = build_backend("grabcut")
    res = evaluate(dataset, lambda: Predictor(backend), "grabcut", max_clicks, indices=indices)
    rep = noc_report("grabcut", res.iou_array, (0.85,))
    return HoldoutScore(rep.noc[0.85], rep.mean_iou_per_click[0], rep.mean_iou_per_click[2], rep.n_samples)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--buildings", default="out/aerial-buildings")
    p.add_argument("--model", default="aerial-finetuned-h18s")
    p.add_argument("--minutes", type=float, default=5)
    p.add_argument("--part", default="last")
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--backbone-lr-mult", type=float, default=0.1)
    p.add_argument("--bn", choices=("frozen", "train"), default="frozen")
    p.add_argument("--window-px", type=int, default=160, help="0: native scale")
    p.add_argument("--crop", type=int, default=160)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--test-every", type=int, default=1, help="score every N-th test building")
    p.add_argument("--max-holdout", type=int, default=16, help="adaptation's own hold-out: at most N buildings")
    p.add_argument("--checks", type=int, default=2, help="hold-out checks while training (default 2)")
    p.add_argument("--no-base", action="store_true", help="skip scoring the base model on the test part")
    p.add_argument("--save", help="write the adapted network here (checkpoint)")
    p.add_argument("--grabcut", action="store_true", help="only score GrabCut on the test part (the baseline beside)")
    a = p.parse_args(argv)

    import torch

    from ritm_qgis.engine.data.registry import open_dataset, parse_dataset_spec
    from ritm_qgis.engine.training.adapt import AdaptRecipe, adapt, holdout_scores
    from ritm_qgis.models import load_model

    torch.set_num_threads(max(1, torch.get_num_threads()))
    train = open_dataset(parse_dataset_spec(f"grabcut:{a.buildings}/train"))
    test = open_dataset(parse_dataset_spec(f"grabcut:{a.buildings}/test"))
    test_idx = list(range(0, len(test), a.test_every))
    if a.grabcut:
        print(json.dumps({"model": "grabcut", "test_buildings": len(test_idx),
                          "test": grabcut_scores(test, test_idx).as_dict()}), flush=True)
        return
    model, _ = load_model(a.model, device="cpu")
    recipe = AdaptRecipe(part=a.part, lr=a.lr, backbone_lr_mult=a.backbone_lr_mult, freeze_bn=a.bn == "frozen",
                         window_px=a.window_px or None, crop_size=(a.crop, a.crop), batch_size=a.batch_size)
    out = {"recipe": recipe.as_dict(), "minutes": a.minutes, "model": a.model, "test_buildings": len(test_idx)}
    t = time.perf_counter()
    if not a.no_base:
        out["test_before"] = holdout_scores(model, test, test_idx).as_dict()
        out["test_before_s"] = round(time.perf_counter() - t, 1)
    res = adapt(model, train, a.minutes, recipe, max_holdout=a.max_holdout, checks=a.checks, log=lambda s: print(s, file=sys.stderr, flush=True))
    out["adapt"] = res.metadata()
    t = time.perf_counter()
    # the adapted network whatever its own check said, so that the recipe itself is measured
    out["test_after"] = holdout_scores(res.last_model, test, test_idx).as_dict()
    out["test_after_s"] = round(time.perf_counter() - t, 1)
    if res.improved:
        out["test_chosen"] = out["test_after"] if res.model is not model and res.checks and res.checks[-1][1] == res.after \
            else holdout_scores(res.model, test, test_idx).as_dict()
    if a.save:
        from ritm_qgis.models import save_checkpoint

        save_checkpoint(a.save, res.model, metadata={"adaptation": res.metadata()})
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
