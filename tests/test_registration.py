"""Adding a dataset format, a backend or a stretch is one module plus one registration: a throwaway
format, a throwaway weight-free backend and a throwaway stretch, registered here, are what
`ritm-qgis evaluate` and `segment`, the model list, build_backend, the stretch's parser, help texts and
raster path then use, with no other list to edit."""

import json
from dataclasses import dataclass

import numpy as np
import pytest

from ritm_qgis import cli
from ritm_qgis.engine.data import registry
from ritm_qgis.engine.data.datasets import Dataset, Sample
from ritm_qgis.engine.geo import stretch_registry
from ritm_qgis.engine.geo.stretch_kinds import StretchKind
from ritm_qgis.engine.interactive.predictor import Backend
from ritm_qgis.models import catalog
from ritm_qgis.models.builders import Builder, Inputs


# --- a throwaway dataset format: squares of a given size, drawn on a grey image -------------------
@dataclass(frozen=True)
class SquaresSpec:
    count: int
    size: int


def open_squares(spec):
    def load(i):
        image = np.full((64, 64, 3), 90, np.uint8)
        gt = np.zeros((64, 64), bool)
        gt[10 + i:10 + i + spec.size, 12:12 + spec.size] = True
        image[gt] = 200
        return Sample(f"square{i}", image, gt)

    return Dataset("squares", [f"square{i}" for i in range(spec.count)], load)


# --- a throwaway weight-free backend: a disk of radius 12 around each positive click ---------------
class DiskBackend(Backend):
    name = "disk"

    @classmethod
    def build(cls, spec, device="cpu", precision="fp32", optimize="auto", radius=12):
        backend = cls()
        backend.radius = radius
        return backend

    def predict_direct(self, image_u8, clicks, prev_prob):
        rows, cols = np.mgrid[:image_u8.shape[0], :image_u8.shape[1]]
        prob = np.zeros(image_u8.shape[:2], np.float32)
        for click in clicks:
            disk = (rows - click.row) ** 2 + (cols - click.col) ** 2 <= self.radius ** 2
            prob[disk] = 1.0 if click.is_positive else 0.0
        return prob


DISK = catalog.ModelEntry("test-disk", "disk", "none (weight-free)", "a disk around each click (a test)", "shipped",
                          builder=Builder(f"{__name__}:DiskBackend.build", weights=False,
                                          inputs=Inputs(bands=3, stretch="minmax"), options=(("radius", 6),)))


@pytest.fixture
def registered():
    registry.register_format("squares", SquaresSpec, "squares:COUNT:SIZE", (2, 2),
                             lambda kind, parts: SquaresSpec(int(parts[0]), int(parts[1])), open_squares)
    catalog.add_entry(DISK)
    try:
        yield
    finally:
        registry.unregister_format("squares")
        catalog.remove_entry(DISK.name)


def test_a_registered_backend_is_listed_and_built_without_a_file(registered, tmp_path, monkeypatch):
    from ritm_qgis.engine.interactive.backends import build_backend
    from ritm_qgis.engine.runtime.choices import model_names

    monkeypatch.setenv("RITM_QGIS_CACHE", str(tmp_path / "cache"))
    status = {s.name: s for s in catalog.model_statuses()}["test-disk"]
    assert status.status == "shipped" and status.path is None  # weight-free: nothing to ship or download
    assert status.as_dict()["inputs"] == {"bands": 3, "stretch": "minmax"}
    assert "test-disk" in model_names()  # the Processing and dock choice
    backend = build_backend("test-disk")
    assert isinstance(backend, DiskBackend) and backend.radius == 6
    with pytest.raises(catalog.RitmError, match="cannot be used as a model name"):
        catalog.import_model("test-disk", tmp_path / "x.pth", sha256="0" * 64)


def test_evaluate_takes_a_registered_format_and_backend(registered, tmp_path, capsys):
    assert registry.parse_dataset_spec("squares:3:20") == SquaresSpec(3, 20)
    assert "squares:COUNT:SIZE" in registry.usage()
    out = tmp_path / "eval"
    code = cli.main(["evaluate", "--model", "test-disk", "--model", "grabcut", "--dataset", "squares:3:20",
                     "--max-clicks", "4", "--thresholds", "0.5", "--out", str(out), "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    text = json.dumps(report)
    assert "test-disk" in text and "grabcut" in text and "squares" in text
    assert (out / "test-disk" / "ious.npy").is_file()
    ious = np.load(out / "test-disk" / "ious.npy")
    assert ious.shape[0] == 3 and ious.max() > 0.2  # the disk backend did predict the squares


def test_an_unregistered_format_is_refused_in_one_sentence():
    with pytest.raises(catalog.RitmError, match="names no such kind"):
        registry.parse_dataset_spec("squares:3:20")


# --- a throwaway stretch: each band black below its median, white above (one kind, one registration) -----
class MedianKind(StretchKind):
    name = "median"
    description = "black below each band's median, white above"

    def limits(self, rule, n_bands, dtype, percentiles):
        return percentiles((50.0, 50.0))  # low == high: to_rgb thresholds there


@pytest.fixture
def median_stretch():
    stretch_registry.register_stretch(MedianKind())
    try:
        yield
    finally:
        stretch_registry.unregister_stretch("median")


def test_a_registered_stretch_is_parsed_offered_and_applied(median_stretch, registered, tmp_path, capsys):
    import geopandas as gpd
    import rasterio

    from data_builders import uint16_scene
    from ritm_qgis.engine.geo.stretch import parse_stretch, resolve_stretch, stretch_image

    assert parse_stretch(" Median ") == stretch_registry.StretchRule("median")
    assert parse_stretch("median").label == "median"
    raster = uint16_scene(tmp_path / "u16.tif")
    win = resolve_stretch("median", raster).read(raster)  # the raster path: the whole raster's median
    valid = win.rgb[..., 0][~win.invalid]
    assert set(np.unique(valid)) == {0, 255} and 0.3 < (valid == 255).mean() < 0.7
    array = np.arange(100, dtype=np.uint16).reshape(10, 10)
    assert (stretch_image(array, "median")[..., 1] == 255).sum() == 50  # an array: its own median

    # offered by the CLI's help, Processing's parameter and help, and the dock's list
    assert "median" in stretch_registry.cli_help() and "median" in stretch_registry.processing_label()
    assert "black below each band's median" in stretch_registry.help_sentence()
    assert ("median", MedianKind.description) in stretch_registry.dock_choices()
    with pytest.raises(SystemExit):
        cli.main(["segment", "--help"])
    assert "black below each band's median" in " ".join(capsys.readouterr().out.split())

    # and used by `ritm-qgis segment`, recorded with the building
    with rasterio.open(raster) as ds:
        x, y = ds.transform * (90.5, 70.5)  # inside the first building of the scene
    out = tmp_path / "b.gpkg"
    code = cli.main(["segment", "--raster", raster, "--click", f"{x},{y},+", "--model", "test-disk",
                     "--device", "cpu", "--stretch", "median", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert list(gpd.read_file(out)["stretch"]) == ["median"]


def test_an_unregistered_stretch_is_no_longer_offered(median_stretch):
    stretch_registry.unregister_stretch("median")
    with pytest.raises(catalog.RitmError, match="--stretch takes percentile, minmax or LOW,HIGH"):
        stretch_registry.parse_stretch("median")
    assert "median" not in stretch_registry.cli_help()


def test_the_dock_and_processing_offer_a_registered_stretch(median_stretch, qgis_app):
    from qgis.PyQt.QtCore import Qt

    from ritm_qgis.algorithms.segment_from_points import SegmentFromPointsAlgorithm
    from ritm_qgis.gui.dock import RitmDock
    from ritm_qgis.gui.settings import ToolSettings

    dock = RitmDock(settings=ToolSettings(stretch="median"))
    items = [dock.stretch.itemText(i) for i in range(dock.stretch.count())]
    assert items == ["layer", "percentile", "minmax", "median"]
    assert dock.stretch.itemData(3, Qt.ToolTipRole) == MedianKind.description
    assert dock.settings().stretch == "median"
    alg = SegmentFromPointsAlgorithm()
    alg.initAlgorithm()
    assert "median" in alg.parameterDefinition("STRETCH").description()
    assert "'median' (black below each band's median, white above)" in alg.shortHelpString()
