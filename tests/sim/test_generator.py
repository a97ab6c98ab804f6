"""The generator without a server: scale, reproducibility and whether the tracks look like deliveries."""

from __future__ import annotations

import io
import itertools
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from riderwatch.geo.coords import haversine_m
from riderwatch.sim.network import ARTERIAL, COMMERCIAL, LANE
from riderwatch.sim.riders import MAX_SPEED_MPS, Simulation, Tick
from riderwatch.sim.run import RunPlan, rider_names, write_run
from riderwatch.sim.world import ZHENHAI, build_world

pytestmark = pytest.mark.one_database("sqlite", why="the simulator generates tracks without a database")

TZ = ZoneInfo("Asia/Shanghai")
# A Monday in local time.
MONDAY = datetime(2026, 11, 2, 0, 0, tzinfo=TZ)


def _run(plan: RunPlan) -> list[Tick]:
    sim, _ = plan.simulation()
    return list(sim.ticks())


@pytest.fixture(scope="module")
def day() -> tuple[RunPlan, list[Tick]]:
    plan = RunPlan(seed=11, start=MONDAY, duration=timedelta(days=1), riders=rider_names(60), interval_s=15)
    return plan, _run(plan)


def test_network_is_connected_and_has_every_kind_of_street() -> None:
    world = build_world(ZHENHAI, 11)
    net = world.network
    kinds = Counter(net.kind.tolist())
    assert kinds[ARTERIAL] > 200 and kinds[COMMERCIAL] > 100 and kinds[LANE] > 500
    tree = world.tree(int(world.station_nodes[0]))
    assert np.isfinite(tree.time_s).all(), "every node is reachable from a station"
    # Streets stay inside the district (plus the margin of the outline's buffer).
    _lat, lon = net.latlon()
    min_lon, max_lon = min(p[0] for p in ZHENHAI.outline), max(p[0] for p in ZHENHAI.outline)
    assert min_lon - 0.001 < lon.min() and lon.max() < max_lon + 0.001
    # Restaurants crowd the commercial centres.
    assert world.restaurant_in_centre.mean() > 0.5


def test_ten_thousand_riders_generate_quickly() -> None:
    plan = RunPlan(
        seed=5,
        start=MONDAY + timedelta(hours=11, minutes=30),
        duration=timedelta(minutes=20),
        riders=rider_names(10_000),
    )
    sim, _ = plan.simulation()
    began = time.perf_counter()
    pings = orders = 0
    riders_seen: set[int] = set()
    for tick in sim.ticks():
        pings += len(tick.pings)
        orders += sum(o.stage == "assigned" for o in tick.orders)
        riders_seen.update(tick.pings.rider.tolist())
    elapsed = time.perf_counter() - began
    # At lunch most riders are on duty and ping every 15 s, less gaps; many get an order.
    assert len(riders_seen) > 6_000
    assert pings > 6_000 * 60
    assert orders > 1_000
    assert elapsed < 30, f"{elapsed:.1f} s for 10,000 riders × 20 minutes"


def test_same_seed_same_output_and_another_seed_differs() -> None:
    def jsonl(seed: int) -> str:
        plan = RunPlan(
            seed=seed, start=MONDAY + timedelta(hours=10), duration=timedelta(hours=3), riders=rider_names(15)
        )
        buf = io.StringIO()
        write_run(RunPlan(**{**plan.__dict__, "incidents": True}), buf)
        return buf.getvalue()

    first = jsonl(3)
    assert first == jsonl(3)
    assert first != jsonl(4)
    assert first.count('"type":"ping"') > 1000


def test_speeds_stay_realistic(day: tuple[RunPlan, list[Tick]]) -> None:
    _, ticks = day
    speed = np.concatenate([t.pings.speed_mps for t in ticks])
    assert speed.max() < MAX_SPEED_MPS * 1.3
    assert np.percentile(speed, 99) <= MAX_SPEED_MPS * 1.05
    moving = speed[speed > 1.0]
    assert 3.0 < float(np.median(moving)) < 8.0, "e-bikes in town: about 10–30 km/h"
    # Between consecutive fixes riders rarely seem faster than an e-bike (GPS noise aside).
    track: dict[int, list[tuple[float, float, float]]] = defaultdict(list)
    for t in ticks:
        p = t.pings
        for r, ts, la, lo in zip(p.rider.tolist(), p.ts.tolist(), p.lat.tolist(), p.lon.tolist(), strict=True):
            track[r].append((ts, la, lo))
    implied = [
        haversine_m(a[1], a[2], b[1], b[2]) / (b[0] - a[0])
        for pts in track.values()
        for a, b in itertools.pairwise(pts)
        if b[0] - a[0] <= 20
    ]
    assert np.percentile(implied, 99) < 10.0
    # The server refuses jumps faster than 40 m/s plus 150 m: no simulated fix may be one.
    jumps = [
        haversine_m(a[1], a[2], b[1], b[2]) - 40.0 * (b[0] - a[0])
        for pts in track.values()
        for a, b in itertools.pairwise(pts)
    ]
    assert max(jumps) < 150.0


def test_points_lie_on_or_near_streets(day: tuple[RunPlan, list[Tick]]) -> None:
    plan, ticks = day
    world = build_world(plan.spec, plan.seed)
    lat = np.concatenate([t.pings.lat for t in ticks])
    lon = np.concatenate([t.pings.lon for t in ticks])
    d = world.network.distance_to_network(world.network.frame.to_xy(lat, lon))
    assert np.percentile(d, 50) < 10
    assert np.percentile(d, 99) < 60
    assert d.max() < 200


def test_busier_at_lunch_and_dinner(day: tuple[RunPlan, list[Tick]]) -> None:
    _, ticks = day
    orders: Counter[int] = Counter()
    pings: Counter[int] = Counter()
    for t in ticks:
        hour = t.t.astimezone(TZ).hour
        orders[hour] += sum(o.stage == "assigned" for o in t.orders)
        pings[hour] += len(t.pings)
    lunch = sum(orders[h] for h in (11, 12)) / 2
    dinner = sum(orders[h] for h in (17, 18, 19)) / 3
    afternoon = sum(orders[h] for h in (14, 15)) / 2
    night = sum(orders[h] for h in range(0, 7))
    assert lunch > 2 * afternoon and dinner > 2 * afternoon
    assert night == 0 and sum(pings[h] for h in range(1, 7)) == 0, "nobody works the small hours"
    assert sum(pings[h] for h in (11, 12)) > sum(pings[h] for h in (7, 8)) * 3


def test_orders_go_station_then_restaurant_then_customer(day: tuple[RunPlan, list[Tick]]) -> None:
    plan, ticks = day
    world = build_world(plan.spec, plan.seed)
    sim = Simulation(plan.config(), world)
    station_of = {name: world.station_nodes[sim.station_index[i]] for i, name in enumerate(plan.riders)}
    net_lat, net_lon = world.network.latlon()
    stages: dict[int, list[tuple[str, datetime, float, float, str, str, int]]] = defaultdict(list)
    duty_on: dict[str, list[datetime]] = defaultdict(list)
    for t in ticks:
        for change in t.duty:
            if change.on_duty:
                duty_on[change.rider].append(change.at)
        for o in t.orders:
            stages[o.order].append((o.stage, o.at, o.lat, o.lon, o.place, o.rider, o.restaurant))
    complete = [s for s in stages.values() if [x[0] for x in s] == ["assigned", "picked_up", "delivered"]]
    assert len(complete) > 0.95 * len(stages) > 300
    first_of_shift = 0
    for (_, t_a, _la, _lo, place, rider, rest), (_, t_p, lat_p, lon_p, place_p, _, _), (_, t_d, *_rest) in complete:
        assert t_a < t_p < t_d
        assert place_p == "restaurant"
        node = world.restaurant_nodes[rest]
        assert haversine_m(lat_p, lon_p, float(net_lat[node]), float(net_lon[node])) < 1.0
        assert t_d - t_a < timedelta(minutes=75)
        if place == "station":
            first_of_shift += 1
            sn = station_of[rider]
            assert haversine_m(_la, _lo, float(net_lat[sn]), float(net_lon[sn])) < 40
    # Every shift's first order starts at the station; later ones mostly on the way back.
    assert first_of_shift >= len([1 for v in duty_on.values() for _ in v]) * 0.5


def test_pings_fall_inside_the_planned_shifts(day: tuple[RunPlan, list[Tick]]) -> None:
    plan, ticks = day
    shifts: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for s in plan.shifts():
        shifts[s.rider].append((s.start.timestamp(), s.end.timestamp()))
    changes = [(c.rider, c.on_duty, c.at) for t in ticks for c in t.duty]
    assert sorted((r, a) for r, on, a in changes if on) == sorted(
        (s.rider, s.start) for s in plan.shifts() if s.start >= plan.start
    )
    for t in ticks:
        for r, ts in zip(t.pings.rider.tolist(), t.pings.ts.tolist(), strict=True):
            name = plan.riders[r]
            assert any(a < ts < b for a, b in shifts[name]), (name, ts)


def test_gaps_and_noise_are_present(day: tuple[RunPlan, list[Tick]]) -> None:
    plan, ticks = day
    acc = np.concatenate([t.pings.accuracy_m for t in ticks])
    assert acc.min() > 0 and np.percentile(acc, 95) > 2 * np.percentile(acc, 5)
    last: dict[int, float] = {}
    gaps = 0
    for t in ticks:
        for r, ts in zip(t.pings.rider.tolist(), t.pings.ts.tolist(), strict=True):
            if r in last and 60 < ts - last[r] < 1800:
                gaps += 1
            last[r] = ts
    assert gaps > len(plan.riders), "phones lose the fix now and then"


def test_config_is_checked() -> None:
    with pytest.raises(ValueError):
        RunPlan(seed=1, start=datetime(2026, 11, 2), duration=timedelta(hours=1), riders=("a",)).config()
    with pytest.raises(ValueError):
        RunPlan(seed=1, start=MONDAY, duration=timedelta(0), riders=("a",)).config()
    with pytest.raises(ValueError):
        RunPlan(seed=1, start=MONDAY, duration=timedelta(hours=1), riders=("a", "a")).config()
    assert datetime(2026, 11, 2, tzinfo=UTC)  # aware starts are fine (checked above)
