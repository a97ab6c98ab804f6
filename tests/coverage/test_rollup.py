"""The daily roll-up of the coverage aggregates: the coverage query answers exactly as it does from the
hourly aggregates alone, for random counts and random windows (starting and ending mid-day, mid-hour),
in Shanghai time and across a daylight-saving change, also after counts arrive for days not yet sealed;
and the job seals only days no ping can still arrive for."""

from __future__ import annotations

import math
import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from h3.api import basic_int as h3
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from riderwatch.coverage import rollup, service
from riderwatch.coverage.service import CoverageLimits, area_cells, query_coverage
from riderwatch.geo.areas import parse_area
from riderwatch.jobs import JOBS
from riderwatch.models import CoverageCell, CoverageDay
from riderwatch.models.coverage import CoverageRollup
from tests.factories import CENTER_LAT, CENTER_LON, square

AREA = square(CENTER_LAT, CENTER_LON, 0.004)
# 2026-03-01: the data's first day, a week before the United States change to daylight-saving time.
FIRST_DAY = (date(2026, 3, 1) - date(1970, 1, 1)).days
DAYS = 20
MAX_AGE = timedelta(hours=48)

Rows = dict[tuple[int, int, int], tuple[int, int]]


def limits(timezone: str) -> CoverageLimits:
    return CoverageLimits(resolutions=(9, 10), max_cells=50_000, max_window=timedelta(days=366), timezone=timezone)


def random_counts(rng: random.Random, first_hour: int, last_hour: int) -> Rows:
    """Counts for the area's cells and a ring of cells around it (which the query must leave out)."""
    rows: Rows = {}
    for res in (9, 10):
        inside = area_cells(parse_area(AREA), res, 50_000)
        around = sorted(set(h3.grid_disk(inside[0], 8)) - set(inside))[:10]
        for cell in inside + around:
            for hour in range(first_hour, last_hour):
                if rng.random() < 0.25:
                    passes = rng.randint(1, 40)
                    rows[(res, cell, hour)] = (passes, rng.randint(1, min(passes, 6)))
    return rows


def store(db: Session, rows: Rows) -> None:
    """Add counts to coverage_cells as ingest does: onto existing cell-hours, or as new rows."""
    existing = {
        (r.resolution, r.cell, r.hour): r for r in db.scalars(select(CoverageCell).where(CoverageCell.hour >= 0))
    }
    new = []
    for (res, cell, hour), (passes, riders) in rows.items():
        row = existing.get((res, cell, hour))
        if row is None:
            new.append({"resolution": res, "cell": cell, "hour": hour, "passes": passes, "riders": riders})
        else:
            row.passes += passes
            row.riders += riders
    if new:
        db.execute(insert(CoverageCell), new)
    db.commit()


def roll_up_all(db: Session, now: datetime) -> int:
    days = 0
    while done := rollup.roll_up(db, now=now, max_age=MAX_AGE):
        days += done
    db.commit()
    return days


def hourly_only(db: Session, monkeypatch: pytest.MonkeyPatch, **query: Any) -> dict[str, Any]:
    """The answer from coverage_cells alone, as the query gave it before the roll-up existed."""
    with monkeypatch.context() as m:
        m.setattr(service, "sealed_before", lambda _session: None)
        return query_coverage(db, **query)


def random_query(rng: random.Random, timezone: str) -> dict[str, Any]:
    base = datetime.fromtimestamp(FIRST_DAY * 86_400, UTC)
    start = base + timedelta(minutes=rng.randint(-2 * 24 * 60, (DAYS + 1) * 24 * 60))
    if rng.random() < 0.3:
        start = start.replace(minute=0)  # whole hours, as the map's presets ask
    length = timedelta(minutes=rng.randint(1, 9 * 24 * 60))
    return {
        "area": AREA,
        "start": start,
        "end": start + length,
        "resolution": rng.choice((9, 10)),
        "min_passes": rng.randint(1, 30),
        "limits": limits(timezone),
    }


def by_hand(rows: Rows, query: dict[str, Any]) -> tuple[dict[int, tuple[int, int]], list[int]]:
    """Passes and rider-hours per cell of the area, and passes by local hour, summed from the rows."""
    first = math.floor(query["start"].timestamp() / 3600)
    last = math.ceil(query["end"].timestamp() / 3600)
    cells = set(area_cells(parse_area(AREA), query["resolution"], 50_000))
    tz = ZoneInfo(query["limits"].timezone)
    counts: Counter[tuple[int, str]] = Counter()
    profile = [0] * 24
    for (res, cell, hour), (passes, riders) in rows.items():
        if res == query["resolution"] and cell in cells and first <= hour < last:
            counts[(cell, "passes")] += passes
            counts[(cell, "riders")] += riders
            profile[datetime.fromtimestamp(hour * 3600, UTC).astimezone(tz).hour] += passes
    return {c: (counts[(c, "passes")], counts[(c, "riders")]) for c in cells if counts[(c, "passes")]}, profile


@pytest.mark.parametrize("timezone", ["Asia/Shanghai", "America/New_York"])
def test_roll_up_answers_exactly_as_the_hourly_counts(
    db: Session, monkeypatch: pytest.MonkeyPatch, timezone: str
) -> None:
    rng = random.Random(f"rollup-{timezone}")
    first_hour = FIRST_DAY * 24
    rows = random_counts(rng, first_hour, first_hour + DAYS * 24)
    store(db, rows)
    queries = [random_query(rng, timezone) for _ in range(25)]
    before = [query_coverage(db, **q) for q in queries]

    # Sealed: every day that ended more than the maximum age and the margin before "now".
    now = datetime.fromtimestamp((FIRST_DAY + 12) * 86_400 + 5 * 3600, UTC)
    assert roll_up_all(db, now) == 10
    assert rollup.sealed_before(db) == FIRST_DAY + 10 == rollup.sealed_horizon(now, MAX_AGE)
    assert db.scalar(select(func.max(CoverageDay.day))) == FIRST_DAY + 9
    for q, answer in zip(queries, before, strict=True):
        assert query_coverage(db, **q) == answer, q
        counts, profile = by_hand(rows, q)
        assert {int(h3.str_to_int(f["id"])): (f["properties"]["passes"], f["properties"]["riders"])
                for f in answer["features"] if f["properties"]["passes"]} == counts  # fmt: skip
        assert answer["hour_profile"] == profile

    # Counts keep arriving for days not yet sealed; the roll-up does not hold them, the query still does.
    late = random_counts(rng, (FIRST_DAY + 10) * 24, (FIRST_DAY + DAYS) * 24)
    store(db, late)
    for key, (passes, riders) in late.items():
        old = rows.get(key, (0, 0))
        rows[key] = (old[0] + passes, old[1] + riders)
    for q in queries:
        answer = query_coverage(db, **q)
        assert answer == hourly_only(db, monkeypatch, **q), q
        counts, profile = by_hand(rows, q)
        assert answer["hour_profile"] == profile
        assert sum(f["properties"]["passes"] for f in answer["features"]) == sum(p for p, _ in counts.values())


def test_job_seals_only_days_no_ping_can_reach(db: Session) -> None:
    now = datetime(2026, 3, 10, 0, 30, tzinfo=UTC)
    assert rollup.roll_up(db, now=now, max_age=MAX_AGE) == 0  # nothing recorded yet: nothing to do
    assert rollup.sealed_before(db) is None
    day = (date(2026, 3, 5) - date(1970, 1, 1)).days
    rows = {(9, h3.latlng_to_cell(CENTER_LAT, CENTER_LON, 9), day * 24 + h): (h + 1, 1) for h in range(0, 24 * 5, 5)}
    store(db, rows)
    # 2026-03-10 00:30 less 48 hours and the hour's margin is 2026-03-07 23:30: the 5th and 6th are sealed.
    assert roll_up_all(db, now) == 2
    assert rollup.sealed_before(db) == day + 2
    assert db.scalar(select(func.count()).select_from(CoverageDay)) == 2  # one row per day with passes
    assert roll_up_all(db, now) == 0  # nothing new to seal
    # The maximum age grows: the days it reopens leave the roll-up, and come back once sealed again.
    assert rollup.roll_up(db, now=now, max_age=timedelta(hours=72)) == 0
    assert rollup.sealed_before(db) == day + 1
    assert db.scalar(select(func.count()).select_from(CoverageDay)) == 1
    assert roll_up_all(db, now + timedelta(days=3)) == 4
    last = db.scalar(select(CoverageDay).order_by(CoverageDay.day.desc()).limit(1))
    assert last is not None and last.day == day + 4
    assert last.passes == sum(p for p, _ in rows.values())  # running totals over every day so far
    assert db.get(CoverageRollup, 1) is not None


def test_the_periodic_job_rolls_up_old_days(db: Session) -> None:
    cell = h3.latlng_to_cell(CENTER_LAT, CENTER_LON, 10)
    store(db, {(10, cell, FIRST_DAY * 24 + h): (2, 1) for h in range(0, 24 * DAYS, 7)})
    assert JOBS["roll_up_coverage"](db) == rollup.DAYS_PER_RUN  # long sealed: a week per run
    assert rollup.sealed_before(db) == FIRST_DAY + rollup.DAYS_PER_RUN


def test_days_given_late_counts_are_reopened_and_rolled_up_again(db: Session) -> None:
    """As the demo does after writing tracks older than a server takes."""
    cell = h3.latlng_to_cell(CENTER_LAT, CENTER_LON, 9)
    day = (date(2026, 3, 5) - date(1970, 1, 1)).days
    store(db, {(9, cell, day * 24 + 3): (2, 1)})
    now = datetime(2026, 3, 10, 0, 30, tzinfo=UTC)
    assert roll_up_all(db, now) == 2 and rollup.sealed_before(db) == day + 2
    store(db, {(9, cell, (day + 1) * 24 + 5): (7, 1)})  # late, into a sealed day
    rollup.reopen(db, since=datetime(2026, 3, 6, 12, tzinfo=UTC))
    assert rollup.sealed_before(db) == day + 1
    assert db.scalar(select(func.max(CoverageDay.day))) == day
    assert roll_up_all(db, now) == 1
    last = db.scalar(select(CoverageDay).order_by(CoverageDay.day.desc()).limit(1))
    assert last is not None and last.day == day + 1 and last.passes == 9
    rollup.reopen(db, since=datetime(2026, 3, 20, tzinfo=UTC))  # nothing rolled up from then: no change
    assert rollup.sealed_before(db) == day + 2
