"""Issue 16: nothing lost, never silently wrong -- one test (or more) per numbered defect.

Everything runs for real: GeoTIFFs and GeoPackages written here, the algorithms through
processing.run in headless QGIS, the CLI in a subprocess where a signal or a traceback matters.
"""

import json
import os
import signal
import subprocess
import sys
import time

import geopandas as gpd
import numpy as np
import pytest
import shapely

from data_builders import (BUILDINGS, cancelling_feedback, footprints, point_layer, provider, scene,  # noqa: F401
                           scene_arrays, transform, write_raster)

qgis_core = pytest.importorskip("qgis.core", reason="PyQGIS (Debian's python3-qgis) is not installed")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(alg, params, feedback=None):
    import processing

    return processing.run(f"ritm_qgis:{alg}", params, feedback=feedback)


def cli(*args, timeout=600):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "ritm_qgis", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout)


def one_sentence(text: str) -> bool:
    lines = [line for line in text.strip().splitlines() if line.strip() and "Warning 1:" not in line]
    return len(lines) == 1 and "Traceback" not in text


def centre_click(b, sign=1, obj=1):
    r, c, h, w = b
    x, y = transform() * (c + w // 2 + 0.5, r + h // 2 + 0.5)
    return (x, y, {"sign": sign, "obj": obj, "ord": 1})


# ----------------------------------------------------------------------------- 1. appends across CRSs

def test_vectorize_append_reprojects_into_the_layers_crs(provider, tmp_path):
    _, mask = scene_arrays()
    mask_tif = write_raster(tmp_path / "mask.tif", mask.astype(np.uint8) * 255)  # EPSG:32633
    run("vectorize_mask", {"INPUT": mask_tif, "OUTPUT": str(tmp_path / "first.gpkg")})
    out = tmp_path / "b.gpkg"
    existing = gpd.read_file(tmp_path / "first.gpkg").iloc[:1].to_crs("EPSG:32634")  # same fields, next UTM zone
    existing.to_file(out, layer="buildings")
    run("vectorize_mask", {"INPUT": mask_tif, "APPEND": True, "OUTPUT": str(out)})
    got = gpd.read_file(out, layer="buildings")
    assert got.crs.to_epsg() == 32634 and len(got) == 1 + len(BUILDINGS)
    # the appended polygons cover the buildings where they are, not ~500 km off
    truth = footprints().to_crs("EPSG:32634").union_all()
    appended = got.iloc[1:].union_all()
    assert appended.intersection(truth).area / truth.area > 0.95


def test_engine_append_without_a_crs_on_one_side_is_refused(tmp_path):
    from ritm_qgis.core.errors import RitmError
    from ritm_qgis.engine.geo.vector_io import write_gpkg

    path = tmp_path / "x.gpkg"
    gpd.GeoDataFrame({"a": [1]}, geometry=[shapely.box(0, 0, 1, 1)]).to_file(path, layer="buildings")
    before = path.read_bytes()
    with pytest.raises(RitmError, match="has no CRS"):
        write_gpkg(footprints(BUILDINGS[:1]), path, layer="buildings", mode="a")
    assert path.read_bytes() == before


def test_map_tool_writer_reprojects_and_refuses_a_missing_crs(qgis_app, tmp_path):
    from qgis.core import QgsCoordinateReferenceSystem, QgsVectorLayer

    from ritm_qgis.core.errors import RitmError
    from ritm_qgis.engine.interactive.outline_record import OutlineRecord
    from ritm_qgis.gui.output import append_records, open_output_layer

    layer = open_output_layer(str(tmp_path / "fp.gpkg"), QgsCoordinateReferenceSystem("EPSG:32634"),
                              add_to_project=False)
    box = shapely.box(500000, 5000000, 500020, 5000010)  # in EPSG:32633
    record = OutlineRecord(box, area_m2=200.0, perimeter_m=60.0, pixels=200, clicks=((500010, 5000005, True),),
                           model="grabcut", stretch="", source="")
    append_records(layer, [record], QgsCoordinateReferenceSystem("EPSG:32633"))
    got = next(iter(QgsVectorLayer(f"{tmp_path / 'fp.gpkg'}|layername=footprints").getFeatures())).geometry()
    expected = gpd.GeoSeries([box], crs="EPSG:32633").to_crs("EPSG:32634").iloc[0]
    assert shapely.from_wkt(got.asWkt()).centroid.distance(expected.centroid) < 0.01
    with pytest.raises(RitmError, match="no CRS"):
        append_records(layer, [record], QgsCoordinateReferenceSystem())


# ----------------------------------------------------------------------------- 2. a user's layer is kept

def test_a_layer_the_project_did_not_write_is_never_replaced_by_default(provider, tmp_path):
    raster, _, _ = scene(str(tmp_path))
    seg = tmp_path / "seg.gpkg"
    footprints().to_file(seg, layer="buildings")  # the user's own reference layer
    before = gpd.read_file(seg, layer="buildings")
    params = {"INPUT": raster, "POINTS": point_layer([centre_click(BUILDINGS[0])]), "SIGN_FIELD": "sign",
              "MODEL": "grabcut", "OUTPUT": str(seg)}
    with pytest.raises(qgis_core.QgsProcessingException) as err:
        run("segment_from_points", params)
    message = str(err.value)
    assert "'buildings'" in message and "OVERWRITE" in message and "layername=" in message
    assert len(gpd.read_file(seg, layer="buildings")) == len(before)
    # naming the table, or choosing to overwrite, replaces it; re-running onto our own output too
    run("segment_from_points", dict(params, OUTPUT=f"{seg}|layername=buildings"))
    assert len(gpd.read_file(seg, layer="buildings")) == 1
    footprints().to_file(seg, layer="buildings")
    run("segment_from_points", dict(params, OVERWRITE=True))
    run("segment_from_points", params)
    assert len(gpd.read_file(seg, layer="buildings")) == 1


# ----------------------------------------------------------------------------- 3. parameters first

@pytest.mark.parametrize("bad", ["80,85,90", "0", "1.5", "-0.2"])
def test_cli_evaluate_refuses_bad_thresholds_before_any_work(tmp_path, bad):
    raster, gpkg, _ = scene(str(tmp_path))
    out = cli("evaluate", "--model", "grabcut", "--dataset", f"raster:{raster}:{gpkg}:buildings",
              "--thresholds", bad, "--max-clicks", "3", "--out", tmp_path / "ev")
    assert out.returncode == 1 and "--thresholds" in out.stderr and one_sentence(out.stderr)
    assert not (tmp_path / "ev").exists()  # refused before the output folder was even made


def test_processing_messages_name_the_processing_parameters(provider, tmp_path):
    raster, gpkg, _ = scene(str(tmp_path))
    base = {"INPUT": raster, "REFERENCE": gpkg, "MODEL": "grabcut", "OUTPUT_TABLE": str(tmp_path / "t.csv"),
            "OUTPUT_HTML": str(tmp_path / "r.html")}
    with pytest.raises(qgis_core.QgsProcessingException) as err:
        run("evaluate_noc", dict(base, THRESHOLDS="0,0.5"))
    assert "THRESHOLDS" in str(err.value) and "--thresholds" not in str(err.value)
    with pytest.raises(qgis_core.QgsProcessingException) as err:
        run("evaluate_noc", dict(base, MAX_CLICKS=0))
    assert "MAX_CLICKS" in str(err.value) and "at least 1" in str(err.value)
    assert not (tmp_path / "t.csv").exists()


# ----------------------------------------------------------------------------- 4. truncated GeoTIFF

@pytest.fixture
def truncated(tmp_path):
    img, mask = scene_arrays()
    full = write_raster(tmp_path / "full.tif", img)
    data = open(full, "rb").read()
    path = tmp_path / "trunc.tif"
    path.write_bytes(data[: len(data) // 3])  # head -c: the header is intact, the pixels are not
    write_raster(tmp_path / "mask.tif", mask.astype(np.uint8) * 255)
    footprints().to_file(tmp_path / "fp.gpkg", layer="footprints")
    return path


def test_truncated_geotiff_is_one_sentence_in_every_command(truncated, tmp_path):
    commands = [
        ("evaluate", "--model", "grabcut", "--dataset", f"raster:{truncated}:{tmp_path / 'fp.gpkg'}:buildings",
         "--max-clicks", "2", "--out", tmp_path / "ev"),
        ("demo", "--image", truncated, "--target", tmp_path / "mask.tif", "--max-clicks", "2", "--out", tmp_path / "d"),
        ("predict", "--checkpoint", "grabcut", "--image", truncated, "--click", "100,100,+",
         "--out-mask", tmp_path / "m.png"),
    ]
    for args in commands:
        out = cli(*args)
        assert out.returncode == 1, (args[0], out.stderr[-2000:])
        assert one_sentence(out.stderr), (args[0], out.stderr[-2000:])


def test_truncated_geotiff_is_one_sentence_in_every_algorithm(provider, truncated, tmp_path):
    mask = str(tmp_path / "mask.tif")
    fp = str(tmp_path / "fp.gpkg")
    calls = {
        "evaluate_noc": {"INPUT": str(truncated), "REFERENCE": fp, "MODE": 1, "MAX_CLICKS": 2,
                         "OUTPUT_TABLE": str(tmp_path / "t.csv"), "OUTPUT_HTML": str(tmp_path / "r.html")},
        "tile_raster": {"INPUT": str(truncated), "TILE_SIZE": 100, "OUTPUT_FOLDER": str(tmp_path / "tiles"),
                        "OUTPUT_INDEX": str(tmp_path / "index.gpkg")},
        "segment_from_points": {"INPUT": str(truncated), "POINTS": point_layer([centre_click(BUILDINGS[4])]),
                                "SIGN_FIELD": "sign", "MODEL": "grabcut", "OUTPUT": str(tmp_path / "s.gpkg")},
        "vectorize_mask": {"INPUT": str(truncated), "OUTPUT": str(tmp_path / "v.gpkg")},
        "auto_annotate": {"INPUT": str(truncated), "REFERENCE_MASK": mask, "MAX_CLICKS": 2,
                          "OUTPUT": str(tmp_path / "a.gpkg"), "OUTPUT_CLICKS": str(tmp_path / "c.gpkg")},
        "train_model": {"INPUT": str(truncated), "FOOTPRINTS": fp, "ARCH": "hrnet_tiny", "SAMPLES": 1, "EPOCHS": 1,
                        "BATCH_SIZE": 2, "DEVICE": "cpu", "OUTPUT_FOLDER": str(tmp_path / "train")},
    }
    for alg, params in calls.items():
        with pytest.raises(qgis_core.QgsProcessingException) as err:
            run(alg, params)
        message = str(err.value)
        assert "Traceback" not in message and len(message.splitlines()) == 1, (alg, message)
        assert "truncated" in message or "could not" in message.lower(), (alg, message)
    assert not (tmp_path / "tiles").exists()  # no empty tile folder left behind
    assert not [f for f in os.listdir(tmp_path) if ".incomplete" in f]


def test_an_output_under_proc_is_one_sentence(tmp_path):
    raster, gpkg, _ = scene(str(tmp_path))
    out = cli("evaluate", "--model", "grabcut", "--dataset", f"raster:{raster}:{gpkg}:buildings",
              "--max-clicks", "2", "--out", "/proc/ritm-out")
    assert out.returncode == 1 and one_sentence(out.stderr), out.stderr[-2000:]


# ----------------------------------------------------------------------------- 5. cancel is honoured

def test_auto_annotate_cancel_stops_and_keeps_the_previous_outputs(provider, tmp_path):
    raster, gpkg, _ = scene(str(tmp_path), height=300, width=320)
    outs = {"OUTPUT": str(tmp_path / "b.gpkg"), "OUTPUT_CLICKS": str(tmp_path / "c.gpkg")}
    params = {"INPUT": raster, "REFERENCE": gpkg, "MODEL": "grabcut", "TARGET_IOU": 0.99, "MAX_CLICKS": 10, **outs}
    run("auto_annotate", dict(params, MAX_CLICKS=2))
    before = {k: open(v, "rb").read() for k, v in outs.items()}
    fb = cancelling_feedback(1)  # cancels at the first progress report, i.e. after the first click
    seen = []
    fb.progressChanged.connect(seen.append)
    with pytest.raises(qgis_core.QgsProcessingException, match="cancelled"):
        run("auto_annotate", params, feedback=fb)
    assert 0 < max(seen) < 100  # progress moved during the clicks (it stayed at 0 before)
    assert {k: open(v, "rb").read() for k, v in outs.items()} == before


# ----------------------------------------------------------------------------- 6. one consistent set

def test_evaluate_noc_outputs_are_one_set_and_killed_leftovers_are_cleaned(provider, tmp_path):
    raster, gpkg, _ = scene(str(tmp_path))
    outs = {"OUTPUT_TABLE": str(tmp_path / "t.csv"), "OUTPUT_HTML": str(tmp_path / "r.html"),
            "OUTPUT_IOUS": str(tmp_path / "i.npy"), "OUTPUT_FOOTPRINTS": str(tmp_path / "p.gpkg")}
    params = {"INPUT": raster, "REFERENCE": gpkg, "MODEL": "grabcut", "MODE": 1, "MAX_CLICKS": 2, **outs}
    run("evaluate_noc", params)
    before = {k: open(v, "rb").read() for k, v in outs.items()}
    with pytest.raises(qgis_core.QgsProcessingException, match="cancelled"):
        run("evaluate_noc", dict(params, MAX_CLICKS=3, BATCH_SIZE=1), feedback=cancelling_feedback(30))
    assert {k: open(v, "rb").read() for k, v in outs.items()} == before
    # a run killed mid-write leaves visible 'incomplete' files; the next run removes them
    (tmp_path / "p.incomplete.gpkg").write_bytes(b"half a geopackage")
    (tmp_path / "t.incomplete.csv").write_text("half a table")
    run("evaluate_noc", dict(params, MAX_CLICKS=3))
    assert not [f for f in os.listdir(tmp_path) if ".incomplete" in f]
    assert np.load(outs["OUTPUT_IOUS"]).shape[1] == 3


def test_cli_evaluate_interrupted_leaves_the_previous_run_untouched(tmp_path):
    raster, gpkg, _ = scene(str(tmp_path))
    dataset = f"raster:{raster}:{gpkg}:buildings"
    out = tmp_path / "ev"
    done = cli("evaluate", "--model", "grabcut", "--dataset", dataset, "--max-clicks", "2", "--batch-size", "1",
               "--no-figures", "--out", out)
    assert done.returncode == 0, done.stderr
    before = {p: (out / p).read_bytes() for p in ("report.json", "table.md", "grabcut/ious.npy", "grabcut/samples.csv")}
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen([sys.executable, "-m", "ritm_qgis", "evaluate", "--model", "grabcut", "--dataset", dataset,
                             "--max-clicks", "20", "--batch-size", "1", "--no-figures", "--out", str(out)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    partial = out / "grabcut" / "ious.incomplete.npy"
    deadline = time.time() + 300
    while not partial.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert {p: (out / p).read_bytes() for p in before} == before  # the previous run, whole
    assert partial.exists() and np.load(partial).shape[1] == 20  # this run so far, marked as partial
    assert json.loads((out / "report.json").read_text())["max_clicks"] == 2


# ----------------------------------------------------------------------------- 7. same inputs, same results

def test_first_click_is_the_same_in_every_thread():
    from ritm_qgis.core.threads import map_samples
    from ritm_qgis.engine.protocol.clicker import next_click

    gt = np.zeros((108, 144), bool)
    gt[24:84, 32:112] = True  # a 60 x 80 building: many pixels tie at the deepest distance
    empty = np.zeros_like(gt)
    clicks = map_samples(lambda _: next_click(gt, empty), range(16)) + [next_click(gt, empty)]
    assert len(set(clicks)) == 1


def test_multi_model_evaluation_repeats_and_matches_each_model_alone(tmp_path):
    raster, gpkg, _ = scene(str(tmp_path))
    dataset = f"raster:{raster}:{gpkg}:buildings"
    args = ("--dataset", dataset, "--max-clicks", "6", "--batch-size", "4", "--no-figures")
    alone = {}
    for model in ("grabcut", "grabcut-multi"):
        assert cli("evaluate", "--model", model, *args, "--out", tmp_path / f"alone-{model}").returncode == 0
        alone[model] = np.load(tmp_path / f"alone-{model}" / model / "ious.npy")
    for k in range(3):
        out = tmp_path / f"both-{k}"
        done = cli("evaluate", "--model", "grabcut", "--model", "grabcut-multi", *args, "--out", out)
        assert done.returncode == 0, done.stderr
        for model, ref in alone.items():
            np.testing.assert_array_equal(np.load(out / model / "ious.npy"), ref)


# ----------------------------------------------------------------------------- 8. the smaller points

def test_messages_wait_for_the_progress_bar_to_finish(qgis_app):
    from qgis.core import QgsProcessingFeedback

    from ritm_qgis.algorithms.base import RunFeedback

    events = []

    class Recording(QgsProcessingFeedback):
        def pushInfo(self, text):  # noqa: N802
            events.append(("info", text))

    fb = Recording()
    fb.progressChanged.connect(lambda p: events.append(("progress", p)))
    run_ = RunFeedback(fb)
    run_.info("before")
    run_.progress(0.5)
    run_.info("during")
    run_.finish()
    assert events == [("info", "before"), ("progress", 50.0), ("progress", 100.0), ("info", "during")]


def test_segment_warnings_name_no_none_and_spare_the_raster_border(provider, tmp_path):
    from qgis.core import QgsProcessingFeedback

    # a building against the raster's left border: the window cannot grow there, so no warning
    img, _ = scene_arrays(height=200, width=200, buildings=[(60, 0, 60, 50)])
    raster = write_raster(tmp_path / "edge.tif", img)
    warnings = []

    class Recording(QgsProcessingFeedback):
        def pushWarning(self, text):  # noqa: N802
            warnings.append(text)

    x, y = transform() * (25.5, 90.5)
    run("segment_from_points", {"INPUT": raster, "POINTS": point_layer([(x, y, {"sign": 1, "obj": 1, "ord": 1})]),
                                "SIGN_FIELD": "sign", "MODEL": "grabcut", "OUTPUT": str(tmp_path / "s.gpkg")},
        feedback=Recording())
    assert not [w for w in warnings if "window" in w]
    # the rule behind the warning: a mask reaching a side of the window inside the raster may be cut
    from ritm_qgis.engine.interactive.grabcut_backend import GrabCutBackend
    from ritm_qgis.engine.interactive.predictor import Predictor
    from ritm_qgis.engine.interactive.raster_session import RasterSession

    img, _ = scene_arrays(height=200, width=900, buildings=[(60, 100, 60, 700)])
    session = RasterSession(write_raster(tmp_path / "long.tif", img), lambda: Predictor(GrabCutBackend()))
    session.add_click(*(transform() * (450.5, 90.5)))
    window, mask = session.mask()
    assert window.col_off > 0 and window.col_off + window.width < 900 and window.height == 200
    assert not session.touches_window(mask)
    mask[0, 1:-1] = mask[1:, -1] = True  # the right side is inside the raster, the top one is the raster's
    assert session.touches_window(mask)
    mask[1:, -1] = False
    assert not session.touches_window(mask)


def test_evaluate_noc_edge_tiles_are_a_choice(provider, tmp_path):
    raster, gpkg, _ = scene(str(tmp_path))  # 640 x 600: with 256-px tiles, slivers of 128 and 88 px
    common = {"INPUT": raster, "REFERENCE": gpkg, "MODEL": "grabcut", "MODE": 0, "TILE_SIZE": 256, "MAX_CLICKS": 1}
    counts = {}
    for choice, name in enumerate(("pad", "drop", "shift")):
        res = run("evaluate_noc", dict(common, EDGE_TILES=choice, OUTPUT_TABLE=str(tmp_path / f"{name}.csv"),
                                       OUTPUT_HTML=str(tmp_path / f"{name}.html")))
        counts[name] = res["N_SAMPLES"] + res["N_EMPTY"]
    assert counts == {"pad": 9, "drop": 4, "shift": 9}


def test_train_model_help_promises_only_what_it_writes(provider):
    from qgis.core import QgsApplication

    alg = QgsApplication.processingRegistry().algorithmById("ritm_qgis:train_model")
    assert "best.pth" not in alg.shortHelpString()


def test_metadata_is_written_once_per_class():
    import inspect

    from ritm_qgis.algorithms import algorithm_classes
    from ritm_qgis.algorithms.base import RitmAlgorithm

    for cls in algorithm_classes():
        assert issubclass(cls, RitmAlgorithm) and cls.NAME and cls.DISPLAY_NAME and cls.GROUP_ID and cls.HELP
        for method in ("name", "displayName", "group", "groupId", "shortHelpString", "createInstance"):
            assert method not in vars(cls), f"{cls.__name__} repeats {method}"
        assert "ritm_qgis.commands" not in inspect.getsource(inspect.getmodule(cls))


# ----------------------------------------------------------------------------- issue 15: outputs

@pytest.mark.parametrize("output", ["TEMPORARY_OUTPUT", "b.geojson", "b.fgb"])
def test_vector_outputs_take_temporary_and_other_ogr_formats(provider, tmp_path, output):
    _, mask = scene_arrays()
    mask_tif = write_raster(tmp_path / "mask.tif", mask.astype(np.uint8) * 255)
    dest = output if output == "TEMPORARY_OUTPUT" else str(tmp_path / output)
    res = run("vectorize_mask", {"INPUT": mask_tif, "OUTPUT": dest})
    got = gpd.read_file(res["OUTPUT"])
    assert len(got) == len(BUILDINGS) and got.crs.to_epsg() == 32633
    assert not [f for f in os.listdir(os.path.dirname(res["OUTPUT"])) if ".incomplete" in f]
