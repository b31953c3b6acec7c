"""scripts/make_holdout_buildings.py: the per-building held-out aerial set (docs/training.md)."""

import importlib.util

import numpy as np
from conftest import ROOT, shared_path

from ritm_qgis.engine.data.registry import open_dataset, parse_dataset_spec


def _script():
    spec = importlib.util.spec_from_file_location("make_holdout_buildings",
                                                  ROOT / "scripts" / "make_holdout_buildings.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_grabcut_mask_convention_and_zoom():
    mod = _script()
    gt = np.zeros((4, 6), bool)
    gt[1:3, 1:3] = True
    ignore = np.zeros_like(gt)
    ignore[:, 5] = True
    ignore[1, 1] = True  # an object pixel stays object
    m = mod.grabcut_mask(gt, ignore)
    assert m[1, 1] == 255 and m[2, 2] == 255 and m[0, 5] == 128 and m[0, 0] == 0
    assert set(np.unique(m)) == {0, 128, 255}
    img = np.zeros((4, 6, 3), np.uint8)
    zi, zm = mod.zoomed(img, m, 12)
    assert zi.shape == (8, 12, 3) and zm.shape == (8, 12)
    assert set(np.unique(zm)) == {0, 128, 255}  # nearest: no new values
    assert mod.HELD_OUT.search("img53") and not mod.HELD_OUT.search("img55")


def test_build_from_shared_data(tmp_path):
    data = shared_path("aerial", "spacenet_rio").parent.parent
    mod = _script()
    counts = mod.build(str(data), str(tmp_path))
    assert set(counts["test"]) == {"img50", "img51", "img52", "img53", "img54"}
    assert set(counts["train"]) == {"img55", "img56", "img57", "img63", "img64"}
    assert sum(counts["test"].values()) == 186 and sum(counts["train"].values()) == 329
    test = open_dataset(parse_dataset_spec(f"grabcut:{tmp_path / 'test'}"))
    train = open_dataset(parse_dataset_spec(f"grabcut:{tmp_path / 'train-zoom'}"))
    assert len(test) == 186 and len(train) == 329
    val = open_dataset(parse_dataset_spec(f"grabcut:{tmp_path / 'val'}"))
    assert set(counts["val"]) == {"img63", "img64"} and len(val) == sum(counts["val"].values()) == 198
    assert set(val.names) <= set(train.names) and not set(val.names) & set(test.names)
    assert not any(mod.HELD_OUT.search(n.split("_b")[0]) for n in train.names)
    s = test[0]
    assert s.gt.any() and s.gt.shape == s.image.shape[:2] and min(s.gt.shape) >= 64
    z = train[0]
    assert max(z.gt.shape) == 160 and z.gt.any()
