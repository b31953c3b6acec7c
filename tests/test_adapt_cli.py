"""``ritm-qgis adapt`` and ``ritm-qgis train --minutes`` (issue 23) on a synthetic scene, real files."""

import json


from ritm_qgis.cli import main
from test_adapt import scene  # noqa: F401 - the same 14-building synthetic scene
from tiny_model import one_torch_thread  # noqa: F401


def test_adapt_reports_the_holdout_and_lists_and_removes_the_model(scene, tmp_path, monkeypatch, capsys):
    raster, fp = scene
    cache = tmp_path / "cache"
    monkeypatch.setenv("RITM_QGIS_CACHE", str(cache))
    assert main(["adapt", "--raster", str(raster), "--footprints", str(fp), "--model", "aerial-finetuned-tiny",
                 "--minutes", "0.1", "--name", "mine", "--threads", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["buildings"] == 14 and report["holdout_buildings"] == 7 and report["base_model"] == "aerial-finetuned-tiny"
    for key in ("holdout_before", "holdout_after"):
        assert set(report[key]) == {"noc10@85", "mean_iou_click1", "mean_iou_click3", "buildings"}
    assert report["steps"] >= 1
    if not report["improved"]:  # nothing saved, nothing listed
        assert report["name"] is None and not list(cache.glob("*.pth"))
        return
    assert report["name"] == "mine" and (cache / "mine.pth").is_file()
    assert main(["model-info", "--list", "--json"]) == 0
    listed = {w["name"]: w for w in json.loads(capsys.readouterr().out)["weights"]}
    assert listed["mine"]["status"] == "adapted" and listed["mine"]["arch"] == "hrnet_tiny"
    assert main(["model-info", "mine", "--json"]) == 0  # usable by name
    assert json.loads(capsys.readouterr().out)["metadata"]["adaptation"]["layer"] == "truth"
    assert main(["adapt", "--remove", "mine"]) == 0
    assert not (cache / "mine.pth").exists() and not (cache / "mine.adapted.json").exists()


def test_adapt_refuses_bad_arguments(scene, tmp_path, monkeypatch, capsys):
    raster, fp = scene
    monkeypatch.setenv("RITM_QGIS_CACHE", str(tmp_path))
    assert main(["adapt", "--raster", str(raster), "--footprints", str(fp), "--minutes", "0"]) == 1
    assert "--minutes must be a positive number" in capsys.readouterr().err
    assert main(["adapt", "--raster", str(raster), "--footprints", str(fp), "--threads", "0"]) == 1
    assert "--threads must be at least 1" in capsys.readouterr().err
    assert main(["adapt", "--remove", "nothing-here"]) == 1
    assert "not an adapted model" in capsys.readouterr().err
    assert main(["adapt", "--minutes", "1"]) == 1
    assert "Give --raster and --footprints" in capsys.readouterr().err


def test_train_stops_at_the_time_budget_and_validates_the_cut_epoch(scene, tmp_path, capsys):
    raster, fp = scene
    spec = f"raster:{raster}:{fp}:buildings"
    out = tmp_path / "run"
    assert main(["train", "--data", spec, "--val-data", spec, "--val-limit", "2", "--val-max-clicks", "2",
                 "--init", "aerial-finetuned-tiny", "--epochs", "1000", "--batch-size", "2", "--crop-size", "96,96",
                 "--minutes", "0.05", "--out", str(out)]) == 0
    history = json.loads((out / "history.json").read_text())
    # whole epochs (7 steps) may end before the budget on an idle machine; the last record is the cut one
    assert history and history[-1]["epoch"] < 1000 and "validation" in history[-1]
    assert (out / "best.pth").is_file() and (out / "last.pth").is_file()
    assert "time budget of 0.05 min reached" in capsys.readouterr().err
    assert main(["train", "--data", spec, "--out", str(out), "--minutes", "-1"]) == 1
