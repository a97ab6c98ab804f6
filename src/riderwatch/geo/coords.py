"""WGS-84 ⇄ GCJ-02 and distances.

GCJ-02 is the obfuscated datum Chinese maps and delivery apps use (GB 20263). The forward
direction is the public formula on the Krasovsky ellipsoid; the reverse has no closed form, so
it is solved by fixed-point iteration until the round trip agrees to well under a millimetre.
"""

from __future__ import annotations

import math

_A = 6378245.0
_EE = 0.00669342162296594323
EARTH_RADIUS_M = 6371008.8


def out_of_china(lat: float, lon: float) -> bool:
    """Outside mainland China's bounding box GCJ-02 applies no offset."""
    return not (73.66 < lon < 135.05 and 3.86 < lat < 53.55)


def _transform_lat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _transform_lon(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def wgs84_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    """WGS-84 (GPS) to GCJ-02 (Chinese maps)."""
    if out_of_china(lat, lon):
        return lat, lon
    dlat = _transform_lat(lon - 105.0, lat - 35.0)
    dlon = _transform_lon(lon - 105.0, lat - 35.0)
    radlat = lat / 180.0 * math.pi
    magic = 1 - _EE * math.sin(radlat) ** 2
    sqrtmagic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * math.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * math.cos(radlat) * math.pi)
    return lat + dlat, lon + dlon


def gcj02_to_wgs84(lat: float, lon: float, tolerance_deg: float = 1e-9) -> tuple[float, float]:
    """GCJ-02 to WGS-84 by iteration: each round moves the guess by the forward error."""
    if out_of_china(lat, lon):
        return lat, lon
    wlat, wlon = lat, lon
    for _ in range(30):
        glat, glon = wgs84_to_gcj02(wlat, wlon)
        dlat, dlon = glat - lat, glon - lon
        wlat, wlon = wlat - dlat, wlon - dlon
        if abs(dlat) < tolerance_deg and abs(dlon) < tolerance_deg:
            break
    return wlat, wlon


def to_wgs84(lat: float, lon: float, crs: str | None) -> tuple[float, float]:
    """Normalise an input position: `crs` is None/"wgs84" or "gcj02"."""
    if crs is None or crs.lower() in ("wgs84", "wgs-84", "epsg:4326"):
        return lat, lon
    if crs.lower() in ("gcj02", "gcj-02"):
        return gcj02_to_wgs84(lat, lon)
    raise ValueError(f"unknown crs {crs!r}: use wgs84 or gcj02")


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(h))


def coordinates_ok(lat: float, lon: float) -> bool:
    """Whether a position can be a rider's: finite, on the globe, and not (0, 0)."""
    # (0, 0) is where phones put a fix they do not have; no rider works in the Gulf of Guinea.
    if not (math.isfinite(lat) and math.isfinite(lon)):
        return False
    return -90 <= lat <= 90 and -180 <= lon <= 180 and not (lat == 0 and lon == 0)
