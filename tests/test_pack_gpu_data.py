"""scripts/pack_gpu_data.py: the folder a GPU lease carries (docs/training.md, scripts/gpu_checks.sh)."""

import importlib.util

import cv2
import numpy as np
import pytest
from conftest import ROOT

from ritm_qgis.engine.data.registry import open_dataset, parse_dataset_spec


def _script():
    spec = importlib.util.spec_from_file_location("pack_gpu_data", ROOT / "scripts" / "pack_gpu_data.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _pairs(folder, names, ext, size=(40, 56)):
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    rng = np.random.default_rng(0)
    for name in names:
        image = rng.integers(0, 255, (*size, 3), dtype=np.uint8)
        mask = np.zeros(size, np.uint8)
        mask[8:30, 10:40] = 255
        cv2.imwrite(str(folder / "images" / f"{name}.{ext}"), image)
        cv2.imwrite(str(folder / "masks" / f"{name}.png"), mask)


def test_packs_davis_and_the_chosen_scale_as_the_readers_expect(tmp_path):
    _pairs(tmp_path / "data" / "davis", ["000", "001"], "jpg")
    _pairs(tmp_path / "b" / "test", ["img50_b001"], "png")
    _pairs(tmp_path / "b-z160" / "train-zoom", ["img55_b001", "img63_b002"], "png")
    out = tmp_path / "pack"
    args = ["--zoom", "160", "--data", str(tmp_path / "data"), "--buildings", str(tmp_path / "b"), "--out", str(out)]
    assert _script().main(args) == 0
    assert sorted(p.name for p in (out / "aerial" / "train-zoom" / "images").iterdir()) == \
        ["img55_b001.jpg", "img63_b002.jpg"]  # re-encoded
    assert (out / "aerial" / "test" / "images" / "img50_b001.png").is_file()  # the test set unchanged
    assert len(open_dataset(parse_dataset_spec(f"davis:{out / 'davis'}"))) == 2
    train = open_dataset(parse_dataset_spec(f"grabcut:{out / 'aerial' / 'train-zoom'}"))
    assert len(train) == 2 and train[0].gt.sum() == 22 * 30  # masks copied as they were


def test_a_missing_scale_says_how_to_make_it(tmp_path):
    _pairs(tmp_path / "data" / "davis", ["000"], "jpg")
    _pairs(tmp_path / "b" / "test", ["img50_b001"], "png")
    with pytest.raises(SystemExit, match="--zoom 240"):
        _script().main(["--zoom", "240", "--data", str(tmp_path / "data"), "--buildings", str(tmp_path / "b"),
                        "--out", str(tmp_path / "pack")])
