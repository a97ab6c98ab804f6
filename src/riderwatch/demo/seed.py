"""The demo district's seed data: places, organisations, names, clue texts and the weights clues are drawn with."""

from __future__ import annotations

from dataclasses import dataclass

from riderwatch.sim.world import ZHENHAI

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
