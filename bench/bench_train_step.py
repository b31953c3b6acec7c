"""Training-step throughput: the project's loop against a plain fp32 loop, same model and batch.

    .venv/bin/python bench/bench_train_step.py --arch hrnet_tiny --batch-size 4 --crop 160,240 --steps 6
    python bench/bench_train_step.py --arch hrnet18s --batch-size 32 --device cuda   # on a GPU

Both loops run the full RITM step (the same iterative no-grad click passes, drawn from the same
random sequence, the NFL + aux loss, Adam). "project" is ``Trainer.train_step`` (fp16 autocast
+ GradScaler + channels_last on CUDA; on the CPU it is fp32 as well, so there the two should
match and the number shows the loop's own overhead). "plain fp32" is the textbook loop written
out here, with PyTorch's defaults (on CUDA its fp32 convolutions run in TF32). Data: synthetic
images with one rectangle each, prepared once (augmentation and the initial click sampler are
data-loader work, outside the timed step). Prints one JSON line per variant with images/s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import cv2
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ritm_qgis.engine.data.specs import MaskFolderSpec  # noqa: E402
from ritm_qgis.engine.training.loop import TrainConfig, Trainer, iterative_inputs  # noqa: E402
from ritm_qgis.engine.training.losses import ritm_loss  # noqa: E402


def make_folder(root, n, h, w):
    os.makedirs(os.path.join(root, "images"))
    os.makedirs(os.path.join(root, "masks"))
    rng = np.random.default_rng(0)
    for i in range(n):
        img = rng.integers(0, 80, (h, w, 3), dtype=np.uint8)
        mask = np.zeros((h, w), np.uint8)
        y, x = rng.integers(0, h // 2), rng.integers(0, w // 2)
        mask[y:y + h // 3, x:x + w // 3] = 255
        img[mask > 0] = (210, 190, 60)
        cv2.imwrite(os.path.join(root, "images", f"{i}.png"), img)
        cv2.imwrite(os.path.join(root, "masks", f"{i}.png"), mask)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="hrnet_tiny")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--crop", default="160,240")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    ch, cw = (int(v) for v in args.crop.split(","))
    tmp = tempfile.mkdtemp(prefix="bench_train_")
    make_folder(tmp, max(8, args.batch_size), ch + 40, cw + 40)
    cfg = TrainConfig(train_data=[MaskFolderSpec(tmp, "folder")], out=os.path.join(tmp, "run"), arch=args.arch,
                      batch_size=args.batch_size, crop_size=(ch, cw), device=args.device,
                      epoch_len=args.batch_size)
    trainer = Trainer(cfg)
    device = trainer.device
    items = [trainer.data[i] for i in range(args.batch_size)]
    batch = {k: torch.stack([it[k] for it in items]) for k in items[0]}

    def run_project(rng):
        trainer.train_step(batch, rng)

    # the plain loop: its own copy of the same initial weights, fp32, default memory layout
    plain = type(trainer.model)(trainer.model.config)
    plain.load_state_dict({k: v.float().contiguous() for k, v in trainer.model.state_dict().items()})
    plain.to(device).train()
    opt = torch.optim.Adam(plain.parameters(), lr=5e-4)

    def run_plain(rng):
        image, label, points = (batch[k].to(device) for k in ("image", "label", "points"))
        num_iters = int(rng.integers(0, 4))
        net_input, points = iterative_inputs(plain, image, label, points, num_iters, rng)
        loss, _ = ritm_loss(plain(net_input, points), label)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    results = []
    for name, fn in (("plain fp32", run_plain), ("project", run_project),
                     ("plain fp32 (again)", run_plain)):
        rng = np.random.default_rng(123)
        for _ in range(args.warmup):
            fn(rng)
        rng = np.random.default_rng(7)  # the same extra-click counts for every variant
        sync(device)
        t0 = time.perf_counter()
        for _ in range(args.steps):
            fn(rng)
        sync(device)
        dt = time.perf_counter() - t0
        r = {"variant": name, "device": str(device),
             "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
             "amp": trainer.use_amp if name == "project" else False,
             "channels_last": trainer.channels_last if name == "project" else False,
             "arch": args.arch, "batch_size": args.batch_size, "crop": [ch, cw], "steps": args.steps,
             "seconds_per_step": round(dt / args.steps, 4),
             "images_per_s": round(args.batch_size * args.steps / dt, 3),
             "threads": torch.get_num_threads()}
        results.append(r)
        print(json.dumps(r), flush=True)
    base = (results[0]["images_per_s"] + results[2]["images_per_s"]) / 2
    print(json.dumps({"speedup_project_vs_plain": round(results[1]["images_per_s"] / base, 3)}))


if __name__ == "__main__":
    main()
