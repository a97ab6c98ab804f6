"""One simulator run from its parameters: build it, write it to a file, or send it to a server.

`run_in_process` is what `riderwatch demo` calls: the same HTTP interface, served in-process by
httpx.ASGITransport instead of a socket, so the demo needs no running server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Any

import httpx
from h3.api import basic_int as h3

from riderwatch.sim.feed import Feeder, FeedError, FeedStats, Pace, Server, duty_body, feed, write_jsonl
from riderwatch.sim.incidents import IncidentSet, default_hotspots, generate_incidents
from riderwatch.sim.riders import DutyChange, Shift, SimConfig, Simulation
from riderwatch.sim.world import ZHENHAI, DistrictSpec, build_world


def rider_names(count: int, pattern: str = "rider{:03d}") -> tuple[str, ...]:
    """The demo's rider usernames: rider001, rider002, …"""
    return tuple(pattern.format(i) for i in range(1, count + 1))


@dataclass(frozen=True)
class RunPlan:
    seed: int
    start: datetime
    duration: timedelta
    riders: tuple[str, ...]
    interval_s: float = 15.0
    incidents: bool = False
    spec: DistrictSpec = ZHENHAI
    rider_stations: tuple[tuple[str, str], ...] = ()
    background_incidents_per_day: float = 8.0

    def config(self) -> SimConfig:
        return SimConfig(
            seed=self.seed,
            start=self.start,
            duration=self.duration,
            riders=self.riders,
            interval_s=self.interval_s,
            rider_stations=self.rider_stations,
        )

    def incident_set(self) -> IncidentSet | None:
        if not self.incidents:
            return None
        return generate_incidents(
            outline=self.spec.outline,
            hotspots=default_hotspots(self.spec.commercial),
            start=self.start,
            end=self.start + self.duration,
            seed=self.seed,
            background_per_day=self.background_incidents_per_day,
            timezone=self.spec.timezone,
        )

    def simulation(self) -> tuple[Simulation, IncidentSet | None]:
        incidents = self.incident_set()
        world = build_world(self.spec, self.seed)
        return Simulation(self.config(), world, incidents.incidents if incidents else ()), incidents

    def shifts(self) -> list[Shift]:
        """The riders' shifts of this run (exact: riders go on and off duty at these times)."""
        return Simulation(self.config(), build_world(self.spec, self.seed)).shifts


def write_run(plan: RunPlan, out: IO[str]) -> Counter[str]:
    """A dry run to JSON lines: the planted ground truth first, then the run in time order."""
    sim, incidents = plan.simulation()
    header = {
        "type": "run",
        "seed": plan.seed,
        "start": plan.start.isoformat(),
        "end": (plan.start + plan.duration).isoformat(),
        "riders": len(plan.riders),
        "interval_s": plan.interval_s,
        "district": plan.spec.name,
    }
    out.write(json.dumps(header, ensure_ascii=False) + "\n")
    if incidents is not None:
        for spot in incidents.hotspots:
            out.write(json.dumps(_hotspot(spot), ensure_ascii=False) + "\n")
        for inc in incidents.incidents:
            row = {"type": "incident", "id": inc.id, "at": inc.at.isoformat(), "lat": inc.lat, "lon": inc.lon}
            out.write(json.dumps({**row, "category": inc.category, "hotspot": inc.hotspot}) + "\n")
    return write_jsonl(sim.ticks(), plan.riders, out, plan.seed)


def _hotspot(spot: Any) -> dict[str, Any]:
    return {
        "type": "hotspot",
        "name": spot.name,
        "category": spot.category,
        "hours_of_week": sorted(spot.hours_of_week),
        "rate_per_hour": spot.rate_per_hour,
        "cell": h3.int_to_str(spot.cell) if spot.cell is not None else None,
        "center": list(spot.center) if spot.center is not None else None,
        "radius_m": spot.radius_m,
    }


async def send_run(
    plan: RunPlan,
    client: httpx.AsyncClient,
    *,
    password_of: Callable[[str], str | None],
    platforms: Sequence[str],
    speedup: float,
    manage_duty: bool = True,
    batch_size: int = 2000,
    progress: Callable[[FeedStats], None] | None = None,
    tokens: Mapping[str, str] | None = None,
) -> FeedStats:
    """Send the run to the server behind `client`; returns what the server made of it.

    A run may start in the past: with `manage_duty` each rider switches duty at the simulated time
    (`"at"`), so shifts begin and end when the run says. The server decides how far back that may
    go; a switch it finds too old ends the run with a FeedError that says so.
    """
    sim, _incidents = plan.simulation()
    stats = FeedStats()
    server = Server(client, password_of=password_of, stats=stats, tokens=tokens)
    feeder = Feeder(server, platforms=platforms, seed=plan.seed, manage_duty=manage_duty, batch_size=batch_size)
    pace = Pace(plan.start, speedup)
    try:
        return await feed(sim.ticks(), feeder, plan.riders, pace=pace, progress=progress)
    finally:
        if manage_duty:
            # An interrupted run leaves no rider on duty: their shifts end at the last moment sent.
            for rider in sorted(feeder.on_duty - set(stats.riders_dropped)):
                with contextlib.suppress(PermissionError, FeedError, httpx.HTTPError):
                    await _off_duty(server, rider, stats.sim_time)


async def _off_duty(server: Server, rider: str, at: datetime | None) -> None:
    if at is not None:
        res = await server.call(rider, "PUT", "/api/v1/me/duty", json=duty_body(DutyChange(rider, False, at)))
        if res.status_code == 200:
            return
    await server.call(rider, "PUT", "/api/v1/me/duty", json={"on_duty": False})


def run_in_process(
    app: Any,
    plan: RunPlan,
    *,
    password: str,
    platforms: Sequence[str] = ("meituan-api", "eleme-api"),
    manage_duty: bool = False,
    batch_size: int = 5000,
    tokens: Mapping[str, str] | None = None,
) -> FeedStats:
    """Send a run to an app object (riderwatch.app.create_app(settings)) through httpx.ASGITransport."""

    async def go() -> FeedStats:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://riderwatch.sim", timeout=120) as client:
            return await send_run(
                plan,
                client,
                password_of=lambda _name: password,
                platforms=platforms,
                speedup=0,
                manage_duty=manage_duty,
                batch_size=batch_size,
                tokens=tokens,
            )

    return asyncio.run(go())
