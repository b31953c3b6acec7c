"""Issue 24, items 1, 2, 3 and 9: GeoPackages written in place, with other programs holding the file.

Everything is real: GeoPackages written by GDAL, a reader in WAL mode through the system SQLite
(as QGIS in edit mode keeps the file), the map tool's writer in a QGIS of its own (a subprocess:
QGIS objects belong to the thread that made them), vectorize_mask through processing.run.
"""

import os
import sqlite3
import subprocess
import sys
import time

import geopandas as gpd
import numpy as np
import pytest
import shapely

from data_builders import BUILDINGS, provider, scene_arrays, write_raster  # noqa: F401

qgis_core = pytest.importorskip("qgis.core", reason="PyQGIS (Debian's python3-qgis) is not installed")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(alg, params, feedback=None):
    import processing

    return processing.run(f"ritm_qgis:{alg}", params, feedback=feedback)


def frame(names, crs="EPSG:32633"):
    geoms = [shapely.box(i, 0, i + 1, 1) for i in range(len(names))]
    return gpd.GeoDataFrame({"name": names}, geometry=geoms, crs=crs)


def mask_raster(folder) -> str:
    _, mask = scene_arrays()
    return write_raster(os.path.join(folder, "mask.tif"), mask.astype(np.uint8) * 255)


def user_file(path):
    """A GeoPackage of the user's: layers 'user' (2 rows) and 'my' (1 row), not written by ritm_qgis."""
    frame(["a", "b"]).to_file(path, layer="user")
    frame(["m"]).to_file(path, layer="my")
    return str(path)


# A program holding the file in WAL mode, as QGIS does for a layer in edit mode: a process of its own
# (SQLite's locks are per process), with 50 committed rows not yet checkpointed into the file.
_READER = r"""
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None)
assert con.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
con.execute("PRAGMA wal_autocheckpoint=0")
con.execute("CREATE TABLE reader_notes (n INTEGER)")
con.executemany("INSERT INTO reader_notes VALUES (?)", [(i,) for i in range(50)])
print("ready", flush=True)
for line in sys.stdin:
    if line.startswith("insert"):
        con.execute("INSERT INTO reader_notes VALUES (?)", (int(line.split()[1]),))
    elif line.startswith("lock"):
        con.execute("BEGIN IMMEDIATE")
        con.execute("INSERT INTO reader_notes VALUES (-1)")
    elif line.startswith("commit"):
        con.execute("COMMIT")
    print(con.execute("SELECT count(*) FROM reader_notes").fetchone()[0], flush=True)
"""


class WalReader:
    def __init__(self, path):
        self.proc = subprocess.Popen([sys.executable, "-c", _READER, str(path)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"
        assert os.path.getsize(str(path) + "-wal") > 0

    def say(self, command: str) -> int:
        """Send ``command`` (insert N, lock, commit, count); the number of rows the reader then sees."""
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


def check(path, expected: dict):
    """A fresh connection: integrity ok and each table of ``expected`` with that many rows."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        for table, rows in expected.items():
            assert con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] == rows, table
        return [r[0] for r in con.execute("SELECT table_name FROM gpkg_contents")]
    finally:
        con.close()


def incomplete_files(folder):
    return [f for f in os.listdir(folder) if "incomplete" in f]


# ----------------------------------------------------------------------------- 1. a WAL reader holds the file

def test_vectorize_into_a_file_a_wal_reader_holds_keeps_every_layer(provider, tmp_path):
    path = user_file(tmp_path / "user.gpkg")
    reader = WalReader(path)
    try:
        run("vectorize_mask", {"INPUT": mask_raster(str(tmp_path)), "OUTPUT": path})
        # the reader still reads its own rows, and a newcomer sees everything
        assert reader.say("count") == 50
        layers = check(path, {"user": 2, "my": 1, "buildings": len(BUILDINGS), "reader_notes": 50})
        assert {"user", "my", "buildings"} <= set(layers)
    finally:
        reader.close()
    assert gpd.read_file(path, layer="user").name.tolist() == ["a", "b"]
    assert len(gpd.read_file(path, layer="buildings")) == len(BUILDINGS)
    assert incomplete_files(tmp_path) == []


def test_qgis_editing_a_layer_in_this_process_saves_its_edits_after_vectorize_wrote_another(provider, tmp_path):
    # the desktop case: the toolbox runs in the QGIS that has a layer of the file in edit mode
    from qgis.core import QgsFeature, QgsGeometry, QgsVectorLayer

    path = user_file(tmp_path / "user.gpkg")
    layer = QgsVectorLayer(f"{path}|layername=user", "user", "ogr")
    assert layer.isValid() and layer.startEditing()
    feature = QgsFeature(layer.fields())
    feature.setGeometry(QgsGeometry.fromWkt("POLYGON((5 0,6 0,6 1,5 1,5 0))"))
    feature["name"] = "edited"
    assert layer.addFeature(feature)
    run("vectorize_mask", {"INPUT": mask_raster(str(tmp_path)), "OUTPUT": path})
    assert layer.commitChanges(), layer.commitErrors()
    del layer
    check(path, {"user": 3, "my": 1, "buildings": len(BUILDINGS)})
    assert gpd.read_file(path, layer="user").name.tolist() == ["a", "b", "edited"]


# ----------------------------------------------------------------------------- 2. all at once

def test_map_tool_writer_vectorize_and_a_wal_reader_at_once_lose_nothing(provider, tmp_path):
    path = user_file(tmp_path / "shared.gpkg")
    reader = WalReader(path)
    stop = tmp_path / "stop"
    writer = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "qgis_scripts", "footprint_writer.py"),
                               path, str(stop)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=ROOT, QT_QPA_PLATFORM="offscreen"))
    try:
        first = writer.stdout.readline()
        assert first.startswith(("ok", "fail")), writer.stderr.read()
        mask = mask_raster(str(tmp_path))
        for i in range(5):
            run("vectorize_mask", {"INPUT": mask, "OUTPUT": f"{path}|layername=buildings"})
            assert reader.say(f"insert {100 + i}") == 51 + i
            time.sleep(0.2)  # the writer commits meanwhile
        stop.touch()
        out, err = writer.communicate(timeout=120)
    finally:
        stop.touch()
        if writer.poll() is None:
            writer.kill()
        reader.close()
    lines = [first.strip()] + out.splitlines()
    committed = [line for line in lines if line.startswith("ok ")]
    failed = [line for line in lines if line.startswith("fail ")]
    assert writer.returncode == 0, err
    assert len(committed) > 5 and not failed, failed[:3]
    check(path, {"footprints": len(committed), "user": 2, "my": 1, "buildings": len(BUILDINGS), "reader_notes": 55})
    labels = set(gpd.read_file(path, layer="footprints")["label"])
    assert labels == {f"b{line.split()[1]}" for line in committed}


# ----------------------------------------------------------------------------- 3. QGIS's own destination string

@pytest.mark.parametrize("folder", ["plain", "with space"])
def test_save_to_geopackage_destination_names_the_whole_table(provider, tmp_path, folder):
    (tmp_path / folder).mkdir()
    path = user_file(tmp_path / folder / "user.gpkg")
    destination = f"ogr:dbname='{path}' table=\"my buildings\" (geom)"
    run("vectorize_mask", {"INPUT": mask_raster(str(tmp_path)), "OUTPUT": destination})
    check(path, {"my": 1, "user": 2, "my buildings": len(BUILDINGS)})
    assert gpd.read_file(path, layer="my").name.tolist() == ["m"]


def test_engine_reads_quoted_ogr_destinations(tmp_path):
    from ritm_qgis.engine.geo.output_paths import vector_path

    path = str(tmp_path / "a b" / "it's.gpkg")
    quoted = path.replace("'", "\\'")
    assert vector_path(f"ogr:dbname='{quoted}' table=\"my \"\"big\"\" buildings\" (geom)") == \
        (path, 'my "big" buildings')


# ----------------------------------------------------------------------------- 9. append into the map tool's layer

def test_vectorize_appends_into_the_map_tools_footprints_layer(provider, tmp_path):
    from qgis.core import QgsCoordinateReferenceSystem, QgsVectorLayer

    from ritm_qgis.engine.interactive.outline_record import OutlineRecord
    from ritm_qgis.gui.output import append_records, open_output_layer

    path = str(tmp_path / "footprints.gpkg")
    crs = QgsCoordinateReferenceSystem("EPSG:32633")
    layer = open_output_layer(path, crs, add_to_project=False)
    box = OutlineRecord(shapely.box(500000, 5000000, 500010, 5000010), area_m2=100.0, perimeter_m=40.0, pixels=400,
                        clicks=((500005, 5000005, True),) * 2, model="grabcut", stretch="", source="")
    append_records(layer, [box], crs)
    fields = [f.name() for f in layer.fields()]
    run("vectorize_mask", {"INPUT": mask_raster(str(tmp_path)), "APPEND": True,
                           "OUTPUT": f"{path}|layername=footprints"})
    check(path, {"footprints": 1 + len(BUILDINGS)})
    # the map tool's layer keeps its columns and keeps taking buildings
    append_records(layer, [box], crs)
    fresh = QgsVectorLayer(f"{path}|layername=footprints", "fp", "ogr")
    assert fresh.isValid() and [f.name() for f in fresh.fields()] == fields
    assert fresh.featureCount() == 2 + len(BUILDINGS)
    got = gpd.read_file(path, layer="footprints")
    expected = sorted([100.0, 100.0] + [h * w * 0.25 for _, _, h, w in BUILDINGS])
    assert sorted(got["area_m2"]) == pytest.approx(expected)
    assert got.geometry.notna().all() and (got.area > 0).all()
    minx, miny, maxx, maxy = got.total_bounds  # the extent QGIS zooms to covers the appended buildings
    extent = fresh.extent()
    assert extent.xMinimum() <= minx and extent.yMinimum() <= miny
    assert extent.xMaximum() >= maxx and extent.yMaximum() >= maxy


# ----------------------------------------------------------------------------- nothing half-written

def test_a_file_another_writer_has_locked_gets_a_sentence_and_nothing_written(tmp_path):
    from ritm_qgis.core.errors import RitmError
    from ritm_qgis.engine.geo import gpkg_in_place
    from ritm_qgis.engine.geo.vector_io import write_gpkg

    path = user_file(tmp_path / "user.gpkg")
    other = WalReader(path)
    other.say("lock")  # holds the write lock, as another program saving its edits
    start = time.monotonic()
    try:
        with pytest.raises(RitmError, match="is locked by another program.*nothing was written"):
            write_gpkg(frame(list("xyz")), path, layer="buildings")
        assert time.monotonic() - start >= gpkg_in_place.BUSY_TIMEOUT_S * 0.9
    finally:
        assert other.say("commit") == 51
        other.close()
    assert "buildings" not in check(path, {"user": 2, "my": 1, "reader_notes": 51})
    assert incomplete_files(tmp_path) == []


@pytest.mark.parametrize("how", ["cancel", "failure"])
def test_cancel_or_failure_inside_the_transaction_leaves_the_file_as_it_was(tmp_path, monkeypatch, how):
    from ritm_qgis.core.errors import RitmError
    from ritm_qgis.engine.geo import gpkg_in_place
    from ritm_qgis.engine.geo.vector_io import write_gpkg

    path = user_file(tmp_path / "user.gpkg")
    write_gpkg(frame(["old"]), path, layer="buildings")
    before = open(path, "rb").read()
    monkeypatch.setattr(gpkg_in_place, "CHUNK_ROWS", 2)
    calls = []

    def cancel():  # 3 chunks of 2 rows written aside, then the move into the file: stop after its first chunk
        calls.append(1)
        if len(calls) == 5:
            if how == "failure":
                raise OSError(28, "No space left on device")
            return True
        return False

    with pytest.raises(RitmError if how == "cancel" else OSError):
        write_gpkg(frame(list("abcdef")), path, layer="buildings", chunk_size=2, cancel=cancel)
    assert len(calls) == 5
    assert open(path, "rb").read() == before
    check(path, {"user": 2, "my": 1, "buildings": 1})
    con = sqlite3.connect(path)
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    con.close()
    assert {"user", "my", "buildings"} <= tables and not [t for t in tables if "incomplete" in t or "tmp" in t]
    assert incomplete_files(tmp_path) == []


def test_a_file_another_program_creates_meanwhile_is_written_into_not_replaced(tmp_path):
    from ritm_qgis.engine.geo.vector_io import write_gpkg

    path = tmp_path / "new.gpkg"
    calls = []

    def cancel():  # before the last chunk, another program (the map tool) creates the file with its layer
        calls.append(1)
        if len(calls) == 3:
            frame(["theirs"]).to_file(path, layer="footprints")
        return False

    write_gpkg(frame(list("abcde")), path, layer="buildings", chunk_size=2, cancel=cancel)
    check(path, {"footprints": 1, "buildings": 5})
    assert incomplete_files(tmp_path) == []


def test_a_cancelled_tile_run_leaves_the_existing_index_layer_as_it_was(provider, tmp_path):
    # the index goes into an existing GeoPackage in place, so a cancelled (discarded) run must not write it
    from data_builders import cancelling_feedback, scene

    raster, _, _ = scene(str(tmp_path))
    index = str(tmp_path / "index.gpkg")
    params = {"INPUT": raster, "TILE_SIZE": 128, "OUTPUT_FOLDER": str(tmp_path / "tiles"), "OUTPUT_INDEX": index}
    first = run("tile_raster", params)["TILE_COUNT"]
    fb = cancelling_feedback(30)
    with pytest.raises(qgis_core.QgsProcessingException, match="cancelled"):
        run("tile_raster", dict(params, TILE_SIZE=64), feedback=fb)
    check(index, {"tiles": first})


def test_a_new_geopackage_opens_without_a_warning_in_qgis_3_22s_gdal(tmp_path):
    import shutil

    from ritm_qgis.engine.geo.vector_io import write_gpkg

    if shutil.which("ogrinfo") is None:
        pytest.skip("Debian's gdal-bin (ogrinfo, the GDAL QGIS uses) is not installed")
    path = write_gpkg(frame(["a"]), tmp_path / "new.gpkg", layer="buildings")
    out = subprocess.run(["ogrinfo", "-q", str(path)], capture_output=True, text=True)
    assert out.returncode == 0 and "Warning" not in out.stdout + out.stderr, out.stdout + out.stderr

