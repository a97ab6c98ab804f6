"""The simulated district: its outline, commercial centres, delivery stations, restaurants, customers.

The default spec is the demo district (Zhenhai, Licheng, Putian) as RiderWatch's demo loads it; a
caller that knows another district passes its own spec. Restaurants crowd the commercial centres
and line the arterials; customers live in the residential compounds and work in the centres.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import Polygon

from riderwatch.sim.network import (
    ARTERIAL,
    COMMERCIAL,
    COMMERCIAL_RADIUS_M,
    LANE,
    LocalFrame,
    ShortestPaths,
    StreetNetwork,
    generate_network,
)


@dataclass(frozen=True)
class StationSpec:
    code: str
    platform: str
    lat: float
    lon: float
    weight: float = 1.0  # share of riders working from the station


@dataclass(frozen=True)
class DistrictSpec:
    name: str
    outline: tuple[tuple[float, float], ...]  # (lon, lat)
    commercial: tuple[tuple[tuple[float, float], ...], ...]  # rings of (lon, lat): the pilot districts
    stations: tuple[StationSpec, ...]
    restaurants: int = 140
    timezone: str = "Asia/Shanghai"


ZHENHAI = DistrictSpec(
    name="zhenhai",
    outline=(
        (118.9915, 25.4190),
        (119.0080, 25.4155),
        (119.0265, 25.4170),
        (119.0320, 25.4290),
        (119.0290, 25.4460),
        (119.0120, 25.4475),
        (118.9950, 25.4440),
        (118.9895, 25.4310),
    ),
    commercial=(
        # Jinding 金鼎
        ((119.0035, 25.4318), (119.0085, 25.4320), (119.0090, 25.4350), (119.0060, 25.4362), (119.0032, 25.4345)),
        # Zhengrong Fortune Center 正荣财富中心
        ((119.0168, 25.4330), (119.0204, 25.4332), (119.0206, 25.4360), (119.0185, 25.4366), (119.0166, 25.4355)),
    ),
    stations=(
        StationSpec("mt-jinding", "meituan", 25.4340, 119.0048, 3),
        StationSpec("mt-zhengrong", "meituan", 25.4352, 119.0172, 3),
        StationSpec("mt-dongyang", "meituan", 25.4228, 119.0230, 2),
        StationSpec("elm-jinding", "eleme", 25.4325, 119.0075, 2.5),
        StationSpec("elm-zhengrong", "eleme", 25.4338, 119.0198, 2.5),
        StationSpec("elm-yinglong", "eleme", 25.4392, 118.9985, 1.5),
    ),
)


@dataclass
class World:
    spec: DistrictSpec
    network: StreetNetwork
    outline_xy: Polygon
    commercial_xy: list[Polygon]
    station_nodes: NDArray[np.int64]
    restaurant_nodes: NDArray[np.int64]
    restaurant_weight: NDArray[np.float64]
    restaurant_in_centre: NDArray[np.bool_]
    customer_weight: NDArray[np.float64]  # per node
    trees: dict[int, ShortestPaths] = field(repr=False)  # from every station and restaurant node

    def tree(self, node: int) -> ShortestPaths:
        return self.trees[node]


def _ring_xy(frame: LocalFrame, ring: tuple[tuple[float, float], ...]) -> Polygon:
    lon = np.array([p[0] for p in ring])
    lat = np.array([p[1] for p in ring])
    return Polygon(frame.to_xy(lat, lon))


@lru_cache(maxsize=4)
def build_world(spec: DistrictSpec = ZHENHAI, seed: int = 1) -> World:
    """The network and everything placed on it; the same spec and seed give the same world."""
    lon0 = float(np.mean([p[0] for p in spec.outline]))
    lat0 = float(np.mean([p[1] for p in spec.outline]))
    frame = LocalFrame(lat0, lon0)
    outline = _ring_xy(frame, spec.outline)
    centres = [_ring_xy(frame, ring) for ring in spec.commercial]
    net = generate_network(outline, centres, frame, seed)
    rng = np.random.default_rng(random.Random(f"{seed}:world").getrandbits(64))

    station_nodes = np.array(
        [net.nearest_node(*frame.to_xy(s.lat, s.lon).tolist()) for s in spec.stations], dtype=np.int64
    )
    # Restaurants: most in the commercial centres (food streets, malls), the rest in street-front
    # shops along the arterials; a few chains take a large share of orders.
    in_centre = np.zeros(net.node_count, dtype=bool)
    for poly in centres:
        grown = poly.buffer(COMMERCIAL_RADIUS_M * 0.6)
        in_centre |= shapely.contains_xy(grown, net.xy[:, 0], net.xy[:, 1])
    centre_nodes = np.flatnonzero(in_centre & (net.node_kind != LANE))
    street_nodes = np.flatnonzero(~in_centre & (net.node_kind == ARTERIAL))
    n_centre = min(len(centre_nodes), round(spec.restaurants * 0.62))
    n_street = min(len(street_nodes), spec.restaurants - n_centre)
    chosen_centre = rng.choice(centre_nodes, size=n_centre, replace=n_centre > len(centre_nodes))
    chosen_street = rng.choice(street_nodes, size=n_street, replace=False)
    restaurant_nodes = np.concatenate([chosen_centre, chosen_street]).astype(np.int64)
    restaurant_in_centre = np.concatenate([np.ones(n_centre, bool), np.zeros(n_street, bool)])
    restaurant_weight = rng.pareto(1.6, size=len(restaurant_nodes)) + 0.3
    restaurant_weight[restaurant_in_centre] *= 1.8

    # Customers: homes in the compounds, offices in the centres; few live on the arterials.
    customer_weight = np.where(
        net.node_kind == LANE, 1.0, np.where(net.node_kind == COMMERCIAL, 0.7, 0.25)
    ) * rng.uniform(0.5, 1.5, net.node_count)

    adjacency = net.adjacency()
    sources = sorted({int(n) for n in np.concatenate([station_nodes, restaurant_nodes])})
    trees = {s: net.shortest_paths(s, adjacency) for s in sources}
    return World(
        spec=spec,
        network=net,
        outline_xy=outline,
        commercial_xy=centres,
        station_nodes=station_nodes,
        restaurant_nodes=restaurant_nodes,
        restaurant_weight=restaurant_weight,
        restaurant_in_centre=restaurant_in_centre,
        customer_weight=customer_weight,
        trees=trees,
    )
