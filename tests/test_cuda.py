"""The CUDA code paths: inference, batched evaluation, AMP training, checkpoints across devices.

Skipped where torch sees no GPU (CI); run on a GPU machine with
``python -m pytest tests/test_cuda.py`` (scripts/gpu_checks.sh does).
"""


import numpy as np
import pytest
import torch
from rectangle_folder import rectangle_folder

from ritm_qgis.engine.data.datasets import Dataset, Sample
from ritm_qgis.engine.data.registry import parse_dataset_spec
from ritm_qgis.engine.protocol.evaluation import evaluate
from ritm_qgis.engine.interactive.predictor import NetworkBackend, Predictor
from ritm_qgis.engine.geo.synthetic_scene import make_scene
from ritm_qgis.engine.training import TrainConfig, train
from ritm_qgis.models import create_model, load_model, read_checkpoint
from ritm_qgis.models.testing import randomize_

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device visible to torch")


def _net(arch="hrnet_tiny", seed=0):
    return randomize_(create_model(arch), seed=seed)


def _session_probs(backend, rgb, clicks):
    p = Predictor(backend)
    p.set_image(rgb)
    return [p.add_click(r, c, pos).prob.copy() for r, c, pos in clicks]


@pytest.mark.parametrize("precision,tf32,tol", [("fp32", False, 1e-4), ("fp32", True, 1e-3), ("fp16", True, 5e-3),
                                                ("bf16", True, 1e-2)])  # measured on an H200: 2e-7, 4e-5, 2e-4, 1e-3
def test_cuda_session_matches_cpu(precision, tf32, tol, monkeypatch):
    # PyTorch runs fp32 convolutions on CUDA in TF32 unless told otherwise (cudnn.allow_tf32)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", tf32)
    scene = make_scene(160, 2, seed=3)
    ys, xs = np.nonzero(scene.mask)
    clicks = [(int(ys[len(ys) // 2]), int(xs[len(xs) // 2]), True), (5, 5, False)]
    cpu = _session_probs(NetworkBackend(_net(), device="cpu", optimize="none"), scene.rgb, clicks)
    gpu_backend = NetworkBackend(_net(), device="cuda", precision=precision)
    assert gpu_backend.device.type == "cuda" and gpu_backend.optimize == "fold"
    gpu = _session_probs(gpu_backend, scene.rgb, clicks)
    gaps = [float(np.abs(a - b).max()) for a, b in zip(cpu, gpu)]
    print(f"{precision} tf32={tf32}: max |prob gap| per click {gaps}")
    assert max(gaps) < tol


def test_cuda_batched_evaluation_equals_batch_size_one():
    scenes = [make_scene(200, 3, seed=i) for i in range(6)]
    ds = Dataset("s", [f"t{i}" for i in range(6)], lambda i: Sample(f"t{i}", scenes[i].rgb, scenes[i].mask))
    backend = NetworkBackend(_net(), device="cuda")
    one = evaluate(ds, lambda: Predictor(backend), max_clicks=4, batch_size=1).iou_array
    many = evaluate(ds, lambda: Predictor(backend), max_clicks=4, batch_size=4).iou_array
    assert one.shape == many.shape == (6, 4)
    gap = float(np.nanmax(np.abs(one - many)))
    print(f"batch 1 vs 4 on CUDA: max |IoU gap| {gap}")
    assert gap < 1e-3


def test_amp_training_on_cuda_saves_a_checkpoint_that_loads_on_cpu(tmp_path):
    data = rectangle_folder(tmp_path / "data", (72, 96), [(10 + 3 * i, 40 + 3 * i, 12 + 4 * i, 48 + 4 * i)
                                                          for i in range(8)])
    data = parse_dataset_spec(data)
    cfg = TrainConfig(train_data=[data], val_data=[data], val_limit=2, val_max_clicks=2, out=str(tmp_path / "run"),
                      arch="hrnet_tiny", epochs=2, epoch_len=8, batch_size=4, crop_size=(64, 80), device="cuda",
                      seed=0)
    path = train(cfg)
    meta = read_checkpoint(path)["metadata"]
    assert meta["amp"] is True and meta["device"].startswith("cuda") and meta["complete"]
    assert all(np.isfinite(h["mean_loss"]) for h in meta["history"]) and meta["steps"] == 4
    state = torch.load(str(tmp_path / "run" / "last_state.pth"), weights_only=True)
    assert state["scaler"] is not None and state["scaler"]["scale"] > 0
    model, _ = load_model(path, device="cpu")
    assert all(p.device.type == "cpu" and torch.isfinite(p).all() for p in model.parameters())
    # resume on the GPU continues from the saved step with the scaler restored
    cfg.epochs = 3
    assert read_checkpoint(train(cfg))["metadata"]["steps"] == 6


def test_cuda_graph_replay_matches_the_eager_pass():
    eager = NetworkBackend(_net(), device="cuda", cuda_graphs=False)
    graphed = NetworkBackend(_net(), device="cuda")
    g = torch.Generator().manual_seed(0)
    for n_clicks in (1, 2, 3, 5):  # one shape for the network: click rows padded to 8 per sign
        x = torch.rand(1, 4, 120, 96, generator=g)
        pts = torch.full((1, 2 * n_clicks, 3), -1.0)
        pts[0, :n_clicks, :2] = torch.rand(n_clicks, 2, generator=g) * 90
        pts[0, :n_clicks, 2] = torch.arange(n_clicks)
        a, b = eager.forward(x, pts), graphed.forward(x, pts)
        gap = float((a - b).abs().max())
        assert gap < 1e-4, gap
    runner = graphed._graphs
    assert runner.enabled and len(runner.graphs) == 1  # captured at the second call, replayed after
