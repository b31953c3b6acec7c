"""The paper's evaluation on a georeferenced raster + footprint layer, with everything a GIS run writes.

``evaluate_raster`` is ``geo_dataset.raster_footprint_dataset`` (tiles or per-building windows)
run through ``evaluation.evaluate`` -- exactly the engine's own protocol, so its IoU array is the
one ``evaluate()`` gives on the same samples -- plus, on request, the predicted footprints: the
mask after each sample's last click, vectorized on the sample's window grid (raster CRS), with
fields ``sample``, ``iou`` (at the last click), ``n_clicks``, ``area_m2``, ``perimeter_m``.
The predictions are taken from the sessions themselves (not replayed), so they are the masks the
IoUs were measured on. Tiles do not overlap, so in tile mode a building cut by a tile border is two
polygons, one per tile.

``write_evaluation_outputs`` writes the per-sample table (CSV: sample, empty, n_clicks,
NoC@t..., IoU per click), the IoU array (.npy, for ``noc_report``) and the HTML report with the
Table-1 metrics and the IoU-vs-clicks figure; each file is written atomically.
``area_of_interest`` may be a shapely geometry in the raster's CRS or a GeoDataFrame/GeoSeries in
any CRS (reprojected and unioned); a tile or building is kept when it overlaps it by more than a
hundredth of a pixel, so the tiles that only touch a tile-index polygon's border are not.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ritm_qgis.core.errors import RitmError
from ritm_qgis.core.progress import Progress

__all__ = ["GeoEvaluation", "evaluate_raster", "write_evaluation_outputs", "aoi_geometry", "repaired_warning"]


@dataclass
class GeoEvaluation:
    result: object  # evaluation.EvalResult
    report: object  # noc.NocReport
    footprints: object | None  # GeoDataFrame or None
    n_samples: int
    repaired: tuple = ()  # ids of the reference polygons that were invalid and repaired


def repaired_warning(ids, layer: str = "the reference layer") -> str:
    """The sentence that says which reference polygons were invalid and used repaired."""
    shown = ", ".join(str(i) for i in list(ids)[:20]) + (", ..." if len(ids) > 20 else "")
    return (f"{len(ids)} polygon(s) of {layer} were invalid (self-intersecting, for example) and were repaired "
            f"before use, as QGIS's 'Fix geometries' does: feature id(s) {shown}; check them, or fix the layer.")


def aoi_geometry(aoi, crs, shrink: float = 0.0):
    """A GeoDataFrame/GeoSeries (any CRS) or shapely geometry -> one polygon geometry in ``crs``.

    ``shrink`` (map units) erodes it slightly so that tiles that merely touch its border (e.g. the
    neighbours of a tile-index polygon) do not count as inside. None stays None.
    """
    if aoi is None:
        return None
    import geopandas as gpd
    import shapely

    if isinstance(aoi, (gpd.GeoDataFrame, gpd.GeoSeries)):
        if len(aoi) == 0:
            raise RitmError("The area of interest layer has no features; choose a layer with polygons or leave it empty.")
        if aoi.crs is None:
            raise RitmError("The area of interest layer has no CRS; assign one.")
        geoms = aoi.to_crs(crs).geometry.values if aoi.crs != crs else aoi.geometry.values
        geoms = np.asarray([g for g in geoms if g is not None and not g.is_empty], dtype=object)
        aoi = shapely.union_all(shapely.make_valid(geoms))
    if shrink > 0:
        aoi = aoi.buffer(-shrink)
    if aoi.is_empty:
        raise RitmError("The area of interest has no area; choose polygons that cover part of the raster.")
    return aoi


def evaluate_raster(
    raster: str | os.PathLike,
    footprints,
    make_session: Callable[[], object],
    *,
    model_name: str = "model",
    mode: str = "tiles",
    tile_size: int = 500,
    area_of_interest=None,
    max_clicks: int = 20,
    thresholds=(0.8, 0.85, 0.9),
    batch_size: int = 1,
    predictions: bool = False,
    edge_tiles: str = "pad",
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
    stretch=None,
) -> GeoEvaluation:
    """Evaluate on ``raster`` labelled by ``footprints`` (see the module doc); ``stretch``: the input
    rule (``geo.stretch.StretchRule``, default percentile)."""
    import geopandas as gpd

    from ritm_qgis.engine.data.geo_dataset import raster_footprint_dataset
    from ritm_qgis.engine.geo.raster_io import raster_meta
    from ritm_qgis.engine.protocol.evaluation import evaluate
    from ritm_qgis.engine.protocol.noc import noc_report

    grid = raster_meta(str(raster)).grid
    # a tile/building counts when it overlaps the area of interest by more than 1/100 of a pixel
    aoi = aoi_geometry(area_of_interest, grid.crs, shrink=0.01 * min(grid.res))
    dataset = raster_footprint_dataset(str(raster), footprints, mode=mode, tile_size=tile_size,
                                       area_of_interest=aoi, edge_tiles=edge_tiles, stretch=stretch)
    sessions: list = []
    rows: list = []
    done = [0]

    def recording_session():
        s = make_session()
        sessions.append(s)
        return s

    def on_batch(result):
        if not predictions:
            return
        from ritm_qgis.engine.geo.vectorize import vectorize_mask

        names = result.names[done[0]:]
        for k, name in enumerate(names, start=done[0]):
            ious = result.ious[k]
            if np.isnan(ious[0]):  # an empty sample: evaluate() made no session for it
                continue
            session = sessions.pop(0)
            sample = dataset[dataset.names.index(name)]
            mask = session.mask & ~sample.ignore if sample.ignore is not None else session.mask
            polys = vectorize_mask(mask, sample.meta["grid"])
            valid = ious[~np.isnan(ious)]
            for geom, area, perim in zip(polys.geometry.values, polys["area_m2"], polys["perimeter_m"]):
                rows.append({"sample": name, "iou": float(valid[-1]), "n_clicks": len(result.clicks[k]),
                             "area_m2": float(area), "perimeter_m": float(perim), "geometry": geom})
        done[0] = len(result.names)
        sessions.clear()

    result = evaluate(dataset, recording_session, model_name, max_clicks, batch_size, progress=progress,
                      cancel=cancel, on_batch=on_batch)
    report = noc_report(model_name, result.iou_array, thresholds)
    fp = None
    if predictions:
        fp = gpd.GeoDataFrame(rows, geometry="geometry", crs=grid.crs) if rows else gpd.GeoDataFrame(
            {"sample": [], "iou": [], "n_clicks": [], "area_m2": [], "perimeter_m": []},
            geometry=gpd.GeoSeries([], crs=grid.crs), crs=grid.crs)
    return GeoEvaluation(result, report, fp, len(dataset), dataset.repaired_footprints)


def write_evaluation_outputs(ev: GeoEvaluation, thresholds, *, table_path: str, html_path: str,
                             ious_path: str | None = None, footprints: tuple[str, str] | None = None,
                             overwrite_footprints: bool = False, title: str = "NoC report") -> None:
    """CSV table, optional .npy IoU array, the HTML report and, with ``footprints`` = (GeoPackage,
    layer), the predicted footprints: all written under incomplete names first and moved into
    place together, so the files of one run never mix with those of an earlier one."""
    from ritm_qgis.core.atomic import OutputSet
    from ritm_qgis.engine.geo.vector_io import write_vector
    from ritm_qgis.engine.reports.figures import plot_iou_curves
    from ritm_qgis.engine.reports.report_html import write_html_report
    from ritm_qgis.engine.reports.sample_table import samples_csv_text

    with OutputSet() as staging, tempfile.TemporaryDirectory(prefix="ritm-eval-") as tmp:
        with open(staging.staged(table_path), "w", encoding="utf-8") as f:
            f.write(samples_csv_text(ev.result, thresholds))
        if ious_path:
            with open(staging.staged(ious_path), "wb") as f:
                np.save(f, ev.result.iou_array)
        figure = plot_iou_curves([ev.report], os.path.join(tmp, "curve.png"), title=title)
        write_html_report(staging.staged(html_path), [ev.report], figure, title=title)
        if footprints is not None:
            write_vector(ev.footprints, footprints[0], layer=footprints[1], mode="w", overwrite=overwrite_footprints,
                         staging=staging)
