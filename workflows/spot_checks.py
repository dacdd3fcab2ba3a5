"""Monthly spot checks of recorded activities (电话抽查 / 实地查看): is the record true?

Each month, every organisation where an inspector (核查员) holds the role gets a random but
reproducible sample of the past month's records of its subtree (its *inspection unit*: a record
belongs to the nearest organisation at or above its own that has an active inspector).  The sample
is seeded from the month and the unit's code, so the same month always draws the same records.
Every sampled record becomes one ``spot_check`` process instance (bpmn/spot_check.bpmn) whose task
goes to one of the unit's inspectors, in turn.  A :class:`SpotCheckRound` row per unit and month
makes the monthly run idempotent: running a month twice starts nothing twice.

A verdict of "false" revokes the record (``Activity.revoked_at``), removes its points
(``points.revoke_source``) and tells the cadre and their organiser; the verdicts feed the monthly
bulletin through :func:`spot_check_summary`.
"""
from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from engine.errors import NotFound
from engine.models import Base

from .activities import revoke_activity
from .models import Activity, Cadre, Notification, Organisation, RoleGrant, User
from .organisations import ancestor_ids, in_subtree
from .roles import holders, nearest_holding_organisation

PROCESS_ID = "spot_check"
BEIJING = ZoneInfo("Asia/Shanghai")
METHODS = ("phone", "site_visit")
VERDICTS = ("true", "false", "unreachable")
METHOD_NAMES_ZH = {"phone": "电话抽查", "site_visit": "实地查看"}
KIND_NAMES_ZH = {"practical_thing": "为青年办一件实事", "league_lecture": "讲一次团课", "heart_to_heart": "开展一次谈心",
                 "volunteer_service": "组织或参加一次志愿服务", "culture_sports": "组织或参加一次文体活动",
                 "open_day": "机关开放日", "face_to_face": "共青团与青年面对面", "collective_volunteer": "集中志愿服务",
                 "sharing_session": "“1+100”工作分享", "self_designed": "自主设计的集体活动"}


@dataclass(frozen=True)
class SpotCheckSettings:
    """How much is checked and how long inspectors have: ``fraction`` of a unit's records, at least ``minimum``."""

    fraction: Decimal = Decimal("0.10")
    minimum: int = 1
    days_to_check: int = 14
    remind_days_before: int = 3

    def __post_init__(self) -> None:
        if not Decimal(0) < Decimal(self.fraction) <= Decimal(1) or self.minimum < 0 or self.days_to_check < 1:
            raise ValueError("抽查比例须在 0 到 1 之间 / fraction must be in (0, 1], minimum >= 0, days_to_check >= 1")


class SpotCheckRound(Base):
    """One inspection unit's draw for one month: how many records there were and how many were drawn."""

    __tablename__ = "spot_check_round"
    __table_args__ = (UniqueConstraint("month", "organisation_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[str] = mapped_column(String(7))  # "2026-05"
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))  # the inspection unit
    population: Mapped[int] = mapped_column(Integer)
    sample_size: Mapped[int] = mapped_column(Integer)
    drawn_at: Mapped[datetime]


class SpotCheck(Base):
    """One record drawn for checking, and the inspector's verdict once given."""

    __tablename__ = "spot_check"
    __table_args__ = (UniqueConstraint("activity_id"),
                      Index("ix_spot_check_month_org", "month", "organisation_id"),
                      Index("ix_spot_check_cadre_verdict", "cadre_id", "verdict"))

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activity.id"))
    round_id: Mapped[int] = mapped_column(ForeignKey("spot_check_round.id"))
    month: Mapped[str] = mapped_column(String(7))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))  # the record's organisation
    cadre_id: Mapped[int | None] = mapped_column(ForeignKey("cadre.id"))
    instance_id: Mapped[int | None] = mapped_column(Integer)
    inspector: Mapped[str | None] = mapped_column(String(64))  # who the task was given to
    method: Mapped[str | None] = mapped_column(String(16))
    verdict: Mapped[str | None] = mapped_column(String(16))  # true / false / unreachable; None while open
    note: Mapped[str | None] = mapped_column(String(2000))
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


@dataclass(frozen=True)
class UnitSample:
    """The draw of one inspection unit for one month."""

    unit_id: int
    unit_code: str
    population: int
    activity_ids: tuple[int, ...]


@dataclass
class SpotCheckRun:
    """What one monthly run did."""

    month: str
    units: int = 0
    started: list[int] = field(default_factory=list)  # instance ids
    skipped_units: int = 0  # already drawn this month


@dataclass(frozen=True)
class SpotCheckSummary:
    """Spot checks of one month's records in a subtree, for the bulletin."""

    sampled: int
    checked: int
    confirmed: int
    false: int
    unreachable: int

    @property
    def pending(self) -> int:
        """Drawn but not yet checked."""
        return self.sampled - self.checked


# ------------------------------------------------------------------------------------------ months

def month_text(month: str | date) -> str:
    """"2026-05" for "2026-05", "2026-05-17" or a date; refuses anything else with ``ValueError``."""
    if isinstance(month, date):
        return f"{month.year:04d}-{month.month:02d}"
    text = str(month)[:7]
    year, number = int(text[:4]), int(text[5:7])
    if text[4] != "-" or not 1 <= number <= 12:
        raise ValueError(f"月份格式应为 YYYY-MM / month must look like 2026-05, not {month!r}")
    return f"{year:04d}-{number:02d}"


def month_days(month: str | date) -> tuple[str, str]:
    """The first and last day of a month as ISO dates (both included)."""
    text = month_text(month)
    first = date(int(text[:4]), int(text[5:7]), 1)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first.isoformat(), (following - timedelta(days=1)).isoformat()


def month_window(month: str | date) -> tuple[datetime, datetime]:
    """[start, end) of a month in Beijing time, as aware datetimes."""
    first, last = month_days(month)
    start = datetime.fromisoformat(first).replace(tzinfo=BEIJING)
    end = datetime.fromisoformat(last).replace(tzinfo=BEIJING) + timedelta(days=1)
    return start, end


def previous_month(now: datetime) -> str:
    """The month before ``now``'s month, in Beijing time."""
    local = now.astimezone(BEIJING).date().replace(day=1) - timedelta(days=1)
    return month_text(local)


# ---------------------------------------------------------------------------------------- sampling

def sample_size(population: int, settings: SpotCheckSettings) -> int:
    """``fraction`` of the records, rounded up, at least ``minimum``, never more than there are."""
    wanted = math.ceil(Decimal(population) * Decimal(settings.fraction))
    return min(population, max(settings.minimum, wanted))


def sample_records(activity_ids: list[int] | tuple[int, ...], month: str, unit_code: str,
                   settings: SpotCheckSettings) -> list[int]:
    """A reproducible random sample: the same month, unit and records always give the same ids (sorted)."""
    population = sorted(set(activity_ids))
    rng = random.Random(f"spot-check:{month_text(month)}:{unit_code}")  # str seeds hash with SHA-512: stable
    return sorted(rng.sample(population, sample_size(len(population), settings)))


def inspection_units(session: Session) -> dict[int, str]:
    """Ids and codes of the organisations where an active user holds the inspector role."""
    rows = session.execute(select(Organisation.id, Organisation.code)
                           .join(RoleGrant, RoleGrant.organisation_id == Organisation.id)
                           .join(User, User.id == RoleGrant.user_id)
                           .where(RoleGrant.role == "inspector", User.active.is_(True)).distinct())
    return dict(rows.all())


def plan_month(session: Session, month: str | date, settings: SpotCheckSettings | None = None) -> list[UnitSample]:
    """Draw the samples of every inspection unit not yet drawn for ``month`` (nothing is written).

    The population is the unrevoked activity records held in the month; a record counts for the
    nearest organisation at or above its own that has an active inspector (records with no
    inspector above them are not drawn).
    """
    settings = settings or SpotCheckSettings()
    month = month_text(month)
    first, last = month_days(month)
    units = inspection_units(session)
    if not units:
        return []
    done = set(session.scalars(select(SpotCheckRound.organisation_id).where(SpotCheckRound.month == month)))
    rows = session.execute(select(Activity.id, Activity.organisation_id)
                           .where(Activity.held_on >= first, Activity.held_on <= last,
                                  Activity.revoked_at.is_(None))).all()
    paths = _paths(session, {org_id for _id, org_id in rows})
    unit_of: dict[int, int | None] = {}
    for org_id, path in paths.items():
        unit_of[org_id] = next((i for i in reversed(ancestor_ids(path)) if i in units), None)
    by_unit: dict[int, list[int]] = defaultdict(list)
    for activity_id, org_id in rows:
        unit = unit_of.get(org_id)
        if unit is not None and unit not in done:
            by_unit[unit].append(activity_id)
    return [UnitSample(unit, units[unit], len(ids), tuple(sample_records(ids, month, units[unit], settings)))
            for unit, ids in sorted(by_unit.items(), key=lambda item: units[item[0]])]


def _paths(session: Session, org_ids: set[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    ids = sorted(org_ids)
    for start in range(0, len(ids), 1000):
        found.update(session.execute(select(Organisation.id, Organisation.path)
                                     .where(Organisation.id.in_(ids[start:start + 1000]))).all())
    return found


# ---------------------------------------------------------------------------------------- starting

def start_unit(session: Session, engine: Any, month: str, unit: UnitSample, settings: SpotCheckSettings,
               actor: str | None = None) -> list[int]:
    """Start the spot checks of one unit's draw in the caller's transaction; returns the instance ids.

    The unit's :class:`SpotCheckRound` row is written first: a second run of the same month (or a
    concurrent one) finds it, or fails on its unique key, and starts nothing.
    """
    now = engine.clock.now()
    month = month_text(month)
    round_row = SpotCheckRound(month=month, organisation_id=unit.unit_id, population=unit.population,
                               sample_size=len(unit.activity_ids), drawn_at=now)
    session.add(round_row)
    session.flush()
    if not unit.activity_ids:
        return []
    already = set(session.scalars(select(SpotCheck.activity_id).where(SpotCheck.activity_id.in_(unit.activity_ids))))
    activities = [a for a in session.scalars(select(Activity).where(Activity.id.in_(unit.activity_ids))
                                             .order_by(Activity.id)) if a.id not in already]
    if not activities:
        return []
    unit_org = session.get(Organisation, unit.unit_id)
    inspectors = [user.username for user in holders(session, "inspector", unit_org)]
    org_codes = dict(session.execute(select(Organisation.id, Organisation.code).where(
        Organisation.id.in_({a.organisation_id for a in activities}))).all())
    org_names = dict(session.execute(select(Organisation.id, Organisation.name).where(
        Organisation.id.in_({a.organisation_id for a in activities}))).all())
    cadre_names = dict(session.execute(select(Cadre.id, Cadre.name).where(
        Cadre.id.in_({a.cadre_id for a in activities if a.cadre_id is not None}))).all())
    due = now + timedelta(days=settings.days_to_check)
    remind = due - timedelta(days=min(settings.remind_days_before, settings.days_to_check))
    checks, requests = [], []
    for number, activity in enumerate(activities):
        inspector = inspectors[number % len(inspectors)] if inspectors else None
        checks.append(SpotCheck(activity_id=activity.id, round_id=round_row.id, month=month,
                                organisation_id=activity.organisation_id, cadre_id=activity.cadre_id,
                                inspector=inspector, created_at=now))
        data = {"activity_id": activity.id, "month": month, "inspector_assignee": inspector,
                "due_at": due.isoformat(), "remind_at": remind.isoformat(),
                "activity": {"kind": activity.kind, "kind_name": KIND_NAMES_ZH.get(activity.kind, activity.kind),
                             "held_on": activity.held_on, "place": activity.place,
                             "youth_count": activity.youth_count, "description": activity.description[:500],
                             "cadre_name": cadre_names.get(activity.cadre_id),
                             "organisation": org_codes[activity.organisation_id],
                             "organisation_name": org_names[activity.organisation_id],
                             "evidence_count": len(activity.evidence or [])}}
        requests.append((data, org_codes[activity.organisation_id], f"spot-check-{activity.id}"))
    session.add_all(checks)
    session.flush()
    instance_ids = _start_all(session, engine, requests, actor)
    for check, instance_id in zip(checks, instance_ids):
        check.instance_id = instance_id
    session.flush()
    return instance_ids


def _start_all(session: Session, engine: Any, requests: list[tuple[dict, str, str]], actor: str | None) -> list[int]:
    """One instance per request, in bulk when the engine can (``Engine.start_many``)."""
    if hasattr(engine, "start_many"):
        from engine import StartRequest
        definition_id = engine.latest_definition(session, PROCESS_ID).id
        return list(engine.start_many(session, definition_id,
                                      [StartRequest(data=data, organisation_id=org, business_key=key)
                                       for data, org, key in requests], actor=actor))
    return [engine.start(session, PROCESS_ID, data, organisation_id=org, business_key=key, actor=actor).id
            for data, org, key in requests]


def start_spot_checks(session: Session, engine: Any, month: str | date, settings: SpotCheckSettings | None = None,
                      actor: str | None = None) -> SpotCheckRun:
    """Draw and start the month's spot checks of every unit not yet drawn, in the caller's transaction.

    Idempotent: a unit drawn once for a month is never drawn again, so running the month twice
    starts nothing twice.  The caller commits (the monthly job commits unit by unit).
    """
    settings = settings or SpotCheckSettings()
    month = month_text(month)
    run = SpotCheckRun(month=month)
    for unit in plan_month(session, month, settings):
        run.units += 1
        run.started.extend(start_unit(session, engine, month, unit, settings, actor))
    return run


# ----------------------------------------------------------------------------------------- verdicts

def record_verdict(session: Session, activity_id: int, method: str, verdict: str, note: str | None,
                   inspector: str | None, now: datetime) -> SpotCheck:
    """Record an inspector's verdict on a drawn record; a false record is revoked, its points removed.

    Idempotent: a check that already has a verdict is returned unchanged.
    """
    if method not in METHODS:
        raise ValueError(f"核查方式应为电话抽查或实地查看 / method must be one of {', '.join(METHODS)}")
    if verdict not in VERDICTS:
        raise ValueError(f"核查结论应为属实、不属实或无法联系 / verdict must be one of {', '.join(VERDICTS)}")
    check = session.scalar(select(SpotCheck).where(SpotCheck.activity_id == int(activity_id)))
    if check is None:
        raise NotFound(f"活动记录 {activity_id} 未被抽中核查 / activity {activity_id} was not drawn for a spot check")
    if check.verdict is not None:
        return check
    check.method, check.verdict, check.note = method, verdict, (note or "")[:2000] or None
    check.decided_by, check.decided_at = inspector or check.inspector, now
    activity = session.get(Activity, check.activity_id)
    if verdict == "true":
        activity.verified = True
    elif verdict == "false":
        reason = f"抽查不属实（{METHOD_NAMES_ZH[method]}）" + (f"：{note}" if note else "")
        revoke_false_record(session, activity, reason[:500], now)
    session.flush()
    return check


def revoke_false_record(session: Session, activity: Activity, reason: str, now: datetime) -> list[str]:
    """Revoke a record found false: mark it, remove its points, tell the cadre and their organiser.

    Returns the usernames notified.  A record already revoked is left alone.
    """
    if activity.revoked_at is not None:
        return []
    activity.verified = False
    revoke_activity(session, activity, reason, now)  # marks it and removes its points (points.revoke_source)
    org = session.get(Organisation, activity.organisation_id)
    recipients: list[str] = []
    cadre = session.get(Cadre, activity.cadre_id) if activity.cadre_id is not None else None
    if cadre is not None:
        recipients.append(cadre.user.username)
        org = session.get(Organisation, cadre.organisation_id)
    organiser_org = nearest_holding_organisation(session, "organiser", org) if org is not None else None
    if organiser_org is not None:
        recipients.extend(user.username for user in holders(session, "organiser", organiser_org))
    kind = KIND_NAMES_ZH.get(activity.kind, activity.kind)
    who = f"{cadre.name}的" if cadre is not None else f"{org.name if org else ''}的"
    subject = f"活动记录经抽查不属实，已撤销：{kind}（{activity.held_on}）"
    body = (f"{who}活动记录「{kind}」（{activity.held_on}，{activity.place}）经抽查核实不属实，已撤销，"
            f"相应积分已扣除。{reason}。禁止“有数据无过程”，如有异议请联系核查人员。")
    for recipient in dict.fromkeys(recipients):
        session.add(Notification(recipient=recipient, channel="in_app", subject=subject[:255], body=body[:4000],
                                 created_at=now))
    return list(dict.fromkeys(recipients))


# ----------------------------------------------------------------------------------------- bulletin

def spot_check_summary(session: Session, organisation: Organisation, month: str | date) -> SpotCheckSummary:
    """The month's drawn records in ``organisation``'s subtree: checked, confirmed, false, unreachable."""
    query = (select(SpotCheck.verdict, func.count()).join(Organisation, Organisation.id == SpotCheck.organisation_id)
             .where(SpotCheck.month == month_text(month), in_subtree(Organisation.path, organisation.path))
             .group_by(SpotCheck.verdict))
    counts = {verdict: number for verdict, number in session.execute(query).all()}
    confirmed, false, unreachable = counts.get("true", 0), counts.get("false", 0), counts.get("unreachable", 0)
    return SpotCheckSummary(sampled=sum(counts.values()), checked=confirmed + false + unreachable,
                            confirmed=confirmed, false=false, unreachable=unreachable)
