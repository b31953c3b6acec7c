"""Simulated-user step on 256 masks of 500x500: batched ``next_clicks`` vs a per-mask loop.

Both use the same primitives (OpenCV's exact Euclidean distance transform); the ratio is
measured in the same process. Target: the batched version is not slower (ratio >= 1).
Run: .venv/bin/python bench/bench_clicker.py
"""


import cv2
import numpy as np

from ritm_qgis.engine.protocol.clicker import next_click, next_clicks
from timing import best_of_interleaved

N, H, W = 256, 500, 500


def make_masks(rng, localized=False):
    gt = np.zeros((N, H, W), bool)
    pred = np.zeros((N, H, W), bool)
    for i in range(N):
        for _ in range(rng.integers(3, 12)):  # a few rectangular "buildings"
            r, c = rng.integers(0, H - 60), rng.integers(0, W - 60)
            h, w = rng.integers(15, 60, size=2)
            gt[i, r:r + h, c:c + w] = True
        if localized:  # a later click: the prediction is right but for one missed corner of a building
            pred[i] = gt[i]
            r, c = np.argwhere(gt[i])[rng.integers(0, gt[i].sum())]
            pred[i, r:r + 12, c:c + 12] = False
        else:  # an early click: errors all along every building's border
            noisy = cv2.GaussianBlur(gt[i].astype(np.float32), (0, 0), 4) + rng.normal(0, 0.15, (H, W)).astype(np.float32)
            pred[i] = noisy > 0.5
    return gt, pred


def compare(label, gt, pred):
    best, outs = best_of_interleaved({"loop": lambda: [next_click(gt[i], pred[i]) for i in range(N)],
                                      "batch": lambda: next_clicks(gt, pred)}, repeat=5)
    (loop_t, batch_t), (loop_out, batch_out) = (best["loop"], best["batch"]), (outs["loop"], outs["batch"])
    assert all(batch_out[i] == loop_out[i] for i in range(N)), "batched and per-mask clicks differ"
    print(f"{label}")
    print(f"  per-mask loop : {loop_t * 1e3:8.1f} ms for {N} masks of {H}x{W} ({loop_t / N * 1e3:.2f} ms/mask)")
    print(f"  batched       : {batch_t * 1e3:8.1f} ms ({batch_t / N * 1e3:.2f} ms/mask)")
    print(f"  speed-up (loop / batched): {loop_t / batch_t:.2f}x  (target >= 1.00x)")


def main():
    rng = np.random.default_rng(0)
    compare("errors along every border (early clicks)", *make_masks(rng))
    compare("one local error per tile (later clicks)", *make_masks(rng, localized=True))


if __name__ == "__main__":
    main()
