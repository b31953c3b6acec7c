"""INRIA preparation on a small folder fabricated in the official layout."""

import csv
import os

import numpy as np
import pytest
import rasterio

from ritm_qgis.cli import main
from ritm_qgis.engine.data.datasets import inria_crops, read_image_gray, read_image_rgb
from ritm_qgis.core.errors import RitmError
from ritm_qgis.engine.data.inria import find_tiles, prepare_inria

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")


def _write_tif(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    bands = array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0)
    with rasterio.open(path, "w", driver="GTiff", width=bands.shape[2], height=bands.shape[1],
                       count=bands.shape[0], dtype="uint8") as ds:
        ds.write(bands)


def _fabricate(root, tiles=(("austin", 1), ("austin", 7), ("tyrol-w", 3)), size=100):
    rng = np.random.default_rng(0)
    src = {}
    for city, n in tiles:
        rgb = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        gt = np.zeros((size, size), np.uint8)
        gt[10:30, size - 40:size - 10] = 255  # a building in crop (0, 1)
        gt[size - 30, size - 30] = 129  # > 128: building
        gt[size - 29, size - 29] = 128  # not > 128: background
        _write_tif(os.path.join(root, "train", "images", f"{city}{n}.tif"), rgb)
        _write_tif(os.path.join(root, "train", "gt", f"{city}{n}.tif"), gt)
        src[f"{city}{n}"] = (rgb, gt)
    return src


def test_prepare_inria_crops_split_manifest_and_resume(tmp_path):
    root, out = str(tmp_path / "AerialImageDataset"), str(tmp_path / "crops")
    src = _fabricate(root)
    seen = []
    res = prepare_inria(root, out, crop_size=50, progress=lambda done, total, message: seen.append(done / total))
    assert (res.crops, res.written, res.skipped) == (12, 12, 0)
    assert seen[-1] == pytest.approx(1.0) and len(seen) == 3
    test = sorted(os.listdir(os.path.join(out, "test", "images")))
    train = sorted(os.listdir(os.path.join(out, "train", "images")))
    assert test == [f"{s}_{r}_{c}.png" for s in ("austin1", "tyrol-w3") for r in (0, 1) for c in (0, 1)]
    assert train == [f"austin7_{r}_{c}.png" for r in (0, 1) for c in (0, 1)]
    # pixels are the source window; gt is 0/255 with > 128 as building
    rgb, gt = src["austin1"]
    assert (read_image_rgb(os.path.join(out, "test", "images", "austin1_0_1.png")) == rgb[0:50, 50:100]).all()
    crop_gt = read_image_gray(os.path.join(out, "test", "gt", "austin1_1_1.png"))
    assert set(np.unique(crop_gt)) == {0, 255}
    assert crop_gt[20, 20] == 255 and crop_gt[21, 21] == 0
    with open(res.manifest) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12
    by_name = {r["name"]: r for r in rows}
    assert by_name["austin7_0_1"]["split"] == "train" and by_name["austin7_0_1"]["empty"] == "0"
    assert float(by_name["austin7_0_1"]["foreground"]) == pytest.approx(20 * 30 / 2500)
    assert by_name["tyrol-w3_1_0"]["empty"] == "1" and by_name["tyrol-w3_1_0"]["city"] == "tyrol-w"
    assert res.empty == 3 * 2  # crops (0,0) and (1,0) of each tile
    # the engine's INRIA dataset reads the result
    ds = inria_crops(out, "test")
    assert len(ds) == 8 and ds[1].gt.sum() == 20 * 30
    # resumable: nothing is rewritten, a missing crop is written again
    res2 = prepare_inria(root, out, crop_size=50)
    assert (res2.written, res2.skipped) == (0, 12)
    os.remove(os.path.join(out, "train", "gt", "austin7_1_1.png"))
    res3 = prepare_inria(root, out, crop_size=50)
    assert (res3.written, res3.skipped) == (1, 11)
    assert os.path.exists(os.path.join(out, "train", "gt", "austin7_1_1.png"))


def test_prepare_inria_cli_and_cancel(tmp_path, capsys):
    root, out = str(tmp_path / "AerialImageDataset"), str(tmp_path / "crops")
    _fabricate(root, tiles=(("vienna", 2),), size=60)
    res = prepare_inria(root, out, crop_size=30, cancel=lambda: True)
    assert res.cancelled and res.written == 0
    assert main(["prepare-inria", "--src", os.path.join(root, "train"), "--out", out, "--crop-size", "30"]) == 0
    assert "4 crops (4 written" in capsys.readouterr().out


def test_prepare_inria_errors(tmp_path):
    root = str(tmp_path / "AerialImageDataset")
    _fabricate(root, tiles=(("austin", 1), ("chicago", 2)), size=40)
    os.remove(os.path.join(root, "train", "gt", "chicago2.tif"))
    with pytest.raises(RitmError, match="chicago2"):
        find_tiles(root)
    # size mismatch between image and gt
    _write_tif(os.path.join(root, "train", "gt", "chicago2.tif"), np.zeros((30, 40), np.uint8))
    with pytest.raises(RitmError, match="30"):
        prepare_inria(root, str(tmp_path / "o"), crop_size=20)
    # gt without image
    os.remove(os.path.join(root, "train", "images", "chicago2.tif"))
    with pytest.raises(RitmError, match="no image"):
        find_tiles(root)
    with pytest.raises(RitmError, match="INRIA layout"):
        find_tiles(str(tmp_path))
    assert main(["prepare-inria", "--src", str(tmp_path), "--out", str(tmp_path / "o")]) == 1
