"""Checkpoints: RITM's published layout and the project's own, read through ``load_model``."""

import copy
import os
import pathlib
import pickle

import pytest
import torch

from ritm_qgis.core.errors import RitmError
from ritm_qgis.models import (
    count_parameters,
    create_model,
    get_config,
    list_models,
    load_model,
    save_checkpoint,
    save_ritm_checkpoint,
    weights_sha256,
)
from ritm_qgis.models import catalog
from ritm_qgis.models.checkpoint import config_from_ritm, read_checkpoint, ritm_config_dict
from ritm_qgis.models.testing import deterministic_state_dict, randomize_

# What RITM's @serialize wrote for HRNetModel(width=48, ocr_width=128, with_aux_output=True,
# use_leaky_relu=True, use_rgb_conv=False, use_disks=True, norm_radius=5, with_prev_mask=True)
# (printed from model._config of RITM's own class); tests change width/ocr_width/small.
RITM_CONFIG_TEMPLATE = {
    "class": "isegm.model.is_hrnet_model.HRNetModel",
    "params": {
        "with_aux_output": {"type": "builtin", "value": True, "specified": True},
        "use_leaky_relu": {"type": "builtin", "value": True, "specified": True},
        "use_rgb_conv": {"type": "builtin", "value": False, "specified": True},
        "use_disks": {"type": "builtin", "value": True, "specified": True},
        "norm_radius": {"type": "builtin", "value": 5, "specified": True},
        "with_prev_mask": {"type": "builtin", "value": True, "specified": True},
        "width": {"type": "builtin", "value": 48, "specified": True},
        "ocr_width": {"type": "builtin", "value": 128, "specified": True},
        "small": {"type": "builtin", "value": False, "specified": False},
        "backbone_lr_mult": {"type": "builtin", "value": 0.1, "specified": False},
        "norm_layer": {"type": "class", "value": "torch.nn.modules.batchnorm.BatchNorm2d", "specified": False},
        "cpu_dist_maps": {"type": "builtin", "value": False, "specified": False},
        "clicks_groups": {"type": "builtin", "value": None, "specified": False},
        "binary_prev_mask": {"type": "builtin", "value": False, "specified": False},
        "conv_extend": {"type": "builtin", "value": False, "specified": False},
        "norm_mean_std": {"type": "builtin", "value": ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]), "specified": False},
    },
}


def ritm_config(width, ocr_width, small=False, /, **changes):
    cfg = copy.deepcopy(RITM_CONFIG_TEMPLATE)
    p = cfg["params"]
    p["width"]["value"], p["ocr_width"]["value"] = width, ocr_width
    p["small"].update(value=small, specified=small)
    for k, v in changes.items():
        if v is _DROP:
            del p[k]
        else:
            p.setdefault(k, {"type": "builtin", "specified": True})["value"] = v
    return cfg


_DROP = object()


def write_ritm_file(path, name, state=None, **config_changes):
    """A file laid out as RITM's trainer saves it: torch.save({'state_dict', 'config'})."""
    c = get_config(name)
    if state is None:
        with torch.device("meta"):
            template = create_model(name).state_dict()
        state = deterministic_state_dict(template)
    torch.save({"state_dict": state, "config": ritm_config(c.width, c.ocr_width, c.small, **config_changes)}, str(path))
    return state


def sample_input(channels=4):
    torch.manual_seed(3)
    image = torch.rand(1, channels, 40, 56)
    points = torch.tensor([[[10.0, 20.0, 0], [-1, -1, -1], [30.0, 5.0, 1], [-1, -1, -1]]])
    return image, points


@pytest.mark.parametrize("name", list_models())
def test_ritm_layout_loads_for_every_variant(tmp_path, name):
    path = tmp_path / f"{name}.pth"
    state = write_ritm_file(path, name)
    model, info = load_model(path)
    assert info.arch == name and info.source_format == "ritm"
    assert info.config == get_config(name)
    assert info.num_parameters == count_parameters(model)
    loaded = model.state_dict()
    assert set(loaded) == set(state)
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    assert not model.training and not any(p.requires_grad for p in model.parameters())


def test_loaded_model_matches_the_weights_and_is_deterministic(tmp_path):
    path = tmp_path / "tiny.pth"
    write_ritm_file(path, "hrnet_tiny")
    model, _ = load_model(path)
    direct = randomize_(create_model("hrnet_tiny"))
    image, points = sample_input()
    with torch.no_grad():
        a, b, c = model(image, points), model(image, points), direct(image, points)
    assert torch.equal(a["instances"], b["instances"])
    assert torch.equal(a["instances"], c["instances"])
    assert torch.equal(a["instances_aux"], c["instances_aux"])


def test_baseline_without_previous_mask_is_understood(tmp_path):
    path = tmp_path / "base.pth"
    model = randomize_(create_model("hrnet_tiny", with_prev_mask=False))
    write_ritm_file(path, "hrnet_tiny", state=model.state_dict(), with_prev_mask=_DROP)
    loaded, info = load_model(path)
    assert info.config.with_prev_mask is False and info.arch == "hrnet_tiny"
    image, points = sample_input(3)
    with torch.no_grad():
        assert torch.equal(loaded(image, points)["instances"], model(image, points)["instances"])


def test_project_format_round_trip_with_metadata(tmp_path):
    model = randomize_(create_model("hrnet_tiny"))
    path = tmp_path / "sub" / "ours.pth"
    meta = save_checkpoint(path, model, "hrnet_tiny", {"training_data": "Inria AIL", "regime": "finetune",
                                                        "metrics": {"noc90": 3.5, "miou": [0.8, 0.9]}})
    assert sorted(os.listdir(path.parent)) == ["ours.pth"]  # no temporary file left behind
    loaded, info = load_model(path)
    assert info.source_format == "ritm_qgis" and info.arch == "hrnet_tiny"
    assert info.metadata["training_data"] == "Inria AIL"
    assert info.metadata["metrics"] == {"noc90": 3.5, "miou": [0.8, 0.9]}
    assert info.metadata["weights_sha256"] == meta["weights_sha256"] == weights_sha256(model.state_dict())
    assert info.weights_sha256 == meta["weights_sha256"]
    assert "created" in info.metadata and info.weights_dtype == "float32"
    image, points = sample_input()
    with torch.no_grad():
        assert torch.equal(loaded(image, points)["instances"], model(image, points)["instances"])
    # the RITM-compatible 'config' is there too, and maps back to the same network
    raw = torch.load(str(path), weights_only=True)
    assert config_from_ritm(raw["config"]) == model.config


def test_half_precision_storage_loads_as_float32(tmp_path):
    model = randomize_(create_model("hrnet_tiny"))
    full, half = tmp_path / "full.pth", tmp_path / "half.pth"
    save_checkpoint(full, model)
    meta = save_checkpoint(half, model, half=True)
    assert meta["weights_dtype"] == "float16"
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded, info = load_model(half)
    assert info.weights_dtype == "float16"
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    image, points = sample_input()
    with torch.no_grad():
        a = loaded(image, points)["instances"]
        b = model(image, points)["instances"]
    assert torch.allclose(a, b, atol=0.05) and not torch.equal(a, b)


def test_tampered_project_file_is_reported_corrupt(tmp_path):
    path = tmp_path / "t.pth"
    save_checkpoint(path, randomize_(create_model("hrnet_tiny")))
    raw = torch.load(str(path), weights_only=True)
    raw["state_dict"]["feature_extractor.cls_head.bias"] += 1.0
    torch.save(raw, str(path))
    with pytest.raises(RitmError, match="corrupt"):
        load_model(path)


class _TouchOnLoad:
    """Pickles to a call of Path.touch(marker): unpickling it creates the marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_file_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    state = deterministic_state_dict(create_model("hrnet_tiny").state_dict())
    torch.save({"state_dict": state, "config": _TouchOnLoad(marker)}, str(path))
    assert not marker.exists()
    with pytest.raises(RitmError, match="Refusing to load evil.pth: it holds code or Python objects") as err:
        load_model(path)
    assert "refused for safety" in str(err.value) and "weights_only" not in str(err.value)  # no advice to unlock it
    assert not marker.exists()
    # the payload is real: an unrestricted unpickler does run it
    torch.load(str(path), weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_a_bare_pickle_that_runs_code_is_refused_for_safety_not_called_truncated(tmp_path, protocol):
    marker = tmp_path / "pwned"
    path = tmp_path / "raw.pth"
    path.write_bytes(pickle.dumps({"state_dict": _TouchOnLoad(marker)}, protocol=protocol))
    with pytest.raises(RitmError) as err:
        load_model(path)
    msg = str(err.value)
    assert msg.startswith("Refusing to load raw.pth: it holds code or Python objects (") and "pathlib" in msg
    assert "refused for safety" in msg
    assert "truncated" not in msg and "weights_only" not in msg
    assert not marker.exists()


def test_cut_off_files_are_truncated_and_other_pickles_no_checkpoint(tmp_path):
    good = tmp_path / "good.pth"
    save_checkpoint(good, create_model("hrnet_tiny"))
    cut = tmp_path / "cut.pth"
    cut.write_bytes(good.read_bytes()[:-5000])  # the zip's directory is at its end
    with pytest.raises(RitmError, match="cut.pth is not a readable PyTorch checkpoint: it ends early, as a truncated "
                                        "download does; download or copy it again."):
        load_model(cut)
    half = tmp_path / "half.pth"
    half.write_bytes(pickle.dumps({"state_dict": {"w": [1.0] * 100}}, protocol=2)[:200])
    with pytest.raises(RitmError, match="ends early, as a truncated download does"):
        load_model(half)
    plain = tmp_path / "plain.pth"
    plain.write_bytes(pickle.dumps({"state_dict": {"w": [1.0, 2.0]}}, protocol=4))
    with pytest.raises(RitmError, match="plain.pth is not a readable PyTorch checkpoint: it is a plain Python pickle, "
                                        "not a PyTorch file of tensors"):
        load_model(plain)


def test_random_bytes_are_a_corrupt_file_not_a_code_warning(tmp_path):
    import random

    path = tmp_path / "noise.pth"
    for seed in range(8):  # various first bytes: unknown opcodes, stack errors, bad strings
        rng = random.Random(seed)
        path.write_bytes(bytes(rng.getrandbits(8) for _ in range(4000)))
        with pytest.raises(RitmError, match="not a readable PyTorch checkpoint") as err:
            read_checkpoint(path)
        assert "could run code" not in str(err.value)


def test_missing_and_unexpected_keys_are_listed(tmp_path):
    path = tmp_path / "m.pth"
    state = deterministic_state_dict(create_model("hrnet_tiny").state_dict())
    del state["feature_extractor.cls_head.weight"]
    del state["maps_transform.3.scale"]
    state["feature_extractor.extra_head.weight"] = torch.zeros(3)
    write_ritm_file(path, "hrnet_tiny", state=state)
    with pytest.raises(RitmError) as err:
        load_model(path)
    msg = str(err.value)
    assert "2 missing weights" in msg and "maps_transform.3.scale" in msg
    assert "1 unexpected weights" in msg and "extra_head" in msg
    assert "Traceback" not in msg


def test_shape_mismatch_is_listed(tmp_path):
    path = tmp_path / "s.pth"
    state = deterministic_state_dict(create_model("hrnet_tiny").state_dict())
    c = get_config("hrnet_tiny")
    torch.save({"state_dict": state, "config": ritm_config(c.width + 2, c.ocr_width, c.small)}, str(path))
    with pytest.raises(RitmError, match=r"with the wrong shape .*\(4, 256, 3, 3\) vs \(6, 256, 3, 3\)"):
        load_model(path)


def test_many_missing_keys_are_abbreviated(tmp_path):
    path = tmp_path / "few.pth"
    write_ritm_file(path, "hrnet_tiny", state={"maps_transform.3.scale": torch.ones(1)})
    with pytest.raises(RitmError, match=r"\(\+\d+ more\)") as err:
        load_model(path)
    assert len(str(err.value)) < 1000


def test_missing_batchnorm_counters_and_dataparallel_prefix_are_accepted(tmp_path):
    path = tmp_path / "old.pth"
    state = deterministic_state_dict(create_model("hrnet_tiny").state_dict())
    state = {"module." + k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    write_ritm_file(path, "hrnet_tiny", state=state)
    model, _ = load_model(path)
    assert torch.equal(model.state_dict()["feature_extractor.conv1.weight"], state["module.feature_extractor.conv1.weight"])


@pytest.mark.parametrize(
    "changes, pattern",
    [
        ({"use_rgb_conv": True}, "use_rgb_conv=True"),
        ({"use_disks": _DROP}, "use_disks=False"),  # RITM's default applies when absent
        ({"clicks_groups": [1, 2]}, "clicks_groups"),
        ({"norm_layer": "os.system"}, "norm_layer"),
        ({"norm_mean_std": ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])}, "ImageNet"),
        ({"brand_new_option": 1}, "unknown HRNetModel parameter 'brand_new_option'"),
        ({"width": "18"}, "invalid value for width"),
        ({"small": 1}, "invalid value for small"),
        ({"ocr_width": 0}, "must be positive"),
    ],
)
def test_unsupported_ritm_configs_are_refused(tmp_path, changes, pattern):
    path = tmp_path / "u.pth"
    state = deterministic_state_dict(create_model("hrnet_tiny").state_dict())
    write_ritm_file(path, "hrnet_tiny", state=state, **changes)
    with pytest.raises(RitmError, match=pattern):
        load_model(path)


def test_other_classes_are_never_imported(tmp_path):
    path = tmp_path / "c.pth"
    state = deterministic_state_dict(create_model("hrnet_tiny").state_dict())
    cfg = ritm_config(4, 8, True)
    cfg["class"] = "ritm_qgis_test_does_not_exist.Boom"
    torch.save({"state_dict": state, "config": cfg}, str(path))
    with pytest.raises(RitmError, match="only RITM's HRNet models"):
        load_model(path)
    with pytest.raises(RitmError, match="usable 'config'"):
        config_from_ritm(None)


def test_unreadable_and_odd_files(tmp_path, monkeypatch):
    good = tmp_path / "good.pth"
    save_checkpoint(good, create_model("hrnet_tiny"))
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(RitmError, match="not a readable PyTorch checkpoint"):
        load_model(truncated)
    text = tmp_path / "notes.pth"
    text.write_text("hello")
    with pytest.raises(RitmError, match="not a readable PyTorch checkpoint"):
        load_model(text)
    bare = tmp_path / "bare.pth"
    torch.save(create_model("hrnet_tiny").state_dict(), str(bare))  # a bare state dict
    with pytest.raises(RitmError, match="'state_dict' entry"):
        load_model(bare)
    with pytest.raises(RitmError, match="does not exist"):
        load_model(tmp_path / "nope.pth")
    with pytest.raises(RitmError, match="device"):
        load_model(good, device="warp-drive")
    newer = tmp_path / "newer.pth"
    raw = torch.load(str(good), weights_only=True)
    raw["format_version"] = 99
    torch.save(raw, str(newer))
    with pytest.raises(RitmError, match="newer ritm_qgis"):
        load_model(newer)


def test_names_resolve_through_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RITM_QGIS_CACHE", str(tmp_path / "cache"))
    with pytest.raises(RitmError, match="download-weights coco_lvis_h18s_itermask"):
        load_model("coco_lvis_h18s_itermask")
    with pytest.raises(RitmError, match="neither a checkpoint file nor a known weights name"):
        load_model("hrnet18")
    (tmp_path / "cache").mkdir()
    cached = tmp_path / "cache" / "coco_lvis_h18s_itermask.pth"
    write_ritm_file(cached, "hrnet_tiny")
    with pytest.raises(RitmError, match="has no checksum note"):  # RITM publishes no digest: the note is the check
        load_model("coco_lvis_h18s_itermask")
    catalog.record_verified(cached)
    _, info = load_model("coco_lvis_h18s_itermask")
    assert info.path == str(tmp_path / "cache" / "coco_lvis_h18s_itermask.pth")


def test_save_checks_arch_and_metadata(tmp_path):
    model = create_model("hrnet_tiny")
    with pytest.raises(RitmError, match="not a hrnet18"):
        save_checkpoint(tmp_path / "x.pth", model, "hrnet18")
    with pytest.raises(RitmError, match="metadata.when: object values"):
        save_checkpoint(tmp_path / "x.pth", model, metadata={"when": object()})
    assert not any(tmp_path.iterdir())  # nothing written on failure


def test_save_ritm_checkpoint_matches_ritm_config(tmp_path):
    model = randomize_(create_model("hrnet_tiny"))
    path = tmp_path / "r.pth"
    save_ritm_checkpoint(path, model)
    raw = torch.load(str(path), weights_only=True)
    assert set(raw) == {"state_dict", "config"}
    template = ritm_config(4, 8, True)
    assert {k: v["value"] for k, v in raw["config"]["params"].items()} == {
        k: v["value"] for k, v in template["params"].items()
    }
    assert raw["config"]["class"] == template["class"]
    assert ritm_config_dict(model.config)["params"]["norm_layer"]["type"] == "class"
    _, info = load_model(path)
    assert info.source_format == "ritm"


def test_cli_model_info(tmp_path, capsys):
    from ritm_qgis import cli

    path = tmp_path / "ours.pth"
    history = [{"epoch": e, "mean_loss": 1.0 / e} for e in range(1, 51)]
    save_checkpoint(path, randomize_(create_model("hrnet_tiny")),
                    metadata={"training_data": "Inria AIL", "history": history}, half=True)
    assert cli.main(["model-info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "architecture:  hrnet_tiny" in out and "parameters:    412,859" in out
    assert "training_data: Inria AIL" in out and "float16" in out
    assert "history:       50 entries, first {\"epoch\": 1," in out and '"epoch": 25' not in out
    assert cli.main(["model-info", "--list"]) == 0
    out = capsys.readouterr().out
    for name, count in [("hrnet18s", "4,220,047"), ("hrnet18", "10,032,019"), ("hrnet32", "30,951,363"),
                        ("hrnet48", "67,812,867")]:
        assert any(line.split()[:2] == [name, count] for line in out.splitlines()), name
    assert cli.main(["model-info", "--json", str(path)]) == 0
    import json

    data = json.loads(capsys.readouterr().out)
    assert data["arch"] == "hrnet_tiny" and data["config"]["ocr_width"] == 8
    assert len(data["metadata"]["history"]) == 50  # --json keeps everything
    assert cli.main(["model-info", str(tmp_path / "missing.pth")]) == 1
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("model_config", [{"width": "4", "ocr_width": 8}, {"evil": 1}, None])
def test_damaged_project_model_config_is_refused(tmp_path, model_config):
    path = tmp_path / "p.pth"
    save_checkpoint(path, create_model("hrnet_tiny"))
    raw = torch.load(str(path), weights_only=True)
    if model_config is not None and "width" in model_config:
        model_config = dict(raw["model_config"], **model_config)
    raw["model_config"] = model_config
    torch.save(raw, str(path))
    with pytest.raises(RitmError, match="invalid value for width|damaged 'model_config'"):
        load_model(path)
