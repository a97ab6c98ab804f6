"""The daily roll-up of the coverage aggregates (`coverage_days`), filled for sealed days by a periodic job.

Each row holds a cell's running totals up to and including its day (see models/coverage.py), so a
window of any length costs two rows per cell. A day is sealed once no ping can still arrive for it:
ingest refuses a ping older than the maximum age (`IngestRules.max_age`: `max_ping_age_hours`,
capped by retention), and `coverage_cells` rows are only ever added to, never deleted. So once a day
ended more than the maximum age (and a margin for requests still in flight) ago, its sums are final
and the roll-up never goes stale. The coverage query reads whole sealed days from here and
everything else from `coverage_cells`.

Should the maximum age grow, the days it reopens are taken out of the roll-up at the next run.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import and_, case, delete, func, insert, literal, select, update
from sqlalchemy.orm import Session

from riderwatch.coverage.counts import fold_counts
from riderwatch.infra.timecodes import SECONDS_PER_HOUR
from riderwatch.models import CoverageCell, CoverageDay
from riderwatch.models.coverage import HOURS_PER_DAY, CoverageRollup

SECONDS_PER_DAY = SECONDS_PER_HOUR * HOURS_PER_DAY
# A request that took its `now` just before a day was sealed may still be writing: one hour for it.
SEAL_MARGIN = timedelta(hours=1)
# Days rolled up per run: the first run over a long history catches up over several runs rather than
# holding the write lock (on SQLite, every writer's) for long.
DAYS_PER_RUN = 7
# Every H3 resolution: whatever resolutions were configured when the pings arrived are rolled up.
H3_RESOLUTIONS = tuple(range(16))
ROW_ID = 1


def sealed_horizon(now: datetime, max_age: timedelta) -> int:
    """The first UTC day that may still receive pings; every day before it is sealed."""
    return math.floor((now - max_age - SEAL_MARGIN).timestamp() / SECONDS_PER_DAY)


def sealed_before(session: Session) -> int | None:
    """The first UTC day not in the roll-up (every day before it is); None before the first run."""
    return session.scalar(select(CoverageRollup.sealed_before).where(CoverageRollup.id == ROW_ID))


def hour_columns() -> list[str]:
    """The roll-up's passes per UTC hour of the day: p00 … p23."""
    return [f"p{h:02d}" for h in range(HOURS_PER_DAY)]


def totals() -> list[str]:
    """The running totals of a coverage_days row."""
    return ["passes", "riders", *hour_columns()]


def _roll_day(session: Session, day: int) -> None:
    """One sealed day of coverage_cells added to each cell's running totals."""
    cc = CoverageCell
    first = day * HOURS_PER_DAY
    per_hour = [
        func.sum(case((cc.hour == first + h, cc.passes), else_=0)).label(name) for h, name in enumerate(hour_columns())
    ]
    today = (
        select(
            cc.resolution, cc.cell, func.sum(cc.passes).label("passes"), func.sum(cc.riders).label("riders"), *per_hour
        )
        .where(cc.resolution.in_(H3_RESOLUTIONS), cc.hour >= first, cc.hour < first + HOURS_PER_DAY)
        .group_by(cc.resolution, cc.cell)
        .subquery("today")
    )
    table = CoverageDay.__table__
    before, latest = table.alias("before"), table.alias("latest")
    # The cell's running totals so far: its latest row before this day, if any.
    latest_day = (
        select(func.max(latest.c.day))
        .where(latest.c.resolution == today.c.resolution, latest.c.cell == today.c.cell, latest.c.day < day)
        .scalar_subquery()
    )
    joined = today.outerjoin(
        before,
        and_(before.c.resolution == today.c.resolution, before.c.cell == today.c.cell, before.c.day == latest_day),
    )
    rows = select(
        today.c.resolution,
        today.c.cell,
        literal(day, CoverageDay.day.type),
        *(today.c[name] + func.coalesce(before.c[name], 0) for name in totals()),
    ).select_from(joined)
    session.execute(insert(CoverageDay).from_select(["resolution", "cell", "day", *totals()], rows))


def roll_up(session: Session, *, now: datetime, max_age: timedelta, max_days: int = DAYS_PER_RUN) -> int:
    """Roll up the next sealed days (at most max_days); returns how many days were added."""
    horizon = sealed_horizon(now, max_age)
    fold_counts(session)  # the days to seal are read from coverage_cells
    mark = sealed_before(session)
    if mark is None:
        first_hour = session.scalar(select(func.min(CoverageCell.hour)))
        if first_hour is None:
            return 0  # nothing recorded yet: start from the first day that has counts
        mark = min(first_hour // HOURS_PER_DAY, horizon)
        session.execute(insert(CoverageRollup).values(id=ROW_ID, sealed_before=mark))
    elif mark > horizon:
        # The maximum age grew: pings may arrive again for these days, so they are no longer sealed.
        session.execute(delete(CoverageDay).where(CoverageDay.day >= horizon))
        session.execute(update(CoverageRollup).where(CoverageRollup.id == ROW_ID).values(sealed_before=horizon))
        return 0
    end = min(horizon, mark + max_days)
    for day in range(mark, end):
        _roll_day(session, day)
    if end > mark:
        session.execute(update(CoverageRollup).where(CoverageRollup.id == ROW_ID).values(sealed_before=end))
    return max(0, end - mark)


def reopen(session: Session, *, since: datetime) -> None:
    """Take the days from `since` on back out of the roll-up, after counts were added to them late.

    For loads that write older positions than the server takes (the demo's tracks): the job rolls the
    days up again, with the new counts, once they are sealed.
    """
    day = math.floor(since.timestamp() / SECONDS_PER_DAY)
    mark = sealed_before(session)
    if mark is None or mark <= day:
        return
    session.execute(delete(CoverageDay).where(CoverageDay.day >= day))
    session.execute(update(CoverageRollup).where(CoverageRollup.id == ROW_ID).values(sealed_before=day))
