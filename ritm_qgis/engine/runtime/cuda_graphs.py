"""Replay the network's forward pass from CUDA graphs.

At batch 1 an HRNet forward pass on a recent GPU is bound by kernel launches (about a thousand
small kernels, ~10 ms on an H200 whatever the precision); a captured graph launches them all
at once. A graph holds one input shape, and an interactive session meets many (every zoom-in
box has its own), so a shape is captured the second time it is seen (the first call runs
eagerly), at most ``max_graphs`` are kept (least recently used dropped), and the click rows are
padded to a multiple of ``POINT_BUCKET`` with RITM's ignored rows (-1), which changes nothing
in the output but keeps the number of shapes small. Any failure to capture turns graphs off for
the runner, with a warning, and the eager pass is used from then on.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict

POINT_BUCKET = 8


def pad_points(points, bucket: int = POINT_BUCKET):
    """(B, 2N, 3) -> (B, 2M, 3) with M the next multiple of ``bucket``: positives stay in rows
    0..N-1 -> 0..M-1 and negatives in N..2N-1 -> M..2M-1, new rows -1 (ignored)."""
    import torch

    b, rows, c = points.shape
    n = rows // 2
    m = max(bucket, -(-n // bucket) * bucket)
    if m == n:
        return points
    out = torch.full((b, 2 * m, c), -1.0, dtype=points.dtype, device=points.device)
    out[:, :n] = points[:, :n]
    out[:, m:m + n] = points[:, n:]
    return out


class _Entry:
    def __init__(self, graph, images, points, out):
        self.graph, self.images, self.points, self.out = graph, images, points, out


class CudaGraphRunner:
    """``runner(images, points)`` = ``forward(images, points)``, replayed from a graph when it can.

    forward: a function of two CUDA tensors returning one tensor (no CPU synchronisation inside).
    """

    def __init__(self, forward, max_graphs: int = 8):
        self.forward = forward
        self.max_graphs = max_graphs
        self.graphs: OrderedDict = OrderedDict()
        self.seen: set = set()
        self.pool = None
        self.enabled = True

    def __call__(self, images, points):
        points = pad_points(points)
        if not self.enabled:
            return self.forward(images, points)
        key = (tuple(images.shape), images.stride(), images.dtype, tuple(points.shape))
        entry = self.graphs.get(key)
        if entry is None:
            if key not in self.seen:
                self.seen.add(key)
                return self.forward(images, points)
            try:
                entry = self._capture(images, points)
            except Exception as exc:  # noqa: BLE001 - any capture failure: fall back to eager for good
                self.enabled = False
                self.graphs.clear()
                warnings.warn(f"CUDA graphs are off for this model ({type(exc).__name__}: {exc}); "
                              "running it eagerly.", RuntimeWarning, stacklevel=2)
                return self.forward(images, points)
            self.graphs[key] = entry
            if len(self.graphs) > self.max_graphs:
                self.graphs.popitem(last=False)
        self.graphs.move_to_end(key)
        entry.images.copy_(images)
        entry.points.copy_(points)
        entry.graph.replay()
        return entry.out.clone()

    def _capture(self, images, points) -> _Entry:
        import torch

        static_images = images.clone()  # keeps the memory format (channels_last stays)
        static_points = points.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up off the capture: cuDNN plans, allocator
            self.forward(static_images, static_points)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool):
            out = self.forward(static_images, static_points)
        self.pool = graph.pool()
        return _Entry(graph, static_images, static_points, out)
