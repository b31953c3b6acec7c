"""Dataset specs: typed values inside the code, text only at the command line (Windows paths included)."""

import json

import pytest

from ritm_qgis.core.errors import RitmError
from ritm_qgis.engine.data.registry import open_dataset, parse_dataset_spec, split_spec
from ritm_qgis.engine.data.specs import InriaSpec, MaskFolderSpec, PairSpec, RasterSpec


def test_windows_drive_letters_stay_inside_their_paths():
    spec = parse_dataset_spec(r"raster:C:\data\img.tif:D:\gis\footprints.gpkg:buildings")
    assert spec == RasterSpec(r"C:\data\img.tif", r"D:\gis\footprints.gpkg", "buildings")
    assert parse_dataset_spec("raster:C:/data/img.tif:C:/fp.gpkg") == RasterSpec("C:/data/img.tif", "C:/fp.gpkg")
    assert parse_dataset_spec(r"grabcut:E:\sets\grabcut") == MaskFolderSpec(r"E:\sets\grabcut", "grabcut")
    assert parse_dataset_spec(r"pair:C:\a.png:C:\b.png:128") == PairSpec(r"C:\a.png", r"C:\b.png", 128)


def test_posix_paths_and_the_text_form_round_trip():
    for spec in (RasterSpec("/data/img.tif", "/data/fp.gpkg", "tiles"), InriaSpec("/inria", "train"),
                 MaskFolderSpec("/sets/davis", "davis"), PairSpec("/a.png", "/b.png", 250)):
        assert parse_dataset_spec(str(spec)) == spec
    assert split_spec("raster:/a/b.tif:/c/d.gpkg") == ["raster", "/a/b.tif", "/c/d.gpkg"]


def test_a_windows_raster_spec_opens_the_raster_it_names(tmp_path):
    # the drive-letter rule must reach the reader: on POSIX a 'C:' path is a missing file, named whole
    with pytest.raises(RitmError, match=r"no raster at 'C:\\data\\img.tif'"):
        open_dataset(parse_dataset_spec(r"raster:C:\data\img.tif:C:\data\fp.gpkg"))


def test_bad_specs_are_sentences_naming_the_flag():
    with pytest.raises(RitmError, match="--data takes KIND:PATH"):
        parse_dataset_spec("nosuchkind:/x", flag="--data")
    with pytest.raises(RitmError, match="raster:IMAGE.tif:FOOTPRINTS.gpkg"):
        parse_dataset_spec("raster:/only/one.tif")
    with pytest.raises(RitmError, match="whole number"):
        parse_dataset_spec("pair:/a.png:/b.png:big")
    with pytest.raises(RitmError, match="KIND:PATH"):
        parse_dataset_spec("pair:/a.png:/b.png", kinds=("grabcut", "raster"))


def test_a_pair_spec_opens_as_whole_tiles_of_the_image(tmp_path):
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (100, 130, 3), dtype=np.uint8)
    mask = np.zeros((100, 130), np.uint8)
    mask[40:70, 50:90] = 255
    cv2.imwrite(str(tmp_path / "scene_rgb.png"), image[:, :, ::-1])
    cv2.imwrite(str(tmp_path / "scene_mask.png"), mask)
    ds = open_dataset(parse_dataset_spec(f"pair:{tmp_path / 'scene_rgb.png'}:{tmp_path / 'scene_mask.png'}:32"))
    assert ds.names == [f"scene_{r}_{c}" for r in range(3) for c in range(4)]  # 100 // 32, 130 // 32
    s = ds[ds.names.index("scene_1_2")]
    assert np.array_equal(s.image, image[32:64, 64:96]) and np.array_equal(s.gt, mask[32:64, 64:96] > 127)


def test_evaluate_on_a_geopackage_with_several_layers_names_the_layer(tmp_path, capsys):
    from data_builders import footprints, scene
    from ritm_qgis.cli import main
    from ritm_qgis.engine.geo.vector_io import write_gpkg

    raster, _, _ = scene(str(tmp_path))
    gpkg = str(tmp_path / "city.gpkg")
    write_gpkg(footprints()[:1], gpkg, layer="parcels")  # listed first by GDAL, not the buildings
    write_gpkg(footprints(), gpkg, layer="buildings")
    args = ["evaluate", "--model", "grabcut", "--limit", "9", "--max-clicks", "1", "--no-figures"]
    assert main(args + ["--dataset", f"raster:{raster}:{gpkg}:buildings", "--out", str(tmp_path / "a")]) == 1
    err = capsys.readouterr().err
    assert "holds 2 layers" in err and f"{gpkg}|layername=" in err and "Traceback" not in err
    assert not (tmp_path / "a" / "report.json").exists()
    assert main(args + ["--dataset", f"raster:{raster}:{gpkg}|layername=buildings:buildings",
                        "--out", str(tmp_path / "b")]) == 0
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    assert report["n_dataset_samples"] == 5  # the five buildings, not the one parcel
