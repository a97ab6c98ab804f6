"""Incidents with planted hotspots: known places and hours of the week where more happens.

The output is the ground truth: every incident says whether a hotspot planted it, and each hotspot
names its area and hours, so a test can check that hotspot detection (Gi*) finds what was planted
and nothing in the uniform background. Riders who pass by report some incidents as clues.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import shapely
from h3.api import basic_int as h3
from shapely.geometry import Polygon

from riderwatch.sim.network import LocalFrame

# Categories of the server's seeded clue catalogue (codes are the Open311 service codes).
BACKGROUND_MIX: dict[str, float] = {
    "theft": 0.22,
    "suspicious": 0.15,
    "telecom_fraud": 0.1,
    "fight_dispute": 0.1,
    "fire_hazard": 0.15,
    "traffic_hazard": 0.15,
    "damaged_facility": 0.1,
    "gambling": 0.03,
}

DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "theft": ("有人撬电动车锁，看到人来就走了", "外卖柜被撬，几份餐品丢失", "停放的电动车电瓶被盗"),
    "suspicious": ("无牌面包车停了很久，车里有人一直观察路人", "有人挨家挨户看门锁，形迹可疑"),
    "telecom_fraud": ("一位老人说接到“公检法”电话要求转账，已提醒先别转", "有人散发“刷单返利”小广告"),
    "fight_dispute": ("两名男子因停车争吵，已有推搡", "烧烤摊有人酒后闹事，摔酒瓶"),
    "fire_hazard": ("楼道里电动车在充电，电线从窗户拉下来", "消防通道被杂物堵死"),
    "traffic_hazard": ("路口红绿灯不亮，车辆抢行", "路面塌陷一个坑，电动车容易摔"),
    "damaged_facility": ("井盖缺失，晚上看不见", "路灯坏了一整段，很黑"),
    "gambling": ("民房二楼经常有人打牌下注，门口有人望风",),
    "drugs": ("楼道发现疑似吸毒工具",),
}


@dataclass(frozen=True)
class Hotspot:
    """A planted cluster: incidents of one category in an area during some hours of the week.

    The area is an H3 cell, or a circle around `center` (lat, lon). Hours of the week count from
    Monday 00:00 local time (0) to Sunday 23:00 (167).
    """

    name: str
    category: str
    hours_of_week: frozenset[int]
    rate_per_hour: float
    cell: int | None = None
    center: tuple[float, float] | None = None
    radius_m: float = 120.0

    def __post_init__(self) -> None:
        if (self.cell is None) == (self.center is None):
            raise ValueError("a hotspot has either a cell or a center")
        if not self.hours_of_week or any(not 0 <= h < 168 for h in self.hours_of_week):
            raise ValueError("hours_of_week must be between 0 and 167")

    def active(self, how: int) -> bool:
        return how in self.hours_of_week

    def contains(self, lat: float, lon: float) -> bool:
        if self.cell is not None:
            return bool(h3.latlng_to_cell(lat, lon, h3.get_resolution(self.cell)) == self.cell)
        assert self.center is not None
        frame = LocalFrame(*self.center)
        x, y = frame.to_xy(lat, lon).tolist()
        return math.hypot(x, y) <= self.radius_m

    def cells(self, resolution: int) -> set[int]:
        """The H3 cells at `resolution` the hotspot's incidents can fall in (H3 cells only roughly
        nest, so they are found from a dense sample of the area, not from cell children)."""
        if self.cell is not None:
            boundary = h3.cell_to_boundary(self.cell)
            lat0 = sum(p[0] for p in boundary) / len(boundary)
            lon0 = sum(p[1] for p in boundary) / len(boundary)
            frame = LocalFrame(lat0, lon0)
            outline = Polygon(frame.to_xy(np.array([p[0] for p in boundary]), np.array([p[1] for p in boundary])))
        else:
            assert self.center is not None
            frame = LocalFrame(*self.center)
            outline = shapely.Point(0, 0).buffer(self.radius_m, 64)
        step = min(h3.average_hexagon_edge_length(resolution, unit="m") / 4, math.sqrt(outline.area) / 20)
        minx, miny, maxx, maxy = outline.bounds
        gx, gy = np.meshgrid(np.arange(minx, maxx + step, step), np.arange(miny, maxy + step, step))
        inside = shapely.contains_xy(outline.buffer(step * 0.01), gx.ravel(), gy.ravel())
        pts = np.stack([gx.ravel()[inside], gy.ravel()[inside]], axis=1)
        edge = np.asarray(outline.exterior.coords)
        lat, lon = frame.to_latlon(np.concatenate([pts, edge]))
        found = {h3.latlng_to_cell(a, b, resolution) for a, b in zip(lat.tolist(), lon.tolist(), strict=True)}
        if self.cell is not None and h3.get_resolution(self.cell) == resolution:
            return {self.cell}
        return found


def hours(days: range | list[int], hour_ranges: list[tuple[int, int]]) -> frozenset[int]:
    """Hours of the week for the given weekdays (0 = Monday) and local [from, to) hour ranges (may wrap)."""
    out: set[int] = set()
    for d in days:
        for a, b in hour_ranges:
            span = range(a, b) if a < b else [*range(a, 24), *range(24, 24 + b)]
            out.update((d * 24 + h) % 168 for h in span)
    return frozenset(out)


@dataclass(frozen=True)
class Incident:
    id: int
    at: datetime
    lat: float
    lon: float
    category: str
    hotspot: str | None  # the hotspot that planted it; None for the background

    @property
    def description(self) -> str:
        options = DESCRIPTIONS.get(self.category, ("现场情况需要核实",))
        return options[self.id % len(options)]


@dataclass(frozen=True)
class IncidentSet:
    incidents: list[Incident]
    hotspots: list[Hotspot]
    background_per_day: float
    start: datetime
    end: datetime
    counts: Counter[str | None] = field(default_factory=Counter)

    def planted(self, name: str | None = None) -> list[Incident]:
        return [i for i in self.incidents if i.hotspot is not None and (name is None or i.hotspot == name)]

    def counts_by_cell(self, resolution: int) -> Counter[int]:
        return Counter(h3.latlng_to_cell(i.lat, i.lon, resolution) for i in self.incidents)


def _uniform_in(poly: Polygon, rng: random.Random, n: int) -> list[tuple[float, float]]:
    minx, miny, maxx, maxy = poly.bounds
    out: list[tuple[float, float]] = []
    while len(out) < n:
        x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        if shapely.contains_xy(poly, x, y):
            out.append((x, y))
    return out


def _in_cell(cell: int, rng: random.Random) -> tuple[float, float]:
    boundary = h3.cell_to_boundary(cell)
    lats = [p[0] for p in boundary]
    lons = [p[1] for p in boundary]
    res = h3.get_resolution(cell)
    while True:
        lat, lon = rng.uniform(min(lats), max(lats)), rng.uniform(min(lons), max(lons))
        if h3.latlng_to_cell(lat, lon, res) == cell:
            return lat, lon


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method: the rates here are a few per hour.
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def generate_incidents(
    *,
    outline: tuple[tuple[float, float], ...],
    hotspots: list[Hotspot],
    start: datetime,
    end: datetime,
    seed: int,
    background_per_day: float = 8.0,
    timezone: str = "Asia/Shanghai",
) -> IncidentSet:
    """Incidents in [start, end): a uniform background over the outline plus each hotspot's cluster."""
    if start.tzinfo is None or end <= start:
        raise ValueError("start must be timezone-aware and before end")
    rng = random.Random(f"{seed}:incidents")
    tz = ZoneInfo(timezone)
    lat0 = sum(p[1] for p in outline) / len(outline)
    lon0 = sum(p[0] for p in outline) / len(outline)
    frame = LocalFrame(lat0, lon0)
    poly = Polygon(frame.to_xy(np.array([p[1] for p in outline]), np.array([p[0] for p in outline])))
    categories, weights = list(BACKGROUND_MIX), list(BACKGROUND_MIX.values())
    raw: list[tuple[datetime, float, float, str, str | None]] = []
    hour = start.replace(minute=0, second=0, microsecond=0)
    while hour < end:
        local = hour.astimezone(tz)
        how = local.weekday() * 24 + local.hour
        for _ in range(_poisson(rng, background_per_day / 24)):
            (x, y), at = _uniform_in(poly, rng, 1)[0], hour + timedelta(seconds=rng.uniform(0, 3600))
            bg_lat, bg_lon = frame.to_latlon(np.array([x, y]))
            raw.append((at, float(bg_lat), float(bg_lon), rng.choices(categories, weights)[0], None))
        for spot in hotspots:
            if not spot.active(how):
                continue
            for _ in range(_poisson(rng, spot.rate_per_hour)):
                at = hour + timedelta(seconds=rng.uniform(0, 3600))
                if spot.cell is not None:
                    lat, lon = _in_cell(spot.cell, rng)
                else:
                    assert spot.center is not None
                    r, a = spot.radius_m * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
                    la, lo = LocalFrame(*spot.center).to_latlon(np.array([r * math.cos(a), r * math.sin(a)]))
                    lat, lon = float(la), float(lo)
                raw.append((at, lat, lon, spot.category, spot.name))
        hour += timedelta(hours=1)
    raw = [(r[0].replace(microsecond=0), *r[1:]) for r in raw]
    raw = [r for r in raw if start <= r[0] < end]
    raw.sort(key=lambda r: (r[0], r[1], r[2]))
    incidents = [
        Incident(i, at, round(lat, 7), round(lon, 7), cat, name) for i, (at, lat, lon, cat, name) in enumerate(raw)
    ]
    return IncidentSet(
        incidents=incidents,
        hotspots=list(hotspots),
        background_per_day=background_per_day,
        start=start,
        end=end,
        counts=Counter(i.hotspot for i in incidents),
    )


def default_hotspots(commercial: tuple[tuple[tuple[float, float], ...], ...]) -> list[Hotspot]:
    """Three clusters a station would recognise: weekend-evening thefts in the first commercial
    centre, weekday-morning fraud leaflets in the second, late-night fights between them."""
    centres = [(sum(p[1] for p in ring) / len(ring), sum(p[0] for p in ring) / len(ring)) for ring in commercial]
    spots = [
        Hotspot(
            "evening-theft",
            "theft",
            hours([4, 5, 6], [(19, 23)]),
            rate_per_hour=1.5,
            center=centres[0],
            radius_m=110.0,
        )
    ]
    if len(centres) > 1:
        spots.append(
            Hotspot(
                "morning-fraud",
                "telecom_fraud",
                hours(range(5), [(9, 12)]),
                rate_per_hour=1.0,
                cell=h3.latlng_to_cell(*centres[1], 9),
            )
        )
        mid = ((centres[0][0] + centres[1][0]) / 2 - 0.004, (centres[0][1] + centres[1][1]) / 2)
        spots.append(
            Hotspot("night-fights", "fight_dispute", hours(range(7), [(22, 2)]), rate_per_hour=0.8, center=mid)
        )
    return spots
