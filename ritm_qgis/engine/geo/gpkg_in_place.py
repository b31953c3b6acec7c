"""Put a layer into an existing GeoPackage in place: one SQLite transaction on the file itself.

The new rows are first written by GDAL (pyogrio) into a separate GeoPackage "aside" that no one else
has open; this module then moves them into the user's file through Python's ``sqlite3``, attached
to the aside file, in one ``BEGIN IMMEDIATE`` ... ``COMMIT``: replacing a layer drops the old table,
its R-tree and its metadata rows and creates the new ones in the same transaction, so readers and
other writers (QGIS in edit mode, the map tool) see the old layer or the new one, never a mix, and
a failure, a cancel or a kill leaves nothing (SQLite rolls the transaction back).

Why ``sqlite3`` and not GDAL on the user's file: pyogrio's wheel carries its own SQLite, and two
SQLite libraries in one process (QGIS's and pyogrio's) on one file break each other's POSIX locks;
Python's ``sqlite3`` uses the system SQLite, the one QGIS's GDAL uses. The file's journal mode
(WAL or not) is left as it is, and its ``-wal``/``-shm`` are SQLite's business only.
"""

from __future__ import annotations

import contextlib
import sqlite3
import struct
from typing import Callable

from ritm_qgis.core.errors import RitmError

__all__ = ["BUSY_TIMEOUT_S", "gpkg_layers", "layer_columns", "layer_crs_wkt", "layer_description", "move_layer_in",
           "append_rows_in"]

# how long a write waits for another program's write to finish before saying the file is locked
BUSY_TIMEOUT_S = 5.0
# what GDAL writes (srs_id 99999) for a layer without a CRS
_UNDEFINED_LOCAL = 'LOCAL_CS["Undefined SRS"'
# rows moved per statement; cancel() is polled between them
CHUNK_ROWS = 20_000

_METADATA = ("gpkg_contents", "gpkg_geometry_columns", "gpkg_extensions", "gpkg_ogr_contents",
             "gpkg_data_columns", "gpkg_metadata_reference")


def _q(name: str) -> str:
    """``name`` as an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def locked_message(path: str) -> str:
    return (f"'{path}' is locked by another program that is writing to it (for example QGIS saving edits); "
            "nothing was written: save or stop the edits there and run again.")


def _sql_path(path: str) -> str:
    # sqlite URIs: '%', '?' and '#' in a file name must be escaped
    return path.replace("%", "%25").replace("?", "%3f").replace("#", "%23")


@contextlib.contextmanager
def _open(path: str, readonly: bool = False):
    """A connection to the file ``path`` (never created here), waiting up to BUSY_TIMEOUT_S for locks,
    in autocommit mode (transactions are explicit), with the R-tree triggers' functions."""
    uri = f"file:{_sql_path(path)}?mode={'ro' if readonly else 'rw'}"
    try:
        con = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    except sqlite3.Error as exc:
        raise RitmError(f"Could not open the GeoPackage '{path}' ({exc}); check the path and its "
                        "permissions.") from None
    try:
        _register_geometry_functions(con)
        yield con
    finally:
        con.close()


def _is_locked(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def gpkg_layers(path: str) -> list[str]:
    """The vector layers (features and attribute tables) listed in ``gpkg_contents`` of the GeoPackage ``path``."""
    with _open(path, readonly=True) as con:
        try:
            return [r[0] for r in con.execute("SELECT table_name FROM gpkg_contents WHERE data_type IN "
                                              "('features', 'attributes')")]
        except sqlite3.Error as exc:
            if _is_locked(exc):
                raise RitmError(locked_message(path)) from None
            raise RitmError(f"'{path}' is not a readable GeoPackage ({exc}); choose another file.") from None


def _geometry_column(con, schema: str, table: str) -> tuple[str, str, int] | None:
    row = con.execute(f"SELECT column_name, geometry_type_name, srs_id FROM {schema}.gpkg_geometry_columns "
                      "WHERE lower(table_name) = lower(?)", (table,)).fetchone()
    return None if row is None else (row[0], row[1], int(row[2]))


def _table_name(con, schema: str, table: str) -> str | None:
    """``table`` as spelled in ``schema`` (SQLite names are case-insensitive), or None."""
    row = con.execute(f"SELECT name FROM {schema}.sqlite_master WHERE type = 'table' AND lower(name) = lower(?)",
                      (table,)).fetchone()
    return None if row is None else row[0]


def _columns(con, schema: str, table: str) -> list[tuple[str, bool]]:
    """(name, is the primary key) of each column of ``table``."""
    return [(r[1], bool(r[5])) for r in con.execute(f"PRAGMA {schema}.table_info({_q(table)})")]


def layer_columns(path: str, layer: str) -> list[str]:
    """The non-key columns of ``layer`` in the GeoPackage ``path`` ([] when it has no such table)."""
    with _open(path, readonly=True) as con:
        name = _table_name(con, "main", layer)
        return [] if name is None else [c for c, pk in _columns(con, "main", name) if not pk]


def layer_description(path: str, layer: str) -> str | None:
    """``gpkg_contents.description`` of ``layer`` (None when it is not listed there)."""
    with _open(path, readonly=True) as con:
        try:
            row = con.execute("SELECT description FROM gpkg_contents WHERE lower(table_name) = lower(?)",
                              (layer,)).fetchone()
        except sqlite3.Error as exc:
            raise RitmError(f"'{path}' is not a readable GeoPackage ({exc}); choose another file.") from None
    return None if row is None else row[0]


def layer_crs_wkt(path: str, layer: str) -> str | None:
    """The definition (WKT) of the CRS of ``layer``; None when it has none (srs_id 0 or -1, or unknown)."""
    with _open(path, readonly=True) as con:
        geom = _geometry_column(con, "main", layer)
        if geom is None or geom[2] in (0, -1):
            return None
        row = con.execute("SELECT definition FROM gpkg_spatial_ref_sys WHERE srs_id = ?", (geom[2],)).fetchone()
    if row is None or not row[0] or row[0].strip().lower() == "undefined" or _UNDEFINED_LOCAL in row[0]:
        return None
    return row[0]


# ----------------------------------------------------------------------------- geometry blobs

_ENVELOPE_DOUBLES = {0: 0, 1: 4, 2: 6, 3: 6, 4: 8}


def _envelope(blob):
    """(minx, maxx, miny, maxy) of a GeoPackage geometry blob, None when empty or unreadable."""
    if blob is None or len(blob) < 8 or blob[:2] != b"GP":
        return None
    flags = blob[3]
    if flags & 0x10:  # the empty-geometry flag
        return None
    n = _ENVELOPE_DOUBLES.get((flags >> 1) & 7)
    if n is None:
        return None
    order = "<" if flags & 1 else ">"
    if n:
        return struct.unpack_from(f"{order}4d", blob, 8)
    import shapely

    geom = shapely.from_wkb(bytes(blob[8:]))
    if geom is None or geom.is_empty:
        return None
    minx, miny, maxx, maxy = geom.bounds
    return minx, maxx, miny, maxy


def _with_srs(blob, srs_id):
    """``blob`` with ``srs_id`` in its header (the layer's, when the rows came from another file)."""
    if blob is None or len(blob) < 8 or blob[:2] != b"GP":
        return blob
    order = "<" if blob[3] & 1 else ">"
    return bytes(blob[:4]) + struct.pack(f"{order}i", int(srs_id)) + bytes(blob[8:])


def _register_geometry_functions(con) -> None:
    """The functions of the GeoPackage R-tree triggers (GDAL registers them on its own connections),
    so that rows inserted here keep the layer's spatial index right."""
    def part(i):
        return lambda blob: None if (env := _envelope(blob)) is None else env[i]

    con.create_function("ST_IsEmpty", 1, lambda blob: None if blob is None else int(_envelope(blob) is None),
                        deterministic=True)
    for i, name in enumerate(("ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY")):
        con.create_function(name, 1, part(i), deterministic=True)
    con.create_function("ritm_with_srs", 2, _with_srs, deterministic=True)


# ----------------------------------------------------------------------------- the transaction

@contextlib.contextmanager
def _write_transaction(path: str, aside: str):
    """A connection to ``path`` with ``aside`` attached as schema ``aside``, inside BEGIN IMMEDIATE
    (the write lock, waited for up to BUSY_TIMEOUT_S); committed when the block succeeds, else
    rolled back. A lock held by another writer is a RitmError that says so."""
    with _open(path) as con:
        con.execute("ATTACH DATABASE ? AS aside", (_sql_path(aside),))
        try:
            con.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if _is_locked(exc):
                raise RitmError(locked_message(path)) from None
            raise
        try:
            yield con
            con.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                con.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError) and _is_locked(exc):
                raise RitmError(locked_message(path)) from None
            if isinstance(exc, sqlite3.OperationalError) and "full" in str(exc).lower():
                raise RitmError(f"The disk holding '{path}' is full; nothing was written: free some space and "
                                "run again.") from None
            raise
        finally:
            with contextlib.suppress(sqlite3.Error):
                con.execute("DETACH DATABASE aside")


def _check_gpkg(con, path: str) -> None:
    if _table_name(con, "main", "gpkg_contents") is None:
        raise RitmError(f"'{path}' is not a GeoPackage (it has no gpkg_contents table); choose another file.")


def _copy_rows(con, src: str, dst: str, select: str, columns: str, key: str, cancel) -> int:
    """INSERT ``columns`` of the aside table ``src`` into ``dst`` in chunks ordered by ``key``, polling
    ``cancel()`` (a True raises ``Cancelled``, which rolls the transaction back)."""
    from ritm_qgis.core.cancel import check_cancel

    last, total = None, 0
    while True:
        check_cancel(cancel)
        where = "" if last is None else f"WHERE {_q(key)} > ?"
        args = () if last is None else (last,)
        rows = con.execute(f"SELECT max({_q(key)}), count(*) FROM (SELECT {_q(key)} FROM aside.{_q(src)} {where} "
                           f"ORDER BY {_q(key)} LIMIT {CHUNK_ROWS})", args).fetchone()
        if not rows[1]:
            return total
        upper = rows[0]
        bound = f"{_q(key)} <= ?" if last is None else f"{_q(key)} > ? AND {_q(key)} <= ?"
        con.execute(f"INSERT INTO main.{_q(dst)} ({columns}) SELECT {select} FROM aside.{_q(src)} "
                    f"WHERE {bound} ORDER BY {_q(key)}", (upper,) if last is None else (last, upper))
        last, total = upper, total + rows[1]


def _srs_in_main(con, aside_srs: int) -> int:
    """The srs_id in the user's file for the aside layer's CRS (added when missing)."""
    row = con.execute("SELECT srs_name, srs_id, organization, organization_coordsys_id, definition "
                      "FROM aside.gpkg_spatial_ref_sys WHERE srs_id = ?", (aside_srs,)).fetchone()
    if row is None:
        return aside_srs
    same = con.execute("SELECT srs_id FROM main.gpkg_spatial_ref_sys WHERE srs_id = ? AND definition = ?",
                       (aside_srs, row[4])).fetchone()
    if same:
        return aside_srs
    if row[2] and row[2].upper() != "NONE":
        by_code = con.execute("SELECT srs_id FROM main.gpkg_spatial_ref_sys WHERE upper(organization) = upper(?) "
                              "AND organization_coordsys_id = ?", (row[2], row[3])).fetchone()
        if by_code:
            return int(by_code[0])
    taken = con.execute("SELECT 1 FROM main.gpkg_spatial_ref_sys WHERE srs_id = ?", (aside_srs,)).fetchone()
    srs_id = aside_srs
    if taken:
        srs_id = con.execute("SELECT max(max(srs_id) + 1, 100000) FROM main.gpkg_spatial_ref_sys").fetchone()[0]
    main_cols = {c.lower() for c, _ in _columns(con, "main", "gpkg_spatial_ref_sys")}
    cols = [c for c, _ in _columns(con, "aside", "gpkg_spatial_ref_sys") if c.lower() in main_cols]
    select = ", ".join("?" if c == "srs_id" else _q(c) for c in cols)
    con.execute(f"INSERT INTO main.gpkg_spatial_ref_sys ({', '.join(map(_q, cols))}) SELECT {select} "
                "FROM aside.gpkg_spatial_ref_sys WHERE srs_id = ?", (srs_id, aside_srs))
    return int(srs_id)


def _drop_layer(con, table: str) -> None:
    """Drop ``table`` of the user's file with its R-tree, triggers and metadata rows."""
    geom = _geometry_column(con, "main", table)
    if geom is not None:
        rtree = _table_name(con, "main", f"rtree_{table}_{geom[0]}")
        if rtree is not None:
            con.execute(f"DROP TABLE main.{_q(rtree)}")
    con.execute(f"DROP TABLE main.{_q(table)}")
    for meta in _METADATA:
        if _table_name(con, "main", meta) is not None:
            con.execute(f"DELETE FROM main.{meta} WHERE lower(table_name) = lower(?)", (table,))


def _ensure_table(con, name: str) -> bool:
    """Create the metadata table ``name`` in the user's file like the aside file's; False when neither has it."""
    if _table_name(con, "main", name) is not None:
        return True
    row = con.execute("SELECT sql FROM aside.sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
    if row is None:
        return False
    con.execute(row[0])
    return True


def _copy_metadata_row(con, meta: str, table: str, srs_id: int | None = None) -> None:
    if not _ensure_table(con, meta):
        return
    cols = [c for c, _ in _columns(con, "aside", meta)]
    main_cols = {c.lower() for c, _ in _columns(con, "main", meta)}
    cols = [c for c in cols if c.lower() in main_cols]
    select = ", ".join("?" if (c == "srs_id" and srs_id is not None) else _q(c) for c in cols)
    args = (srs_id,) if (srs_id is not None and "srs_id" in cols) else ()
    con.execute(f"INSERT INTO main.{meta} ({', '.join(map(_q, cols))}) SELECT {select} FROM aside.{meta} "
                f"WHERE lower(table_name) = lower(?)", (*args, table))


def move_layer_in(path: str, aside: str, layer: str, *, replace: bool, cancel: Callable[[], bool] | None = None):
    """Create ``layer`` of the GeoPackage ``path`` from the same-named layer of the GeoPackage ``aside``, in one
    transaction; with ``replace`` an existing table of that name is dropped in that transaction first."""
    with _write_transaction(path, aside) as con:
        _check_gpkg(con, path)
        src = _table_name(con, "aside", layer)
        if src is None:
            raise RitmError(f"Internal: the layer '{layer}' was not written to '{aside}'.")
        existing = _table_name(con, "main", layer)
        if existing is not None:
            if not replace:
                raise RitmError(f"'{path}' already holds a table '{existing}'; nothing was written.")
            _drop_layer(con, existing)
        geom = _geometry_column(con, "aside", src)
        srs_id = _srs_in_main(con, geom[2]) if geom else None
        rtree = f"rtree_{src}_{geom[0]}" if geom else ""
        # the table and its indexes, then the rows, then the R-tree, then the triggers (which call ST_* functions)
        objects = con.execute("SELECT type, name, sql FROM aside.sqlite_master WHERE sql IS NOT NULL AND "
                              "(tbl_name = ? OR name = ?)", (src, rtree)).fetchall()
        con.execute(next(sql for kind, name, sql in objects if kind == "table" and name == src))
        for kind, _, sql in objects:
            if kind == "index":
                con.execute(sql)
        cols = _columns(con, "aside", src)
        key = next((c for c, pk in cols if pk), None) or "rowid"
        names = ", ".join(_q(c) for c, _ in cols)
        select = ", ".join(f"ritm_with_srs({_q(c)}, {int(srs_id)})" if geom and c == geom[0] and srs_id != geom[2]
                           else _q(c) for c, _ in cols)
        _copy_rows(con, src, src, select, names, key, cancel)
        for kind, name, sql in objects:
            if kind == "table" and name == rtree:  # a virtual table: its shadow tables come with it
                con.execute(sql)
                con.execute(f"INSERT INTO main.{_q(name)} SELECT * FROM aside.{_q(name)}")
        has_counts = _table_name(con, "main", "gpkg_ogr_contents") is not None or \
            _table_name(con, "aside", "gpkg_ogr_contents") is not None
        for kind, _, sql in objects:
            if kind == "trigger" and (has_counts or "gpkg_ogr_contents" not in sql):
                con.execute(sql)
        _copy_metadata_row(con, "gpkg_contents", src, srs_id)
        _copy_metadata_row(con, "gpkg_geometry_columns", src, srs_id)
        for meta in ("gpkg_extensions", "gpkg_ogr_contents"):
            if _table_name(con, "aside", meta) is not None:
                _copy_metadata_row(con, meta, src)


def append_rows_in(path: str, aside: str, layer: str, *, cancel: Callable[[], bool] | None = None) -> list[str]:
    """Append the rows of the same-named layer of ``aside`` to ``layer`` of ``path``, in one transaction.

    The columns the two share (by name, any case) are filled; columns of the new rows that the layer
    lacks are left out, so the user's layer keeps its columns as they are. Returns those left out."""
    with _write_transaction(path, aside) as con:
        _check_gpkg(con, path)
        dst, src = _table_name(con, "main", layer), _table_name(con, "aside", layer)
        if dst is None or src is None:
            raise RitmError(f"Internal: the layer '{layer}' is missing from '{path}' or '{aside}'.")
        dst_geom, src_geom = _geometry_column(con, "main", dst), _geometry_column(con, "aside", src)
        if (dst_geom is None) != (src_geom is None):
            raise RitmError(f"Cannot append: the layer '{dst}' of '{path}' is "
                            f"{'a table without geometry' if dst_geom is None else 'a geometry layer'}, the new "
                            "rows are not; write to another layer name instead.")
        if dst_geom and not _types_fit(dst_geom[1], src_geom[1]):
            raise RitmError(f"Cannot append {src_geom[1].lower()} features to the layer '{dst}' of '{path}', which "
                            f"holds {dst_geom[1].lower()} features; write to another layer name instead.")
        dst_cols = {c.lower(): c for c, pk in _columns(con, "main", dst) if not pk}
        pairs, left_out = [], []
        for c, pk in _columns(con, "aside", src):
            if pk:
                continue
            if src_geom and c == src_geom[0]:
                pairs.append((dst_geom[0], f"ritm_with_srs({_q(c)}, {int(dst_geom[2])})"))
            elif c.lower() in dst_cols:
                pairs.append((dst_cols[c.lower()], _q(c)))
            else:
                left_out.append(c)
        key = next((c for c, pk in _columns(con, "aside", src) if pk), None) or "rowid"
        _copy_rows(con, src, dst, ", ".join(s for _, s in pairs), ", ".join(_q(d) for d, _ in pairs), key, cancel)
        _grow_extent(con, src, dst)
        return left_out


def _grow_extent(con, src: str, dst: str) -> None:
    """The layer's extent in ``gpkg_contents`` (which QGIS zooms to) grown by the appended rows' (same CRS);
    an extent left unknown (NULL) stays so, for GDAL to compute."""
    new = con.execute("SELECT min_x, min_y, max_x, max_y FROM aside.gpkg_contents WHERE lower(table_name) = "
                      "lower(?)", (src,)).fetchone()
    if new is None or None in new:
        new = (None,) * 4
    con.execute("UPDATE main.gpkg_contents SET min_x = min(min_x, coalesce(?, min_x)), "
                "min_y = min(min_y, coalesce(?, min_y)), max_x = max(max_x, coalesce(?, max_x)), "
                "max_y = max(max_y, coalesce(?, max_y)), last_change = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
                "WHERE lower(table_name) = lower(?)", (*new, dst))


def _types_fit(layer_type: str, new_type: str) -> bool:
    layer_type, new_type = layer_type.upper(), new_type.upper()
    if layer_type == "GEOMETRY" or layer_type == new_type:
        return True
    return layer_type.replace("MULTI", "") == new_type.replace("MULTI", "")
