"""Adaptation-step throughput: bf16 autocast against fp32, same model, batch and clicks, interleaved.

    .venv/bin/python bench/bench_adapt_precision.py [--model aerial-finetuned-h18s] [--threads 1] [--rounds 6]

One step is what ``adapt`` does (``engine/training/adapt.py``, its default recipe): BatchNorm frozen,
HRNet's last stage and the heads trained, two no-grad click passes, the training pass, the NFL + aux
loss, Adam. Both variants start from the same weights; their steps alternate (fp32, bf16, fp32...)
so that a noisy machine slows both alike. Data: one synthetic batch of 4 windows of 160 px with a
bright rectangle each (the speed does not depend on the content). Prints one JSON line per variant
and the ratio. bf16 is fast only where the CPU computes it in hardware (AVX512-BF16 or AMX:
``native_bf16``); elsewhere it is emulated and slower than fp32, which is why ``adapt`` uses it
only there.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ritm_qgis.engine.runtime.cpu_bf16 import native_bf16  # noqa: E402
from ritm_qgis.engine.training.adapt import AdaptRecipe, _train_mode, set_trainable, training_autocast  # noqa: E402
from ritm_qgis.engine.training.loop import iterative_inputs, param_groups  # noqa: E402
from ritm_qgis.engine.training.losses import ritm_loss  # noqa: E402
from ritm_qgis.models import load_model  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="aerial-finetuned-h18s")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--clicks", type=int, default=2, help="no-grad click passes per step")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    recipe = AdaptRecipe()
    base, _ = load_model(args.model, device="cpu")
    b, (h, w) = recipe.batch_size, recipe.crop_size
    image = torch.rand(b, 3, h, w) * 0.4
    label = torch.zeros(b, 1, h, w)
    label[:, :, h // 4:3 * h // 4, w // 4:3 * w // 4] = 1
    image[:, :, h // 4:3 * h // 4, w // 4:3 * w // 4] += 0.5
    points = torch.full((b, 24, 3), -1.0)
    points[:, 0] = torch.tensor([h / 2, w / 2, 0.0])

    variants = {}
    for name in ("fp32", "bf16"):
        net = copy.deepcopy(base).float()
        set_trainable(net, recipe.part)
        opt = torch.optim.Adam(param_groups(net, recipe.lr, recipe.backbone_lr_mult), lr=recipe.lr)
        variants[name] = (net, opt, training_autocast(name))

    def step(name, rng):
        net, opt, autocast = variants[name]
        _train_mode(net, True)
        net_input, pts = iterative_inputs(net, image, label, points, args.clicks, rng, autocast_ctx=autocast)
        _train_mode(net, True)
        with autocast() if autocast else torch.autocast("cpu", enabled=False):
            out = net(net_input, pts)
        loss, _ = ritm_loss({k: v if v is None else v.float() for k, v in out.items()}, label)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    for name in variants:  # warm-up: oneDNN's kernels for these shapes
        step(name, np.random.default_rng(0))
    seconds = {name: 0.0 for name in variants}
    losses = {name: [] for name in variants}
    for r in range(args.rounds):
        for name in variants:
            t0 = time.perf_counter()
            losses[name].append(step(name, np.random.default_rng(r + 1)))
            seconds[name] += time.perf_counter() - t0
    for name in variants:
        print(json.dumps({"variant": name, "model": args.model, "batch": b, "crop": [h, w], "threads": args.threads,
                          "seconds_per_step": round(seconds[name] / args.rounds, 3),
                          "mean_loss": round(float(np.mean(losses[name])), 4)}))
    print(json.dumps({"bf16_speedup": round(seconds["fp32"] / seconds["bf16"], 2), "native_bf16": native_bf16(),
                      "load_average": round(os.getloadavg()[0], 1)}))


if __name__ == "__main__":
    main()
