"""Square building outlines: dominant orientation, right angles, within a stated tolerance.

``regularize_polygon(polygon, tolerance)``:

1. Douglas-Peucker with ``tolerance / 2`` removes the pixel staircase.
2. Two candidate orientations: the length-weighted mean of the edge directions modulo 90 degrees
   (computed on the 4x angle so that 0, 90, 180, 270 degrees agree) and the orientation of the
   minimum rotated rectangle; the candidate whose squared outline differs least (symmetric
   difference area) from the input wins.
3. In a frame rotated to that orientation every edge is classed horizontal or vertical;
   consecutive edges of one class merge into a run placed at their length-weighted mean
   position; neighbouring runs meet at right angles. Holes are squared the same way.
4. The result is accepted only if it is a valid polygon with the same number of holes and its
   outline stays within ``tolerance`` of the input's outline in both directions (Hausdorff
   distance, checked with buffers, which is conservative). Otherwise ``None`` is returned and the
   caller keeps the unregularised polygon. ``tolerance`` is in the polygon's units and is
   measured against the input outline (for a pixel outline, allow about a pixel for the staircase).

``square_building(polygon, pixel)`` (the map tool's default, ``mode="building"``) squares a
network's rounded outline, which the strict rule above refuses (its corners move by several
pixels). Candidates: the minimum rotated rectangle, and the squaring of step 3 applied to the
outline simplified at 1, 2, 3 and 4 pixels (both candidate orientations). A candidate is
acceptable when its IoU with the traced outline is at least ``min_iou`` (0.9: a rectangle with
rounded corners agrees with its rectangle at 0.95 and more, a disc with its square at 0.79);
the acceptable candidate with the fewest corners wins, then the one that agrees best, so a plain
roof becomes a rectangle and an L, T or U keeps its wings. With none acceptable (a curved or
irregular roof) ``None`` is returned and the caller keeps the simplified outline.
"""

from __future__ import annotations

import math

import numpy as np
import shapely
from shapely.geometry import Polygon

__all__ = ["dominant_orientation", "regularize_polygon", "regularize_polygons", "within_tolerance",
           "square_building", "MODES"]

# square_building (default) | regularize_polygon (within the tolerance) | the minimum rotated rectangle
MODES = ("building", "strict", "rectangle")
BUILDING_MIN_IOU = 0.9


def _edges(ring: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = np.diff(ring, axis=0)
    return d, np.hypot(d[:, 0], d[:, 1])


def dominant_orientation(polygon: Polygon) -> float:
    """Building orientation in radians, in [-pi/4, pi/4): the length-weighted mean edge angle mod 90."""
    rings = [np.asarray(polygon.exterior.coords)] + [np.asarray(r.coords) for r in polygon.interiors]
    s = c = 0.0
    for ring in rings:
        d, w = _edges(ring)
        theta = np.arctan2(d[:, 1], d[:, 0])
        s += float((w * np.sin(4 * theta)).sum())
        c += float((w * np.cos(4 * theta)).sum())
    return math.atan2(s, c) / 4.0


def _square_ring(ring: np.ndarray) -> np.ndarray | None:
    """Square a closed ring already rotated so the building is axis-aligned; None if impossible."""
    d, w = _edges(ring)
    ok = w > 0
    d, w = d[ok], w[ok]
    starts = ring[:-1][ok]
    if len(w) < 4:
        return None
    horiz = np.abs(d[:, 0]) >= np.abs(d[:, 1])
    mids = starts + d / 2
    # rotate the edge list so that it starts at a class change (cyclic run merging)
    change = np.flatnonzero(horiz != np.roll(horiz, 1))
    if len(change) < 4:
        return None
    k = change[0]
    horiz, w, mids = np.roll(horiz, -k), np.roll(w, -k), np.roll(mids, -k, axis=0)
    run_id = np.cumsum(np.r_[0, horiz[1:] != horiz[:-1]])
    n_runs = int(run_id[-1]) + 1
    if n_runs < 4 or n_runs % 2:
        return None
    run_h = np.zeros(n_runs, dtype=bool)
    run_h[run_id] = horiz
    wsum = np.bincount(run_id, weights=w, minlength=n_runs)
    pos_x = np.bincount(run_id, weights=w * mids[:, 0], minlength=n_runs) / wsum
    pos_y = np.bincount(run_id, weights=w * mids[:, 1], minlength=n_runs) / wsum
    pos = np.where(run_h, pos_y, pos_x)  # y of a horizontal run, x of a vertical one
    verts = []
    for i in range(n_runs):
        j = (i + 1) % n_runs
        if run_h[i]:
            verts.append((pos[j], pos[i]))  # horizontal run i meets vertical run j
        else:
            verts.append((pos[i], pos[j]))
    # vertex i closes run i; the ring starts with the vertex that opens run 0 (= vertex n-1)
    verts = [verts[-1]] + verts[:-1]
    verts.append(verts[0])
    return np.asarray(verts, dtype="float64")


def within_tolerance(a: Polygon, b: Polygon, tolerance: float) -> bool:
    """True if the outlines of ``a`` and ``b`` are within ``tolerance`` of each other (Hausdorff)."""
    ba, bb = a.boundary, b.boundary
    return bool(
        shapely.covers(shapely.buffer(ba, tolerance, quad_segs=8), bb)
        and shapely.covers(shapely.buffer(bb, tolerance, quad_segs=8), ba)
    )


def regularize_polygon(polygon: Polygon, tolerance: float) -> Polygon | None:
    """The squared outline of ``polygon`` or None when that would move it more than ``tolerance``."""
    if polygon is None or polygon.is_empty or polygon.geom_type != "Polygon" or tolerance <= 0:
        return None
    simple = polygon.simplify(tolerance / 2.0, preserve_topology=True)
    if simple.is_empty or simple.geom_type != "Polygon":
        return None
    best, best_err = None, math.inf
    for angle in _candidate_angles(simple):
        result = _square_polygon(simple, angle)
        if result is None or not result.is_valid or result.is_empty:
            continue
        if len(result.interiors) != len(polygon.interiors):
            continue
        err = result.symmetric_difference(polygon).area
        if err < best_err:
            best, best_err = result, err
    if best is None or not within_tolerance(best, polygon, tolerance):
        return None
    return best


def _candidate_angles(polygon: Polygon) -> list[float]:
    """The weighted edge-direction mean and the minimum rotated rectangle's orientation."""
    angles = [dominant_orientation(polygon)]
    rect = shapely.minimum_rotated_rectangle(polygon)
    if rect.geom_type == "Polygon":
        c = np.asarray(rect.exterior.coords)
        a = math.atan2(c[1, 1] - c[0, 1], c[1, 0] - c[0, 0])
        a = (a + math.pi / 4) % (math.pi / 2) - math.pi / 4
        if abs(a - angles[0]) > 1e-6:
            angles.append(a)
    return angles


def _square_polygon(simple: Polygon, angle: float) -> Polygon | None:
    origin = np.asarray(simple.exterior.coords[0])
    cos, sin = math.cos(-angle), math.sin(-angle)
    rot = np.array([[cos, -sin], [sin, cos]])
    inv = rot.T

    def square(coords) -> np.ndarray | None:
        local = (np.asarray(coords)[:, :2] - origin) @ rot.T
        sq = _square_ring(local)
        return None if sq is None else sq @ inv.T + origin

    shell = square(simple.exterior.coords)
    if shell is None:
        return None
    holes = []
    for r in simple.interiors:
        h = square(r.coords)
        if h is None:
            return None
        holes.append(h)
    return Polygon(shell, holes)


def _iou(a: Polygon, b: Polygon) -> float:
    union = a.union(b).area
    return a.intersection(b).area / union if union > 0 else 0.0


def _corners(polygon: Polygon) -> int:
    return len(polygon.exterior.coords) - 1 + sum(len(r.coords) - 1 for r in polygon.interiors)


def square_building(polygon: Polygon, pixel: float, min_iou: float = BUILDING_MIN_IOU,
                    avoid=None) -> Polygon | None:
    """A building-shaped version of a traced outline (see module doc) or None to keep it as it is.

    ``avoid``: a geometry (the user's negative clicks) no candidate may cover, so squaring never
    gives back what a click took away; holes are kept (the rectangle is a candidate only without)."""
    if polygon is None or polygon.is_empty or polygon.geom_type != "Polygon" or pixel <= 0:
        return None
    candidates = []
    rect = shapely.minimum_rotated_rectangle(polygon)
    if rect.geom_type == "Polygon" and not polygon.interiors:
        candidates.append(rect)
    for steps in (1, 2, 3, 4):
        simple = polygon.simplify(steps * pixel, preserve_topology=True)
        if simple.is_empty or simple.geom_type != "Polygon":
            continue
        for angle in _candidate_angles(simple):
            sq = _square_polygon(simple, angle)
            if sq is not None and sq.is_valid and not sq.is_empty and len(sq.interiors) == len(polygon.interiors):
                candidates.append(sq)
    if avoid is not None and not avoid.is_empty:
        candidates = [c for c in candidates if not c.intersects(avoid)]
    scored = [(c, _iou(c, polygon)) for c in candidates]
    good = [(c, v) for c, v in scored if v >= min_iou]
    if not good:
        return None
    return min(good, key=lambda cv: (_corners(cv[0]), -cv[1]))[0]


def _rectangle(polygon: Polygon, _pixel: float, avoid=None) -> Polygon | None:
    rect = shapely.minimum_rotated_rectangle(polygon)
    return rect if rect.geom_type == "Polygon" else None


def regularize_polygons(geoms, tolerance: float, mode: str = "strict", avoid=None) -> tuple[np.ndarray, np.ndarray]:
    """Regularise each polygon; returns (geometries, regularized flags). Failures keep the input.

    ``mode`` "strict": ``regularize_polygon`` within ``tolerance``; "building": ``square_building``
    with ``tolerance`` as the pixel size, never covering ``avoid``; "rectangle": the minimum rotated
    rectangle (for comparison)."""
    if mode not in MODES:
        raise ValueError(f"unknown regularisation mode {mode!r}; use one of {MODES}")
    square = {"strict": regularize_polygon, "building": square_building, "rectangle": _rectangle}[mode]
    geoms = np.asarray(geoms, dtype=object)
    out = geoms.copy()
    flags = np.zeros(len(geoms), dtype=bool)
    for i, g in enumerate(geoms):
        r = square(g, tolerance) if mode == "strict" else square(g, tolerance, avoid=avoid)
        if r is not None:
            out[i] = r
            flags[i] = True
    return out, flags
