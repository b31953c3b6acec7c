"""Lengths on the ground from map coordinates, whatever the CRS.

A projected CRS's unit is a metre on the ground only where its scale factor is 1. That holds
within 0.1 % for UTM zones and national grids, but not for Web Mercator (EPSG:3857, the CRS of
tiles saved from web basemaps): there one map metre is cos(latitude) metres on the ground, so at
50 degrees a building's area in map units is 2.4 times its real area, and a pixel of "0.3 m" is
0.19 m. Geographic CRSs have no linear unit at all. This module gives each case its ground scale:
``local_utm`` for measuring shapes (the data's own UTM zone, where every CRS agrees with the
ground within 0.1 %) and ``ground_pixel_size`` for resolutions.
"""

from __future__ import annotations

import math

import pyproj

# A projected CRS whose scale factor at the data is within this of 1 is measured in its own units
# (UTM's own factor is 0.9996-1.001 within a zone), so its figures stay those of QGIS's planimetric
# measures.
PLANAR_SCALE_TOLERANCE = 0.002


def as_pyproj(crs) -> pyproj.CRS:
    return pyproj.CRS.from_user_input(crs.to_wkt() if hasattr(crs, "to_wkt") else crs)


def local_utm(lon: float, lat: float) -> pyproj.CRS:
    """The UTM zone (WGS 84) that holds the point (lon, lat)."""
    zone = int(math.floor((lon + 180.0) / 6.0)) % 60 + 1
    return pyproj.CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def lonlat(crs: pyproj.CRS, x: float, y: float) -> tuple[float, float]:
    """Longitude and latitude (degrees) of the map point (x, y) of ``crs``."""
    if crs.is_geographic:
        return float(x), float(y)
    lon, lat = pyproj.Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True).transform(x, y)
    return float(lon), float(lat)


def projection_scale(crs: pyproj.CRS, x: float, y: float) -> float:
    """Map units per ground unit of a projected CRS at (x, y): the mean of its scale along the
    meridian and the parallel; 1.0 where pyproj cannot say."""
    try:
        lon, lat = lonlat(crs, x, y)
        f = pyproj.Proj(crs).get_factors(lon, lat)
        k = 0.5 * (f.meridional_scale + f.parallel_scale)
    except (pyproj.exceptions.ProjError, pyproj.exceptions.CRSError, ValueError, TypeError):
        return 1.0
    return k if math.isfinite(k) and k > 0 else 1.0


def off_scale(crs: pyproj.CRS, x: float, y: float) -> float:
    """``projection_scale`` where it is more than ``PLANAR_SCALE_TOLERANCE`` from 1, else 1.0 (the
    CRS's units are taken as ground units)."""
    k = projection_scale(crs, x, y)
    return k if abs(k - 1.0) > PLANAR_SCALE_TOLERANCE else 1.0


def needs_local_utm(crs: pyproj.CRS, x: float, y: float) -> bool:
    """Whether shapes near (x, y) must be measured on the local UTM zone instead of in the CRS."""
    if crs.is_geographic:
        return True
    return crs.is_projected and off_scale(crs, x, y) != 1.0


def unit_metres(crs: pyproj.CRS) -> float | None:
    """Metres per unit of a projected CRS's first axis (feet, US feet, metres...); None if unknown."""
    try:
        return float(crs.axis_info[0].unit_conversion_factor)
    except (IndexError, AttributeError, TypeError):
        return None


def ground_pixel_size(grid) -> float | None:
    """Metres on the ground per pixel of a grid (mean of x and y) at its centre; None without a CRS."""
    if grid.crs is None:
        return None
    crs = as_pyproj(grid.crs)
    rx, ry = grid.res
    left, bottom, right, top = grid.bounds
    cx, cy = (left + right) / 2, (bottom + top) / 2
    if crs.is_geographic:
        return 0.5 * (rx * 111_320.0 * math.cos(math.radians(cy)) + ry * 110_574.0)
    if crs.is_projected:
        unit = unit_metres(crs)
        if unit is None:
            return None
        return 0.5 * (rx + ry) * unit / off_scale(crs, cx, cy)
    return None
