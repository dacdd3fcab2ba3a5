"""A generated demo province: organisations, staff, cadres, youth and their contacts, all from a seed.

Two sizes:

- ``small``, for ``make run``: the province, 16 cities with two counties each, a few committees
  and branches per county, about 300 cadres and 3,000 youth.  Loads in about a second on SQLite.
- ``province``, for benchmarks: every county of the 16 cities (136), about 2,000 organisations,
  100,000 cadres and 1,000,000 youth.

Everything is drawn from one ``random.Random(seed)`` in a fixed order, so the same seed gives the
same codes, names and phone numbers on any database.  Rows go in with bulk Core inserts in chunks,
with ids assigned here: the materialised paths of the tree are computed in Python and nothing is
read back.  Passwords are hashed once: only the printed demo accounts get one (the demo password);
every other generated account has none until an administrator sets it.
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from itertools import accumulate

from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.orm import Session

from .models import LEADING_ORGAN_KINDS, Cadre, Contact, Organisation, RoleGrant, User, Youth
from .people import hash_password

DEMO_PASSWORD = "lianqing-demo"
SIZES = ("small", "province")
CHUNK_ROWS = 5_000
MAX_CONTACTS_PER_CADRE = 100

# ------------------------------------------------------------------------------------- place names

# The 16 cities of a coastal province, with their county-level districts, counties and county-level
# cities.  The small size takes the first two counties of each city.
CITIES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("jn", "济南", ("历下区", "市中区", "槐荫区", "天桥区", "历城区", "长清区", "章丘区", "济阳区", "莱芜区",
                   "钢城区", "平阴县", "商河县")),
    ("qd", "青岛", ("市南区", "市北区", "黄岛区", "崂山区", "李沧区", "城阳区", "即墨区", "胶州市", "平度市",
                   "莱西市")),
    ("zb", "淄博", ("张店区", "淄川区", "博山区", "临淄区", "周村区", "桓台县", "高青县", "沂源县")),
    ("zz", "枣庄", ("市中区", "薛城区", "峄城区", "台儿庄区", "山亭区", "滕州市")),
    ("dy", "东营", ("东营区", "河口区", "垦利区", "利津县", "广饶县")),
    ("yt", "烟台", ("芝罘区", "福山区", "牟平区", "莱山区", "蓬莱区", "龙口市", "莱阳市", "莱州市", "招远市",
                   "栖霞市", "海阳市")),
    ("wf", "潍坊", ("潍城区", "寒亭区", "坊子区", "奎文区", "青州市", "诸城市", "寿光市", "安丘市", "高密市",
                   "昌邑市", "临朐县", "昌乐县")),
    ("jng", "济宁", ("任城区", "兖州区", "曲阜市", "邹城市", "微山县", "鱼台县", "金乡县", "嘉祥县", "汶上县",
                    "泗水县", "梁山县")),
    ("ta", "泰安", ("泰山区", "岱岳区", "新泰市", "肥城市", "宁阳县", "东平县")),
    ("wh", "威海", ("环翠区", "文登区", "荣成市", "乳山市")),
    ("rz", "日照", ("东港区", "岚山区", "五莲县", "莒县")),
    ("ly", "临沂", ("兰山区", "罗庄区", "河东区", "沂南县", "郯城县", "沂水县", "兰陵县", "费县", "平邑县",
                   "莒南县", "蒙阴县", "临沭县")),
    ("dz", "德州", ("德城区", "陵城区", "乐陵市", "禹城市", "宁津县", "庆云县", "临邑县", "齐河县", "平原县",
                   "夏津县", "武城县")),
    ("lc", "聊城", ("东昌府区", "茌平区", "临清市", "阳谷县", "莘县", "东阿县", "冠县", "高唐县")),
    ("bz", "滨州", ("滨城区", "沾化区", "邹平市", "惠民县", "阳信县", "无棣县", "博兴县")),
    ("hz", "菏泽", ("牡丹区", "定陶区", "曹县", "单县", "成武县", "巨野县", "郓城县", "鄄城县", "东明县")),
)

# Provincial units directly under the province (大型企业、高校、省直机关工委).
PROVINCIAL_UNITS: tuple[tuple[str, str, str], ...] = (
    ("ent-port", "enterprise", "省港口集团团委"), ("uni-ocean", "university", "省海洋大学团委"),
    ("agency-gov", "agency", "省直机关团工委"), ("ent-energy", "enterprise", "省能源集团团委"),
    ("uni-normal", "university", "省师范大学团委"), ("agency-sasac", "agency", "省国资委团工委"),
    ("ent-transport", "enterprise", "省交通运输集团团委"), ("uni-tech", "university", "省理工大学团委"),
    ("ent-steel", "enterprise", "省钢铁集团团委"), ("uni-med", "university", "省医科大学团委"),
    ("uni-agri", "university", "省农业大学团委"),
)

PLACE_CHARS = "东西南北中新安宁平和兴隆福泰华山河湖海港湾泉林桥庄集岭营花园阳明德仁义丰乐康盛昌源清桃柳石"
UNIT_UNITS = {  # (grassroots committee name, branch name pattern) of each kind of provincial unit
    "enterprise": (("{p}分公司团委", "{p}车间团支部"), ("{p}港务公司团委", "{p}作业队团支部")),
    "university": (("{p}学院团委", "{n}级{k}班团支部"), ("研究生{p}学院团委", "{n}级硕士{k}班团支部")),
    "agency": (("{p}厅机关团委", "{p}处团支部"), ("{p}局机关团委", "{p}科团支部")),
}
COUNTY_COMMITTEES = (  # (kind, name pattern, branch name pattern) under a county
    ("grassroots", "{p}街道团工委", "{p}社区团支部"),
    ("grassroots", "{p}镇团委", "{p}村团支部"),
    ("grassroots", "{c}第{z}中学团委", "高{g}{k}班团支部"),
    ("grassroots", "{c}人民医院团委", "{d}团支部"),
    ("grassroots", "{p}{i}有限公司团委", "{p}车间团支部"),
    ("general_branch", "{p}社区团总支", "{p}小区团支部"),
    ("general_branch", "{c}职业中专团总支", "{n}级{k}班团支部"),
)
HOSPITAL_DEPARTMENTS = ("内科", "外科", "急诊科", "儿科", "护理部", "医技科")
COMPANY_TRADES = ("海洋科技", "食品", "机械", "纺织", "电子", "物流", "化工", "新材料")
GRADES = "一二三"
CHINESE_NUMERALS = "一二三四五六七八九十"

# --------------------------------------------------------------------------------------- people

# Common surnames, roughly weighted by frequency.
SURNAMES = ("王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "胡", "朱", "高", "林", "何", "郭",
            "马", "罗", "梁", "宋", "郑", "谢", "韩", "唐", "冯", "于", "董", "萧", "程", "曹", "袁", "邓", "许", "傅",
            "沈", "曾", "彭", "吕", "苏", "卢", "蒋", "蔡", "贾", "丁", "魏", "薛", "叶", "阎", "孔", "邢", "毕", "姜",
            "崔", "谭", "宫", "牟", "隋", "鞠")
SURNAME_CUM_WEIGHTS = tuple(accumulate([72, 72, 70, 55, 45, 31, 20, 17, 17, 16, 14, 13, 11, 10, 10, 9, 9, 8, 8, 7, 7,
                                         6, 6, 6, 6, 6, 5, 5, 5, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 3, 3,
                                         3, 3, 3, 3, 2, 2, 2, 6, 3, 2, 2, 2, 2, 2]))
GIVEN_CHARS = ("伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀",
               "霞", "平", "刚", "桂", "英", "华", "玉", "萍", "红", "鹏", "辉", "婷", "宁", "雪", "琳", "晨", "浩", "宇",
               "欣", "悦", "子", "涵", "梓", "轩", "博", "文", "思", "佳", "俊", "凯", "晓", "瑞", "嘉", "昊", "然", "雨",
               "泽", "一", "诺", "睿", "航", "天", "海", "峰", "波", "鑫", "璐", "颖", "倩", "丹", "飞", "斌", "冰", "蕾",
               "鸿", "帆", "萌", "阳", "朋", "书", "远", "青", "建", "志", "国", "东", "振", "新", "春", "秋", "岩", "松")
MOBILE_PREFIXES = ("130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "147", "150", "151", "152",
                   "155", "156", "157", "158", "159", "166", "176", "177", "178", "180", "181", "182", "183", "185",
                   "186", "187", "188", "189", "191", "195", "198", "199")
# 职业 → plausible 行业 (occupation and industry tags).
OCCUPATION_INDUSTRIES: dict[str, tuple[str, ...]] = {
    "学生": ("教育",), "教师": ("教育",), "医生": ("医疗卫生",), "护士": ("医疗卫生",),
    "工人": ("制造业", "建筑业", "能源化工"), "农民": ("农林牧渔",), "渔民": ("海洋渔业",),
    "公务员": ("公共管理",), "企业职员": ("金融", "信息技术", "制造业", "批发零售", "港口物流"),
    "个体经营者": ("批发零售", "住宿餐饮"), "自由职业者": ("文化娱乐", "信息技术"),
    "快递员": ("交通运输", "港口物流"), "外卖骑手": ("住宿餐饮", "交通运输"), "网络主播": ("文化娱乐",),
    "工程师": ("信息技术", "制造业", "建筑业"), "科研人员": ("科研技术服务",), "社区工作者": ("公共管理",),
    "军人": ("公共管理",), "律师": ("法律服务",),
}
OCCUPATIONS = tuple(OCCUPATION_INDUSTRIES)
OCCUPATION_CUM_WEIGHTS = tuple(accumulate([22, 5, 2, 3, 12, 6, 2, 3, 14, 5, 4, 3, 3, 2, 4, 2, 3, 1, 1]))

INCOMPLETE_TAGS_SHARE = 0.10   # youth whose occupation or industry tag is missing
BOUND_SHARE = 0.45             # youth who bound the mobile client
SECOND_CONTACT_SHARE = 0.30    # youth contacted by two cadres
GRASSROOTS_CADRE_SHARE = 0.15  # cadres whose home organisation is a grassroots committee / general branch


@dataclass(frozen=True)
class ProvinceSize:
    """How much to generate."""

    counties_per_city: int | None       # None: every county of the city
    committees_per_county: tuple[int, int]
    branches_per_committee: tuple[int, int]
    direct_branches_per_county: tuple[int, int]
    provincial_units: int
    committees_per_unit: tuple[int, int]
    cadres: int
    youth: int


SIZE_SPECS = {
    "small": ProvinceSize(counties_per_city=2, committees_per_county=(1, 3), branches_per_committee=(1, 2),
                          direct_branches_per_county=(0, 1), provincial_units=3, committees_per_unit=(1, 2),
                          cadres=300, youth=3_000),
    "province": ProvinceSize(counties_per_city=None, committees_per_county=(3, 5), branches_per_committee=(1, 3),
                             direct_branches_per_county=(0, 1), provincial_units=len(PROVINCIAL_UNITS),
                             committees_per_unit=(3, 6), cadres=100_000, youth=1_000_000),
}


# ------------------------------------------------------------------------------------- the result

@dataclass(frozen=True)
class DemoAccount:
    """One account to try the demo with."""

    role: str          # e.g. "县协调员 county coordinator"
    username: str      # for youth: the phone number they sign in with
    password: str      # for youth: how they sign in instead (an SMS code)
    name: str
    organisation: str  # the organisation's name


@dataclass(frozen=True)
class DemoCadre:
    """A generated cadre the demo hands work to."""

    username: str
    name: str
    kind: str
    organisation_code: str


@dataclass
class DemoSummary:
    """What :func:`generate_province` made, and the accounts to print."""

    size: str
    seed: int
    organisations: int = 0
    users: int = 0
    role_grants: int = 0
    cadres: int = 0
    youth: int = 0
    contacts: int = 0
    seconds: float = 0.0
    accounts: list[DemoAccount] = field(default_factory=list)
    demo_cadres: list[DemoCadre] = field(default_factory=list)

    def counts_line(self) -> str:
        """One line with the counts, e.g. for the command line."""
        return (f"{self.organisations:,} organisations, {self.cadres:,} cadres, {self.youth:,} youth, "
                f"{self.contacts:,} contacts, {self.users:,} accounts, {self.role_grants:,} role grants "
                f"({self.seconds:.1f} s)")


class ProvinceNotEmpty(ValueError):
    """The database already has organisations; the demo province goes only into an empty one."""


# ----------------------------------------------------------------------------------- generation

@dataclass
class _Org:
    id: int
    code: str
    name: str
    kind: str
    parent_id: int | None
    path: str
    depth: int

    def row(self) -> dict:
        return {"id": self.id, "code": self.code, "name": self.name, "kind": self.kind, "parent_id": self.parent_id,
                "path": self.path, "depth": self.depth}


class _Tree:
    """Organisations in tree order, with ids and paths assigned as they are added."""

    def __init__(self, first_id: int):
        self.orgs: list[_Org] = []
        self.by_code: dict[str, _Org] = {}
        self._next_id = first_id

    def add(self, code: str, name: str, kind: str, parent: _Org | None) -> _Org:
        org_id = self._next_id
        self._next_id += 1
        org = _Org(org_id, code, name, kind, parent.id if parent else None,
                   f"{parent.path if parent else '/'}{org_id}/", parent.depth + 1 if parent else 0)
        self.orgs.append(org)
        self.by_code[code] = org
        return org


def _person_names(rng: random.Random, count: int) -> list[str]:
    """``count`` Chinese names: a surname and one or two given-name characters."""
    surnames = rng.choices(SURNAMES, cum_weights=SURNAME_CUM_WEIGHTS, k=count)
    firsts = rng.choices(GIVEN_CHARS, k=count)
    seconds = rng.choices(GIVEN_CHARS, k=count)
    single = rng.choices((True, False), weights=(3, 7), k=count)
    return [s + f + ("" if one else t) for s, f, t, one in zip(surnames, firsts, seconds, single)]


def _place(rng: random.Random, taken: set[str]) -> str:
    """A two-character place name not yet used under the same parent."""
    while True:
        name = rng.choice(PLACE_CHARS) + rng.choice(PLACE_CHARS)
        if name[0] != name[1] and name not in taken:
            taken.add(name)
            return name


def _fill(pattern: str, rng: random.Random, taken: set[str], county: str = "", number: int = 1,
          index: int = 1) -> str:
    """A name from a pattern: {p} place, {c} county, {n} number ({z} in Chinese), {k} index, {g} grade,
    {d} hospital department, {i} trade."""
    values = {"c": county, "n": number, "z": CHINESE_NUMERALS[(number - 1) % 10], "k": index,
              "g": GRADES[(index - 1) % 3],
              "d": HOSPITAL_DEPARTMENTS[(index - 1) % len(HOSPITAL_DEPARTMENTS)],
              "i": rng.choice(COMPANY_TRADES) if "{i}" in pattern else ""}
    if "{p}" in pattern:
        values["p"] = _place(rng, taken)
    return pattern.format(**values)


def _build_tree(rng: random.Random, spec: ProvinceSize, first_id: int) -> _Tree:
    """The province, its cities, counties, committees and branches, and the provincial units."""
    tree = _Tree(first_id)
    province = tree.add("prov", "团省委", "province", None)
    for city_code, city_name, counties in CITIES:
        city = tree.add(city_code, f"{city_name}团市委", "city", province)
        chosen = counties if spec.counties_per_city is None else counties[:spec.counties_per_city]
        for county_number, county_name in enumerate(chosen, start=1):
            county = tree.add(f"{city_code}-{county_number:02d}", f"{city_name}市{county_name}团委", "county", city)
            _add_county_grassroots(rng, spec, tree, county, county_name)
    for unit_code, unit_kind, unit_name in PROVINCIAL_UNITS[:spec.provincial_units]:
        unit = tree.add(unit_code, unit_name, unit_kind, province)
        taken: set[str] = set()
        patterns = UNIT_UNITS[unit_kind]
        for number in range(1, rng.randint(*spec.committees_per_unit) + 1):
            committee_pattern, branch_pattern = patterns[(number - 1) % len(patterns)]
            committee = tree.add(f"{unit_code}-g{number}", _fill(committee_pattern, rng, taken, number=number),
                                 "grassroots", unit)
            branch_taken: set[str] = set()
            for index in range(1, rng.randint(*spec.branches_per_committee) + 1):
                tree.add(f"{committee.code}-b{index}",
                         _fill(branch_pattern, rng, branch_taken, number=2014 + index, index=index), "branch",
                         committee)
    return tree


def _add_county_grassroots(rng: random.Random, spec: ProvinceSize, tree: _Tree, county: _Org,
                           county_name: str) -> None:
    """Committees / general branches of one county with their branches, and branches straight under it."""
    taken: set[str] = set()
    school_number = 0
    for number in range(1, rng.randint(*spec.committees_per_county) + 1):
        kind, committee_pattern, branch_pattern = rng.choice(COUNTY_COMMITTEES)
        if "{z}" in committee_pattern:
            school_number += 1
        committee_name = _fill(committee_pattern, rng, taken, county=county_name, number=school_number)
        if committee_name in taken:  # a second hospital of the same county: make it another kind
            kind, committee_pattern, branch_pattern = COUNTY_COMMITTEES[0]
            committee_name = _fill(committee_pattern, rng, taken, county=county_name)
        taken.add(committee_name)
        committee = tree.add(f"{county.code}-g{number}", committee_name, kind, county)
        branch_taken: set[str] = set()
        for index in range(1, rng.randint(*spec.branches_per_committee) + 1):
            tree.add(f"{committee.code}-b{index}",
                     _fill(branch_pattern, rng, branch_taken, county=county_name, number=2014 + index, index=index),
                     "branch", committee)
    for index in range(1, rng.randint(*spec.direct_branches_per_county) + 1):
        tree.add(f"{county.code}-b{index}", f"{county_name}团委机关团支部", "branch", county)


def _insert_chunks(session: Session, table: Table, rows: Iterable[dict]) -> int:
    """Insert ``rows`` in chunks of :data:`CHUNK_ROWS` with one executemany each; return how many."""
    count = 0
    chunk: list[dict] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= CHUNK_ROWS:
            session.execute(insert(table), chunk)
            count += len(chunk)
            chunk = []
    if chunk:
        session.execute(insert(table), chunk)
        count += len(chunk)
    return count


def _next_id(session: Session, table: Table) -> int:
    return (session.scalar(select(func.max(table.c.id))) or 0) + 1


def _reset_sequences(session: Session, tables: Iterable[Table]) -> None:
    """On PostgreSQL, move each id sequence past the ids assigned here."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for table in tables:
        session.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                             f"(SELECT coalesce(max(id), 1) FROM {table.name}))"))


def generate_province(session: Session, size: str = "small", seed: int = 2017, now: datetime | None = None,
                      progress: Callable[[str], None] | None = None) -> DemoSummary:
    """Generate the demo province into ``session`` (executed, not committed) and say what was made.

    Refuses with :class:`ProvinceNotEmpty` when any organisation exists.  ``progress`` receives a
    line now and then (use it for the province size, which takes minutes).
    """
    if size not in SIZE_SPECS:
        raise ValueError(f"size must be one of {', '.join(SIZES)}, not {size!r}")
    if session.scalar(select(func.count()).select_from(Organisation)):
        raise ProvinceNotEmpty("数据库中已有组织，演示数据只能导入空库 / the database already has organisations")
    began = time.perf_counter()
    now = now or datetime.now(timezone.utc)
    say = progress or (lambda _line: None)
    spec = SIZE_SPECS[size]
    rng = random.Random(seed)
    summary = DemoSummary(size=size, seed=seed)
    org_table, user_table, grant_table = Organisation.__table__, User.__table__, RoleGrant.__table__
    cadre_table, youth_table, contact_table = Cadre.__table__, Youth.__table__, Contact.__table__

    tree = _build_tree(rng, spec, _next_id(session, org_table))
    summary.organisations = _insert_chunks(session, org_table, (org.row() for org in tree.orgs))
    say(f"organisations: {summary.organisations:,} ({time.perf_counter() - began:.1f} s)")

    demo_hash = hash_password(DEMO_PASSWORD)  # one argon2 hash, shared by every printed demo account
    next_user_id = _next_id(session, user_table)

    # Staff: an organiser, a coordinator and an inspector at the province, each city and each county.
    staff_orgs = [org for org in tree.orgs if org.kind in ("province", "city", "county")]
    staff_roles = [(org, role) for org in staff_orgs for role in ("organiser", "coordinator", "inspector")]
    staff_roles.append((tree.by_code["prov"], "admin"))
    staff_names = _person_names(rng, len(staff_roles))
    demo_staff = {("prov", "admin"), ("prov", "organiser"), ("qd", "organiser"), ("qd-01", "coordinator"),
                  ("qd-01", "inspector")}
    user_rows, grant_rows, staff_users = [], [], {}
    for (org, role), name in zip(staff_roles, staff_names):
        username = f"{org.code}-{role}"
        is_demo = (org.code, role) in demo_staff
        user_rows.append({"id": next_user_id, "username": username, "display_name": name,
                          "password_hash": demo_hash if is_demo else None, "organisation_id": org.id,
                          "active": True, "session_version": 1, "created_at": now})
        grant_rows.append({"user_id": next_user_id, "role": role, "organisation_id": org.id})
        staff_users[(org.code, role)] = (username, name, org)
        next_user_id += 1
    summary.users += _insert_chunks(session, user_table, user_rows)
    summary.role_grants = _insert_chunks(session, grant_table, grant_rows)
    say(f"staff accounts: {summary.users:,}")

    # Cadres: the first three are the demo cadres, the rest spread over leading organs and grassroots.
    leading = [org for org in tree.orgs if org.kind in LEADING_ORGAN_KINDS]
    leading_weights = [{"province": 30, "city": 10, "county": 4}.get(org.kind, 5) for org in leading]
    grassroots = [org for org in tree.orgs if org.kind in ("grassroots", "general_branch")]
    demo_cadre_places = [(tree.by_code["qd-01"], "full_time", MAX_CONTACTS_PER_CADRE),
                         (tree.by_code["qd-01"], "part_time", 12), (tree.by_code["yt-01"], "seconded", 40)]
    cadre_count = spec.cadres
    homes = [org for org, _kind, _cap in demo_cadre_places]
    rest = cadre_count - len(homes)
    at_grassroots = [rng.random() < GRASSROOTS_CADRE_SHARE for _ in range(rest)]
    leading_picks = iter(rng.choices(leading, weights=leading_weights, k=rest))
    grassroots_picks = iter(rng.choices(grassroots, k=rest))
    homes += [next(grassroots_picks) if low else next(leading_picks) for low in at_grassroots]
    kinds = [kind for _org, kind, _cap in demo_cadre_places]
    capacities = [cap for _org, _kind, cap in demo_cadre_places]
    for org in homes[len(kinds):]:
        draw = rng.random()
        full_share, seconded_share = (0.30, 0.15) if org.kind in LEADING_ORGAN_KINDS else (0.10, 0.05)
        kind = "full_time" if draw < full_share else "seconded" if draw < full_share + seconded_share else "part_time"
        kinds.append(kind)
        capacities.append(rng.randint(5, 60) if kind != "part_time" else rng.randint(0, 15))
    cadre_names = _person_names(rng, cadre_count)
    first_cadre_id = _next_id(session, cadre_table)
    cadre_user_ids = range(next_user_id, next_user_id + cadre_count)
    next_user_id += cadre_count

    def cadre_users():
        for index in range(cadre_count):
            yield {"id": cadre_user_ids[index], "username": f"c{index + 1:06d}", "display_name": cadre_names[index],
                   "password_hash": demo_hash if index < len(demo_cadre_places) else None,
                   "organisation_id": homes[index].id, "active": True, "session_version": 1, "created_at": now}

    def cadre_rows():
        for index in range(cadre_count):
            yield {"id": first_cadre_id + index, "user_id": cadre_user_ids[index], "code": f"c{index + 1:06d}",
                   "name": cadre_names[index], "kind": kinds[index], "organisation_id": homes[index].id,
                   "guided_committee_id": None, "guided_branch_id": None}

    summary.users += _insert_chunks(session, user_table, cadre_users())
    summary.cadres = _insert_chunks(session, cadre_table, cadre_rows())
    say(f"cadres: {summary.cadres:,} ({time.perf_counter() - began:.1f} s)")

    # Contact slots: each cadre appears as often as the contacts they get; the demo cadres come first.
    youth_count = spec.youth
    needed = int(youth_count * (1 + SECOND_CONTACT_SHARE * 1.1)) + 10
    missing = needed - sum(capacities)
    while missing > 0:  # top up cadres below the cap (rare: capacities average about 15)
        index = rng.randrange(len(demo_cadre_places), cadre_count)
        if capacities[index] < MAX_CONTACTS_PER_CADRE:
            capacities[index] += 1
            missing -= 1
    demo_slots = [index for index in range(len(demo_cadre_places)) for _ in range(capacities[index])]
    other_slots = [index for index in range(len(demo_cadre_places), cadre_count) for _ in range(capacities[index])]
    rng.shuffle(other_slots)
    slots = demo_slots + other_slots

    phone_suffixes = rng.sample(range(100_000_000), youth_count)
    first_youth_id = _next_id(session, youth_table)
    contacts: list[dict] = []
    youth_chunk: list[dict] = []
    slot = 0
    demo_youth: tuple[str, str] | None = None
    for start in range(0, youth_count, CHUNK_ROWS):
        count = min(CHUNK_ROWS, youth_count - start)
        names = _person_names(rng, count)
        prefixes = rng.choices(MOBILE_PREFIXES, k=count)
        occupations = rng.choices(OCCUPATIONS, cum_weights=OCCUPATION_CUM_WEIGHTS, k=count)
        for offset in range(count):
            index = start + offset
            youth_id = first_youth_id + index
            occupation = occupations[offset]
            industry = rng.choice(OCCUPATION_INDUSTRIES[occupation])
            if index > 0 and rng.random() < INCOMPLETE_TAGS_SHARE:  # youth 0 is the demo youth: complete
                draw = rng.random()
                if draw < 0.4:
                    occupation = None
                elif draw < 0.8:
                    industry = None
                else:
                    occupation = industry = None
            bound_at = (now - timedelta(days=rng.random() * 180)) if rng.random() < BOUND_SHARE else None
            phone = f"{prefixes[offset]}{phone_suffixes[index]:08d}"
            youth_chunk.append({"id": youth_id, "user_id": None, "name": names[offset], "phone": phone,
                                "occupation": occupation, "industry": industry, "bound_at": bound_at})
            if index == 0:
                demo_youth = (phone, names[offset])
            primary = slots[slot]
            slot += 1
            contacts.append({"cadre_id": first_cadre_id + primary, "youth_id": youth_id,
                             "since": now - timedelta(days=1 + rng.random() * 365)})
            # A second cadre (another one), while enough slots remain for every later youth's first contact.
            if rng.random() < SECOND_CONTACT_SHARE and len(slots) - slot > youth_count - index \
                    and slots[slot] != primary:
                contacts.append({"cadre_id": first_cadre_id + slots[slot], "youth_id": youth_id,
                                 "since": now - timedelta(days=1 + rng.random() * 365)})
                slot += 1
        summary.youth += _insert_chunks(session, youth_table, youth_chunk)
        youth_chunk = []
        if len(contacts) >= CHUNK_ROWS:
            summary.contacts += _insert_chunks(session, contact_table, contacts)
            contacts = []
        if youth_count >= 100_000 and (start + count) % 100_000 == 0:
            say(f"youth: {start + count:,} / {youth_count:,}, contacts: {summary.contacts:,} "
                f"({time.perf_counter() - began:.1f} s)")
    summary.contacts += _insert_chunks(session, contact_table, contacts)
    _reset_sequences(session, (org_table, user_table, cadre_table, youth_table))
    session.flush()

    summary.demo_cadres = [DemoCadre(f"c{index + 1:06d}", cadre_names[index], kinds[index], homes[index].code)
                           for index in range(len(demo_cadre_places))]
    summary.accounts = _demo_accounts(staff_users, summary.demo_cadres, tree, demo_youth)
    summary.seconds = time.perf_counter() - began
    say(f"done: {summary.counts_line()}")
    return summary


CADRE_KIND_LABELS = {"full_time": "团干部（专职）full-time cadre", "seconded": "团干部（挂职）seconded cadre",
                     "part_time": "团干部（兼职）part-time cadre"}


def _demo_accounts(staff_users: dict, demo_cadres: list[DemoCadre], tree: _Tree,
                   demo_youth: tuple[str, str] | None) -> list[DemoAccount]:
    """One account per role to sign in with; all but the youth share :data:`DEMO_PASSWORD`."""
    accounts = []
    for key, label in [(("prov", "admin"), "管理员 admin"), (("prov", "organiser"), "省组织者 province organiser"),
                       (("qd", "organiser"), "市组织者 city organiser"),
                       (("qd-01", "coordinator"), "县协调员 county coordinator"),
                       (("qd-01", "inspector"), "县核查员 county inspector")]:
        username, name, org = staff_users[key]
        accounts.append(DemoAccount(label, username, DEMO_PASSWORD, name, org.name))
    for cadre in demo_cadres:
        accounts.append(DemoAccount(CADRE_KIND_LABELS[cadre.kind], cadre.username, DEMO_PASSWORD, cadre.name,
                                    tree.by_code[cadre.organisation_code].name))
    if demo_youth is not None:
        phone, name = demo_youth
        accounts.append(DemoAccount("青年 youth (手机号登录 / phone sign-in)", phone, "短信验证码 / SMS code", name,
                                    f"{demo_cadres[0].name}的联系青年 / contact of {demo_cadres[0].username}"))
    return accounts
