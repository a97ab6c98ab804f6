"""A few weeks of demo clues, each replayed through the real workflow with explicit times."""

from __future__ import annotations

import heapq
import io
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from PIL import Image, ImageDraw
from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch.clues import service as clue_service
from riderwatch.clues.schemas import ActionBody, ClueCreate
from riderwatch.demo.seed import (
    CATEGORY_WEIGHTS,
    CLUE_KEY_PREFIX,
    COMMUNITIES,
    DESCRIPTIONS,
    DISPATCHER_REPORT_PREFIX,
    FATES,
    HOUR_WEIGHTS,
    OUTCOMES,
    REJECT_REASONS,
    REOPEN_REASONS,
    WEEKS,
    ZONES,
)
from riderwatch.errors import InvalidInput
from riderwatch.geo.areas import bbox, contains
from riderwatch.infra.files import FileStore
from riderwatch.infra.images import CheckedPhoto, check_photo
from riderwatch.models import (
    Category,
    Clue,
    Community,
    Grid,
    Rider,
    User,
    Zone,
)


@dataclass
class Step:
    at: datetime
    action: str
    body: dict[str, Any] = field(default_factory=dict)


@dataclass
class CluePlan:
    index: int
    reporter: User
    data: ClueCreate
    reported_at: datetime
    photo: CheckedPhoto | None
    steps: list[Step]
    duplicate_of: int | None = None  # index of the original plan
    clue_id: int | None = None


class _Places:
    """Points inside the communities, denser in the pilot districts, with a plausible place name."""

    def __init__(self, session: Session, rng: random.Random) -> None:
        self.rng = rng
        self.communities = list(
            session.scalars(select(Community).where(Community.code.in_([c.code for c in COMMUNITIES])))
        )
        self.communities.sort(key=lambda c: c.code)
        self.grids = list(session.scalars(select(Grid).where(Grid.community_id.in_([c.id for c in self.communities]))))
        self.grids.sort(key=lambda g: g.code)
        self.zones = {z.code: z for z in session.scalars(select(Zone).where(Zone.code.in_([z.code for z in ZONES])))}
        self.specs = {c.code: c for c in COMMUNITIES}
        self.by_id = {c.id: c for c in self.communities}

    def community_of(self, lat: float, lon: float) -> Community | None:
        return next((c for c in self.communities if contains(c.boundary, lat, lon)), None)

    def _inside(self, boundary: dict[str, Any]) -> tuple[float, float, Community]:
        min_lat, min_lon, max_lat, max_lon = bbox(boundary)
        while True:
            lat = round(self.rng.uniform(min_lat, max_lat), 6)
            lon = round(self.rng.uniform(min_lon, max_lon), 6)
            if contains(boundary, lat, lon):
                community = self.community_of(lat, lon)
                if community is not None:
                    return lat, lon, community

    def street_address(self, community: Community) -> str:
        street = self.rng.choice(self.specs[community.code].streets)
        return f"{street}{self.rng.randint(1, 299)}号附近"

    def pick(self) -> tuple[float, float, str, str]:
        """(lat, lon, place for the description, address)."""
        r = self.rng.random()
        for spec in ZONES:
            if r < spec.share:
                lat, lon, _community = self._inside(self.zones[spec.code].boundary)
                landmark = self.rng.choice(spec.landmarks)
                return lat, lon, landmark, landmark
            r -= spec.share
        grid = self.rng.choice(self.grids)
        lat, lon, community = self._inside(grid.boundary)
        if self.rng.random() < 0.6:
            place = self.street_address(community)
        else:
            place = community.name + self.rng.choice(("菜市场", "老旧小区", "公园", "小学门口", "公交站"))
        return lat, lon, place, place

    def near(self, lat: float, lon: float, metres: float) -> tuple[float, float]:
        """A point within `metres` of (lat, lon) that is still inside a community."""
        while True:
            dlat = self.rng.uniform(-metres, metres) / 111_320
            dlon = self.rng.uniform(-metres, metres) / 100_500
            p = (round(lat + dlat, 6), round(lon + dlon, 6))
            if self.community_of(*p) is not None:
                return p


def _photo(rng: random.Random, category: str, n: int, max_bytes: int) -> CheckedPhoto:
    """A small stand-in picture (JPEG) so the pages show photos; no real scene is depicted."""
    base = (rng.randint(60, 200), rng.randint(60, 200), rng.randint(60, 200))
    img = Image.new("RGB", (320, 240), base)
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        x0, y0 = rng.randint(0, 280), rng.randint(0, 200)
        colour = tuple(max(0, min(255, c + rng.randint(-80, 80))) for c in base)
        box = (x0, y0, x0 + rng.randint(20, 120), y0 + rng.randint(20, 90))
        if rng.random() < 0.5:
            draw.rectangle(box, fill=colour)
        else:
            draw.ellipse(box, fill=colour)
    draw.text((8, 8), f"RiderWatch demo #{n} {category}", fill=(255, 255, 255))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=80)
    return check_photo(buf.getvalue(), max_bytes=max_bytes, name=f"demo photo {n}")


def _minutes(rng: random.Random, low: float, high: float) -> timedelta:
    return timedelta(minutes=rng.uniform(low, high))


def _plan_steps(rng: random.Random, fate: str, category: Category, t0: datetime, urgent: bool) -> list[Step]:
    """The actions that tell this fate, at plausible intervals after the report at t0."""
    steps: list[Step] = []
    t = t0

    def add(action: str, delay: timedelta, **body: Any) -> None:
        nonlocal t
        t = t + delay
        steps.append(Step(t, action, body))

    def handle() -> None:
        add("dispatch", _minutes(rng, 2, 30))
        add("accept", _minutes(rng, 2, 15) if urgent else _minutes(rng, 5, 120))
        if urgent or category.handler_role == "patrol":
            work = _minutes(rng, 15, 180)
        elif category.handler_role == "police":
            work = _minutes(rng, 120, 36 * 60)
        else:
            work = _minutes(rng, 240, 60 * 60)
        add("resolve", work, outcome=rng.choice(OUTCOMES[category.code]))

    def close() -> None:
        grades = ("A", "B", "C", "none")
        weights = (0.25, 0.35, 0.25, 0.15) if category.group == "crime" else (0.08, 0.32, 0.38, 0.22)
        add("close", _minutes(rng, 30, 18 * 60), value_grade=rng.choices(grades, weights)[0])

    verify_delay = _minutes(rng, 3, 15) if urgent else _minutes(rng, 10, 150)
    if fate == "submitted":
        return steps
    if fate == "duplicate":
        if rng.random() < 0.3:
            add("verify", verify_delay)
        add("mark_duplicate", _minutes(rng, 5, 60), note="与此前线索为同一事件")
        return steps
    if fate in ("rejected", "rejected_reopened"):
        if rng.random() < 0.3:
            add("verify", verify_delay)
        add("reject", _minutes(rng, 10, 180), reason=rng.choice(REJECT_REASONS))
        if fate == "rejected":
            return steps
        add("reopen", _minutes(rng, 6 * 60, 48 * 60), reason="报告人补充了照片和具体位置，重新核实")
        handle()
        close()
        return steps
    # A dispatcher sometimes raises the urgency of a crime report when verifying it.
    raise_urgent = not urgent and category.group == "crime" and rng.random() < 0.08
    add("verify", verify_delay, **({"urgent": True} if raise_urgent else {}))
    if fate == "verified":
        return steps
    handle()
    if fate in ("dispatched", "in_progress"):
        # Cut the story short: the handler has not accepted, or not yet resolved.
        return steps[: -2 if fate == "dispatched" else -1]
    if fate == "resolved":
        return steps
    close()
    if fate in ("reopened_closed", "reopened_open"):
        add("reopen", _minutes(rng, 6 * 60, 72 * 60), reason=rng.choice(REOPEN_REASONS))
        if fate == "reopened_open":
            if rng.random() < 0.5:
                add("dispatch", _minutes(rng, 5, 60))
            return steps
        handle()
        close()
    return steps


def local_midnight(tz: ZoneInfo, day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def plan_clues(session: Session, *, seed: int, end: datetime, tz: ZoneInfo, max_photo_bytes: int) -> list[CluePlan]:
    """Four weeks of reports ending at `end`, each with the story of its handling."""
    rng = random.Random(f"{seed}:clues")
    places = _Places(session, rng)
    categories = {c.code: c for c in session.scalars(select(Category).where(Category.active.is_(True)))}
    codes = [c for c in CATEGORY_WEIGHTS if c in categories]
    riders: list[tuple[User, Rider]] = [
        (u, r)
        for u, r in session.execute(
            select(User, Rider)
            .join(Rider, Rider.user_id == User.id)
            .where(User.username.like("rider%"), Rider.status == "active", User.is_active.is_(True))
            .order_by(User.username)
        )
    ]
    dispatchers = {
        u.username: u for u in session.scalars(select(User).where(User.username.in_(("dispatcher1", "dispatcher2"))))
    }
    if not riders or len(dispatchers) < 2 or not places.grids:
        raise InvalidInput("the demo organisation and accounts must exist before its clues")
    # Some riders report far more than others, as in any volunteer team.
    activity = [rng.paretovariate(1.4) for _ in riders]
    start_day = (end.astimezone(tz) - timedelta(days=WEEKS * 7)).date()
    plans: list[CluePlan] = []
    times: list[datetime] = []
    for d in range(WEEKS * 7):
        day = start_day + timedelta(days=d)
        # The team grows during the pilot: later weeks bring more reports.
        count = rng.randint(7, 11) + d // 7 * 2
        for _ in range(count):
            hour = rng.choices(range(24), HOUR_WEIGHTS)[0]
            local = datetime.combine(day, time(hour), tzinfo=tz) + timedelta(seconds=rng.randrange(3600))
            times.append(local.astimezone(UTC))
    times.sort()
    fates, fate_weights = list(FATES), list(FATES.values())
    n_photo = 0
    for t0 in times:
        if t0 >= end:
            continue
        fate = rng.choices(fates, fate_weights)[0]
        code = rng.choices(codes, [CATEGORY_WEIGHTS[c] for c in codes])[0]
        original: CluePlan | None = None
        if fate == "duplicate":
            recent = [p for p in plans if p.duplicate_of is None and t0 - timedelta(hours=48) < p.reported_at < t0]
            if recent:
                original = rng.choice(recent)
                code = original.data.category
            else:
                fate = "closed"
        category = categories[code]
        if original is not None:
            lat, lon = places.near(original.data.lat, original.data.lon, 120)
            description = "又看到" + rng.choice(DESCRIPTIONS[code]).format(place="附近")
            address = original.data.address
        else:
            lat, lon, place, address = places.pick()
            description = rng.choice(DESCRIPTIONS[code]).format(place=place)
        eligible = [i for i, (_u, r) in enumerate(riders) if r.joined_on is None or r.joined_on <= t0.date()]
        eligible = eligible or list(range(len(riders)))
        reporter = riders[rng.choices(eligible, [activity[i] for i in eligible])[0]][0]
        if rng.random() < 0.05:
            # Calls to the command centre are logged by the dispatcher on duty.
            reporter = dispatchers[_on_duty(t0, tz)]
            description = DISPATCHER_REPORT_PREFIX + description
        urgent = rng.random() < (0.18 if category.group == "crime" or code == "person_in_need" else 0.04)
        observed_at = t0 - _minutes(rng, 2, 90)
        data = ClueCreate(
            category=code,
            description=description,
            lat=lat,
            lon=lon,
            observed_at=observed_at,
            anonymous=reporter.role == "rider" and rng.random() < 0.15,
            urgent=urgent,
            address=address,
        )
        photo = None
        if rng.random() < (0.45 if category.group == "hazard" else 0.15):
            n_photo += 1
            photo = _photo(rng, code, n_photo, max_photo_bytes)
        steps = _plan_steps(rng, fate, category, t0, urgent)
        steps = [s for s in steps if s.at < end]
        if steps and reporter.role == "rider" and steps[-1].action in ("resolve", "close") and rng.random() < 0.6:
            last = steps[-1].at + _minutes(rng, 30, 36 * 60)
            if last < end:
                steps.append(
                    Step(last, "rate", {"rating": rng.choices((1, 2, 3, 4, 5), (0.03, 0.05, 0.17, 0.35, 0.4))[0]})
                )
        plans.append(
            CluePlan(
                index=len(plans),
                reporter=reporter,
                data=data,
                reported_at=t0,
                photo=photo,
                steps=steps,
                duplicate_of=original.index if original else None,
            )
        )
    return plans


def _on_duty(at: datetime, tz: ZoneInfo) -> str:
    """Day shift 08:00–20:00 local is dispatcher1's, the night dispatcher2's."""
    return "dispatcher1" if 8 <= at.astimezone(tz).hour < 20 else "dispatcher2"


def _fallback_handler(session: Session, role: str) -> User:
    user = session.scalar(select(User).where(User.role == role, User.is_active.is_(True)).order_by(User.id))
    if user is None:
        raise InvalidInput(f"the demo district has no active {role}")
    return user


def run_clues(
    session: Session,
    plans: list[CluePlan],
    *,
    store: FileStore,
    max_photos: int,
    tz: ZoneInfo,
    on_step: Callable[[], None],
) -> None:
    """Play every plan's actions through the services in time order, as the desk would have."""
    users: dict[int, User] = {}

    def user(user_id: int) -> User:
        if user_id not in users:
            found = session.get(User, user_id)
            assert found is not None
            users[user_id] = found
        return users[user_id]

    dispatchers = {u.username: u for u in session.scalars(select(User).where(User.role == "dispatcher"))}
    queue: list[tuple[datetime, int, int]] = [(p.reported_at, p.index, -1) for p in plans]
    heapq.heapify(queue)
    while queue:
        at, index, step_no = heapq.heappop(queue)
        plan = plans[index]
        if step_no == -1:
            clue, _created = clue_service.submit_clue(
                session,
                reporter=plan.reporter,
                data=plan.data,
                photos=[plan.photo] if plan.photo else [],
                store=store,
                max_photos=max_photos,
                idempotency_key=f"{CLUE_KEY_PREFIX}{index}",
                now=at,
            )
            plan.clue_id = clue.id
        else:
            assert plan.clue_id is not None
            step = plan.steps[step_no]
            body = dict(step.body)
            current = session.get(Clue, plan.clue_id)
            assert current is not None
            if step.action in ("accept", "resolve"):
                assert current.assignee_id is not None
                actor = user(current.assignee_id)
            elif step.action == "rate":
                actor = plan.reporter
            else:
                actor = dispatchers[_on_duty(at, tz)]
            if step.action == "dispatch":
                proposal, _grid, _community = clue_service.propose_routing(session, clue=current)
                assignee = proposal.assignee or _fallback_handler(session, proposal.role)
                body["assignee"] = assignee.username
            elif step.action == "mark_duplicate":
                assert plan.duplicate_of is not None
                body["duplicate_of"] = plans[plan.duplicate_of].clue_id
            clue_service.take_action(
                session, user=actor, clue_id=plan.clue_id, action=step.action, body=ActionBody(**body), now=at
            )
        on_step()
        if step_no + 1 < len(plan.steps):
            heapq.heappush(queue, (plan.steps[step_no + 1].at, index, step_no + 1))
