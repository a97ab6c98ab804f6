"""A generated street network for a district: arterial roads, commercial streets, residential lanes.

Chinese city districts share a shape: a coarse grid of arterial roads a few hundred metres apart,
dense street blocks around commercial centres, and walled residential compounds (小区) reached by a
few internal lanes. The generator builds that from a jittered lattice in a local metric frame and
keeps the largest connected part, so every node can reach every other.
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import Polygon

ARTERIAL, COMMERCIAL, LANE = 0, 1, 2
KIND_NAMES = ("arterial", "commercial", "lane")
# Free-flow e-bike speeds (m/s): the legal limit for e-bikes is 25 km/h and riders on arterials
# ride about that; commercial streets are crowded, compound lanes narrow with gates and speed bumps.
KIND_SPEED = np.array([7.0, 4.5, 3.8])

LATTICE_M = 70.0
ARTERIAL_EVERY = 6
COMMERCIAL_RADIUS_M = 260.0


@dataclass(frozen=True)
class LocalFrame:
    """An equirectangular projection around a point: exact enough (centimetres) over a district."""

    lat0: float
    lon0: float

    @property
    def _kx(self) -> float:
        return 111_320.0 * math.cos(math.radians(self.lat0))

    _ky = 110_574.0

    def to_xy(self, lat: NDArray[np.float64] | float, lon: NDArray[np.float64] | float) -> NDArray[np.float64]:
        lat_a, lon_a = np.asarray(lat, dtype=float), np.asarray(lon, dtype=float)
        return np.stack([(lon_a - self.lon0) * self._kx, (lat_a - self.lat0) * self._ky], axis=-1)

    def to_latlon(self, xy: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        xy = np.asarray(xy, dtype=float)
        return self.lat0 + xy[..., 1] / self._ky, self.lon0 + xy[..., 0] / self._kx


@dataclass(frozen=True)
class ShortestPaths:
    """Travel times and predecessor nodes from one source over the network (undirected)."""

    source: int
    time_s: NDArray[np.float64]
    pred: NDArray[np.int32]

    def path_to(self, target: int) -> list[int]:
        """Nodes from the source to the target."""
        nodes = [target]
        while nodes[-1] != self.source:
            prev = int(self.pred[nodes[-1]])
            if prev < 0:
                raise ValueError(f"node {target} cannot be reached from {self.source}")
            nodes.append(prev)
        nodes.reverse()
        return nodes


@dataclass(frozen=True)
class StreetNetwork:
    frame: LocalFrame
    xy: NDArray[np.float64]  # (nodes, 2) metres east and north of the frame's origin
    edges: NDArray[np.int32]  # (edges, 2) node indexes
    kind: NDArray[np.int8]  # ARTERIAL, COMMERCIAL or LANE per edge
    length_m: NDArray[np.float64]
    node_kind: NDArray[np.int8]  # the busiest kind of street meeting at each node

    @property
    def node_count(self) -> int:
        return len(self.xy)

    def latlon(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        return self.frame.to_latlon(self.xy)

    def adjacency(self) -> list[list[tuple[int, float]]]:
        """Neighbours and free-flow travel time (s) per node."""
        adj: list[list[tuple[int, float]]] = [[] for _ in range(self.node_count)]
        times = self.length_m / KIND_SPEED[self.kind]
        for (a, b), t in zip(self.edges.tolist(), times.tolist(), strict=True):
            adj[a].append((b, t))
            adj[b].append((a, t))
        return adj

    def shortest_paths(self, source: int, adjacency: list[list[tuple[int, float]]]) -> ShortestPaths:
        """Dijkstra on free-flow travel time: riders take the fastest way, not the shortest."""
        n = self.node_count
        dist = [math.inf] * n
        pred = [-1] * n
        dist[source] = 0.0
        heap = [(0.0, source)]
        while heap:
            d, u = heapq.heappop(heap)
            if d > dist[u]:
                continue
            for v, w in adjacency[u]:
                nd = d + w
                if nd < dist[v]:
                    dist[v], pred[v] = nd, u
                    heapq.heappush(heap, (nd, v))
        return ShortestPaths(source, np.array(dist), np.array(pred, dtype=np.int32))

    def nearest_node(self, x: float, y: float) -> int:
        return int(np.argmin((self.xy[:, 0] - x) ** 2 + (self.xy[:, 1] - y) ** 2))

    def distance_to_network(self, points: NDArray[np.float64]) -> NDArray[np.float64]:
        """Metres from each point (x, y) to the nearest street segment."""
        lines = shapely.linestrings(np.stack([self.xy[self.edges[:, 0]], self.xy[self.edges[:, 1]]], axis=1))
        tree = shapely.STRtree(lines)
        pts = shapely.points(points)
        _idx, dist = tree.query_nearest(pts, return_distance=True, all_matches=False)
        return np.asarray(dist)


def _components(n: int, edges: NDArray[np.int32]) -> NDArray[np.int64]:
    parent = list(range(n))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in edges.tolist():
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb
    return np.array([find(i) for i in range(n)])


def generate_network(outline: Polygon, commercial: list[Polygon], frame: LocalFrame, seed: int) -> StreetNetwork:
    """Streets covering the outline (in the frame's metres); denser around the commercial polygons."""
    rng = random.Random(f"{seed}:network")
    nrng = np.random.default_rng(rng.getrandbits(64))
    # Putian's street grid does not run north-south: turn the lattice by a few degrees.
    angle = math.radians(rng.uniform(-14.0, 14.0))
    cos, sin = math.cos(angle), math.sin(angle)
    cx, cy = outline.centroid.x, outline.centroid.y
    minx, miny, maxx, maxy = outline.bounds
    half = math.hypot(maxx - minx, maxy - miny) / 2 + LATTICE_M
    k = int(half / LATTICE_M) + 1
    gi, gj = np.meshgrid(np.arange(-k, k + 1), np.arange(-k, k + 1), indexing="ij")
    ii, jj = gi.ravel(), gj.ravel()
    off_i, off_j = rng.randrange(ARTERIAL_EVERY), rng.randrange(ARTERIAL_EVERY)
    art_i = (ii + off_i) % ARTERIAL_EVERY == 0
    art_j = (jj + off_j) % ARTERIAL_EVERY == 0
    u, v = ii * LATTICE_M, jj * LATTICE_M
    # Arterials bend gently; lane junctions wander more (compounds were built one at a time).
    u = u + np.where(art_i, 6.0 * np.sin(v / 500.0 + off_i), nrng.normal(0, 9.0, len(u)))
    v = v + np.where(art_j, 6.0 * np.sin(u / 500.0 + off_j), nrng.normal(0, 9.0, len(v)))
    xy = np.stack([cx + u * cos - v * sin, cy + u * sin + v * cos], axis=1)
    inside = shapely.contains_xy(outline.buffer(25.0), xy[:, 0], xy[:, 1])
    index = {(int(a), int(b)): n for n, (a, b) in enumerate(zip(ii, jj, strict=True))}
    zone = shapely.union_all([p.buffer(COMMERCIAL_RADIUS_M) for p in commercial]) if commercial else Polygon()
    edges: list[tuple[int, int]] = []
    kinds: list[int] = []
    for n, (a, b) in enumerate(zip(ii.tolist(), jj.tolist(), strict=True)):
        if not inside[n]:
            continue
        for da, db in ((1, 0), (0, 1)):
            m = index.get((int(a) + da, int(b) + db))
            if m is None or not inside[m]:
                continue
            # A step along i keeps j fixed: it lies on the arterial when that j-line is one.
            on_arterial = bool(art_j[n] and art_j[m]) if da else bool(art_i[n] and art_i[m])
            mid = (xy[n] + xy[m]) / 2
            if on_arterial:
                kind = ARTERIAL
            elif shapely.contains_xy(zone, mid[0], mid[1]):
                if rng.random() > 0.92:
                    continue
                kind = COMMERCIAL
            else:
                # Compound lanes: about half the lattice, so blocks read as compounds, not a grid.
                if rng.random() > 0.5:
                    continue
                kind = LANE
            edges.append((n, m))
            kinds.append(kind)
    e = np.array(edges, dtype=np.int32)
    roots = _components(len(xy), e)
    used = np.unique(e)
    counts = np.bincount(roots[used])
    keep_root = int(np.argmax(counts))
    keep_edge = roots[e[:, 0]] == keep_root
    e, kind_arr = e[keep_edge], np.array(kinds, dtype=np.int8)[keep_edge]
    nodes = np.unique(e)
    remap = np.full(len(xy), -1, dtype=np.int32)
    remap[nodes] = np.arange(len(nodes), dtype=np.int32)
    e = remap[e]
    new_xy = xy[nodes]
    length = np.linalg.norm(new_xy[e[:, 0]] - new_xy[e[:, 1]], axis=1)
    node_kind = np.full(len(nodes), LANE, dtype=np.int8)
    np.minimum.at(node_kind, e[:, 0], kind_arr)
    np.minimum.at(node_kind, e[:, 1], kind_arr)
    return StreetNetwork(frame=frame, xy=new_xy, edges=e, kind=kind_arr, length_m=length, node_kind=node_kind)
