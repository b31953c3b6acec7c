"""The paper's published checkpoints: files in the exact layout of the authors' trainer load
through ``load_model`` and give the probabilities the authors' own model code computes."""

import dataclasses

import numpy as np
import pytest
import torch

from paper_fork import DATA, fork_config, fork_inputs, fork_layout, write_fork_checkpoint

from ritm_qgis.core.errors import RitmError
from ritm_qgis.models import catalog, load_model


@pytest.fixture(scope="module")
def fork_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("paper") / "finetune.pth"
    write_fork_checkpoint(path)
    return path


def test_the_file_has_the_trainers_layout(fork_file):
    data = torch.load(str(fork_file), map_location="cpu", weights_only=True)
    assert list(data) == ["state_dict", "config"]
    assert data["config"] == fork_config()
    assert [(k, list(v.shape)) for k, v in data["state_dict"].items()] == [(k, s) for k, s, _ in fork_layout()]
    assert "feature_extractor.aux_head.3.weight" in data["state_dict"]  # the aux head the paper's models carry


def test_fork_layout_checkpoint_gives_the_forks_probabilities(fork_file):
    model, info = load_model(fork_file)
    assert (info.arch, info.source_format) == ("hrnet18", "ritm")
    c = info.config
    assert (c.width, c.ocr_width, c.small, c.with_prev_mask, c.with_aux_output, c.norm_radius, c.use_leaky_relu) == (
        18, 64, False, True, True, 5, True)
    image, points = fork_inputs()
    with torch.no_grad():
        out = model(torch.from_numpy(image), torch.from_numpy(points))
    reference = np.load(DATA / "paper_fork_reference.npz")
    prob = torch.sigmoid(out["instances"]).numpy()
    aux = torch.sigmoid(out["instances_aux"]).numpy()
    assert prob.shape == reference["prob"].shape == (1, 1, 96, 112)
    assert reference["prob"].std() > 0.02  # the reference is not a constant map
    np.testing.assert_allclose(prob, reference["prob"], atol=2e-5)
    np.testing.assert_allclose(aux, reference["aux"], atol=2e-5)


def test_paper_name_loads_the_cached_file(fork_file, tmp_path, monkeypatch):
    monkeypatch.setenv("RITM_QGIS_CACHE", str(tmp_path))
    (tmp_path / "paper-finetune.pth").symlink_to(fork_file)
    with pytest.raises(RitmError, match="is not the published paper-finetune"):  # not the authors' bytes
        load_model("paper-finetune")
    # as if the fork's file were the published one: its git blob SHA-1 is the entry's digest
    published = dataclasses.replace(catalog.entry("paper-finetune"),
                                    digest="git-blob-sha1:" + catalog.git_blob_sha1(fork_file))
    monkeypatch.setitem(catalog._ENTRIES, "paper-finetune", published)
    _, info = load_model("paper-finetune")
    assert info.arch == "hrnet18" and info.path == str(tmp_path / "paper-finetune.pth")
    assert catalog.default_model()[0] == "paper-finetune"
