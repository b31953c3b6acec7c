"""OpenVINO as a CPU lever, at equal input: its fp32 and bf16 against the project's modes and 'none'.

This bench measured whether OpenVINO would pay (issue 17 named it as a candidate); its fp32 is now
the project's optional ``--optimize openvino`` (``ritm_qgis/engine/runtime/openvino_cpu.py``, chosen
by ``auto`` on CPUs without bf16 hardware; ``make setup`` installs the package in the development
venv). Elsewhere install it beside the project to run this bench, e.g.
``pip install --target /tmp/ovpkgs --no-deps openvino openvino-telemetry`` and
``PYTHONPATH=/tmp/ovpkgs``. The network is converted by ``openvino.convert_model`` from the
PyTorch module (any input size and number of clicks), then compiled for the CPU with
``INFERENCE_PRECISION_HINT`` f32 or bf16 and the same thread count as torch (``OpenVinoBackend``);
the sigmoid is applied to the logits outside the network, as for the torch modes. Every mode runs
the same input as ``bench_levers.py`` (batch 2 = RITM's flip, 4 x 400 x 400), the modes taking
turns pass by pass (order reversed every other round); printed: p50 / p95 wall ms, p95(none) /
p95(mode) and the largest probability difference to 'none'.

    PYTHONPATH=/tmp/ovpkgs .venv/bin/python bench/bench_openvino.py [--models aerial-finetuned-h18s,hrnet18]
        [--threads 1,2] [--repeats 6] [--size 400]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
from bench_click_latency import cpu_name, load_network
from bench_levers import inputs

from ritm_qgis.engine.interactive.predictor import NetworkBackend


class OpenVinoBackend(NetworkBackend):
    """A ``NetworkBackend`` whose forward pass runs the network compiled by OpenVINO (any input
    size, any number of clicks), for benches that drive a ``Predictor`` (bench_noc_fidelity)."""

    def __init__(self, net, precision: str = "bf16", threads: int | None = None):
        import openvino as ov

        super().__init__(net, device="cpu", optimize="none", cuda_graphs=False)
        x, pts = inputs(400, 2)
        model = ov.convert_model(_Logits(net).eval(), example_input=(x, pts))
        model.reshape({model.inputs[0]: ov.PartialShape([-1, x.shape[1], -1, -1]),
                       model.inputs[1]: ov.PartialShape([-1, -1, 3])})
        self._compiled = ov.Core().compile_model(model, "CPU", {
            "INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": threads or torch.get_num_threads()})
        self.optimize = f"openvino-{precision}"

    def forward(self, images, points):
        out = self._compiled([images.float().contiguous().numpy(), points.float().contiguous().numpy()])[0]
        return torch.from_numpy(np.ascontiguousarray(out))


class _Logits(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x, pts):
        return self.net(x, pts)["instances"]


def openvino_modes(net, x, pts, threads):
    """{name: probabilities callable} for OpenVINO in fp32 and bf16, and each one's build seconds."""
    modes, seconds = {}, {}
    for precision in ("f32", "bf16"):
        t = time.perf_counter()
        backend = OpenVinoBackend(net, precision=precision, threads=threads)
        seconds[f"build openvino-{precision}"] = time.perf_counter() - t
        modes[backend.optimize] = lambda b=backend: torch.sigmoid(b.forward(x, pts)).numpy()
    return modes, seconds


def torch_modes(net, x, pts):
    modes = {}
    for mode in ("none", "onednn", "bf16"):
        backend = NetworkBackend(net, device="cpu", optimize=mode, cuda_graphs=False)
        modes[mode] = lambda b=backend: torch.sigmoid(b.forward(x, pts)).float().numpy()
    return modes


def interleaved(fns, repeats):
    for f in fns.values():
        f()
    times = {k: [] for k in fns}
    keys = list(fns)
    for r in range(repeats):
        for k in (keys if r % 2 == 0 else keys[::-1]):
            t = time.perf_counter()
            fns[k]()
            times[k].append((time.perf_counter() - t) * 1e3)
    return times


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="aerial-finetuned-h18s,hrnet18")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeats", type=int, default=6)
    ap.add_argument("--size", type=int, default=400)
    args = ap.parse_args(argv)
    try:
        import openvino as ov
    except ImportError:
        print("bench_openvino: OpenVINO is not installed (it is not a dependency of the project); "
              "install it beside the project to run this bench, see its docstring.")
        return 0
    print(f"torch {torch.__version__}, openvino {ov.__version__}, {cpu_name()}, input 2x4x{args.size}x{args.size}")
    x, pts = inputs(args.size, 2)
    for name in args.models.split(","):
        net, label = load_network(name, torch.device("cpu"))
        for threads in (int(t) for t in args.threads.split(",")):
            torch.set_num_threads(threads)
            fns = torch_modes(net, x, pts)
            ov_fns, seconds = openvino_modes(net, x, pts, threads)
            fns.update(ov_fns)
            ref = fns["none"]()
            gaps = {k: float(np.abs(f() - ref).max()) for k, f in fns.items()}
            times = interleaved(fns, args.repeats)
            base = np.percentile(times["none"], 95)
            print(f"== {label}, {threads} thread(s); " + ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()))
            for k, v in times.items():
                p50, p95 = np.percentile(v, 50), np.percentile(v, 95)
                print(f"  {k:15} p50 {p50:7.1f}  p95 {p95:7.1f} ms   p95 none/mode {base / p95:5.2f}x   "
                      f"max|dprob| {gaps[k]:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
