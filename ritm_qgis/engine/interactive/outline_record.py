"""A building outlined from clicks, as every interface saves it (map tool, ``segment_from_points``, ``segment``).

``RasterSession.record`` makes an ``OutlineRecord`` from the session's current mask; the one field
set of a saved building is ``FIELDS`` (name -> kind), filled by ``record_attributes``. The
command line and Processing write records with ``write_records`` (``vector_io.write_vector``:
GeoPackages in place); the map tool adds the same attributes through QGIS's edit buffer, since
its layer is open in QGIS (possibly in edit mode, with QGIS's undo).

Geometry: one MultiPolygon per building in the raster's CRS (``crs``), areas and perimeters in
metres (``vectorize.metric_area_perimeter``). A layer that only holds single polygons gets one
feature per part (``parts``), each with its own area and perimeter and the building's other values.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

__all__ = ["OutlineRecord", "FIELDS", "record_attributes", "records_frame", "write_records"]

# the fields of a saved building, in order: name -> kind (int, float, str, bool, datetime, id)
FIELDS = {
    "object_id": "id",  # Processing: the object-id field's value; segment: 1, 2, ...; map tool: empty
    "area_m2": "float",
    "perimeter_m": "float",
    "n_clicks": "int",
    "pixels": "int",  # mask pixels (probability above the threshold, valid pixels only)
    "model": "str",
    "stretch": "str",  # what the model saw: stretch.StretchRule.label
    "source": "str",  # the raster's file
    "label": "str",  # the map tool's label box, segment --label
    "touches_window": "bool",  # the mask reaches the model's window inside the raster: it may be cut
    "created": "datetime",
}


@dataclass(frozen=True)
class OutlineRecord:
    geometry: object  # shapely MultiPolygon (empty when nothing is above the threshold), raster CRS
    area_m2: float
    perimeter_m: float
    pixels: int
    clicks: tuple  # ((x, y, positive), ...) map coordinates of the raster's CRS, in click order
    model: str
    stretch: str
    source: str
    crs: object = None  # the raster's CRS (rasterio CRS or WKT)
    touches_window: bool = False
    object_id: object = None
    created: _dt.datetime = field(default_factory=lambda: _dt.datetime.now().replace(microsecond=0))

    @property
    def n_clicks(self) -> int:
        return len(self.clicks)

    @property
    def is_empty(self) -> bool:
        return self.geometry is None or self.geometry.is_empty

    def polygons_wkb(self) -> list[bytes]:
        """The building's polygons as WKB (raster CRS), for drawing."""
        import shapely

        return [] if self.is_empty else [p.wkb for p in shapely.get_parts(self.geometry)]

    def parts(self) -> list["OutlineRecord"]:
        """One record per polygon of the building (its own area and perimeter, the rest shared)."""
        import numpy as np
        import shapely

        from ritm_qgis.engine.geo.vectorize import metric_area_perimeter

        if self.is_empty:
            return []
        polys = list(shapely.get_parts(self.geometry))
        if len(polys) == 1:
            return [replace(self, geometry=polys[0])]
        area, perim = metric_area_perimeter(np.asarray(polys, dtype=object), self.crs)
        return [replace(self, geometry=p, area_m2=float(a), perimeter_m=float(q))
                for p, a, q in zip(polys, area, perim)]


def record_attributes(record: OutlineRecord, label: str | None = None) -> dict:
    """The values of ``FIELDS`` for one record (``label``: empty or None writes no label)."""
    return {
        "object_id": record.object_id,
        "area_m2": float(record.area_m2),
        "perimeter_m": float(record.perimeter_m),
        "n_clicks": int(record.n_clicks),
        "pixels": int(record.pixels),
        "model": str(record.model or ""),
        "stretch": str(record.stretch or ""),
        "source": str(record.source or ""),
        "label": str(label) if label else None,
        "touches_window": bool(record.touches_window),
        "created": record.created,
    }


def records_frame(records: Sequence[OutlineRecord], crs=None, label: str | None = None):
    """A GeoDataFrame of ``FIELDS`` and one MultiPolygon per record (``crs``: when there is no record)."""
    import geopandas as gpd
    import shapely

    crs = records[0].crs if records else crs
    rows = [record_attributes(r, label) for r in records]
    geoms = [shapely.MultiPolygon() if r.is_empty else
             shapely.MultiPolygon([r.geometry]) if r.geometry.geom_type == "Polygon" else r.geometry
             for r in records]
    columns = {name: [row[name] for row in rows] for name in FIELDS}
    return gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries(geoms, crs=crs), crs=crs)


def write_records(records: Sequence[OutlineRecord], path: str | os.PathLike, layer: str = "buildings", *,
                  crs=None, label: str | None = None, mode: str = "w", overwrite: bool = False,
                  cancel: Callable[[], bool] | None = None, staging=None):
    """Write the records as ``layer`` of ``path`` (``vector_io.write_vector``); returns the path."""
    from ritm_qgis.engine.geo.vector_io import write_vector

    return write_vector(records_frame(records, crs, label), path, layer, mode=mode, overwrite=overwrite,
                        cancel=cancel, staging=staging)
