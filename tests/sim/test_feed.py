"""The simulator against the real app over HTTP (httpx.ASGITransport): pings, duty, clues, retries."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from riderwatch.accounts.service import create_user
from riderwatch.cli import app as cli_app
from riderwatch.infra.clock import utcnow
from riderwatch.models import Clue, DutyShift, Position, Rider, User
from riderwatch.sim.feed import Feeder, FeedError, FeedStats, Server
from riderwatch.sim.incidents import Incident
from riderwatch.sim.riders import ClueReport, DutyChange, Pings
from riderwatch.sim.run import RunPlan, run_in_process, send_run
from tests.factories import CENTER_LAT, CENTER_LON, PASSWORD, make_district

T = TypeVar("T")


def _arun(make: Callable[[httpx.AsyncClient], Awaitable[T]], app: Any, transport: Any = None) -> T:
    async def go() -> T:
        async with httpx.AsyncClient(
            transport=transport or httpx.ASGITransport(app=app), base_url="http://riderwatch.test"
        ) as client:
            return await make(client)

    return asyncio.run(go())


async def _no_sleep(_s: float) -> None:
    return None


def _feeder(client: httpx.AsyncClient, *, platforms: tuple[str, ...] = ("platform",), **kw: Any) -> Feeder:
    server = Server(client, password_of=lambda _n: PASSWORD, stats=FeedStats(), sleep=_no_sleep)
    return Feeder(server, platforms=platforms, seed=1, **kw)


def _refused_outliers(stats: FeedStats) -> int:
    """How many points ingest refused, checking that they can only be the simulator's GPS outliers.

    The simulator throws about 0.2 % of fixes hundreds of metres off (`sim.riders`); ingest refuses
    those beyond what a rider could have moved as implausible jumps, and nothing else. Whether a run
    holds one depends on its start time (seen: an 848 m outlier of a standing rider, 15 s after the
    last fix, in 4 of 20 start minutes tried; a CI run failed on it).
    """
    assert set(stats.rejected) <= {"implausible_jump"}, stats.rejected
    refused = sum(stats.rejected.values())
    assert refused <= stats.sent * 0.002, stats.rejected
    return refused


def _count(db: Session, model: Any, *where: Any) -> int:
    n = int(db.scalar(select(func.count()).select_from(model).where(*where)) or 0)
    db.rollback()  # SQLite: end the read before the app writes again
    return n


def _prepare_history(db: Session, plan: RunPlan, consent_at: datetime) -> None:
    """What `riderwatch demo` does before a backfill: consent and the run's shifts already on record."""
    for user in db.scalars(select(User).where(User.username.in_(plan.riders))):
        rider = db.get(Rider, user.id)
        assert rider is not None
        rider.location_consent, rider.location_consent_at, rider.location_consent_text_version = True, consent_at, "v1"
    ids = {name: uid for name, uid in db.execute(select(User.username, User.id).where(User.username.in_(plan.riders)))}
    for shift in plan.shifts():
        db.add(DutyShift(rider_id=ids[shift.rider], started_at=shift.start, ended_at=shift.end, ended_by="rider"))
    db.commit()


@pytest.mark.one_database("sqlite", why="the simulator is a client over HTTP; the ingest it drives is tested on both")
def test_a_day_of_history_goes_in_through_the_ingest_api(app: Any, db: Session) -> None:
    district = make_district(db)
    # A rider of no platform: no platform account may send for them, so they send their own.
    create_user(db, username="rider3", role="rider", password=PASSWORD)
    db.commit()
    now = utcnow().replace(microsecond=0)
    # A whole day, so the run holds shifts whatever the hour of the test.
    plan = RunPlan(
        seed=4, start=now - timedelta(hours=25), duration=timedelta(hours=24), riders=("rider", "rider2", "rider3")
    )
    _prepare_history(db, plan, consent_at=plan.start - timedelta(days=1))

    stats = run_in_process(app, plan, password=PASSWORD, platforms=("platform",))

    assert stats.sent > 1000
    refused = _refused_outliers(stats)
    assert stats.duplicates == 0
    assert stats.accepted == stats.sent - refused == _count(db, Position)
    assert set(stats.by_sender) == {"platform", "rider3"}
    for name in plan.riders:
        uid = (
            district.users[name].id
            if name in district.users
            else db.scalar(select(User.id).where(User.username == name))
        )
        assert _count(db, Position, Position.rider_id == uid) > 100, name
    # The platform sends its riders in bulk: far fewer requests than pings.
    assert stats.requests < stats.sent / 20

    again = run_in_process(app, plan, password=PASSWORD, platforms=("platform",))
    assert again.accepted == 0 and again.duplicates == stats.accepted and again.rejected == stats.rejected


def test_riders_consent_and_go_on_and_off_duty_through_the_api(app: Any, db: Session) -> None:
    district = make_district(db)
    rider2 = db.get(Rider, district.users["rider2"].id)
    assert rider2 is not None
    rider2.status = "suspended"
    db.commit()
    now = utcnow()

    async def go(client: httpx.AsyncClient) -> tuple[Feeder, list[dict[str, Any]]]:
        feeder = _feeder(client)
        await feeder.duty(DutyChange("rider", True, now))
        await feeder.duty(DutyChange("rider2", True, now))
        mine = (await feeder.server.call("rider", "GET", "/api/v1/me/positions")).json()
        ts = utcnow().timestamp()
        one = Pings(
            *(
                _arr(v)
                for v in ([0, 1], [ts, ts], [CENTER_LAT] * 2, [CENTER_LON] * 2, [3.0, 3.0], [90.0, 90.0], [5.0, 5.0])
            )
        )
        from riderwatch.sim.feed import ping_payloads

        feeder.add(ping_payloads(one, ["rider", "rider2"]))
        await feeder.flush()
        await feeder.duty(DutyChange("rider", False, utcnow()))
        after = (await feeder.server.call("rider", "GET", "/api/v1/me/positions")).json()
        return feeder, [mine, after]

    feeder, (mine, after) = _arun(go, app)
    assert mine["consent"] is True and mine["on_duty"] is True
    assert after["on_duty"] is False and after["position_count"] == 1
    assert feeder.stats.accepted == 1 and feeder.stats.rejected == {}
    # The suspended rider cannot go on duty: they sit the run out, and none of their points is sent.
    assert "duty refused: 403" in feeder.stats.riders_dropped["rider2"]
    assert feeder.stats.sent == 1


def _arr(values: Sequence[float]) -> Any:
    import numpy as np

    return np.array(values, dtype=np.int64 if isinstance(values[0], int) else float)


def test_a_clue_is_reported_once_however_often_it_is_sent(app: Any, db: Session) -> None:
    make_district(db)
    inc = Incident(7, utcnow() - timedelta(minutes=20), CENTER_LAT, CENTER_LON, "fire_hazard", None)
    report = ClueReport("rider", inc, utcnow(), CENTER_LAT, CENTER_LON)

    async def go(client: httpx.AsyncClient) -> FeedStats:
        feeder = _feeder(client)
        await feeder.clue(report)
        await feeder.clue(report)
        return feeder.stats

    stats = _arun(go, app)
    assert stats.clues_created == 2 and not stats.clues_refused
    assert _count(db, Clue) == 1
    clue = db.scalar(select(Clue))
    assert clue is not None and clue.category_code == "fire_hazard" and clue.description == inc.description
    db.rollback()


class _Flaky(httpx.AsyncBaseTransport):
    """Fails the first requests (a restarting server), then passes them on."""

    def __init__(self, inner: httpx.AsyncBaseTransport, failures: list[int | None]) -> None:
        self.inner, self.failures = inner, failures

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.failures:
            status = self.failures.pop(0)
            if status is None:
                raise httpx.ConnectError("connection refused", request=request)
            return httpx.Response(status, headers={"Retry-After": "0"})
        return await self.inner.handle_async_request(request)


def test_transient_failures_are_retried_with_backoff(app: Any, db: Session) -> None:
    make_district(db)
    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)

    async def go(client: httpx.AsyncClient) -> FeedStats:
        server = Server(client, password_of=lambda _n: PASSWORD, stats=FeedStats(), sleep=sleep, backoff_s=0.5)
        res = await server.call("rider", "GET", "/api/v1/me")
        assert res.status_code == 200 and res.json()["username"] == "rider"
        return server.stats

    flaky = _Flaky(httpx.ASGITransport(app=app), [None, 503, None])
    stats = _arun(go, app, transport=flaky)
    assert stats.retries == 3
    assert waits == [0.5, 0.0, 2.0], "exponential backoff; Retry-After when the server gives one"

    async def dead(client: httpx.AsyncClient) -> None:
        server = Server(client, password_of=lambda _n: PASSWORD, stats=FeedStats(), sleep=_no_sleep, attempts=3)
        await server.call("rider", "GET", "/api/v1/me")

    with pytest.raises(FeedError):
        _arun(dead, app, transport=_Flaky(httpx.ASGITransport(app=app), [503] * 10))


def _consent(db: Session, names: tuple[str, ...], at: datetime) -> None:
    for user in db.scalars(select(User).where(User.username.in_(names))):
        rider = db.get(Rider, user.id)
        assert rider is not None
        rider.location_consent, rider.location_consent_at, rider.location_consent_text_version = True, at, "v1"
    db.commit()


def _simulated_shifts(plan: RunPlan) -> dict[str, list[tuple[datetime, datetime | None]]]:
    """Each rider's stretches on duty as the run switches them (touching shifts are one stretch)."""
    sim, _ = plan.simulation()
    out: dict[str, list[tuple[datetime, datetime | None]]] = {}
    for tick in sim.ticks():
        for change in tick.duty:
            mine = out.setdefault(change.rider, [])
            if change.on_duty:
                mine.append((change.at, None))
            else:
                mine[-1] = (mine[-1][0], change.at)
    return out


def _stored_shifts(db: Session, district: Any) -> dict[str, list[tuple[datetime, datetime | None]]]:
    names = {u.id: name for name, u in district.users.items()}
    out: dict[str, list[tuple[datetime, datetime | None]]] = {}
    for shift in db.scalars(select(DutyShift).order_by(DutyShift.rider_id, DutyShift.started_at)):
        out.setdefault(names[shift.rider_id], []).append((shift.started_at, shift.ended_at))
    db.rollback()
    return out


def test_a_run_in_the_past_switches_duty_at_the_simulated_times(app: Any, db: Session) -> None:
    district = make_district(db)
    now = utcnow().replace(microsecond=0)
    # A whole day, so the run holds shifts whatever the hour of the test.
    plan = RunPlan(seed=4, start=now - timedelta(hours=26), duration=timedelta(hours=24), riders=("rider", "rider2"))
    _consent(db, plan.riders, plan.start - timedelta(days=1))

    stats = run_in_process(app, plan, password=PASSWORD, platforms=("platform",), manage_duty=True)

    expected = _simulated_shifts(plan)
    assert set(expected) == {"rider", "rider2"} and all(end is not None for s in expected.values() for _, end in s)
    # Each shift began and ended when the run said, not when the switch reached the server.
    assert _stored_shifts(db, district) == expected
    assert stats.shifts_started == sum(len(s) for s in expected.values())
    assert stats.sent > 1000 and not stats.riders_dropped
    assert stats.accepted == stats.sent - _refused_outliers(stats) == _count(db, Position)


def test_a_run_further_back_than_the_server_takes_stops_with_its_reason(app: Any, db: Session) -> None:
    make_district(db)
    now = utcnow()
    # Every switch of this run lies more than the server's 48 hours back. Five days, so that whatever
    # today's date, the run holds working days of the rider (a rider has days off).
    plan = RunPlan(seed=1, start=now - timedelta(days=8), duration=timedelta(days=5), riders=("rider",))
    _consent(db, plan.riders, plan.start - timedelta(days=1))

    async def go(client: httpx.AsyncClient) -> FeedStats:
        return await send_run(plan, client, password_of=lambda _n: PASSWORD, platforms=(), speedup=0)

    refused = r"refused rider going on duty at .*more than 48 hours ago.*start the run later"
    with pytest.raises(FeedError, match=refused):
        _arun(go, app)
    assert _count(db, DutyShift) == 0 and _count(db, Position) == 0


def test_a_shift_before_the_riders_consent_leaves_the_rider_out(app: Any, db: Session) -> None:
    make_district(db)
    now = utcnow().replace(microsecond=0)
    # rider consented long ago; rider2 consents when the run first puts them on duty, i.e. now.
    plan = RunPlan(seed=4, start=now - timedelta(hours=26), duration=timedelta(hours=24), riders=("rider", "rider2"))
    _consent(db, ("rider",), plan.start - timedelta(days=1))

    stats = run_in_process(app, plan, password=PASSWORD, platforms=("platform",), manage_duty=True)

    assert set(stats.riders_dropped) == {"rider2"}
    assert "duty refused: 409" in stats.riders_dropped["rider2"] and "consent" in stats.riders_dropped["rider2"]
    assert stats.accepted == stats.sent - _refused_outliers(stats) > 500
    rider2 = db.scalar(select(User.id).where(User.username == "rider2"))
    assert _count(db, DutyShift, DutyShift.rider_id == rider2) == 0
    assert _count(db, Position, Position.rider_id == rider2) == 0


def test_cli_dry_run_writes_the_same_file_for_the_same_seed(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["simulate", "--dry-run", "--riders", "8", "--days", "0.25", "--seed", "9", "--incidents"]
    args += ["--start", "2026-11-02T10:00:00+08:00"]
    outs = []
    for name in ("a.jsonl", "b.jsonl"):
        res = runner.invoke(cli_app, [*args, "--out", str(tmp_path / name)])
        assert res.exit_code == 0, res.output
        outs.append((tmp_path / name).read_text(encoding="utf-8"))
    assert outs[0] == outs[1]
    lines = outs[0].splitlines()
    assert lines[0].startswith('{"type": "run"') and sum('"type":"ping"' in line for line in lines) > 500
    bad = runner.invoke(cli_app, ["simulate", "--dry-run", "--start", "2026-11-02T10:00:00"])
    assert bad.exit_code == 2
