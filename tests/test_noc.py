import json
import subprocess
import sys

import numpy as np
import pytest

from ritm_qgis.cli import main
from ritm_qgis.core.errors import RitmError
from ritm_qgis.engine.protocol.noc import noc_per_sample, noc_report

from conftest import ROOT, shared_path

# Table 1 of the paper, as printed, and the quantities the paper did not print but the arrays define.
PAPER = {
    #            NoC@80  NoC@90  >=20@80  Avg20 (printed def.)  std    printed definition
    "notrain": (16.22, 18.60, 0.648, 0.718, 0.166, "best"),
    "scratch": (10.81, 18.05, 0.333, 0.827, 0.084, "best"),
    "finetune": (5.66, 14.58, 0.135, 0.875, 0.072, "last"),
}
NEVER_REACHED_80 = {"notrain": 0.635, "scratch": 0.323, "finetune": 0.131}


@pytest.mark.parametrize("model", sorted(PAPER))
def test_table_1_of_the_paper_is_reproduced_exactly(model):
    ious = np.load(shared_path("paper_ious", f"all_ious_{model}.npy"))
    r = noc_report(model, ious, thresholds=(0.8, 0.9), max_clicks=20)
    noc80, noc90, ge80, avg, std, definition = PAPER[model]
    assert (r.n_samples, r.n_empty_dropped) == (1940, 560)
    assert f"{r.noc[0.8]:.2f}" == f"{noc80:.2f}"
    assert f"{r.noc[0.9]:.2f}" == f"{noc90:.2f}"
    assert f"{r.ge_max[0.8]:.3f}" == f"{ge80:.3f}"
    assert f"{r.never_reached[0.8]:.3f}" == f"{NEVER_REACHED_80[model]:.3f}"
    mean, sd = (r.avg_iou_best, r.avg_iou_best_std) if definition == "best" else (r.avg_iou_last, r.avg_iou_last_std)
    assert (f"{mean:.3f}", f"{sd:.3f}") == (f"{avg:.3f}", f"{std:.3f}")


def test_finetune_best_iou_definition_differs_from_the_printed_one():
    r = noc_report("finetune", np.load(shared_path("paper_ious", "all_ious_finetune.npy")))
    assert (f"{r.avg_iou_best:.3f}", f"{r.avg_iou_best_std:.3f}") == ("0.879", "0.070")


def test_noc_definition_on_a_hand_made_array():
    ious = np.array([
        [0.5, 0.79, 0.80, 0.95],  # reaches 0.8 at click 3, 0.9 at click 4
        [0.1, 0.2, 0.3, 0.85],  # reaches 0.8 only at the last click: NoC = max, counted in >=max
        [0.1, 0.2, 0.3, 0.4],  # never
        [np.nan] * 4,  # empty sample
        [0.0, np.nan, np.nan, np.nan],  # empty sample with a false prediction first
    ])
    assert list(noc_per_sample(ious[:3], 0.8)) == [3, 4, 4]
    r = noc_report("x", ious, thresholds=(0.8, 0.9))
    assert (r.n_samples, r.n_empty_dropped) == (3, 2)
    assert r.noc[0.8] == pytest.approx(11 / 3)
    assert r.ge_max[0.8] == pytest.approx(2 / 3)
    assert r.never_reached[0.8] == pytest.approx(1 / 3)
    assert r.avg_iou_best == pytest.approx(np.mean([0.95, 0.85, 0.4]))
    assert r.avg_iou_last_std == pytest.approx(np.std([0.95, 0.85, 0.4]))
    assert r.mean_iou_per_click[0] == pytest.approx(np.mean([0.5, 0.1, 0.1]))
    assert noc_report("x", ious, max_clicks=2).noc[0.8] == 2.0


@pytest.mark.parametrize("bad, message", [
    (np.zeros(5), "shape"),
    (np.full((2, 3), 2.0), "between 0 and 1"),
    (np.full((2, 3), np.nan), "every sample is empty"),
])
def test_bad_arrays_are_explained(bad, message):
    with pytest.raises(RitmError, match=message):
        noc_report("bad", bad)


def paper_args():
    d = shared_path("paper_ious")
    return [arg for m in ("notrain", "scratch", "finetune") for arg in ("--ious", f"{m}={d}/all_ious_{m}.npy")]


def test_cli_json_has_the_documented_fields(capsys, tmp_path):
    curve = tmp_path / "curve.png"
    assert main(["noc-report", *paper_args(), "--json", "--plot", str(curve)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == ["notrain", "scratch", "finetune"]
    fields = {"n_samples", "n_empty_dropped", "noc", "ge_max", "avg_iou_best", "avg_iou_best_std",
              "avg_iou_last", "avg_iou_last_std", "mean_iou_per_click"}
    assert fields <= set(out["finetune"])
    assert out["scratch"]["noc"]["0.8"] == pytest.approx(10.81, abs=0.005)
    assert out["notrain"]["ge_max"]["0.9"] > out["notrain"]["ge_max"]["0.8"]
    assert len(out["finetune"]["mean_iou_per_click"]) == 20
    assert curve.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_table_is_reachable_as_python_module():
    out = subprocess.run([sys.executable, "-m", "ritm_qgis", "noc-report", *paper_args(), "--thresholds", "0.8,0.9"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "NoC20@80" in lines[0] and "NoC20@85" not in lines[0]
    finetune = next(line for line in lines if line.startswith("finetune"))
    for printed in ("5.66", "14.58", "0.135", "0.875 (±0.072)", "0.879 (±0.070)"):
        assert printed in finetune


def test_cli_errors_are_sentences_not_tracebacks(tmp_path):
    out = subprocess.run([sys.executable, "-m", "ritm_qgis", "noc-report", "--ious", f"a={tmp_path}/missing.npy"],
                         capture_output=True, text=True)
    assert out.returncode == 1
    assert "no IoU array at" in out.stderr and "Traceback" not in out.stderr
    out = subprocess.run([sys.executable, "-m", "ritm_qgis", "noc-report", "--ious", "x.npy", "--thresholds", "a,b"],
                         capture_output=True, text=True)
    assert out.returncode == 1 and "comma-separated" in out.stderr
