"""Issue 24, items 4, 5, 7 and 8: outputs never mixed, never written over an input, every bad value one
sentence, and words that say what happened.

Everything runs for real: GeoTIFFs and GeoPackages written here, the algorithms through processing.run in
headless QGIS, the CLI in a subprocess (its exit code and stderr are what a user sees).
"""

import errno
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import geopandas as gpd
import numpy as np
import pytest
import shapely

from data_builders import BUILDINGS, footprints, point_layer, provider, scene, transform  # noqa: F401

qgis_core = pytest.importorskip("qgis.core", reason="PyQGIS (Debian's python3-qgis) is not installed")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=ROOT)


def run(alg, params, feedback=None):
    import processing

    return processing.run(f"ritm_qgis:{alg}", params, feedback=feedback)


def cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "ritm_qgis", *map(str, args)], capture_output=True, text=True,
                          env=ENV, timeout=timeout)


def start(*args):
    return subprocess.Popen([sys.executable, "-m", "ritm_qgis", *map(str, args)], env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def one_sentence(text: str) -> bool:
    lines = [line for line in text.strip().splitlines() if line.strip() and "Warning 1:" not in line]
    return len(lines) == 1 and "Traceback" not in text


def centre_click(b, sign=1):
    r, c, h, w = b
    x, y = transform() * (c + w // 2 + 0.5, r + h // 2 + 0.5)
    return (x, y, {"sign": sign, "obj": 1, "ord": 1})


def folder_bytes(folder) -> dict:
    return {os.path.relpath(os.path.join(d, f), folder): open(os.path.join(d, f), "rb").read()
            for d, _, files in os.walk(folder) for f in files}


# ----------------------------------------------------------------------------- 4. mixed outputs

def evaluate_args(dataset, out, clicks):
    return ("evaluate", "--model", "grabcut", "--dataset", dataset, "--max-clicks", clicks, "--batch-size", "1",
            "--no-figures", "--out", out)


def assert_one_consistent_set(out):
    report = json.loads((out / "report.json").read_text())
    ious = np.load(out / "grabcut" / "ious.npy")
    header = (out / "grabcut" / "samples.csv").read_text().splitlines()[0].split(",")
    assert ious.shape[1] == report["max_clicks"] == len([h for h in header if h.startswith("iou_")])
    assert not [f for f in os.listdir(out / "grabcut") if ".incomplete" in f or "staged" in f]


def test_a_second_evaluate_on_the_same_out_is_refused_and_writes_nothing(tmp_path):
    raster, gpkg, _ = scene(str(tmp_path))
    dataset = f"raster:{raster}:{gpkg}:buildings"
    out = tmp_path / "ev"
    first = start(*evaluate_args(dataset, out, "20"))
    partial = out / "grabcut" / "ious.incomplete.npy"
    deadline = time.time() + 300
    while not partial.exists() and time.time() < deadline and first.poll() is None:
        time.sleep(0.05)
    assert first.poll() is None, "the first run ended before the second could start"
    first.send_signal(signal.SIGSTOP)  # held mid-run, its partial results written, while the second starts
    try:
        before = folder_bytes(out)
        second = cli(*evaluate_args(dataset, out, "2"))
        assert folder_bytes(out) == before
    finally:
        first.send_signal(signal.SIGCONT)
    assert second.returncode == 1 and one_sentence(second.stderr), second.stderr[-2000:]
    assert "another" in second.stderr and "--out" in second.stderr
    _, err = first.communicate(timeout=600)
    assert first.returncode == 0, err[-2000:]
    assert json.loads((out / "report.json").read_text())["max_clicks"] == 20
    assert_one_consistent_set(out)


def test_concurrent_evaluate_runs_leave_one_runs_complete_set(tmp_path):
    raster, gpkg, _ = scene(str(tmp_path))
    dataset = f"raster:{raster}:{gpkg}:buildings"
    out = tmp_path / "ev"
    for round_ in range(3):
        procs = [start(*evaluate_args(dataset, out, clicks)) for clicks in ("2", "3")]
        results = [(p.wait(timeout=600), p.stderr.read()) for p in procs]
        for code, err in results:
            assert code == 0 or (code == 1 and one_sentence(err) and "another" in err), (round_, err[-2000:])
        assert any(code == 0 for code, _ in results)
        assert_one_consistent_set(out)


def test_stale_outputs_of_an_earlier_run_are_removed_but_user_files_kept(tmp_path):
    raster, gpkg, _ = scene(str(tmp_path))
    dataset = f"raster:{raster}:{gpkg}:buildings"
    out = tmp_path / "ev"
    args = ("evaluate", "--model", "grabcut", "--dataset", dataset, "--max-clicks", "2", "--out", out)
    assert cli(*args).returncode == 0
    figures = list((out / "grabcut").glob("*.png"))
    assert figures
    (out / "grabcut" / "my_notes.png").write_bytes(b"the user's own file")
    done = cli(*args, "--no-figures")
    assert done.returncode == 0, done.stderr[-2000:]
    assert not [f for f in figures if f.exists()]  # the figures of the first run are gone
    assert (out / "grabcut" / "my_notes.png").read_bytes() == b"the user's own file"
    assert (out / "grabcut" / "ious.npy").exists() and (out / "report.json").exists()


def test_the_commit_removes_only_files_its_previous_run_wrote(tmp_path):
    from ritm_qgis.core.atomic import OutputSet

    def one_run(names):
        with OutputSet() as staging:
            staging.lock(str(tmp_path))
            for name in names:
                with open(staging.staged(str(tmp_path / name)), "w") as f:
                    f.write(name)

    (tmp_path / "user.txt").write_text("mine")
    one_run(["a.png", "sub/b.png", "c.png"])
    later = time.time() + 10
    os.utime(tmp_path / "c.png", (later, later))  # rewritten by the user since
    one_run(["d.png"])
    assert sorted(p.name for p in tmp_path.rglob("*") if not p.name.startswith(".")) == ["c.png", "d.png", "user.txt"]


def test_a_demo_that_fails_on_a_users_layer_has_written_nothing(tmp_path):
    raster, _, mask = scene(str(tmp_path), height=200, width=200, buildings=[(40, 50, 60, 80)])
    from data_builders import write_raster

    target = write_raster(tmp_path / "target.tif", mask.astype(np.uint8) * 255)
    out = tmp_path / "demo"
    args = ("demo", "--image", raster, "--target", target, "--max-clicks", "2", "--out", out)
    assert cli(*args).returncode == 0
    users = out / "grabcut" / "footprints.gpkg"
    users.unlink()
    footprints(BUILDINGS[:1]).to_file(users, layer="footprints")  # the user's own layer, same name
    before = folder_bytes(out)
    done = cli(*args[:-4], "--max-clicks", "3", "--target-iou", "0.6", "--out", out)  # other figures
    assert done.returncode == 1 and one_sentence(done.stderr) and "footprints" in done.stderr, done.stderr
    assert folder_bytes(out) == before  # no figure replaced before the refusal


def test_commit_refuses_a_staged_file_that_vanished(tmp_path):
    from ritm_qgis.core.atomic import OutputSet, incomplete_path
    from ritm_qgis.core.errors import RitmError

    finals = [tmp_path / "a.csv", tmp_path / "b.csv"]
    for f in finals:
        f.write_text("old")
    staging = OutputSet()
    for f in finals:
        tmp = staging.staged(str(f))
        assert tmp != incomplete_path(str(f))  # a staged final never shares the name of a partial file
        with open(tmp, "w") as fh:
            fh.write("new")
    os.remove(staging.staged(str(finals[1])))  # another run (or program) removed it
    with pytest.raises(RitmError, match="vanished"):
        staging.commit()
    assert [f.read_text() for f in finals] == ["old", "old"]


def test_a_killed_runs_lock_does_not_block_the_next_run(tmp_path):
    from ritm_qgis.core.atomic import OutputSet
    from ritm_qgis.core.errors import RitmError

    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from ritm_qgis.core.atomic import OutputSet\n"
        f"s = OutputSet(); s.lock({str(tmp_path)!r}); print('held', flush=True); time.sleep(600)")],
        env=ENV, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(RitmError, match="another ritm_qgis run"):
        OutputSet().lock(str(tmp_path))
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=60)
    staging = OutputSet()
    staging.lock(str(tmp_path))  # the dead process's lock went with it
    staging.discard()


# ----------------------------------------------------------------------------- 5. output equal to input

def test_predict_never_writes_over_its_input_image(tmp_path):
    raster, _, _ = scene(str(tmp_path), height=200, width=200)
    before = open(raster, "rb").read()
    out = cli("predict", "--checkpoint", "grabcut", "--image", raster, "--click", "60,60,+", "--out-mask", raster)
    assert out.returncode == 1 and one_sentence(out.stderr) and "--out-mask" in out.stderr, out.stderr
    link = tmp_path / "link.tif"
    os.symlink(raster, link)  # another spelling of the same file
    out = cli("predict", "--checkpoint", "grabcut", "--image", link, "--click", "60,60,+", "--out-mask", raster)
    assert out.returncode == 1 and one_sentence(out.stderr), out.stderr
    assert open(raster, "rb").read() == before


def test_segment_from_points_never_writes_over_the_click_layer(provider, tmp_path):
    raster, _, _ = scene(str(tmp_path))
    clicks = tmp_path / "clicks.gpkg"
    x, y, _ = centre_click(BUILDINGS[0])
    gpd.GeoDataFrame({"sign": [1]}, geometry=[shapely.Point(x, y)], crs="EPSG:32633").to_file(clicks, layer="clicks")
    before = clicks.read_bytes()
    layer = f"{clicks}|layername=clicks"  # as QGIS gives a GeoPackage layer's source (an ogr layer object
    # kept alive by an exception's traceback past QGIS's exit would crash the interpreter at its end)
    for output in (f"{clicks}|layername=clicks", f"ogr:dbname='{clicks}' table=\"clicks\" (geom)"):
        with pytest.raises(qgis_core.QgsProcessingException) as err:
            run("segment_from_points", {"INPUT": raster, "POINTS": layer, "SIGN_FIELD": "sign", "MODEL": "grabcut",
                                        "OUTPUT": output})
        assert "POINTS" in str(err.value) and "OUTPUT" in str(err.value), str(err.value)
    assert clicks.read_bytes() == before
    assert list(gpd.read_file(clicks, layer="clicks").columns) == ["sign", "geometry"]
    # another layer of the same GeoPackage is fine
    run("segment_from_points", {"INPUT": raster, "POINTS": layer, "SIGN_FIELD": "sign", "MODEL": "grabcut",
                                "OUTPUT": f"{clicks}|layername=buildings"})
    assert len(gpd.read_file(clicks, layer="clicks")) == 1 and len(gpd.read_file(clicks, layer="buildings")) == 1


# ----------------------------------------------------------------------------- 7. one sentence, never a traceback

@pytest.mark.parametrize("click", ["nan,100,+", "inf,100,+", "100,-inf,-", "-5,100,+"])
def test_predict_bad_clicks_are_one_sentence(tmp_path, click):
    raster, _, _ = scene(str(tmp_path), height=200, width=200)
    out = cli("predict", "--checkpoint", "grabcut", "--image", raster, "--click", click,
              "--out-mask", tmp_path / "m.png")
    assert out.returncode == 1 and one_sentence(out.stderr) and "--click" in out.stderr, out.stderr
    if click.startswith("-5"):
        assert "outside the image" in out.stderr
    assert not (tmp_path / "m.png").exists()


def test_predict_checks_the_mask_name_before_any_work(tmp_path):
    raster, _, _ = scene(str(tmp_path), height=200, width=200)
    # a checkpoint that cannot be loaded: the bad --out-mask must be found first
    out = cli("predict", "--checkpoint", tmp_path / "missing.pth", "--image", raster, "--click", "60,60,+",
              "--out-mask", tmp_path / "mask")
    assert out.returncode == 1 and one_sentence(out.stderr) and "--out-mask" in out.stderr, out.stderr
    assert not [f for f in os.listdir(tmp_path) if f.startswith("mask")]


@pytest.mark.parametrize("flag,value", [("--zoom-in-size", "20000"), ("--max-clicks", "1000000000"),
                                        ("--batch-size", "100000")])
def test_evaluate_bounds_every_number_before_any_work(tmp_path, flag, value):
    raster, gpkg, _ = scene(str(tmp_path))
    args = {"--max-clicks": "2", "--zoom-in-size": "400", "--batch-size": "1", flag: value}
    out = cli("evaluate", "--model", "grabcut", "--dataset", f"raster:{raster}:{gpkg}:buildings",
              *[v for kv in args.items() for v in kv], "--out", tmp_path / "ev", timeout=120)
    assert out.returncode == 1 and one_sentence(out.stderr) and flag in out.stderr, out.stderr[-2000:]
    assert not (tmp_path / "ev").exists()


def test_evaluate_noc_bounds_the_tile_size(provider, tmp_path):
    raster, gpkg, _ = scene(str(tmp_path))
    with pytest.raises(qgis_core.QgsProcessingException) as err:
        run("evaluate_noc", {"INPUT": raster, "REFERENCE": gpkg, "MODEL": "grabcut", "TILE_SIZE": 100000,
                             "MAX_CLICKS": 1, "OUTPUT_TABLE": str(tmp_path / "t.csv"),
                             "OUTPUT_HTML": str(tmp_path / "r.html")})
    assert "TILE_SIZE" in str(err.value) and "Traceback" not in str(err.value)
    assert "at most" in str(err.value)


def test_layers_without_a_crs_are_one_sentence_in_processing(provider, tmp_path):
    import warnings

    raster, _, _ = scene(str(tmp_path))
    ref, clicks = tmp_path / "ref.gpkg", tmp_path / "clicks.gpkg"
    x, y, _ = centre_click(BUILDINGS[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyogrio: "'crs' was not provided"
        footprints().set_crs(None, allow_override=True).to_file(ref, layer="footprints")
        gpd.GeoDataFrame({"sign": [1]}, geometry=[shapely.Point(x, y)]).to_file(clicks, layer="clicks")
    with pytest.raises(qgis_core.QgsProcessingException) as err:
        run("evaluate_noc", {"INPUT": raster, "REFERENCE": str(ref), "MODEL": "grabcut", "MODE": 1, "MAX_CLICKS": 1,
                             "OUTPUT_TABLE": str(tmp_path / "t.csv"), "OUTPUT_HTML": str(tmp_path / "r.html")})
    assert "no CRS" in str(err.value) and "Traceback" not in str(err.value), str(err.value)[-2000:]
    with pytest.raises(qgis_core.QgsProcessingException) as err:
        run("segment_from_points", {"INPUT": raster, "POINTS": str(clicks),
                                    "SIGN_FIELD": "sign", "MODEL": "grabcut", "OUTPUT": str(tmp_path / "s.gpkg")})
    assert "no CRS" in str(err.value) and "Traceback" not in str(err.value), str(err.value)[-2000:]


def test_noc_report_on_an_array_of_strings_is_one_sentence(tmp_path):
    np.save(tmp_path / "words.npy", np.array([["a", "b"], ["c", "d"]]))
    out = cli("noc-report", "--ious", tmp_path / "words.npy")
    assert out.returncode == 1 and one_sentence(out.stderr), out.stderr[-2000:]


def test_a_pipe_given_as_footprints_is_refused_not_waited_on(tmp_path):
    raster, _, _ = scene(str(tmp_path))
    fifo = tmp_path / "footprints.gpkg"
    os.mkfifo(fifo)
    out = cli("evaluate", "--model", "grabcut", "--dataset", f"raster:{raster}:{fifo}:buildings", "--max-clicks", "2",
              "--out", tmp_path / "ev", timeout=120)
    assert out.returncode == 1 and one_sentence(out.stderr) and "not a regular file" in out.stderr, out.stderr


# ----------------------------------------------------------------------------- 8. words that say what happened

def test_file_errors_are_named_for_what_they_are(tmp_path):
    from ritm_qgis.core.errors import file_error_message

    try:
        with open("/dev/full", "w") as f:
            f.write("x" * 100_000)
            f.flush()
    except OSError as exc:
        full = file_error_message(exc)
    assert "disk is full" in full and "permission" not in full
    assert "read-only" in file_error_message(OSError(errno.EROFS, "Read-only file system", "/mnt/x.gpkg"))
    denied = file_error_message(PermissionError(errno.EACCES, "Permission denied", "/root/x.csv"))
    assert "permission denied" in denied.lower()
    locked = file_error_message(sqlite3.OperationalError("database is locked"))
    assert locked and "locked by another program" in locked and "corrupt" not in locked
    import pyogrio.errors

    gdal_full = file_error_message(pyogrio.errors.DataSourceError("sqlite3_exec() failed: database or disk is full"))
    assert "disk is full" in gdal_full and "corrupt" not in gdal_full
    gdal_read = file_error_message(pyogrio.errors.DataSourceError("TIFFReadEncodedStrip() failed: read error"))
    assert "corrupt" in gdal_read


def test_a_layer_name_with_a_colon_is_read(tmp_path):
    raster, _, _ = scene(str(tmp_path))
    gpkg = tmp_path / "fp.gpkg"
    footprints().to_file(gpkg, layer="a:b")
    footprints(BUILDINGS[:1]).to_file(gpkg, layer="other")
    for spec in (f"raster:{raster}:{gpkg}|layername=a:b:buildings", f"raster:{raster}:{gpkg}|layername=a:b"):
        out = cli("evaluate", "--model", "grabcut", "--dataset", spec, "--max-clicks", "1", "--limit", "2",
                  "--no-figures", "--out", tmp_path / "ev")
        assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert report["models"]["grabcut"]["n_samples"] + report["models"]["grabcut"]["n_empty_dropped"] == 2


def bow_tie_layer(path):
    gdf = footprints()
    x0, y0, x1, y1 = gdf.geometry.iloc[2].bounds
    gdf.loc[2, "geometry"] = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])  # self-intersecting
    assert not gdf.geometry.iloc[2].is_valid
    gdf.to_file(path, layer="footprints")
    return path


def test_a_self_intersecting_footprint_is_repaired_and_said(tmp_path):
    raster, _, _ = scene(str(tmp_path))
    gpkg = bow_tie_layer(tmp_path / "fp.gpkg")
    out = cli("evaluate", "--model", "grabcut", "--dataset", f"raster:{raster}:{gpkg}:buildings",
              "--max-clicks", "1", "--no-figures", "--out", tmp_path / "ev")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "repaired" in out.stderr and "feature id(s) 3" in out.stderr, out.stderr
    assert json.loads((tmp_path / "ev" / "report.json").read_text())["repaired_footprints"] == [3]


def test_evaluate_noc_warns_about_repaired_footprints(provider, tmp_path):
    from qgis.core import QgsProcessingFeedback

    raster, _, _ = scene(str(tmp_path))
    gpkg = bow_tie_layer(tmp_path / "fp.gpkg")
    warnings = []

    class Recording(QgsProcessingFeedback):
        def pushWarning(self, text):  # noqa: N802
            warnings.append(text)

    run("evaluate_noc", {"INPUT": raster, "REFERENCE": str(gpkg), "MODEL": "grabcut", "MODE": 1, "MAX_CLICKS": 1,
                         "OUTPUT_TABLE": str(tmp_path / "t.csv"), "OUTPUT_HTML": str(tmp_path / "r.html")},
        feedback=Recording())
    assert [w for w in warnings if "repaired" in w and "3" in w], warnings
