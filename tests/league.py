"""A small hand-built league for tests: two cities, counties, branches, staff, cadres and youth.

    prov 团省委                         organiser P_org, admin P_admin
    ├─ qd 青岛团市委                    organiser Q_org
    │  └─ qd-sn 市南区团委 (county)     organiser S_org, coordinator S_coord, inspector S_insp; cadre zhang (full-time)
    │     └─ qd-sn-gw 某街道团工委 (grassroots) — cadre li (part-time)
    │        └─ qd-sn-gw-1 团支部 (branch)
    └─ jn 济南团市委                    organiser J_org
       └─ jn-lx 历下区团委 (county)     cadre wang (seconded)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from workflows.models import Cadre, Contact, Organisation, User, Youth
from workflows.organisations import create_organisation
from workflows.people import hash_password, new_user
from workflows.roles import grant_role

PASSWORD = "correct-horse-9"
_HASH_CACHE: dict[str, str] = {}


@dataclass
class League:
    """Handles to what :func:`build_league` made."""

    orgs: dict[str, Organisation] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    cadres: dict[str, Cadre] = field(default_factory=dict)
    youth: dict[str, Youth] = field(default_factory=dict)


def _user(session: Session, league: League, username: str, name: str, org: Organisation, now: datetime) -> User:
    if PASSWORD not in _HASH_CACHE:  # argon2 is slow on purpose; one hash serves every test user
        _HASH_CACHE[PASSWORD] = hash_password(PASSWORD)
    user = User(username=username, display_name=name, organisation_id=org.id, password_hash=_HASH_CACHE[PASSWORD],
                active=True, session_version=1, created_at=now)
    session.add(user)
    session.flush()
    league.users[username] = user
    return user


def build_league(session: Session, now: datetime) -> League:
    """Create the tree above in ``session`` (flushed, not committed)."""
    league = League()
    o = league.orgs
    o["prov"] = create_organisation(session, "prov", "团省委", "province", None)
    o["qd"] = create_organisation(session, "qd", "青岛团市委", "city", o["prov"])
    o["qd-sn"] = create_organisation(session, "qd-sn", "市南区团委", "county", o["qd"])
    o["qd-sn-gw"] = create_organisation(session, "qd-sn-gw", "八大关街道团工委", "grassroots", o["qd-sn"])
    o["qd-sn-gw-1"] = create_organisation(session, "qd-sn-gw-1", "八大关社区团支部", "branch", o["qd-sn-gw"])
    o["jn"] = create_organisation(session, "jn", "济南团市委", "city", o["prov"])
    o["jn-lx"] = create_organisation(session, "jn-lx", "历下区团委", "county", o["jn"])
    for username, name, org, role in [("P_org", "省组织者", "prov", "organiser"), ("P_admin", "省管理员", "prov", "admin"),
                                      ("Q_org", "青岛组织者", "qd", "organiser"),
                                      ("S_org", "市南组织者", "qd-sn", "organiser"),
                                      ("S_coord", "市南协调员", "qd-sn", "coordinator"),
                                      ("S_insp", "市南核查员", "qd-sn", "inspector"),
                                      ("J_org", "济南组织者", "jn", "organiser")]:
        grant_role(session, _user(session, league, username, name, o[org], now), role, o[org])
    for username, name, kind, org in [("zhang", "张伟", "full_time", "qd-sn"), ("li", "李娜", "part_time", "qd-sn-gw"),
                                      ("wang", "王芳", "seconded", "jn-lx")]:
        user = _user(session, league, username, name, o[org], now)
        cadre = Cadre(user_id=user.id, code=f"c-{username}", name=name, kind=kind, organisation_id=o[org].id)
        session.add(cadre)
        session.flush()
        league.cadres[username] = cadre
    for key, name, phone, occupation, industry in [("xiaoming", "小明", "13800000001", "学生", "教育"),
                                                   ("xiaohong", "小红", "13800000002", "工人", None)]:
        youth = Youth(name=name, phone=phone, occupation=occupation, industry=industry)
        session.add(youth)
        session.flush()
        session.add(Contact(cadre_id=league.cadres["zhang"].id, youth_id=youth.id, since=now))
        league.youth[key] = youth
    session.flush()
    return league


def give_youth_account(session: Session, league: League, key: str, now: datetime) -> str:
    """Give a league youth their mobile-client account ("youth-<id>"), as after signing in once; return its username."""
    person = session.get(Youth, league.youth[key].id)
    user = new_user(f"youth-{person.id}", person.name, now)
    session.add(user)
    session.flush()
    person.user_id = user.id
    return user.username
