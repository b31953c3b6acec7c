"""GeoPackage output: atomic write, layer replacement, append in one transaction."""

import os
import sqlite3

import geopandas as gpd
import pytest
import shapely

from ritm_qgis.core.errors import RitmError
from ritm_qgis.engine.geo.vector_io import list_layers, write_gpkg


def frame(names, crs="EPSG:32633"):
    geoms = [shapely.box(i, 0, i + 1, 1) for i in range(len(names))]
    return gpd.GeoDataFrame({"name": names}, geometry=geoms, crs=crs)


def leftovers(folder):
    return [f for f in os.listdir(folder) if ".part" in f]


def test_write_then_replace_layer_keeps_other_layers(tmp_path):
    p = tmp_path / "out.gpkg"
    write_gpkg(frame(["a", "b"]), p, layer="buildings")
    write_gpkg(frame(["x"]), p, layer="other")
    write_gpkg(frame(["c", "d", "e"]), p, layer="buildings")
    assert sorted(list_layers(p)) == ["buildings", "other"]
    assert gpd.read_file(p, layer="buildings").name.tolist() == ["c", "d", "e"]
    assert gpd.read_file(p, layer="other").name.tolist() == ["x"]
    assert gpd.read_file(p, layer="buildings").crs.to_epsg() == 32633
    assert leftovers(tmp_path) == []


def test_exception_mid_write_leaves_old_file_intact(tmp_path):
    p = tmp_path / "out.gpkg"
    write_gpkg(frame(["a", "b"]), p)
    before = p.read_bytes()
    calls = {"n": 0}

    def cancel():
        calls["n"] += 1
        if calls["n"] == 2:  # after the first chunk has been written to the temp file
            raise RuntimeError("disk on fire")
        return False

    with pytest.raises(RuntimeError, match="disk on fire"):
        write_gpkg(frame(list("cdefg")), p, chunk_size=2, cancel=cancel)
    assert calls["n"] == 2
    assert p.read_bytes() == before
    assert gpd.read_file(p).name.tolist() == ["a", "b"]
    assert leftovers(tmp_path) == []


def test_cancel_of_a_new_file_leaves_no_file(tmp_path):
    p = tmp_path / "new.gpkg"
    state = {"n": 0}

    def cancel():
        state["n"] += 1
        return state["n"] > 1

    with pytest.raises(RitmError, match="cancelled"):
        write_gpkg(frame(list("abcdef")), p, chunk_size=2, cancel=cancel)
    assert not p.exists()
    assert os.listdir(tmp_path) == []


def test_append_is_one_transaction(tmp_path):
    p = tmp_path / "out.gpkg"
    write_gpkg(frame(["a", "b"]), p, layer="buildings")
    write_gpkg(frame(["c"]), p, layer="buildings", mode="a")
    assert gpd.read_file(p, layer="buildings").name.tolist() == ["a", "b", "c"]
    # a real failure in the middle of the insert: the database refuses the 3rd new row
    with sqlite3.connect(p) as con:
        con.execute("CREATE TRIGGER boom BEFORE INSERT ON buildings WHEN NEW.name = 'boom' "
                    "BEGIN SELECT RAISE(ABORT, 'boom'); END;")
    with pytest.raises(RitmError, match="nothing was appended"):
        write_gpkg(frame(["d", "e", "boom", "f"]), p, layer="buildings", mode="a")
    assert gpd.read_file(p, layer="buildings").name.tolist() == ["a", "b", "c"]
    # appending to a missing layer creates it
    write_gpkg(frame(["z"]), p, layer="fresh", mode="a")
    assert sorted(list_layers(p)) == ["buildings", "fresh"]


def test_refusals(tmp_path):
    with pytest.raises(RitmError, match=".gpkg"):
        write_gpkg(frame(["a"]), tmp_path / "out.shp")
    with pytest.raises(RitmError, match="does not exist"):
        write_gpkg(frame(["a"]), tmp_path / "missing" / "out.gpkg")
    with pytest.raises(RitmError, match="mode"):
        write_gpkg(frame(["a"]), tmp_path / "out.gpkg", mode="x")


def test_a_file_with_several_layers_needs_the_layer_named(tmp_path):
    from ritm_qgis.engine.geo.vector_io import read_vector

    p = tmp_path / "fp.gpkg"
    write_gpkg(frame(["a", "b"]), p, layer="buildings")
    write_gpkg(frame(["x"]), p, layer="roads")
    with pytest.raises(RitmError, match=r"holds 2 layers \(.*buildings.*roads.*\); name the one to read as "
                                        r"'.*\|layername="):
        read_vector(p)
    assert read_vector(f"{p}|layername=roads").name.tolist() == ["x"]  # QGIS's layer source syntax
    assert read_vector(p, layer="buildings").name.tolist() == ["a", "b"]
    with pytest.raises(RitmError, match=r"only '\|layername=NAME'"):
        read_vector(f"{p}|subset=name='a'")
    single = tmp_path / "one.gpkg"
    write_gpkg(frame(["s"]), single, layer="only")
    assert read_vector(single).name.tolist() == ["s"]  # one layer: nothing to name
