"""The demo district's organisations and people, created through the accounts and organisation services."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from rich.progress import Progress
from shapely.geometry import Polygon
from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch.accounts.service import create_user
from riderwatch.demo.geometry import Geometry, district_geometry, polygon_geojson
from riderwatch.demo.seed import (
    COMMUNITIES,
    CONSENT_TEXT_VERSION,
    GIVEN_FEMALE,
    GIVEN_MALE,
    JURISDICTION_CODE,
    NUMERALS,
    OUTLINE,
    PATROL_UNITS,
    PLATFORMS,
    RIDER_COUNT,
    STATIONS,
    SURNAMES,
    ZONES,
)
from riderwatch.infra.clock import utcnow
from riderwatch.models import Community, Course, Grid, JoinLink, PatrolUnit, Platform, Rider, RoutingRule, User
from riderwatch.org import district, routing
from riderwatch.riders import path
from riderwatch.security import hash_password, verify_password
from riderwatch.tracking.duty import set_location_consent
from riderwatch.training import service as training


def _add(session: Session, kind: str, counter: Counter[str], values: dict[str, Any]) -> None:
    """Create the row through the district service an administrator uses, unless its code exists."""
    found = district.kind_of(kind)
    if session.scalar(select(found.model.id).where(found.model.code == values["code"])) is None:
        district.create(session, actor=None, kind_name=kind, values=values)
        counter[found.model.__tablename__] += 1


def ensure_org(session: Session, geometry: Geometry, added: Counter[str]) -> None:
    """The demo district, built as an administrator would build it (every boundary checked, every change
    audited): the jurisdiction with its outline, its communities and their grids, the pilot zones, the
    patrol units, the platforms and their stations."""
    jurisdiction = {
        "code": JURISDICTION_CODE,
        "name": "莆田市公安局荔城分局镇海派出所",
        "name_en": "Zhenhai Police Station",
        "boundary": polygon_geojson(Polygon(OUTLINE)),
    }
    _add(session, "jurisdictions", added, jurisdiction)
    for spec in COMMUNITIES:
        _add(
            session,
            "communities",
            added,
            {
                "code": spec.code,
                "name": spec.name,
                "name_en": spec.name_en,
                "boundary": geometry.communities[spec.code],
            },
        )
        for n, boundary in enumerate(geometry.grids[spec.code], start=1):
            grid = {"code": f"{spec.code}-g{n}", "name": f"{spec.name}第{NUMERALS[n - 1]}网格", "community": spec.code}
            _add(session, "grids", added, {**grid, "boundary": boundary})
    for zone in ZONES:
        values: dict[str, Any] = {
            "code": zone.code,
            "name": zone.name,
            "name_en": zone.name_en,
            "kind": "commercial",
            "rollout_stage": "pilot",
            # The pilot began a season before the demo's "now" (the article's first phase).
            "pilot_on": utcnow().date() - timedelta(days=90),
            "boundary": polygon_geojson(Polygon(zone.ring)),
        }
        _add(session, "zones", added, values)
    for code, name, _size in PATROL_UNITS:
        _add(session, "patrol-units", added, {"code": code, "name": name})
    for code, zh, en in PLATFORMS:
        _add(session, "platforms", added, {"code": code, "name": zh, "name_en": en})
    for st in STATIONS:
        values = {
            "code": st.code,
            "name": st.name,
            "platform": st.platform,
            "lat": st.lat,
            "lon": st.lon,
        }
        _add(session, "stations", added, values)


def load_organisation(session: Session) -> None:
    """Only the district's areas, patrol units, platforms and stations (for benchmarks and trials)."""
    ensure_org(session, district_geometry(), Counter())


@dataclass
class Person:
    username: str
    role: str
    display_name: str
    phone: str | None = None
    station: str | None = None
    community: str | None = None
    grid: str | None = None
    patrol_unit: str | None = None
    platform: str | None = None
    rider_status: str = "active"
    joined_on: date | None = None
    consent_at: datetime | None = None


class _Names:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def person(self, *, female: bool = False) -> str:
        while True:
            pool = GIVEN_FEMALE if female else GIVEN_MALE
            given = "".join(self.rng.choice(pool) for _ in range(self.rng.choice((1, 2, 2))))
            name = self.rng.choice(SURNAMES) + given
            if name not in self.used:
                self.used.add(name)
                return name

    def phone(self) -> str:
        return (
            "1" + self.rng.choice(("38", "39", "58", "59", "37", "88", "36", "89")) + f"{self.rng.randrange(10**8):08d}"
        )


def plan_people(seed: int, today: date) -> list[Person]:
    """Every demo account, derived from the seed (names, stations, rider statuses and dates)."""
    rng = random.Random(f"{seed}:people")
    names = _Names(rng)
    people = [
        Person("admin", "admin", "系统管理员"),
        Person("dispatcher1", "dispatcher", f"{names.person()}（指挥中心）", names.phone()),
        Person("dispatcher2", "dispatcher", f"{names.person(female=True)}（指挥中心）", names.phone()),
    ]
    n_police = n_grid = 0
    for spec in COMMUNITIES:
        for _ in range(spec.police):
            n_police += 1
            people.append(Person(f"police{n_police}", "police", names.person(), names.phone(), community=spec.code))
        for g in range(1, spec.grids + 1):
            n_grid += 1
            people.append(
                Person(
                    f"grid{n_grid}",
                    "grid_staff",
                    names.person(female=rng.random() < 0.5),
                    names.phone(),
                    grid=f"{spec.code}-g{g}",
                )
            )
    n_patrol = 0
    for code, _name, size in PATROL_UNITS:
        for _ in range(size):
            n_patrol += 1
            people.append(Person(f"patrol{n_patrol}", "patrol", names.person(), names.phone(), patrol_unit=code))
    for st in STATIONS:
        people.append(
            Person(
                f"mgr-{st.code}",
                "station_manager",
                f"{names.person()}（{st.name}站长）",
                names.phone(),
                station=st.code,
            )
        )
    for code, zh, _en in PLATFORMS:
        people.append(Person(f"{code}-api", "platform", f"{zh}平台接口", platform=code))
    weights = [st.weight for st in STATIONS]
    for n in range(1, RIDER_COUNT + 1):
        station = rng.choices(STATIONS, weights)[0]
        status = rng.choices(("active", "applied", "suspended", "left"), (0.88, 0.05, 0.035, 0.035))[0]
        # Applicants joined lately; members over the last eight months, most before the demo weeks.
        days_ago = rng.randint(1, 20) if status == "applied" else rng.randint(10, 240)
        joined = today - timedelta(days=days_ago)
        consent_at = None
        if status in ("active", "suspended") and rng.random() < 0.93:
            consent_at = datetime.combine(joined, time(9), tzinfo=UTC) + timedelta(minutes=rng.randint(0, 3 * 24 * 60))
        people.append(
            Person(
                f"rider{n:03d}",
                "rider",
                names.person(female=rng.random() < 0.12),
                names.phone(),
                station=station.code,
                rider_status=status,
                joined_on=joined,
                consent_at=consent_at,
            )
        )
    return people


def ensure_people(
    session: Session, people: list[Person], password: str, added: Counter[str], progress: Progress
) -> int:
    """Create missing accounts; returns how many existing ones had their password reset."""
    by_code: dict[tuple[Any, str], int | None] = {}

    def ref(model: Any, code: str | None) -> int | None:
        if code is None:
            return None
        key = (model, code)
        if key not in by_code:
            by_code[key] = session.scalar(select(model.id).where(model.code == code))
        return by_code[key]

    existing = {
        u.username: u for u in session.scalars(select(User).where(User.username.in_([p.username for p in people])))
    }
    # One check tells whether the demo accounts already use this password; only then are all reset.
    admin = existing.get("admin")
    reset = admin is not None and not verify_password(admin.password_hash, password)
    task = progress.add_task("accounts 账号", total=len(people))
    resets = 0
    for person in people:
        user = existing.get(person.username)
        if user is not None:
            if reset:
                user.password_hash = hash_password(password)
                user.token_version += 1
                resets += 1
            progress.advance(task)
            continue
        user = create_user(
            session,
            username=person.username,
            role=person.role,
            password=password,
            display_name=person.display_name,
            station_code=person.station,
            phone=person.phone,
            rider_status=person.rider_status,
            joined_on=person.joined_on,
        )
        user.community_id = ref(Community, person.community)
        user.grid_id = ref(Grid, person.grid)
        user.patrol_unit_id = ref(PatrolUnit, person.patrol_unit)
        if person.platform:
            user.platform_id = ref(Platform, person.platform)
        if person.rider_status == "left":
            user.is_active = False
        if person.role == "rider" and person.consent_at is not None:
            # Through the service, so the consent record and its audit entry exist as for a real rider.
            set_location_consent(
                session, rider_user=user, granted=True, text_version=CONSENT_TEXT_VERSION, now=person.consent_at
            )
        added[f"users:{person.role}"] += 1
        progress.advance(task)
    session.flush()
    return resets


def ensure_programme(session: Session, added: Counter[str]) -> None:
    """What a station sets up in its first week, through the same services: routing rules for the pilot
    zones (suspicious persons and fights there go to the first patrol unit, which walks them) and a join
    link per delivery station, made by its manager. Skipped once any rule or link exists."""
    if session.scalar(select(RoutingRule.id).limit(1)) is None:
        admin = session.scalar(select(User).where(User.username == "admin"))
        unit = PATROL_UNITS[0][0]
        for position, (category, zone) in enumerate(
            (("suspicious", ZONES[0].code), ("fight_dispute", ZONES[0].code), ("suspicious", ZONES[1].code)), start=1
        ):
            values = {
                "category": category,
                "area_kind": "zone",
                "area_code": zone,
                "party": "patrol_unit",
                "patrol_unit": unit,
                "position": position * 10,
                "note": "试点商圈由巡防一队步巡",
            }
            if admin is not None:
                routing.create_rule(session, actor=admin, values=values)
                added["routing_rules"] += 1
    if session.scalar(select(JoinLink.id).limit(1)) is None:
        for st in STATIONS:
            manager = session.scalar(select(User).where(User.username == f"mgr-{st.code}"))
            if manager is not None:
                path.create_join_link(session, actor=manager, station_code=st.code, days=30, max_uses=50)
                added["join_links"] += 1


# The article's training: legal basics, recognising hazards, anti-fraud (question, options, right options).
COURSES: list[tuple[str, str, str, str, list[tuple[str, list[str], list[int]]]]] = [
    (
        "legal-basics",
        "法律常识",
        "Legal basics",
        "骑手发现违法犯罪线索，应当及时、如实上报，不得擅自抓捕、跟踪或对质；上报时只写看到的事实。"
        "匿名上报受到保护，只有指挥中心能看到上报人。",
        [
            ("发现有人盗窃电动车，骑手应当怎么做？", ["上前制止并扣留", "拍照记录后及时上报", "装作没看见"], [1]),
            ("上报线索时应当写什么？", ["看到的事实", "自己的猜测", "道听途说"], [0]),
            ("哪些人能看到匿名上报人的身份？", ["所有民警", "指挥中心调度员", "站点负责人"], [1]),
            ("以下哪些属于应当上报的线索？", ["可疑人员踩点", "楼道堆放电池充电", "顾客差评"], [0, 1]),
            ("上报后骑手能查看处理结果吗？", ["能，在“我的上报”中", "不能"], [0]),
        ],
    ),
    (
        "hazards",
        "隐患识别",
        "Recognising hazards",
        "常见隐患包括：楼道内电动车充电、消防通道堵塞、井盖缺失、路灯损坏。发现后拍照、标明位置上报。",
        [
            ("以下哪个是消防隐患？", ["楼道内给电动车电池充电", "在室外充电桩充电"], [0]),
            ("发现井盖缺失，应当上报哪一类？", ["公共设施损坏", "涉毒线索"], [0]),
            ("拍照上报隐患时应当注意什么？", ["拍清隐患和周边位置", "只拍自己"], [0]),
            ("消防通道被堵属于隐患吗？", ["是", "不是"], [0]),
        ],
    ),
    (
        "anti-fraud",
        "反诈宣传",
        "Anti-fraud",
        "刷单返利、冒充公检法、冒充客服退款是最常见的电信诈骗。送餐时可向顾客发放反诈宣传单。",
        [
            ("以下哪些是诈骗手法？", ["刷单返利", "冒充公检法", "正常外卖退款"], [0, 1]),
            ("接到“公安局”电话要求转账到“安全账户”，应当？", ["立即转账", "挂断并拨打 110 核实"], [1]),
            ("反诈宣传单可以在什么时候发放？", ["送餐时", "任何时候都不行"], [0]),
            ("陌生人要求提供验证码，应当？", ["告诉他", "拒绝"], [1]),
        ],
    ),
]


def ensure_courses(session: Session, added: Counter[str], *, rng: random.Random) -> None:
    """The programme's three courses with their question banks, and the active riders' passes (taken the
    day they joined, through the quiz service), so that the roster and the figures show training. Skipped
    once any course exists."""
    if session.scalar(select(Course.id).limit(1)) is not None:
        return
    admin = session.scalar(select(User).where(User.username == "admin"))
    if admin is None:
        return
    for position, (code, title, title_en, body, questions) in enumerate(COURSES, start=1):
        training.create_course(
            session,
            actor=admin,
            values={
                "code": code,
                "title": title,
                "title_en": title_en,
                "body": body,
                "position": position,
                "questions_per_quiz": len(questions),
                "valid_months": 12,
            },
        )
        training.add_questions(
            session,
            actor=admin,
            code=code,
            questions=[{"text": q, "options": o, "correct": c, "multiple": len(c) > 1} for q, o, c in questions],
        )
        added["courses"] += 1
    riders = session.execute(
        select(User, Rider).join(Rider, Rider.user_id == User.id).where(Rider.status == "active").order_by(User.id)
    ).all()
    for user, member in riders:
        day = datetime.combine(member.joined_on or utcnow().date(), time(10), UTC)
        for code, *_rest in COURSES:
            attempt, drawn = training.start_quiz(
                session, rider=user, code=code, timezone="Asia/Shanghai", now=day, rng=rng
            )
            answers = {str(q.id): q.correct for q in drawn}
            training.submit_quiz(
                session, rider=user, attempt_id=attempt.id, answers=answers, now=day + timedelta(minutes=8)
            )
            added["course passes"] += 1
