"""The networks: state-dict layout and outputs identical to RITM's HRNetModel.

The literal numbers below were obtained by instantiating RITM's own classes
(``isegm.model.is_hrnet_model.HRNetModel`` from SamsungLabs/ritm_interactive_segmentation at
its current master, imported from a scratch copy outside this repository with the single shim
``numpy.int = int``) with the arguments of RITM's ``models/iter_mask/*`` configs
(``with_aux_output=True, use_leaky_relu=True, use_rgb_conv=False, use_disks=True,
norm_radius=5, with_prev_mask=True`` and the widths of our registry), then reading
``sum(p.numel() for p in model.parameters())``, ``len(model.state_dict())`` and the SHA-256 of
the text ``"".join(f"{key}:{tuple(t.shape)}\\n" for key, t in sorted(state_dict.items()))``.
The same comparison checked that our outputs equal RITM's for identical weights (max abs
difference <= 7e-7 for hrnet18s/18/32/tiny); the hrnet_tiny reference outputs are recorded
below.
"""

import hashlib

import pytest
import torch

from ritm_qgis.core.errors import RitmError
from ritm_qgis.models import (
    ModelConfig,
    arch_name_for,
    count_parameters,
    create_model,
    disk_maps,
    get_config,
    list_models,
    register_model,
)
from ritm_qgis.models.testing import deterministic_state_dict, randomize_

# name -> (parameters, state-dict entries, sha256 of the sorted key:shape listing), from RITM.
RITM_REFERENCE = {
    "hrnet18s": (4_220_047, 929, "02e65a74d7e1f446b1d581d37a4e8ebcd673ae343dbf841fcaf5715f8068ff4f"),
    "hrnet18": (10_032_019, 1895, "51ee7034d4a16e1ce7c07cca32ea0ea79c68e73de1aed0bb647f56bc5fa0feb2"),
    "hrnet32": (30_951_363, 1895, "fbbc88ae7ea0c9e6fe46d7539282684806c91336d6fd36f1d28c79999a73a66b"),
    "hrnet48": (67_812_867, 1895, "22044a99617117c5794092895e8ee08db1ab0ccc17d429383fd1d6cff42735ca"),
    "hrnet_tiny": (412_859, 929, "b811b517891e7ba9990c8ce6bec0e6972a1856d6fcdc155610f6a7c3063915d4"),
}
# RITM's coco_lvis_h18_baseline architecture (hrnet18 without the previous-mask channel).
RITM_H18_BASELINE = (10_032_003, 1895, "40b0ed8346512d0df6ed01009659c991b6c208dc55dbe98ea9d26d2ce179f85f")


def layout_digest(state_dict) -> str:
    text = "".join(f"{k}:{tuple(v.shape)}\n" for k, v in sorted(state_dict.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def build_on_meta(name, **overrides):
    with torch.device("meta"):
        return create_model(name, **overrides)


def test_registry_lists_all_variants():
    assert list_models() == ["hrnet18s", "hrnet18", "hrnet32", "hrnet48", "hrnet_tiny"]
    assert set(RITM_REFERENCE) == set(list_models())


@pytest.mark.parametrize("name", list(RITM_REFERENCE))
def test_state_dict_layout_and_parameter_count_match_ritm(name):
    params, entries, digest = RITM_REFERENCE[name]
    model = build_on_meta(name)
    sd = model.state_dict()
    assert count_parameters(model) == params
    assert len(sd) == entries
    assert layout_digest(sd) == digest


def test_baseline_layout_without_previous_mask_matches_ritm():
    model = build_on_meta("hrnet18", with_prev_mask=False)
    params, entries, digest = RITM_H18_BASELINE
    assert (count_parameters(model), len(model.state_dict()), layout_digest(model.state_dict())) == (
        params,
        entries,
        digest,
    )


def test_widths_follow_ritm_configs():
    assert (get_config("hrnet18s").width, get_config("hrnet18s").ocr_width, get_config("hrnet18s").small) == (18, 48, True)
    assert (get_config("hrnet18").ocr_width, get_config("hrnet32").ocr_width) == (64, 128)
    c = get_config("hrnet32")
    assert (c.with_prev_mask, c.with_aux_output, c.norm_radius, c.use_leaky_relu) == (True, True, 5, True)


def reference_input(h=48, w=64):
    yy, xx = torch.meshgrid(
        torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij"
    )
    prev = (((yy - 20) ** 2 + (xx - 30) ** 2) < 100).float()
    image = torch.stack([yy / h, xx / w, (yy + xx) % 7 / 7.0, prev])[None]
    points = torch.tensor([[[20.0, 30.0, 0], [-1, -1, -1], [5.0, 60.0, 1], [-1, -1, -1]]])
    return image, points


def tiny_model(**overrides):
    return randomize_(create_model("hrnet_tiny", **overrides))


# Outputs of RITM's HRNetModel (hrnet_tiny widths) with deterministic_state_dict weights on
# reference_input(): mean/std over the 48x64 logits and values at (y, x) of instances / aux.
RITM_TINY_STATS = {"mean": 0.9632885809211681, "std": 0.05116434025034419,
                   "aux_mean": -3.831656397630771, "aux_std": 0.369105927596518}
RITM_TINY_PIXELS = {
    (0, 0): (1.1297030448913574, -3.2713356018066406),
    (20, 30): (0.9491193294525146, -3.889894485473633),
    (5, 60): (0.9401729702949524, -4.341886043548584),
    (47, 63): (0.8666028380393982, -3.845907688140869),
    (30, 10): (0.937940776348114, -3.5789036750793457),
}


def test_tiny_outputs_equal_ritm_reference():
    image, points = reference_input()
    with torch.no_grad():
        out = tiny_model()(image, points)
    inst, aux = out["instances"][0, 0].double(), out["instances_aux"][0, 0].double()
    assert out["instances"].shape == out["instances_aux"].shape == (1, 1, 48, 64)
    got = {"mean": inst.mean().item(), "std": inst.std().item(),
           "aux_mean": aux.mean().item(), "aux_std": aux.std().item()}
    for key, value in RITM_TINY_STATS.items():
        assert got[key] == pytest.approx(value, rel=1e-4, abs=1e-5), key
    for (y, x), (vi, va) in RITM_TINY_PIXELS.items():
        assert inst[y, x].item() == pytest.approx(vi, abs=1e-4)
        assert aux[y, x].item() == pytest.approx(va, abs=1e-4)


def test_output_is_deterministic_and_depends_on_clicks_and_mask():
    model = tiny_model()
    image, points = reference_input()
    with torch.no_grad():
        a = model(image, points)["instances"]
        b = model(image.clone(), points.clone())["instances"]
        assert torch.equal(a, b)
        moved = points.clone()
        moved[0, 0, :2] = torch.tensor([40.0, 5.0])
        c = model(image, moved)["instances"]
        no_mask = image.clone()
        no_mask[:, 3] = 0
        d = model(no_mask, points)["instances"]
    assert not torch.allclose(a, c)
    assert not torch.allclose(a, d)


def test_batch_items_are_independent():
    model = tiny_model()
    image, points = reference_input()
    other_points = torch.tensor([[[10.0, 10.0, 0], [30.0, 50.0, 1], [-1, -1, -1], [-1, -1, -1]]])
    with torch.no_grad():
        single = model(image, points)["instances"]
        batch = model(torch.cat([image, image.flip(-1)]), torch.cat([points, other_points]))["instances"]
    assert torch.allclose(batch[:1], single, atol=1e-5)


def test_three_channel_model_without_previous_mask():
    model = tiny_model(with_prev_mask=False)
    image, points = reference_input()
    with torch.no_grad():
        out = model(image[:, :3], points)
    assert out["instances"].shape == (1, 1, 48, 64)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model(image, points)


def test_wrong_input_channels_rejected():
    image, points = reference_input()
    with pytest.raises(ValueError, match=r"\(B, 4, H, W\)"):
        create_model("hrnet_tiny")(image[:, :3], points)


def test_disk_maps_radius_padding_and_sign():
    points = torch.tensor([[[10.0, 10.0, 0], [-1, -1, -1], [-1, 12.0, 1], [-1, -1, -1]]])
    maps = disk_maps(points, 32, 32, radius=5)
    assert maps.shape == (1, 2, 32, 32)
    pos, neg = maps[0, 0], maps[0, 1]
    assert pos[10, 10] == 1 and pos[10, 15] == 1 and pos[13, 14] == 1  # distance 5: inside
    assert pos[14, 14] == 0 and pos[10, 16] == 0  # distance 5.66 and 6: outside
    assert int(pos.sum()) == 81  # lattice points with dy^2 + dx^2 <= 25
    # (-1, 12): a valid click just above the image (RITM ignores a row only if y and x are < 0)
    assert neg[0, 12] == 1 and neg[4, 12] == 1 and neg[5, 12] == 0
    assert int(neg.sum()) == sum(1 for y in range(32) for x in range(32) if (y + 1) ** 2 + (x - 12) ** 2 <= 25)
    empty = disk_maps(torch.full((2, 6, 3), -1.0), 8, 8, radius=5)
    assert empty.shape == (2, 2, 8, 8) and empty.sum() == 0


@pytest.mark.parametrize("radius", [5, 3.7, 0.5, 12])
def test_local_disk_maps_equal_the_whole_image_computation(radius):
    from ritm_qgis.models.network import disk_maps_local

    g = torch.Generator().manual_seed(int(radius * 10))
    points = torch.rand(3, 12, 3, generator=g) * torch.tensor([70.0, 90.0, 1.0]) - torch.tensor([8.0, 8.0, 0.0])
    points[:, ::3, :2] = torch.floor(points[:, ::3, :2]) + 0.5  # half pixels: distances exactly on the edge
    points[:, 1::4, :2] = torch.round(points[:, 1::4, :2])  # whole pixels
    points[0, 4:6] = -1.0  # RITM's padding rows
    points[1, 2, 0] = -3.0  # partly above the image, still a click
    for h, w in [(60, 80), (17, 9)]:
        expected = disk_maps(points, h, w, radius)
        assert expected.sum() > 0
        assert torch.equal(disk_maps_local(points, h, w, radius), expected)
    assert torch.equal(disk_maps_local(points[:, :0], 5, 5, radius), torch.zeros(3, 2, 5, 5))


def test_optimised_backends_rasterise_clicks_locally_on_their_own_copy():
    from ritm_qgis.engine.interactive.predictor import NetworkBackend

    net = randomize_(create_model("hrnet_tiny"), seed=2).eval()
    assert NetworkBackend(net, device="cpu", optimize="none").model.local_disks is False
    fast = NetworkBackend(net, device="cpu", optimize="onednn")
    assert fast.model.local_disks is True and net.local_disks is False  # the caller's network is untouched


def test_deterministic_weights_do_not_depend_on_construction():
    a = deterministic_state_dict(create_model("hrnet_tiny").state_dict())
    b = deterministic_state_dict(create_model("hrnet_tiny").state_dict())
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = deterministic_state_dict(create_model("hrnet_tiny").state_dict(), seed=1)
    assert not torch.equal(a["feature_extractor.conv1.weight"], c["feature_extractor.conv1.weight"])


def test_registry_errors_and_lookup():
    with pytest.raises(RitmError, match="hrnet18s"):
        get_config("hrnet99")
    with pytest.raises(ValueError):
        register_model("hrnet18", ModelConfig(width=18, ocr_width=64))
    assert arch_name_for(ModelConfig(width=32, ocr_width=128)) == "hrnet32"
    assert arch_name_for(ModelConfig(width=18, ocr_width=48, small=True)) == "hrnet18s"
    assert arch_name_for(ModelConfig(width=20, ocr_width=64)) is None
    assert count_parameters(create_model("hrnet_tiny"), trainable_only=True) == RITM_REFERENCE["hrnet_tiny"][0]


def test_model_moves_normalisation_with_it_and_saves_no_extra_keys():
    model = create_model("hrnet_tiny")
    assert "mean" not in model.state_dict() and "std" not in model.state_dict()
    model = model.double()
    image, points = reference_input(16, 16)
    with torch.no_grad():
        out = model(image.double(), points)
    assert out["instances"].dtype == torch.float64
