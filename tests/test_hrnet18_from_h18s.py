"""scripts/make_hrnet18_from_h18s.py: an hrnet18 that computes what an hrnet18s does (issue 27's
stand-in for RITM's hrnet18, whose trained weights cannot be downloaded here)."""

import subprocess
import sys

import torch
from conftest import ROOT

from ritm_qgis.models import create_model, load_model, save_ritm_checkpoint
from ritm_qgis.models.testing import randomize_


def _run(*args):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "make_hrnet18_from_h18s.py"), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)


def _logits(model, image, points):
    with torch.inference_mode():
        return model.eval()(image, points)["instances"]


def test_identity_transplant_keeps_the_small_networks_logits(tmp_path):
    small = randomize_(create_model("hrnet18s"), seed=5)
    save_ritm_checkpoint(tmp_path / "small.pth", small)
    done = _run("--base", str(tmp_path / "small.pth"), "--out", str(tmp_path / "large.pth"))
    assert done.returncode == 0, done.stderr
    large, _ = load_model(tmp_path / "large.pth")
    assert sum(p.numel() for p in large.parameters()) > 2 * sum(p.numel() for p in small.parameters())
    assert large.config.ocr_width == 64 and not large.config.small

    torch.manual_seed(1)  # another input than the script's own check
    image = torch.rand(1, 4, 96, 128)
    points = torch.tensor([[[40.0, 70.0, 0.0], [20.0, 20.0, 1.0]]])
    a, b = _logits(small, image, points), _logits(large, image, points)
    assert float((a - b).abs().max()) < 1e-3
    assert float(a.std()) > 1e-2  # the logits are not flat: the comparison means something

    # the copies variant makes the added blocks work at full scale: other logits
    done = _run("--base", str(tmp_path / "small.pth"), "--out", str(tmp_path / "copies.pth"), "--extra", "copies")
    assert done.returncode == 0, done.stderr
    copies, _ = load_model(tmp_path / "copies.pth")
    assert float((_logits(copies, image, points) - a).abs().max()) > 1e-2


def test_refuses_a_base_that_is_not_an_hrnet18s(tmp_path):
    save_ritm_checkpoint(tmp_path / "tiny.pth", randomize_(create_model("hrnet_tiny"), seed=1))
    done = _run("--base", str(tmp_path / "tiny.pth"), "--out", str(tmp_path / "large.pth"))
    assert done.returncode == 2 and "not an hrnet18s" in done.stderr
    assert not (tmp_path / "large.pth").exists()
