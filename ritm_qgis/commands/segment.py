"""``ritm-qgis segment``: outline buildings on a georeferenced raster from clicks in map coordinates.

Each building's clicks go through the map tool's own road (``RasterSession``, as
``segment_from_points`` does), so the same clicks give the same polygon here, in Processing and
on the canvas. ``--next`` starts the next building.
"""

from __future__ import annotations

import argparse
import math

from ritm_qgis.core.errors import RitmError
from ritm_qgis.engine.geo.stretch_registry import DEFAULT as DEFAULT_STRETCH, cli_help, cli_metavar

HELP = ("Outline buildings on a georeferenced raster from clicks in map coordinates (X,Y,+ on the building, "
        "X,Y,- on the background; --next starts the next building) and write them to a GeoPackage, "
        "as the map tool and segment_from_points do.")


class _ClickAction(argparse.Action):
    """--click and --next share one list, in the order given (None separates buildings)."""

    def __call__(self, parser, namespace, values, option_string=None):
        items = list(getattr(namespace, self.dest, None) or [])
        items.append(values if option_string == "--click" else None)
        setattr(namespace, self.dest, items)


def add_arguments(p):
    p.add_argument("--raster", required=True, metavar="RASTER", help="the image (GeoTIFF or any GDAL raster)")
    p.add_argument("--click", dest="clicks", action=_ClickAction, metavar="X,Y,+|-",
                   help="a click in map coordinates (of --crs, default the raster's CRS) and its sign: + on the "
                        "building, - on the background; repeat, in order")
    p.add_argument("--next", dest="clicks", action=_ClickAction, nargs=0,
                   help="the clicks after this one are the next building's")
    p.add_argument("--crs", default=None, metavar="CRS",
                   help="the CRS of the clicks, such as EPSG:4326 (default: the raster's)")
    p.add_argument("--out", required=True, metavar="OUT.gpkg",
                   help="output: one (multi)polygon per building (.gpkg; also .geojson, .fgb)")
    p.add_argument("--layer", default="buildings", help="layer name in the GeoPackage (default buildings)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a layer of that name that ritm-qgis did not write")
    p.add_argument("--model", default="", metavar="NAME|FILE",
                   help="a model name, a checkpoint file or 'grabcut' (default: the best model available here, "
                        "as in the map tool)")
    p.add_argument("--device", default="auto", help="auto (default: CUDA if available), cpu, cuda or cuda:N")
    p.add_argument("--stretch", default=DEFAULT_STRETCH, metavar=cli_metavar(), help=cli_help())
    p.add_argument("--simplify-px", type=float, default=0.0, metavar="PX",
                   help="simplification tolerance in raster pixels (default 0: exact pixel outlines)")
    p.add_argument("--no-square", action="store_true",
                   help="keep the traced outlines (default: square outlines shaped like buildings)")
    p.add_argument("--label", default="", help="written to the label field of every building")


def parse_map_click(text: str) -> tuple[float, float, bool]:
    """'X,Y,+' or 'X,Y,-' (map coordinates) -> (x, y, positive)."""
    from ritm_qgis.engine.jobs.click_points import parse_sign

    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 3:
        raise RitmError(f"--click takes X,Y,+ or X,Y,- (map coordinates and sign), not '{text}'.")
    try:
        x, y = float(parts[0]), float(parts[1])
    except ValueError:
        raise RitmError(f"--click '{text}': X and Y must be numbers (map coordinates), such as "
                        "500120.5,4649800.0,+.") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise RitmError(f"--click '{text}': X and Y must be finite map coordinates.")
    try:
        positive = parse_sign(parts[2])
    except RitmError:
        raise RitmError(f"--click '{text}': the sign must be + (building) or - (background).") from None
    return x, y, positive


def click_points(items) -> list:
    """The --click/--next list -> ``ClickPoint``s numbered from 1 (the click's place on the command
    line), building numbers from 1; an empty building (two --next in a row) is refused."""
    from ritm_qgis.engine.jobs.click_points import ClickPoint

    points, building, in_building = [], 1, 0
    for item in items or []:
        if item is None:
            if not in_building:
                raise RitmError(f"--next after building {building} with no click; give each building at least "
                                "one --click.")
            building, in_building = building + 1, 0
            continue
        x, y, positive = parse_map_click(item)
        points.append(ClickPoint(len(points) + 1, x, y, positive, building, float(len(points))))
        in_building += 1
    if not points:
        raise RitmError("Give at least one --click X,Y,+ on a building.")
    if not in_building:
        raise RitmError("--next at the end starts a building with no click; remove it or add its clicks.")
    return points


def run(args) -> int:
    from ritm_qgis.engine.geo.output_paths import check_writable
    from ritm_qgis.engine.geo.raster_io import raster_meta
    from ritm_qgis.engine.geo.stretch import parse_stretch
    from ritm_qgis.engine.interactive.backends import model_label
    from ritm_qgis.engine.interactive.interactive_settings import interactive_predictor, load_interactive_backend
    from ritm_qgis.engine.interactive.outline_record import write_records
    from ritm_qgis.engine.jobs.click_points import group_clicks, segment_objects
    from ritm_qgis.engine.jobs.same_file import Place, refuse_outputs_among_inputs

    points = click_points(args.clicks)
    if args.crs is not None:
        import pyproj

        try:
            pyproj.CRS.from_user_input(args.crs)
        except pyproj.exceptions.CRSError:
            raise RitmError(f"--crs '{args.crs}' is not a CRS; give one such as EPSG:4326.") from None
    stretch = parse_stretch(args.stretch)
    if not math.isfinite(args.simplify_px) or args.simplify_px < 0:
        raise RitmError(f"--simplify-px must be 0 or more pixels, not {args.simplify_px}.")
    check_writable(args.out, "--out")
    refuse_outputs_among_inputs([Place("--out", args.out, args.layer)], [Place("--raster", args.raster)])
    grid = raster_meta(args.raster).grid
    objects = group_clicks(points, grid, src_crs=args.crs, ids_name="--click number(s)")
    spec = args.model.strip()
    if not spec:
        from ritm_qgis.models.catalog import default_model

        spec = default_model()[0]
    backend = load_interactive_backend(spec, args.device)
    records = segment_objects(args.raster, objects, lambda: interactive_predictor(backend),
                              model_name=model_label(spec), simplify_px=args.simplify_px, stretch_rule=stretch,
                              regularize=not args.no_square)
    path = write_records(records, args.out, args.layer, crs=grid.crs, label=args.label.strip() or None,
                         overwrite=args.overwrite)
    for record in records:
        cut = "; reaches the model's window: add a click near the cut side" if record.touches_window else ""
        print(f"building {record.object_id}: {record.n_clicks} click(s), {record.area_m2:.1f} m2, "
              f"{record.pixels} pixels{cut}")
    print(f"{len(records)} building(s), model {model_label(spec)}, stretch {stretch.label} -> {path}"
          f" (layer {args.layer})")
    return 0
