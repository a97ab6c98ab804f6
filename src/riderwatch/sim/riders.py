"""Riders doing delivery rounds: shifts, orders, movement along the streets, GPS noise and gaps.

Each rider works planned shifts from a station. On duty and free, a rider gets orders at a rate that
follows the meal hours; an order takes them to the restaurant (waiting there until the food is
ready), then along the fastest streets to the customer (a few minutes inside the building), then
back toward the station, where the next order may reach them on the way.

Everything is computed per tick for all riders at once with numpy; only riders whose state changes
in a tick go through Python. Legs are polylines appended to one pool whose keys (a running base
plus the distance along the leg) increase monotonically, so one searchsorted finds every moving
rider's segment.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from riderwatch.sim.incidents import Incident
from riderwatch.sim.network import KIND_SPEED
from riderwatch.sim.world import World

OFF, IDLE, TO_RESTAURANT, AT_RESTAURANT, TO_CUSTOMER, AT_CUSTOMER, TO_STATION = range(7)
STATE_NAMES = ("off", "idle", "to_restaurant", "at_restaurant", "to_customer", "at_customer", "to_station")
MOVING = (TO_RESTAURANT, TO_CUSTOMER, TO_STATION)

# Orders per free rider per hour, by local hour: the lunch (11–13) and dinner (17–20) peaks.
DEMAND = np.array(
    [0.4, 0.25, 0.15, 0.1, 0.1, 0.1, 0.3, 0.7, 0.8, 0.8, 1.4, 4.5, 4.8, 2.0, 0.9, 0.8,
     1.1, 3.6, 4.5, 3.8, 1.8, 1.1, 0.9, 0.6]
)  # fmt: skip
# Shift patterns (local [from, to) hours) and how many riders work each.
PATTERNS: list[tuple[float, tuple[tuple[float, float], ...]]] = [
    (0.45, ((10.0, 14.0), (16.5, 21.0))),
    (0.25, ((9.5, 20.5),)),
    (0.2, ((16.0, 23.5),)),
    (0.1, ((10.0, 14.5),)),
]
DAY_OFF = 0.14
# A rider stops taking orders this long before the shift ends, so rounds end before the shift does.
LAST_ORDER_S = 50 * 60
WALK_MPS = 1.3
# Even the fastest riders on modified e-bikes rarely hold more than about 32 km/h in town.
MAX_SPEED_MPS = 9.0
MAX_ROUTE_S = 15 * 60  # customers are at most about 15 minutes' ride from the restaurant
INCIDENT_SIGHT_M = 120.0
INCIDENT_WINDOW_S = 2 * 3600


@dataclass(frozen=True)
class SimConfig:
    seed: int
    start: datetime
    duration: timedelta
    riders: tuple[str, ...]
    interval_s: float = 15.0
    rider_stations: tuple[tuple[str, str], ...] = ()  # (username, station code) where the caller knows it

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise ValueError("start needs a timezone")
        if self.duration <= timedelta(0) or self.interval_s <= 0:
            raise ValueError("duration and interval must be positive")
        if len(set(self.riders)) != len(self.riders):
            raise ValueError("rider usernames must be unique")

    @property
    def end(self) -> datetime:
        return self.start + self.duration


@dataclass(frozen=True)
class Shift:
    rider: str
    start: datetime
    end: datetime
    # The rider stops taking orders this long before the planned end (which may lie past the run's).
    orders_until: datetime


@dataclass(frozen=True)
class DutyChange:
    rider: str
    on_duty: bool
    at: datetime


@dataclass(frozen=True)
class OrderEvent:
    order: int
    rider: str
    stage: str  # assigned, picked_up, delivered
    at: datetime
    lat: float
    lon: float
    place: str  # station, road, restaurant, customer
    restaurant: int


@dataclass(frozen=True)
class ClueReport:
    rider: str
    incident: Incident
    at: datetime  # when the rider reports it
    lat: float
    lon: float


@dataclass
class Pings:
    """The positions one tick produced; arrays of equal length, heading NaN when standing still."""

    rider: NDArray[np.int64]
    ts: NDArray[np.float64]  # Unix seconds
    lat: NDArray[np.float64]
    lon: NDArray[np.float64]
    speed_mps: NDArray[np.float64]
    heading: NDArray[np.float64]
    accuracy_m: NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.rider)


@dataclass
class Tick:
    t: datetime
    pings: Pings
    duty: list[DutyChange] = field(default_factory=list)
    orders: list[OrderEvent] = field(default_factory=list)
    clues: list[ClueReport] = field(default_factory=list)


def _rider_rng(seed: int, username: str, what: str) -> random.Random:
    return random.Random(f"{seed}:{what}:{username}")


def plan_shifts(config: SimConfig, timezone: str) -> list[Shift]:
    """Every rider's shifts inside the run, from the seed (one rider's plan does not depend on the others)."""
    tz = ZoneInfo(timezone)
    first = config.start.astimezone(tz).date() - timedelta(days=1)
    last = config.end.astimezone(tz).date()
    shifts: list[Shift] = []
    for name in config.riders:
        rng = _rider_rng(config.seed, name, "shifts")
        pattern = rng.choices([p[1] for p in PATTERNS], [p[0] for p in PATTERNS])[0]
        day = first
        while day <= last:
            off = rng.random() < DAY_OFF
            for a, b in pattern:
                ja, jb = rng.gauss(0, 15), rng.gauss(0, 15)
                if off:
                    continue
                start = _local(day, a, tz) + timedelta(minutes=ja)
                end = _local(day, b, tz) + timedelta(minutes=jb)
                last_order = end - timedelta(seconds=LAST_ORDER_S)
                start, end = max(start, config.start), min(end, config.end)
                if end - start >= timedelta(minutes=20):
                    shifts.append(Shift(name, start, end, last_order))
            day += timedelta(days=1)
    shifts.sort(key=lambda s: (s.start, s.rider))
    return shifts


def _local(day: date, hour: float, tz: ZoneInfo) -> datetime:
    h = int(hour)
    return datetime.combine(day, time(h, round((hour - h) * 60)), tzinfo=tz)


class _LegPool:
    """Polylines of all current legs in one growing array; compacted when it fills."""

    def __init__(self, capacity: int) -> None:
        self.key = np.zeros(capacity)
        self.xy = np.zeros((capacity, 2))
        self.speed = np.zeros(capacity)  # free-flow speed of the segment starting at each point
        self.node = np.full(capacity, -1, dtype=np.int64)
        self.size = 0
        self.next_base = 0.0

    def add(self, xy: NDArray[np.float64], speed: NDArray[np.float64], node: NDArray[np.int64]) -> tuple[int, float]:
        n = len(xy)
        if self.size + n > len(self.key):
            raise OverflowError
        cum = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(xy, axis=0), axis=1))])
        base = self.next_base
        sl = slice(self.size, self.size + n)
        self.key[sl], self.xy[sl], self.speed[sl], self.node[sl] = base + cum, xy, speed, node
        off = self.size
        self.size += n
        self.next_base = base + cum[-1] + 1.0
        return off, float(cum[-1])

    def compact(self, offsets: NDArray[np.int64], counts: NDArray[np.int64], live: NDArray[np.bool_]) -> None:
        """Keep the live legs (in pool order, so keys stay sorted); rewrites their offsets in place."""
        order = np.flatnonzero(live)
        order = order[np.argsort(offsets[order], kind="stable")]
        pos = 0
        for r in order.tolist():
            o, n = int(offsets[r]), int(counts[r])
            sl, dst = slice(o, o + n), slice(pos, pos + n)
            self.key[dst], self.xy[dst], self.speed[dst], self.node[dst] = (
                self.key[sl].copy(),
                self.xy[sl].copy(),
                self.speed[sl].copy(),
                self.node[sl].copy(),
            )
            offsets[r] = pos
            pos += n
        self.size = pos
        if self.key.size < 4 * max(pos, 1):
            grow = len(self.key) * 2
            for name in ("key", "speed"):
                arr = getattr(self, name)
                setattr(self, name, np.concatenate([arr, np.zeros(grow - len(arr))]))
            self.xy = np.concatenate([self.xy, np.zeros((grow - len(self.xy), 2))])
            self.node = np.concatenate([self.node, np.full(grow - len(self.node), -1, dtype=np.int64)])


class Simulation:
    """The riders of one run; `ticks()` yields what happened in each interval, in time order."""

    def __init__(self, config: SimConfig, world: World, incidents: Sequence[Incident] = ()) -> None:
        self.config, self.world = config, world
        self.tz = ZoneInfo(world.spec.timezone)
        self.incidents = sorted(incidents, key=lambda i: i.at)
        self.shifts = plan_shifts(config, world.spec.timezone)
        net = world.network
        self._edge_kind = {}
        for (a, b), k in zip(net.edges.tolist(), net.kind.tolist(), strict=True):
            self._edge_kind[(a, b)] = self._edge_kind[(b, a)] = k
        codes = [s.code for s in world.spec.stations]
        weights = [s.weight for s in world.spec.stations]
        known = dict(config.rider_stations)
        station_of = []
        for name in config.riders:
            code = known.get(name)
            if code not in codes:
                code = _rider_rng(config.seed, name, "station").choices(codes, weights)[0]
            station_of.append(codes.index(code))
        self.station_index = np.array(station_of, dtype=np.int64)
        # Travel time from each restaurant to every node, for choosing restaurants and customers.
        self.rest_time = np.stack([world.tree(int(n)).time_s for n in world.restaurant_nodes])

    # Movement ---------------------------------------------------------------------------------

    def _leg_arrays(
        self, nodes: list[int], start_xy: NDArray[np.float64], first_speed: float
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
        """Points, segment speeds and node ids of a leg; it starts from where the rider stands."""
        xy = self.world.network.xy[nodes]
        node = np.array(nodes, dtype=np.int64)
        speed = np.array([KIND_SPEED[self._edge_kind[(a, b)]] for a, b in itertools.pairwise(nodes)] + [WALK_MPS])
        if float(np.hypot(*(start_xy - xy[0]))) > 0.5:
            xy = np.vstack([start_xy, xy])
            node = np.concatenate([[-1], node])
            speed = np.concatenate([[first_speed], speed])
        if len(xy) == 1:
            xy, node, speed = np.vstack([xy, xy]), np.concatenate([node, node]), np.concatenate([speed, speed])
        return xy, speed, node

    def ticks(self) -> Iterator[Tick]:
        cfg, world, net = self.config, self.world, self.world.network
        n = len(cfg.riders)
        names = cfg.riders
        rng = np.random.default_rng(random.Random(f"{cfg.seed}:riders").getrandbits(64))
        t0 = cfg.start.timestamp()
        dt = cfg.interval_s
        steps = math.ceil(cfg.duration.total_seconds() / dt)
        station_nodes = world.station_nodes[self.station_index]

        state = np.zeros(n, dtype=np.int8)
        pos = net.xy[station_nodes].copy()
        at_node = station_nodes.copy()
        factor = np.clip(rng.normal(1.0, 0.12, n), 0.75, 1.3)
        phase = rng.uniform(0, dt, n)
        wait_until = np.zeros(n)
        gap_until = np.full(n, -1.0)
        shift_end = np.zeros(n)
        leg_off = np.zeros(n, dtype=np.int64)
        leg_n = np.zeros(n, dtype=np.int64)
        leg_base = np.zeros(n)
        leg_len = np.zeros(n)
        s = np.zeros(n)
        order_id = np.full(n, -1, dtype=np.int64)
        order_rest = np.zeros(n, dtype=np.int64)
        order_customer = np.zeros(n, dtype=np.int64)
        order_ready = np.zeros(n)
        heading = np.full(n, np.nan)
        speed_now = np.zeros(n)
        pool = _LegPool(max(4096, n * 64))
        index = {name: i for i, name in enumerate(names)}
        shift_start_t = np.array([sh.start.timestamp() - t0 for sh in self.shifts])
        shift_end_t = np.array([sh.end.timestamp() - t0 for sh in self.shifts])
        shift_rider = np.array([index[sh.rider] for sh in self.shifts], dtype=np.int64)
        shift_orders_t = np.array([sh.orders_until.timestamp() - t0 for sh in self.shifts])
        orders_until = np.zeros(n)
        next_shift = 0
        next_order = 0
        pending: list[Incident] = []
        next_incident = 0
        rest_nodes = world.restaurant_nodes
        rest_weight = world.restaurant_weight
        cust_weight = world.customer_weight

        def start_leg(r: int, nodes: list[int], new_state: int, first_speed: float = WALK_MPS * 2) -> None:
            xy, speed, node = self._leg_arrays(nodes, pos[r], first_speed)
            try:
                off, length = pool.add(xy, speed, node)
            except OverflowError:
                live = np.isin(state, MOVING)
                live[r] = False
                pool.compact(leg_off, leg_n, live)
                off, length = pool.add(xy, speed, node)
            leg_off[r], leg_n[r], leg_base[r], leg_len[r] = off, len(xy), pool.key[off], length
            s[r] = 0.0
            state[r] = new_state

        def latlon(xy: NDArray[np.float64]) -> tuple[float, float]:
            lat, lon = net.frame.to_latlon(xy)
            return round(float(lat), 7), round(float(lon), 7)

        def when(t: float) -> datetime:
            return datetime.fromtimestamp(t0 + t, tz=cfg.start.tzinfo)

        for step in range(steps + 1):
            t = step * dt
            now = when(t)
            tick = Tick(t=now, pings=_empty_pings())
            local_hour = now.astimezone(self.tz).hour
            fresh = np.zeros(n, dtype=bool)

            # Shifts end, then begin (a rider's split shift may end and start again later the same day).
            ending = np.flatnonzero((state != OFF) & (shift_end <= t))
            for r in ending.tolist():
                state[r] = OFF
                order_id[r] = -1
                tick.duty.append(DutyChange(names[r], False, when(shift_end[r])))
            while next_shift < len(self.shifts) and shift_start_t[next_shift] <= t:
                r = int(shift_rider[next_shift])
                if state[r] != OFF:
                    # Shifts that touch (jitter) are one stretch on duty.
                    shift_end[r] = max(shift_end[r], shift_end_t[next_shift])
                    orders_until[r] = max(orders_until[r], shift_orders_t[next_shift])
                elif shift_end_t[next_shift] > t:
                    state[r], at_node[r] = IDLE, station_nodes[r]
                    pos[r] = net.xy[station_nodes[r]] + rng.normal(0, 6, 2)
                    shift_end[r] = shift_end_t[next_shift]
                    orders_until[r] = shift_orders_t[next_shift]
                    fresh[r] = True
                    heading[r], speed_now[r] = np.nan, 0.0
                    tick.duty.append(DutyChange(names[r], True, when(shift_start_t[next_shift])))
                next_shift += 1

            # Waits end: food picked up, or the customer has it.
            done = np.flatnonzero(np.isin(state, (AT_RESTAURANT, AT_CUSTOMER)) & (wait_until <= t))
            for r in done.tolist():
                if state[r] == AT_RESTAURANT:
                    ri = int(order_rest[r])
                    rnode = int(rest_nodes[ri])
                    lat, lon = latlon(net.xy[rnode])
                    tick.orders.append(
                        OrderEvent(int(order_id[r]), names[r], "picked_up", now, lat, lon, "restaurant", ri)
                    )
                    start_leg(r, world.tree(rnode).path_to(int(order_customer[r])), TO_CUSTOMER)
                else:
                    cnode = int(order_customer[r])
                    lat, lon = latlon(net.xy[cnode])
                    tick.orders.append(
                        OrderEvent(
                            int(order_id[r]), names[r], "delivered", now, lat, lon, "customer", int(order_rest[r])
                        )
                    )
                    order_id[r] = -1
                    home = int(station_nodes[r])
                    path = world.tree(home).path_to(cnode)
                    if len(path) <= 1:
                        state[r], at_node[r] = IDLE, home
                    else:
                        start_leg(r, path, TO_STATION)

            # New orders reach free riders (at the station or riding back to it), more at meal times.
            free = np.flatnonzero(np.isin(state, (IDLE, TO_STATION)) & (t < orders_until) & ~fresh)
            if len(free):
                p = 1.0 - math.exp(-DEMAND[local_hour] * dt / 3600.0)
                for r in free[rng.random(len(free)) < p].tolist():
                    i = 0
                    if state[r] == IDLE:
                        here, place = int(at_node[r]), "station" if at_node[r] == station_nodes[r] else "road"
                    else:
                        i = _segment(pool, leg_base[r] + s[r], int(leg_off[r]), int(leg_n[r]))
                        here, place = int(pool.node[i + 1]), "road"
                    w = rest_weight * np.exp(-self.rest_time[:, here] / 240.0)
                    ri = int(rng.choice(len(rest_nodes), p=w / w.sum()))
                    rnode = int(rest_nodes[ri])
                    times = self.rest_time[ri]
                    cw = cust_weight * np.exp(-times / 300.0) * (times < MAX_ROUTE_S) * (times > 45)
                    cnode = int(rng.choice(len(cw), p=cw / cw.sum()))
                    order_id[r], order_rest[r], order_customer[r] = next_order, ri, cnode
                    order_ready[r] = t + rng.uniform(6, 18) * 60
                    lat, lon = latlon(pos[r])
                    tick.orders.append(OrderEvent(next_order, names[r], "assigned", now, lat, lon, place, ri))
                    next_order += 1
                    path = world.tree(rnode).path_to(here)[::-1]
                    # A rider riding back is re-routed from where they are, through the junction ahead.
                    first = float(pool.speed[i]) if state[r] == TO_STATION else WALK_MPS * 2
                    start_leg(r, path, TO_RESTAURANT, first)

            # Movement along the current legs.
            moving = np.flatnonzero(np.isin(state, MOVING))
            if len(moving):
                key_all = pool.key[: pool.size]
                seg_i = _segments(key_all, leg_base[moving] + s[moving], leg_off[moving], leg_n[moving])
                peak = 0.88 if DEMAND[local_hour] > 2 else 1.0
                v = pool.speed[seg_i] * factor[moving] * peak * np.clip(rng.normal(1, 0.08, len(moving)), 0.7, 1.3)
                v = np.minimum(v, MAX_SPEED_MPS)
                new_s = np.minimum(s[moving] + v * dt, leg_len[moving])
                moved = new_s - s[moving]
                s[moving] = new_s
                seg_i = _segments(key_all, leg_base[moving] + new_s, leg_off[moving], leg_n[moving])
                a, b = pool.xy[seg_i], pool.xy[seg_i + 1]
                seg = b - a
                seg_len = np.maximum(np.linalg.norm(seg, axis=1), 1e-9)
                frac = np.clip((leg_base[moving] + new_s - pool.key[seg_i]) / seg_len, 0.0, 1.0)
                pos[moving] = a + seg * frac[:, None]
                heading[moving] = (np.degrees(np.arctan2(seg[:, 0], seg[:, 1])) + 360.0) % 360.0
                speed_now[moving] = moved / dt
                arrived = moving[new_s >= leg_len[moving] - 1e-6]
                for r in arrived.tolist():
                    end_node = int(pool.node[leg_off[r] + leg_n[r] - 1])
                    at_node[r] = end_node
                    heading[r], speed_now[r] = np.nan, 0.0
                    if state[r] == TO_RESTAURANT:
                        state[r] = AT_RESTAURANT
                        wait_until[r] = max(t, order_ready[r]) + rng.uniform(1, 3) * 60
                    elif state[r] == TO_CUSTOMER:
                        state[r] = AT_CUSTOMER
                        wait_until[r] = t + rng.uniform(1.5, 5) * 60
                        # Into the building: the phone is off the street for the handover.
                        angle = rng.uniform(0, 2 * math.pi)
                        pos[r] = pos[r] + rng.uniform(8, 30) * np.array([math.cos(angle), math.sin(angle)])
                    else:
                        state[r] = IDLE
            standing = np.flatnonzero(np.isin(state, (IDLE, AT_RESTAURANT, AT_CUSTOMER)))
            speed_now[standing] = 0.0

            # Pings: GPS noise (worse among tall buildings and indoors), dropouts and longer gaps.
            on = np.flatnonzero((state != OFF) & ~fresh)
            if len(on):
                indoor = np.isin(state[on], (AT_RESTAURANT, AT_CUSTOMER))
                start_gap = rng.random(len(on)) < np.where(indoor, 0.05, 0.003)
                gap_len = rng.exponential(np.where(indoor, 150.0, 60.0)) + dt
                gap_until[on[start_gap]] = t + gap_len[start_gap]
                send = on[(gap_until[on] <= t) & (rng.random(len(on)) > 0.03)]
                if len(send):
                    near = net.node_kind[at_node[send]] == 1
                    sigma = 3.5 * np.where(np.isin(state[send], (AT_RESTAURANT, AT_CUSTOMER)), 3.0, 1.0)
                    sigma = sigma * np.where(near, 2.0, 1.0)
                    noise = rng.normal(0.0, 1.0, (len(send), 2)) * sigma[:, None]
                    outlier = rng.random(len(send)) < 0.002
                    noise[outlier] *= rng.uniform(8, 20, (int(outlier.sum()), 1))
                    p_lat, p_lon = net.frame.to_latlon(pos[send] + noise)
                    spd = np.maximum(speed_now[send] * rng.normal(1, 0.05, len(send)), 0.0)
                    spd = np.where(speed_now[send] > 0, spd, np.abs(rng.normal(0, 0.2, len(send)))).astype(float)
                    tick.pings = Pings(
                        rider=send,
                        ts=np.round(t0 + t - phase[send], 3),
                        lat=np.round(p_lat, 7),
                        lon=np.round(p_lon, 7),
                        speed_mps=(np.rint(spd * 100) / 100).astype(np.float64),
                        heading=np.round(heading[send], 1),
                        accuracy_m=np.round(sigma * rng.uniform(1.2, 1.8, len(send)), 1),
                    )

            # Incidents: the first rider on duty who passes close by reports it.
            while next_incident < len(self.incidents) and self.incidents[next_incident].at.timestamp() <= t0 + t:
                pending.append(self.incidents[next_incident])
                next_incident += 1
            if pending:
                awake = np.flatnonzero((state != OFF) & ~fresh)
                keep: list[Incident] = []
                for inc in pending:
                    age = t0 + t - inc.at.timestamp()
                    if age > INCIDENT_WINDOW_S:
                        continue
                    if len(awake):
                        ixy = net.frame.to_xy(inc.lat, inc.lon)
                        d = np.hypot(*(pos[awake] - ixy).T)
                        j = int(np.argmin(d))
                        if d[j] <= INCIDENT_SIGHT_M:
                            r = int(awake[j])
                            lat, lon = latlon(pos[r])
                            tick.clues.append(ClueReport(names[r], inc, now, lat, lon))
                            continue
                    keep.append(inc)
                pending = keep
            yield tick


def _segment(pool: _LegPool, key: float, off: int, count: int) -> int:
    i = int(np.searchsorted(pool.key[: pool.size], key, side="right")) - 1
    return min(max(i, off), off + count - 2)


def _segments(
    keys: NDArray[np.float64], at: NDArray[np.float64], off: NDArray[np.int64], count: NDArray[np.int64]
) -> NDArray[np.int64]:
    i = np.searchsorted(keys, at, side="right") - 1
    return np.clip(i, off, off + count - 2)


def _empty_pings() -> Pings:
    e = np.zeros(0)
    return Pings(np.zeros(0, dtype=np.int64), e, e, e, e, e, e)
