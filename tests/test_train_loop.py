"""The training loop on tiny generated data: steps, checkpoints, resume, fine-tune, cancel, CLI, DDP."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from rectangle_folder import rectangle_folder

from ritm_qgis.cli import main
from ritm_qgis.engine.data.registry import parse_dataset_spec
from ritm_qgis.engine.training import TrainConfig, train
from ritm_qgis.engine.training.loop import HEAD_MODULES, param_groups
from ritm_qgis.models import create_model, load_model, read_checkpoint


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """A folder:DIR dataset of 4 small images, each with one bright rectangle as the object."""
    boxes = [(8 + 4 * i, 28 + 4 * i, 10 + 5 * i, 34 + 5 * i) for i in range(4)]
    return rectangle_folder(tmp_path_factory.mktemp("tiny"), (48, 64), boxes)


def _cfg(data, out, **kw):
    """A small run's config; dataset texts are parsed as the CLI does."""
    kw["val_data"] = [parse_dataset_spec(s) for s in kw.get("val_data", [])]
    base = dict(train_data=[parse_dataset_spec(data)], out=str(out), arch="hrnet_tiny", epochs=1, epoch_len=4, batch_size=2,
                crop_size=(32, 48), device="cpu", seed=0)
    base.update(kw)
    return TrainConfig(**base)


def test_param_groups_put_the_backbone_at_a_tenth():
    model = create_model("hrnet_tiny")
    groups = param_groups(model, 5e-4, 0.1)
    assert [g["lr"] for g in groups] == [pytest.approx(5e-5), pytest.approx(5e-4)]
    names = {id(p): n for n, p in model.named_parameters()}
    backbone = [names[id(p)] for p in groups[0]["params"]]
    heads = [names[id(p)] for p in groups[1]["params"]]
    assert "feature_extractor.conv1.weight" in backbone
    assert all(n.startswith("feature_extractor.") for n in backbone)
    assert not any(n.split(".")[1] in HEAD_MODULES for n in backbone)
    assert "maps_transform.0.weight" in heads and "feature_extractor.cls_head.weight" in heads
    assert len(backbone) + len(heads) == len(list(model.parameters()))


def test_train_steps_checkpoint_resume_and_finetune(tiny_folder, tmp_path):
    out = tmp_path / "run"
    progress = []
    path = train(_cfg(tiny_folder, out, val_data=[tiny_folder], val_limit=2, val_max_clicks=2),
                 progress=lambda done, total, m: progress.append((done / total, m)))
    assert path == out / "last.pth" and (out / "last_state.pth").is_file() and (out / "best.pth").is_file()
    assert [round(f, 2) for f, _ in progress] == [0.5, 1.0]
    model, info = load_model(path)
    meta = info.metadata
    assert meta["regime"] == "scratch" and meta["epochs"] == 1 and meta["steps"] == 2 and meta["complete"]
    assert meta["training_data"]["specs"] == [tiny_folder] and meta["training_data"]["samples"] == 4
    val = meta["validation"]
    assert set(val) >= {"noc@85", "noc@90"} and 1 <= val["noc@85"] <= 2 and val["n_samples"] == 2
    assert meta["history"][0]["mean_loss"] > 0
    # the weights moved away from the same seed's initialisation
    torch.manual_seed(0)
    init = create_model("hrnet_tiny").state_dict()
    trained = read_checkpoint(path)["state_dict"]
    moved = [k for k, v in init.items() if v.is_floating_point() and not torch.equal(v, trained[k].float())]
    assert "feature_extractor.cls_head.weight" in moved and len(moved) > 10

    # resume: a second epoch in the same folder continues the counters and keeps the history
    path = train(_cfg(tiny_folder, out, epochs=2))
    meta = read_checkpoint(path)["metadata"]
    assert meta["epochs"] == 2 and meta["steps"] == 4 and len(meta["history"]) == 2
    state = torch.load(str(out / "last_state.pth"), weights_only=True)
    assert state["epoch"] == 2 and len(state["optimizer"]["state"]) > 0
    # already complete: running again does nothing more
    assert read_checkpoint(train(_cfg(tiny_folder, out, epochs=2)))["metadata"]["steps"] == 4

    # fine-tune regime from that checkpoint, in a fresh folder
    ft = train(_cfg(tiny_folder, tmp_path / "ft", init=str(path), max_steps=1))
    meta = read_checkpoint(ft)["metadata"]
    assert meta["regime"] == "finetune" and meta["init"]["init"] == str(path) and meta["steps"] == 1
    assert not meta["complete"]


def test_cancel_saves_and_cli_trains(tiny_folder, tmp_path, capsys):
    out = tmp_path / "c"
    path = train(_cfg(tiny_folder, out), cancel=lambda: True)
    meta = read_checkpoint(path)["metadata"]
    assert meta["steps"] == 0 and meta["complete"] is False
    half = tmp_path / "half.pth"
    rc = main(["train", "--data", tiny_folder, "--out", str(tmp_path / "cli"), "--arch", "hrnet_tiny",
               "--epochs", "1", "--epoch-len", "2", "--batch-size", "2", "--crop-size", "32,48",
               "--device", "cpu", "--regime", "natural", "--export-half", str(half)])
    assert rc == 0
    assert "checkpoint:" in capsys.readouterr().out
    data = read_checkpoint(half)
    assert data["metadata"]["regime"] == "natural" and data["metadata"]["weights_dtype"] == "float16"
    assert main(["train", "--data", tiny_folder, "--out", str(tmp_path / "x"), "--epoch-len", "1",
                 "--batch-size", "2", "--arch", "hrnet_tiny"]) == 1  # an epoch smaller than a step


def test_ddp_two_gloo_processes_keep_identical_replicas(tiny_folder, tmp_path):
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    if torchrun is None:
        pytest.skip("torchrun is not installed beside this Python")
    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "ritm_qgis", "train", "--data", tiny_folder,
           "--out", str(out), "--arch", "hrnet_tiny", "--epochs", "1", "--epoch-len", "8", "--batch-size", "2",
           "--crop-size", "32,48", "--device", "cpu"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    meta = read_checkpoint(out / "last.pth")["metadata"]
    assert meta["world_size"] == 2 and meta["steps"] == 2  # 8 items / (2 per process x 2 processes)
    digests = meta["replicas"]["parameter_sha256"]
    assert len(digests) == 2 and digests[0] == digests[1] and meta["replicas"]["identical"]
    json.dumps(meta)


@pytest.mark.parametrize("name,regime,arch,max_mb", [
    ("natural-tiny", "natural", "hrnet_tiny", 5), ("aerial-scratch-tiny", "scratch", "hrnet_tiny", 5),
    ("aerial-finetuned-tiny", "finetune", "hrnet_tiny", 5), ("aerial-finetuned-tiles-tiny", "finetune", "hrnet_tiny", 5),
    ("aerial-finetuned-h18s", "finetune", "hrnet18s", 10)])
def test_shipped_weights_load_by_name(name, regime, arch, max_mb):
    model, info = load_model(name)
    assert info.path.endswith(os.path.join("models", "weights", f"{name}.pth"))
    assert info.weights_dtype == "float16" and info.arch == arch
    assert info.metadata["regime"] == regime and info.metadata["complete"] is True
    assert os.path.getsize(info.path) < max_mb * 1_000_000
    out = model(torch.rand(1, 4, 64, 64), torch.tensor([[[32.0, 32.0, 0.0], [-1.0, -1.0, -1.0]]]))
    assert out["instances"].shape == (1, 1, 64, 64) and torch.isfinite(out["instances"]).all()
