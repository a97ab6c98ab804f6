"""The demo district: Zhenhai Police Station (镇海派出所), Licheng District, Putian.

It follows the source article: a rider team of 80+ members from two delivery platforms, pilot
commercial districts Jinding (金鼎) and Zhengrong Fortune Center (正荣财富中心), and the four-party
linkage of community police, riders, patrol and grid staff. Community and grid boundaries are
plausible shapes around the real place, not surveyed ones.

Everything goes through the real services (create_user, submit_clue, take_action,
escalate_overdue) with explicit times, so every clue carries a timeline the app itself would have
written. The same seed on the same day gives the same data; running again only adds what is
missing (organisations and accounts by code and username; clues only when the district has no
demo clues yet). Four weeks of the police's recorded incidents (with the simulator's planted
hotspots) go through the incident import, once.

Then the simulator gives the riders a few days of delivery rounds, sent in-process to the app's own
HTTP interface: riders switch duty through `PUT /api/v1/me/duty` at the simulated times, positions
go through the platforms' batch ingest, so tracks and coverage are what the server made of them.
"""

from __future__ import annotations

import heapq
import io
import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import shapely
from h3.api import basic_int as h3
from PIL import Image, ImageDraw
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from shapely.geometry import MultiPoint, Point, Polygon
from shapely.geometry.polygon import orient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from riderwatch.accounts.service import MIN_PASSWORD, create_user
from riderwatch.app import create_app
from riderwatch.clues import service as clue_service
from riderwatch.clues.photos import CheckedPhoto, PhotoStore, check_photo
from riderwatch.clues.schemas import ActionBody, ClueCreate
from riderwatch.config import Settings
from riderwatch.coverage import rollup
from riderwatch.db import make_engine, make_session_factory, unit_of_work
from riderwatch.errors import InvalidInput
from riderwatch.geo.areas import bbox, contains
from riderwatch.incidents.service import import_incidents
from riderwatch.models import (
    Category,
    Clue,
    ClueEvent,
    CluePhoto,
    Community,
    CoverageCell,
    Grid,
    Incident,
    Jurisdiction,
    PatrolTask,
    PatrolTaskResult,
    PatrolTaskRule,
    PatrolUnit,
    Platform,
    Position,
    Rider,
    Station,
    User,
    Zone,
)
from riderwatch.security import hash_password, issue_token, verify_password
from riderwatch.sim.feed import FeedStats
from riderwatch.sim.incidents import default_hotspots, generate_incidents
from riderwatch.sim.run import RunPlan, run_in_process
from riderwatch.sim.world import ZHENHAI
from riderwatch.tasks.rules import RuleDraft, create_rule, run_rule
from riderwatch.tasks.service import CheckpointDraft, TaskDraft, TaskLimits, publish_task, verify_due
from riderwatch.tracking.ingest import fold_counts, hour_of
from riderwatch.tracking.service import set_location_consent

JURISDICTION_CODE = "zhenhai"
CONSENT_TEXT_VERSION = "v1"
WEEKS = 4
RIDER_COUNT = 86
# Idempotency keys of demo clues start with this; their presence means the clue desk is already loaded.
CLUE_KEY_PREFIX = "demo:"

# The station's area around 25.43 N, 119.01 E: (lon, lat), counter-clockwise. The geometry of the
# district (outline, pilot districts, stations) is the simulator's, so demo tracks and areas agree.
OUTLINE: list[tuple[float, float]] = list(ZHENHAI.outline)


@dataclass(frozen=True)
class CommunitySpec:
    code: str
    name: str
    name_en: str
    seed: tuple[float, float]  # (lon, lat) of the Voronoi seed that shapes the community
    grids: int
    police: int
    streets: tuple[str, ...]


COMMUNITIES: list[CommunitySpec] = [
    CommunitySpec("yinglong", "英龙社区", "Yinglong", (118.9990, 25.4385), 3, 2, ("英龙街", "学园北街", "文献西路")),
    CommunitySpec("dongyuan", "东园社区", "Dongyuan", (119.0200, 25.4400), 3, 1, ("东园西路", "东园东路", "胜利北街")),
    CommunitySpec("goutou", "沟头社区", "Goutou", (119.0000, 25.4230), 2, 1, ("沟头路", "八二一南街", "长寿街")),
    CommunitySpec("dongyang", "东阳社区", "Dongyang", (119.0215, 25.4235), 3, 2, ("东阳路", "荔城中大道", "镇海路")),
    CommunitySpec("meifeng", "梅峰社区", "Meifeng", (119.0100, 25.4310), 4, 2, ("梅园东路", "荔城中大道", "梅峰街")),
]


@dataclass(frozen=True)
class ZoneSpec:
    code: str
    name: str
    name_en: str
    ring: tuple[tuple[float, float], ...]
    landmarks: tuple[str, ...]
    share: float  # part of all clues reported inside the zone (pilot districts are denser)


ZONES: list[ZoneSpec] = [
    ZoneSpec(
        "jinding",
        "金鼎商圈",
        "Jinding",
        ZHENHAI.commercial[0],
        ("金鼎广场", "金鼎广场地下停车场", "金鼎商业街", "金鼎广场东门外卖取餐点", "金鼎美食街"),
        0.25,
    ),
    ZoneSpec(
        "zhengrong",
        "正荣财富中心",
        "Zhengrong Fortune Center",
        ZHENHAI.commercial[1],
        ("正荣财富中心写字楼大堂", "正荣财富中心北广场", "正荣财富中心地下车库", "正荣财富中心外卖柜", "正荣商业街"),
        0.20,
    ),
]

PLATFORMS: list[tuple[str, str, str]] = [("meituan", "美团", "Meituan"), ("eleme", "饿了么", "Ele.me")]


@dataclass(frozen=True)
class StationSpec:
    code: str
    name: str
    platform: str
    lat: float
    lon: float
    weight: float  # share of riders


STATION_NAMES = {
    "mt-jinding": "美团金鼎站",
    "mt-zhengrong": "美团正荣站",
    "mt-dongyang": "美团东阳站",
    "elm-jinding": "饿了么金鼎站",
    "elm-zhengrong": "饿了么正荣站",
    "elm-yinglong": "饿了么英龙站",
}
STATIONS: list[StationSpec] = [
    StationSpec(st.code, STATION_NAMES[st.code], st.platform, st.lat, st.lon, st.weight) for st in ZHENHAI.stations
]

PATROL_UNITS: list[tuple[str, str, int]] = [
    ("zhenhai-patrol-1", "镇海巡防一队", 2),
    ("zhenhai-patrol-2", "镇海巡防二队", 2),
]

SURNAMES = "林林林陈陈陈黄黄郑郑吴吴李蔡王许张余方翁卓朱刘"
GIVEN_MALE = "志建国明伟华文杰强军海鹏斌辉涛金榕荣宏峰龙俊鑫磊勇德清"
GIVEN_FEMALE = "婷丽芳燕玲雪慧静凤秀娟琴霞莉萍"
NUMERALS = "一二三四五六七八九十"

# Category → Chinese descriptions ({place}: where it was seen).
DESCRIPTIONS: dict[str, list[str]] = {
    "theft": [
        "{place}有人撬电动车锁，看到我过来就骑车离开了",
        "送餐时发现{place}外卖柜被撬，多份餐品丢失",
        "{place}停放的电动车电瓶被盗，车主在现场着急",
        "{place}有人尾随顾客，疑似扒窃，穿深色外套戴帽子",
    ],
    "telecom_fraud": [
        "{place}有位老人说接到“公检法”电话要求转账，我已提醒先别转",
        "{place}有人散发“刷单返利”小广告，疑似诈骗",
        "顾客说接到冒充快递理赔的电话，对方要求下载会议软件，地点{place}",
    ],
    "suspicious": [
        "{place}有一辆无牌面包车停了很久，车内有人一直观察路人",
        "{place}连续几天深夜有陌生人挨家挨户看门锁",
        "{place}有人背大包翻看停放的电动车，形迹可疑",
    ],
    "drugs": [
        "{place}一间出租屋夜间进出人员频繁，有刺鼻气味",
        "{place}楼道发现疑似吸毒工具（锡纸、吸管）",
    ],
    "gambling": [
        "{place}棋牌室深夜聚集多人，疑似赌博，门口有人望风",
        "{place}二楼民房经常有人打牌下注，金额较大",
    ],
    "fight_dispute": [
        "{place}两名男子因停车发生争吵，已有推搡",
        "{place}烧烤摊有人酒后闹事，摔酒瓶",
        "{place}商户与顾客发生纠纷，围观人员较多",
    ],
    "fire_hazard": [
        "{place}楼道内有电动车充电，电线从窗户拉下来",
        "{place}消防通道被杂物和共享单车堵死",
        "{place}灭火器过期，消防栓被广告牌遮挡",
        "{place}餐饮店后厨油烟管道油污很厚，有起火隐患",
    ],
    "traffic_hazard": [
        "{place}红绿灯故障，路口车辆混乱",
        "{place}路面有大坑，夜间电动车容易摔倒",
        "{place}施工围挡占用半幅车道，没有警示灯",
    ],
    "damaged_facility": [
        "{place}井盖缺失，已用纸箱临时挡住",
        "{place}路灯不亮，晚上很黑",
        "{place}护栏损坏倒在人行道上",
    ],
    "person_in_need": [
        "{place}有位老人迷路，说不清家庭住址",
        "{place}有小孩独自哭泣，找不到家长",
        "{place}有人晕倒在路边，已拨打120",
    ],
    "unlicensed_business": [
        "{place}流动摊贩占道经营，堵塞通道",
        "{place}无证小作坊加工食品，卫生条件差",
    ],
    "other": [
        "{place}有人遗失钱包，已交给附近商户保管",
        "{place}深夜装修噪音扰民",
    ],
}

OUTCOMES: dict[str, list[str]] = {
    "theft": ["民警到场调取监控，已锁定嫌疑人", "已受案登记，追回被盗电瓶归还车主", "已加强该处夜间巡查并提醒商户"],
    "telecom_fraud": ["民警上门劝阻，老人未转账，已开展反诈宣传", "已清理小广告并通报反诈中心"],
    "suspicious": ["巡防队员到场盘查，系外地来莆务工人员，已登记", "车辆已驶离，已通报周边卡口关注"],
    "drugs": ["已移交禁毒部门核查", "民警核查现场，已对相关人员开展尿检"],
    "gambling": ["民警突击检查，查处赌博人员并收缴赌资", "经核查为娱乐性打牌，已教育劝散"],
    "fight_dispute": ["巡防队员到场调解，双方已和解离开", "已将闹事人员带回派出所处理"],
    "fire_hazard": ["网格员督促清理，楼道隐患已消除", "已通知物业拆除飞线并设置集中充电点", "已联系消防部门检查整改"],
    "traffic_hazard": ["已报交警和市政部门，设置临时警示", "路面坑洞已修补"],
    "damaged_facility": ["已报市政部门更换井盖", "路灯已修复", "护栏已扶正加固"],
    "person_in_need": ["巡防队员已护送老人回家", "已将走失儿童交还家长", "已协助120将人员送医"],
    "unlicensed_business": ["已劝离流动摊贩并登记", "已移交市场监管部门查处"],
    "other": ["失物已归还失主", "已劝导施工方停止夜间施工"],
}

REJECT_REASONS = [
    "经核实为正常经营活动，不构成隐患",
    "描述不清且无法联系报告人核实",
    "现场核查未发现所述情况",
    "不属于本辖区，已告知报告人向相应部门反映",
]
REOPEN_REASONS = ["群众再次反映问题仍然存在", "复核发现处置不彻底，需再次处理", "报告人补充了新的情况"]
DISPATCHER_REPORT_PREFIX = "群众来电反映："

CATEGORY_WEIGHTS: dict[str, float] = {
    "theft": 14,
    "telecom_fraud": 6,
    "suspicious": 12,
    "drugs": 2,
    "gambling": 3,
    "fight_dispute": 8,
    "fire_hazard": 14,
    "traffic_hazard": 12,
    "damaged_facility": 12,
    "person_in_need": 5,
    "unlicensed_business": 7,
    "other": 4,
}

# How each clue's story ends, before the clock cuts off the most recent ones.
FATES: dict[str, float] = {
    "closed": 0.52,
    "resolved": 0.07,
    "in_progress": 0.035,
    "dispatched": 0.035,
    "verified": 0.025,
    "submitted": 0.025,
    "rejected": 0.09,
    "duplicate": 0.07,
    "reopened_closed": 0.05,
    "reopened_open": 0.025,
    "rejected_reopened": 0.025,
}

# Reports by hour of day (local time): busiest at lunch and in the evening, as deliveries are.
HOUR_WEIGHTS = [
    weight
    for block in (
        (0.3, 0.2, 0.15, 0.1, 0.1, 0.2),  # 00–05
        (0.5, 0.8, 1.0, 1.0, 1.5, 3.0),  # 06–11
        (3.2, 2.0, 1.0, 1.0, 1.3, 2.6),  # 12–17
        (3.0, 2.8, 2.0, 1.5, 1.0, 0.6),  # 18–23
    )
    for weight in block
]


# ---------------------------------------------------------------------------------------------
# Geometry


def _polygon_geojson(poly: Polygon) -> dict[str, Any]:
    """RFC 7946: exterior ring counter-clockwise, positions [lon, lat] rounded to ~0.1 m."""
    ring = orient(poly, 1.0).exterior.coords
    return {"type": "Polygon", "coordinates": [[[round(x, 6), round(y, 6)] for x, y in ring]]}


def _voronoi_cells(seeds: list[tuple[float, float]], within: Polygon) -> list[Polygon]:
    """The Voronoi cell of each seed, clipped to `within`, in the order of the seeds."""
    cells = shapely.voronoi_polygons(MultiPoint(seeds), extend_to=within)
    out: list[Polygon] = []
    for seed in seeds:
        cell = next(g for g in cells.geoms if g.covers(Point(seed)))
        clipped = shapely.set_precision(cell.intersection(within), 1e-6)
        if not isinstance(clipped, Polygon):
            raise RuntimeError(f"the demo area around {seed} is not one polygon")
        out.append(clipped)
    return out


def _spread_points(poly: Polygon, n: int, rng: random.Random) -> list[tuple[float, float]]:
    """n well-spread points inside poly (best of several candidates), to shape the grids."""
    min_x, min_y, max_x, max_y = poly.bounds
    points: list[tuple[float, float]] = []
    while len(points) < n:
        best: tuple[float, tuple[float, float]] | None = None
        for _ in range(30):
            p = (rng.uniform(min_x, max_x), rng.uniform(min_y, max_y))
            if not poly.contains(Point(p)):
                continue
            gap = min((((p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2) ** 0.5 for q in points), default=1.0)
            if best is None or gap > best[0]:
                best = (gap, p)
        if best is not None:
            points.append(best[1])
    return points


@dataclass(frozen=True)
class Geometry:
    communities: dict[str, dict[str, Any]]
    grids: dict[str, list[dict[str, Any]]]


def district_geometry() -> Geometry:
    """Community boundaries tiling the station's area, and grids tiling each community (fixed)."""
    outline = Polygon(OUTLINE)
    cells = _voronoi_cells([c.seed for c in COMMUNITIES], outline)
    communities: dict[str, dict[str, Any]] = {}
    grids: dict[str, list[dict[str, Any]]] = {}
    for i, (spec, cell) in enumerate(zip(COMMUNITIES, cells, strict=True)):
        communities[spec.code] = _polygon_geojson(cell)
        # A fixed generator: the map is the same whatever --seed says.
        seeds = _spread_points(cell, spec.grids, random.Random(1000 + i))
        grids[spec.code] = [_polygon_geojson(g) for g in _voronoi_cells(seeds, cell)]
    return Geometry(communities=communities, grids=grids)


# ---------------------------------------------------------------------------------------------
# Organisations and people


def _get_or_add(session: Session, model: Any, code: str, counter: Counter[str], **values: Any) -> Any:
    row = session.scalar(select(model).where(model.code == code))
    if row is None:
        row = model(code=code, **values)
        session.add(row)
        session.flush()
        counter[model.__tablename__] += 1
    return row


def _ensure_org(session: Session, geometry: Geometry, added: Counter[str]) -> None:
    jurisdiction = _get_or_add(
        session,
        Jurisdiction,
        JURISDICTION_CODE,
        added,
        name="莆田市公安局荔城分局镇海派出所",
        name_en="Zhenhai Police Station",
    )
    for spec in COMMUNITIES:
        community = _get_or_add(
            session,
            Community,
            spec.code,
            added,
            name=spec.name,
            name_en=spec.name_en,
            jurisdiction_id=jurisdiction.id,
            boundary=geometry.communities[spec.code],
        )
        for n, boundary in enumerate(geometry.grids[spec.code], start=1):
            min_lat, min_lon, max_lat, max_lon = bbox(boundary)
            _get_or_add(
                session,
                Grid,
                f"{spec.code}-g{n}",
                added,
                name=f"{spec.name}第{NUMERALS[n - 1]}网格",
                community_id=community.id,
                boundary=boundary,
                min_lat=min_lat,
                min_lon=min_lon,
                max_lat=max_lat,
                max_lon=max_lon,
            )
    for zone in ZONES:
        _get_or_add(
            session,
            Zone,
            zone.code,
            added,
            name=zone.name,
            name_en=zone.name_en,
            kind="pilot",
            rollout_stage="pilot",
            boundary=_polygon_geojson(Polygon(zone.ring)),
        )
    for code, name, _size in PATROL_UNITS:
        _get_or_add(session, PatrolUnit, code, added, name=name, jurisdiction_id=jurisdiction.id)
    platforms = {code: _get_or_add(session, Platform, code, added, name=zh, name_en=en) for code, zh, en in PLATFORMS}
    for st in STATIONS:
        _get_or_add(
            session,
            Station,
            st.code,
            added,
            name=st.name,
            platform_id=platforms[st.platform].id,
            lat=st.lat,
            lon=st.lon,
        )


def load_organisation(session: Session) -> None:
    """Only the district's areas, patrol units, platforms and stations (for benchmarks and trials)."""
    _ensure_org(session, district_geometry(), Counter())


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


def _ensure_people(
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


# ---------------------------------------------------------------------------------------------
# Clues


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


def _local_midnight(tz: ZoneInfo, day: date) -> datetime:
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
    store: PhotoStore,
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


# ---------------------------------------------------------------------------------------------
# Incidents: the police's own recorded cases, with the simulator's planted hotspots

INCIDENT_SOURCE = "110"
# External references of demo incidents start with this; their presence means they are loaded.
INCIDENT_REF_PREFIX = "demo-"


def load_incidents(session: Session, *, seed: int, end: datetime, timezone: str) -> int | None:
    """Four weeks of the 110 system's cases ending at `end`, imported as the command centre would.

    The simulator's generator plants clusters in place and hour of the week (weekend-evening thefts
    in Jinding, weekday-morning fraud in Zhengrong, late-night fights between them) over an even
    background. Returns how many were imported, or None when demo incidents were loaded before.
    """
    loaded = select(Incident.id).where(Incident.external_ref.like(f"{INCIDENT_REF_PREFIX}%")).limit(1)
    if session.scalar(loaded) is not None:
        return None
    tz = ZoneInfo(timezone)
    generated = generate_incidents(
        outline=ZHENHAI.outline,
        hotspots=default_hotspots(ZHENHAI.commercial),
        start=end - timedelta(days=WEEKS * 7),
        end=end,
        seed=seed,
        timezone=timezone,
    )
    rows = [
        (
            n,
            {
                "source": INCIDENT_SOURCE,
                "external_ref": f"{INCIDENT_REF_PREFIX}{i.at.astimezone(tz):%Y%m%d%H%M%S}-{i.id:05d}",
                "category": i.category,
                "lat": i.lat,
                "lon": i.lon,
                "occurred_at": i.at.isoformat(),
                "note": i.description,
            },
        )
        for n, i in enumerate(generated.incidents, start=1)
    ]
    if not rows:
        return 0
    dispatcher = session.scalar(select(User).where(User.username == "dispatcher1"))
    result = import_incidents(session, actor=dispatcher, rows=rows, timezone=timezone, origin="demo", now=end)
    return result.created


# ---------------------------------------------------------------------------------------------
# Tracks

PLATFORM_ACCOUNTS = tuple(f"{code}-api" for code, _zh, _en in PLATFORMS)
TRACK_INTERVAL_S = 30.0


@dataclass
class TrackLoad:
    riders: int = 0
    stats: FeedStats | None = None
    skipped: bool = False


def _track_plan(session: Session, *, seed: int, start: datetime, end: datetime, max_riders: int | None) -> RunPlan:
    """The simulator's run for the active riders who had consented before it starts."""
    rows = session.execute(
        select(User.username, Station.code)
        .join(Rider, Rider.user_id == User.id)
        .join(Station, Station.id == Rider.station_id)
        .where(
            User.username.like("rider%"),
            User.is_active.is_(True),
            Rider.status == "active",
            Rider.location_consent.is_(True),
            Rider.location_consent_at < start,
        )
        .order_by(User.username)
    ).all()
    if max_riders is not None:
        rows = rows[:max_riders]
    return RunPlan(
        seed=seed,
        start=start,
        duration=end - start,
        riders=tuple(name for name, _code in rows),
        interval_s=TRACK_INTERVAL_S,
        rider_stations=tuple((name, code) for name, code in rows),
        spec=ZHENHAI,
    )


def load_tracks(
    settings: Settings,
    factory: Any,
    *,
    password: str,
    seed: int,
    days: float,
    progress: Progress,
    max_riders: int | None = None,
) -> TrackLoad:
    """`days` of delivery rounds up to now, sent through the app's HTTP interface.

    Skipped once demo riders have positions, so loading the demo again adds none.
    """
    with unit_of_work(factory) as session:
        demo_riders = select(User.id).where(User.username.like("rider%"), User.role == "rider")
        if session.scalar(select(Position.rider_id).where(Position.rider_id.in_(demo_riders)).limit(1)) is not None:
            return TrackLoad(skipped=True)
        end = datetime.now(UTC).replace(microsecond=0)
        plan = _track_plan(session, seed=seed, start=end - timedelta(days=days), end=end, max_riders=max_riders)
        # The demo speaks for its own riders: it signs their tokens with the server's key rather
        # than making the server check seventy passwords, which would cost seconds of argon2.
        accounts = session.execute(
            select(User.username, User.id, User.token_version).where(User.username.in_(plan.riders))
        )
        tokens = {name: issue_token(settings.signing_key, uid, version) for name, uid, version in accounts}
    load = TrackLoad(riders=len(plan.riders))
    if not plan.riders:
        return load
    # Shifts and points reach back `days`: the in-process app accepts them that far back (two hours'
    # slack for the time the load itself takes). The simulator switches each rider's duty through
    # the API with the time of the switch, as a phone that was offline sends it.
    app_settings = settings.model_copy(update={"max_ping_age_hours": math.ceil(days * 24) + 2, "run_jobs": False})
    app = create_app(app_settings)
    try:
        progress.add_task("tracks 轨迹", total=None)
        load.stats = run_in_process(
            app, plan, password=password, platforms=PLATFORM_ACCOUNTS, manage_duty=True, tokens=tokens
        )
    finally:
        app.state.engine.dispose()
    with unit_of_work(factory) as session:
        # Older than a server takes: days a running server had already rolled up get the new counts.
        rollup.reopen(session, since=end - timedelta(days=days))
    return load


# ---------------------------------------------------------------------------------------------
# Patrol tasks: a rule for the evening gaps, and tasks of yesterday, now and tomorrow


DEMO_RULE = "梅峰社区晚间补盲"
CHECKPOINT_RADIUS_M = 80.0


def _busiest_cells(
    session: Session, zone: ZoneSpec, start: datetime, end: datetime, resolution: int, n: int
) -> list[int]:
    """The cells of a zone riders passed most in a window: corners where a check-in is a real pass."""
    cells = h3.geo_to_cells(Polygon(zone.ring), resolution)
    fold_counts(session)
    rows = session.execute(
        select(CoverageCell.cell, func.sum(CoverageCell.passes).label("passes"))
        .where(
            CoverageCell.resolution == resolution,
            CoverageCell.cell.in_(sorted(cells)),
            CoverageCell.hour >= hour_of(start),
            CoverageCell.hour < hour_of(end),
        )
        .group_by(CoverageCell.cell)
        .order_by(func.sum(CoverageCell.passes).desc(), CoverageCell.cell)
        .limit(n)
    )
    return [int(cell) for cell, _ in rows]


def load_tasks(session: Session, settings: Settings, *, now: datetime) -> list[str]:
    """Demo patrol tasks, verified against the demo's tracks; skipped when any task or rule exists."""
    if session.scalar(select(PatrolTask.id).limit(1)) is not None or session.scalar(select(PatrolTaskRule.id).limit(1)):
        return ["patrol tasks were already loaded; none added"]
    limits = TaskLimits.from_settings(settings)
    tz = ZoneInfo(settings.timezone)
    today = now.astimezone(tz).date()
    dispatcher = session.scalar(select(User).where(User.username == "dispatcher1"))
    assert dispatcher is not None

    def at(days: int, hour: int, minute: int = 0) -> datetime:
        return datetime.combine(today + timedelta(days=days), time(hour, minute), tz)

    notes = []
    zhengrong = next(z for z in ZONES if z.code == "zhengrong")
    lunch = (at(-1, 11), at(-1, 13, 30))
    corners = _busiest_cells(session, zhengrong, *lunch, resolution=limits.finest, n=3)
    if corners:
        publish_task(
            session,
            author=dispatcher,
            draft=TaskDraft(
                title="正荣财富中心午高峰巡查",
                note="午高峰取餐点人流大，注意电动车盗窃和扒窃。",
                starts_at=lunch[0],
                ends_at=lunch[1],
                checkpoints=[
                    CheckpointDraft(lat=lat, lon=lon, radius_m=CHECKPOINT_RADIUS_M, name=name)
                    for (lat, lon), name in zip(map(h3.cell_to_latlng, corners), zhengrong.landmarks, strict=False)
                ],
                points=20,
                max_riders=5,
                open_to_all=True,
            ),
            limits=limits,
            now=at(-1, 9),
        )
    publish_task(
        session,
        author=dispatcher,
        draft=TaskDraft(
            title="金鼎商圈巡逻",
            note="经过金鼎商圈六成以上的网格即完成。",
            starts_at=now - timedelta(hours=2),
            ends_at=now + timedelta(hours=2),
            area={"zone": "jinding"},
            resolution=min(limits.coverage.resolutions),
            required_share=0.6,
            points=30,
            stations=["mt-jinding", "elm-jinding"],
        ),
        limits=limits,
        now=now - timedelta(hours=2),
    )
    publish_task(
        session,
        author=dispatcher,
        draft=TaskDraft(
            title="东阳、梅峰学校周边早高峰",
            note="上学时段经过两所学校门口。",
            starts_at=at(1, 7),
            ends_at=at(1, 9),
            checkpoints=[
                CheckpointDraft(lat=25.4240, lon=119.0205, radius_m=100, name="东阳小学"),
                CheckpointDraft(lat=25.4305, lon=119.0110, radius_m=100, name="梅峰中学"),
            ],
            points=15,
            stations=["mt-dongyang"],
        ),
        limits=limits,
        now=now,
    )
    rule = create_rule(
        session,
        actor=dispatcher,
        draft=RuleDraft(name=DEMO_RULE, area_kind="community", area_code="meifeng", top_n=3, points=10),
        limits=limits,
    )
    run = run_rule(session, rule=rule, limits=limits, now=now)
    notes.append(f"rule {DEMO_RULE}: {run.tasks_created} tasks" + (f" ({run.note})" if run.note else ""))
    verify_due(session, limits=limits, now=now)
    return notes


# ---------------------------------------------------------------------------------------------
# Entry point


def _counts(session: Session) -> dict[str, int]:
    def count(model: Any, *where: Any) -> int:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0

    out = {
        "communities 社区": count(Community),
        "grids 网格": count(Grid),
        "pilot zones 试点商圈": count(Zone),
        "patrol units 巡防队": count(PatrolUnit),
        "platforms 平台": count(Platform),
        "stations 站点": count(Station),
    }
    for role, n in session.execute(select(User.role, func.count()).group_by(User.role).order_by(User.role)):
        out[f"users: {role}"] = n
    for status, n in session.execute(select(Rider.status, func.count()).group_by(Rider.status).order_by(Rider.status)):
        out[f"riders: {status}"] = n
    out["riders with location consent"] = count(Rider, Rider.location_consent.is_(True))
    for status, n in session.execute(select(Clue.status, func.count()).group_by(Clue.status).order_by(Clue.status)):
        out[f"clues: {status}"] = n
    out["clue timeline entries"] = count(ClueEvent)
    out["clues escalated (overdue)"] = count(Clue, Clue.escalation_level > 0)
    out["clue photos"] = count(CluePhoto)
    out["incidents 警情"] = count(Incident)
    out["positions 轨迹点"] = count(Position)
    fold_counts(session)
    out["coverage cell-hours 覆盖格时"] = count(CoverageCell)
    out["patrol tasks 巡逻任务"] = count(PatrolTask)
    out["patrol task completions 任务完成"] = count(PatrolTaskResult, PatrolTaskResult.completed_at.is_not(None))
    return out


def _summary(
    before: dict[str, int],
    after: dict[str, int],
    *,
    clues_skipped: bool,
    incidents_skipped: bool,
    resets: int,
    tracks: TrackLoad | None,
    task_notes: list[str],
) -> Table:
    table = Table(title="镇海派出所演示辖区 · Zhenhai demo district", show_lines=False)
    table.add_column("item 项目")
    table.add_column("total 总数", justify="right")
    table.add_column("added 新增", justify="right")
    for key, total in after.items():
        added = total - before.get(key, 0)
        table.add_row(key, str(total), f"+{added}" if added else "")
    notes = []
    if clues_skipped:
        notes.append("demo clues were already loaded; none added")
    if incidents_skipped:
        notes.append("demo incidents were already loaded; none added")
    if resets:
        notes.append(f"password reset for {resets} existing demo accounts")
    if tracks is not None and tracks.skipped:
        notes.append("demo tracks were already loaded; none added")
    elif tracks is not None and tracks.stats is not None:
        stats = tracks.stats
        refused = sum(stats.rejected.values())
        notes.append(
            f"tracks: {tracks.riders} riders, {stats.shifts_started} shifts, {stats.accepted} points stored"
            + (f", {refused} refused" if refused else "")
            + (f", {len(stats.riders_dropped)} riders left out" if stats.riders_dropped else "")
        )
    notes += task_notes
    if notes:
        table.caption = "; ".join(notes)
    return table


def build_demo(
    settings: Settings,
    *,
    password: str,
    seed: int,
    console: Console,
    tracks_days: float = 3,
    track_riders: int | None = None,
) -> Table:
    """Load the demo district into the configured database (idempotent); returns a summary table.

    `tracks_days` of simulated delivery rounds end now (0: none); `track_riders` limits how many
    riders take part (default: every active rider who consented before the rounds start).
    """
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"the demo password must be at least {MIN_PASSWORD} characters")
    if not 0 <= tracks_days <= 7:
        # Retention, the age of points the server takes and the run's own time all grow with it.
        raise InvalidInput("the demo's tracks cover between 0 and 7 days")
    tz = ZoneInfo(settings.timezone)
    # Reports end at the last local midnight, so one seed gives the same district all day.
    end = _local_midnight(tz, datetime.now(tz).date())
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    store = PhotoStore(settings.photo_dir)
    added: Counter[str] = Counter()
    try:
        with unit_of_work(factory) as session:
            before = _counts(session)
        geometry = district_geometry()
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            with unit_of_work(factory) as session:
                _ensure_org(session, geometry, added)
                resets = _ensure_people(
                    session, plan_people(seed, end.astimezone(tz).date()), password, added, progress
                )
            with unit_of_work(factory) as session:
                loaded = session.scalar(
                    select(func.count()).select_from(Clue).where(Clue.idempotency_key.like(f"{CLUE_KEY_PREFIX}%"))
                )
                clues_skipped = bool(loaded)
                if not clues_skipped:
                    plans = plan_clues(session, seed=seed, end=end, tz=tz, max_photo_bytes=settings.max_photo_bytes)
                    task = progress.add_task("clues 线索", total=sum(1 + len(p.steps) for p in plans))
                    run_clues(
                        session,
                        plans,
                        store=store,
                        max_photos=settings.max_photos,
                        tz=tz,
                        on_step=lambda: progress.advance(task),
                    )
                    clue_service.escalate_overdue(session, now=end)
            with unit_of_work(factory) as session:
                progress.add_task("incidents 警情", total=None)
                incidents_skipped = load_incidents(session, seed=seed, end=end, timezone=settings.timezone) is None
            tracks = None
            if tracks_days > 0:
                tracks = load_tracks(
                    settings,
                    factory,
                    password=password,
                    seed=seed,
                    days=tracks_days,
                    progress=progress,
                    max_riders=track_riders,
                )
        with unit_of_work(factory) as session:
            task_notes = load_tasks(session, settings, now=datetime.now(UTC))
        with unit_of_work(factory) as session:
            after = _counts(session)
    finally:
        engine.dispose()
    return _summary(
        before,
        after,
        clues_skipped=clues_skipped,
        incidents_skipped=incidents_skipped,
        resets=resets,
        tracks=tracks,
        task_notes=task_notes,
    )
