"""evaluate --as-drawn (issue 22): the map tool's clicks scored on the outline it draws, boundary F,
clicks that hurt. Real rasters, the shipped tiny model, no mocks."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, shared_path
from ritm_qgis.engine.protocol.click_quality import click_quality, mean_at_clicks, worsening_share
from ritm_qgis.engine.protocol.metrics import boundary_f


def _square(shift=0, size=40, shape=(80, 80)):
    m = np.zeros(shape, bool)
    m[20 + shift:20 + shift + size, 20:20 + size] = True
    return m


def test_boundary_f_tolerates_shifts_up_to_its_tolerance_only():
    gt = _square()
    assert boundary_f(gt, gt, 1) == 1.0
    assert boundary_f(gt, _square(shift=1), 1) > 0.95
    three = boundary_f(gt, _square(shift=3), 2)
    assert 0.3 < three < 0.8  # the two shifted sides miss, the others match
    assert boundary_f(gt, np.zeros_like(gt), 2) == 0.0
    assert boundary_f(np.zeros_like(gt), np.zeros_like(gt), 2) == 1.0


def test_worsening_share_counts_drops_over_a_tenth_among_clicks_made():
    ious = np.array([[0.5, 0.7, 0.55, 0.9], [0.6, 0.45, 0.5, np.nan], [np.nan] * 4])
    # pairs made: (0.5,0.7) (0.7,0.55)* (0.55,0.9) (0.6,0.45)* (0.45,0.5) -> 2 of 5
    assert worsening_share(ious) == pytest.approx(0.4)
    assert mean_at_clicks(ious, (1, 3))[1] == pytest.approx(0.55)
    q = click_quality(ious, ious, ious)
    assert set(q) == {"mean_iou_at", "worsening_clicks_share", "boundary_f1px_at", "boundary_f2px_at"}


def _chip_dataset(tmp_path):
    from data_builders import spacenet_reference

    root = shared_path("aerial", "spacenet_rio")
    image = root / "images" / "3band_013022223130_Public_img52.tif"
    gpkg = spacenet_reference(root / "masks" / image.name, tmp_path / "img52.gpkg")
    return image, gpkg


def test_drawn_session_reads_the_raster_around_the_building_and_scores_the_polygon(tmp_path):
    """A raster: sample is clicked with the chip around it (the tool's window, larger than the sample),
    and its mask is the rasterised polygon: only what the outline covers, never a soft speck."""
    from ritm_qgis.engine.data.geo_dataset import raster_footprint_dataset
    from ritm_qgis.engine.interactive.backends import build_backend
    from ritm_qgis.engine.protocol.as_drawn import drawn_session_factory
    from ritm_qgis.engine.protocol.evaluation import evaluate

    image, gpkg = _chip_dataset(tmp_path)
    ds = raster_footprint_dataset(str(image), str(gpkg), mode="buildings")
    backend = build_backend("aerial-finetuned-tiny", "cpu")
    make = drawn_session_factory(backend)
    sessions = []

    def tracked():
        s = make()
        sessions.append(s)
        return s

    res = evaluate(ds, tracked, "tiny", max_clicks=3, indices=[0, 5])
    s = sessions[0]
    sample = ds[0]
    assert s.session.path == str(image)  # the chip, not the sample's small window
    win = s.session.current.window
    assert win.width > sample.gt.shape[1] and win.height > sample.gt.shape[0]
    arr = res.iou_array
    assert arr.shape == (2, 3) and np.isfinite(arr).all()
    assert res.boundary_array(2).shape == (2, 3)
    assert arr[:, -1].mean() > 0.5  # three clicks on a house of the chip give that house


def test_evaluate_as_drawn_writes_the_flag_boundary_f_and_worsening_share(tmp_path):
    image, gpkg = _chip_dataset(tmp_path)
    out = tmp_path / "eval"
    cmd = [sys.executable, "-m", "ritm_qgis", "evaluate", "--model", "aerial-finetuned-tiny", "--dataset",
           f"raster:{image}:{gpkg}:buildings", "--max-clicks", "2", "--limit", "3", "--no-figures",
           "--device", "cpu", "--out", str(out)]
    plain = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert plain.returncode == 0, plain.stderr
    drawn = subprocess.run(cmd[:-1] + [str(out) + "-drawn", "--as-drawn"], cwd=ROOT, capture_output=True,
                           text=True, timeout=600)
    assert drawn.returncode == 0, drawn.stderr
    a = json.loads((out / "report.json").read_text())
    b = json.loads((tmp_path / "eval-drawn" / "report.json").read_text())
    assert a["as_drawn"] is False and b["as_drawn"] is True
    m = b["models"]["aerial-finetuned-tiny"]
    assert set(m["mean_iou_at"]) == {"1"}  # a 2-click budget: of clicks 1, 3, 5 only the first
    assert 0 <= m["boundary_f2px_at"]["1"] <= 1 and 0 <= m["worsening_clicks_share"] <= 1
    assert (tmp_path / "eval-drawn" / "aerial-finetuned-tiny" / "boundary_f2px.npy").exists()
    assert "boundary F 2 px" in drawn.stdout
    # the drawn outline is not the raw mask: the two protocols give different IoUs
    ia = np.load(out / "aerial-finetuned-tiny" / "ious.npy")
    ib = np.load(tmp_path / "eval-drawn" / "aerial-finetuned-tiny" / "ious.npy")
    assert ia.shape == ib.shape and not np.allclose(ia, ib)
    report = subprocess.run([sys.executable, "-m", "ritm_qgis", "noc-report", "--json", "--ious",
                             f"drawn={tmp_path / 'eval-drawn' / 'aerial-finetuned-tiny' / 'ious.npy'}"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr
    got = json.loads(report.stdout)["drawn"]
    assert got["boundary_f2px_at"]["1"] == pytest.approx(m["boundary_f2px_at"]["1"])
