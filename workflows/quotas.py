"""Five-ones quotas (“五个一”) and contact targets per organisation, their periods, and compliance.

The notice sets the defaults: full-time and seconded cadres hold at least 5 activities every two
months, part-time cadres 5 a quarter, and each leading organ (county and above) 5 direct-contact
activities a quarter; every cadre contacts at least 100 young people (some units set fewer for
part-time cadres).  An organisation may set its own values for its subtree, but **never higher
than the one above it (不能层层加码)**: :func:`set_quota` refuses that with :class:`QuotaRaised`.

The effective value at an organisation is the nearest one set at or above it; should an
organisation above have lowered its own value since, that lower value binds (the smallest value
on the way up, which is the nearest one whenever every setting obeyed the rule).

Periods are calendar-aligned: January–February, March–April … for full-time and seconded cadres,
quarters for part-time cadres and organs.  Compliance counts the activities recorded in a period
(by ``held_on``), revoked ones excluded; it is met with at least the quota, of as many different
kinds (up to the five kinds: with the default quota, one of each).
"""
from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import ForeignKey, Integer, String, and_, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from engine.errors import EngineError
from engine.models import Base

from .models import (CADRE_ACTIVITY_KINDS, LEADING_ORGAN_KINDS, ORGAN_ACTIVITY_KINDS, Activity, Cadre, Contact,
                     Organisation, Youth)
from .organisations import ancestor_ids, in_subtree


@dataclass(frozen=True)
class QuotaField:
    """One value an organisation may set: its names and the notice's default."""

    name_zh: str
    name_en: str
    default: int


QUOTA_FIELDS: dict[str, QuotaField] = {
    "cadre_activities": QuotaField("专职、挂职团干部每2个月开展活动次数",
                                   "activities every two months (full-time and seconded cadres)", 5),
    "part_time_activities": QuotaField("兼职团干部每季度开展活动次数", "activities per quarter (part-time cadres)", 5),
    "organ_activities": QuotaField("团的领导机关每季度直接联系青年活动次数",
                                   "direct-contact activities per quarter (leading organs)", 5),
    "contact_target": QuotaField("团干部联系青年人数", "young people each cadre contacts", 100),
    "part_time_contact_target": QuotaField("兼职团干部联系青年人数", "young people each part-time cadre contacts", 100),
}
MAX_QUOTA = 10_000


class QuotaRaised(EngineError):
    """A lower level tried to set a quota or contact count above the one set above it (层层加码).

    ``field`` names the value refused (a key of :data:`QUOTA_FIELDS`), so a form can show the
    message beside it.
    """

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field

    http_status = 422


class QuotaSetting(Base):
    """The quota values one organisation set for its subtree; an empty value inherits from above."""

    __tablename__ = "quota_setting"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), unique=True)
    cadre_activities: Mapped[int | None] = mapped_column(Integer)
    part_time_activities: Mapped[int | None] = mapped_column(Integer)
    organ_activities: Mapped[int | None] = mapped_column(Integer)
    contact_target: Mapped[int | None] = mapped_column(Integer)
    part_time_contact_target: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime]
    updated_by: Mapped[str | None] = mapped_column(String(64))


@dataclass(frozen=True)
class EffectiveQuota:
    """The values in force at one organisation and where each comes from (an organisation code, or None: the notice)."""

    values: dict[str, int]
    set_by: dict[str, str | None]

    def activities_for(self, cadre_kind: str) -> int:
        """Activities a cadre of ``cadre_kind`` owes per period."""
        return self.values["part_time_activities" if cadre_kind == "part_time" else "cadre_activities"]

    def contacts_for(self, cadre_kind: str) -> int:
        """Young people a cadre of ``cadre_kind`` should contact."""
        return self.values["part_time_contact_target" if cadre_kind == "part_time" else "contact_target"]

    @property
    def organ_activities(self) -> int:
        """Direct-contact activities a leading organ owes per quarter."""
        return self.values["organ_activities"]


NOTICE_QUOTA = EffectiveQuota({name: field.default for name, field in QUOTA_FIELDS.items()},
                              dict.fromkeys(QUOTA_FIELDS))


def _inherit(parent: EffectiveQuota, setting: QuotaSetting | None, code: str) -> EffectiveQuota:
    if setting is None:
        return parent
    values, set_by = dict(parent.values), dict(parent.set_by)
    for name in QUOTA_FIELDS:
        own = getattr(setting, name)
        if own is not None and own < values[name]:
            values[name], set_by[name] = own, code
    return EffectiveQuota(values, set_by)


def _settings(session: Session, organisation_ids) -> dict[int, QuotaSetting]:
    return {s.organisation_id: s for s in
            session.scalars(select(QuotaSetting).where(QuotaSetting.organisation_id.in_(list(organisation_ids))))}


def effective_quota(session: Session, organisation: Organisation) -> EffectiveQuota:
    """The quota values in force at ``organisation``: its own or the nearest above, the notice's at the top."""
    chain = ancestor_ids(organisation.path)
    settings = _settings(session, chain)
    codes = dict(session.execute(select(Organisation.id, Organisation.code).where(Organisation.id.in_(chain))).all())
    quota = NOTICE_QUOTA
    for org_id in chain:
        quota = _inherit(quota, settings.get(org_id), codes.get(org_id))
    return quota


def effective_quotas(session: Session, root: Organisation) -> dict[int, EffectiveQuota]:
    """The quota in force at every organisation of ``root``'s subtree, by organisation id (a few queries)."""
    above = effective_quota(session, root)
    orgs = session.execute(select(Organisation.id, Organisation.parent_id, Organisation.code)
                           .where(in_subtree(Organisation.path, root.path)).order_by(Organisation.path)).all()
    settings = {s.organisation_id: s for s in session.scalars(
        select(QuotaSetting).join(Organisation, Organisation.id == QuotaSetting.organisation_id)
        .where(in_subtree(Organisation.path, root.path)))}
    result = {root.id: above}
    for org_id, parent_id, code in orgs:  # tree order: a parent comes before its children
        if org_id != root.id:
            result[org_id] = _inherit(result[parent_id], settings.get(org_id), code)
    return result


def quota_above(session: Session, organisation: Organisation) -> EffectiveQuota:
    """The values in force just above ``organisation`` (its parent's, the notice's at the top): its ceiling."""
    parent = session.get(Organisation, organisation.parent_id) if organisation.parent_id else None
    return effective_quota(session, parent) if parent is not None else NOTICE_QUOTA


def own_quota(session: Session, organisation: Organisation) -> dict[str, int | None]:
    """The values ``organisation`` set itself (None: not set, inherited), by field."""
    setting = session.scalar(select(QuotaSetting).where(QuotaSetting.organisation_id == organisation.id))
    return {name: getattr(setting, name) if setting is not None else None for name in QUOTA_FIELDS}


def quota_problems(session: Session, organisation: Organisation,
                   values: Mapping[str, int | None]) -> dict[str, ValueError | QuotaRaised]:
    """What is wrong with each of ``values`` for ``organisation``, by field (empty: all may be set).

    A value must be a whole number from 1 up to the value in force above (不能层层加码); None
    (clear it) is always allowed.  Each error is bilingual and names the value above and who set it.
    """
    unknown = [name for name in values if name not in QUOTA_FIELDS]
    if unknown:
        raise ValueError(f"未知的指标 {', '.join(unknown)} / unknown quota fields; one of {', '.join(QUOTA_FIELDS)}")
    above = quota_above(session, organisation)
    problems: dict[str, ValueError | QuotaRaised] = {}
    for name, value in values.items():
        if value is None:
            continue
        field = QUOTA_FIELDS[name]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_QUOTA:
            problems[name] = ValueError(f"{field.name_zh}应为1到{MAX_QUOTA}之间的整数 / {field.name_en} must be a "
                                        f"whole number from 1 to {MAX_QUOTA}")
        elif value > above.values[name]:
            problems[name] = QuotaRaised(_raised_message(session, organisation, field, value, above.values[name],
                                                         above.set_by[name]), field=name)
    return problems


def set_quota(session: Session, organisation: Organisation, values: Mapping[str, int | None], now: datetime,
              actor: str | None = None) -> QuotaSetting:
    """Set (or, with None, clear) some of ``organisation``'s quota values for its subtree.

    Every value must be a whole number from 1 up to the value in force above (不能层层加码):
    otherwise nothing is written and :class:`QuotaRaised` (or ``ValueError`` for a malformed value)
    names the value above and who set it (the first problem of :func:`quota_problems`).
    """
    problems = quota_problems(session, organisation, values)
    if problems:
        raise next(iter(problems.values()))
    setting = session.scalar(select(QuotaSetting).where(QuotaSetting.organisation_id == organisation.id))
    if setting is None:
        setting = QuotaSetting(organisation_id=organisation.id, updated_at=now)
        session.add(setting)
    for name, value in values.items():
        setattr(setting, name, value)
    setting.updated_at, setting.updated_by = now, actor
    session.flush()
    return setting


def _raised_message(session: Session, organisation: Organisation, field: QuotaField, value: int, limit: int,
                    set_by: str | None) -> str:
    if set_by is None:
        source_zh, source_en = "《通知》", "the notice"
    else:
        name = session.scalar(select(Organisation.name).where(Organisation.code == set_by)) or set_by
        source_zh, source_en = f"上级「{name}」", f"{name} above"
    return (f"不能层层加码：{source_zh}规定{field.name_zh}为{limit}，「{organisation.name}」不能设为{value}（最多{limit}）"
            f" / no raising quotas level by level: {source_en} sets {field.name_en} at {limit}; "
            f"{organisation.name} may not set {value} (at most {limit})")


# ------------------------------------------------------------------------------------------ periods

@dataclass(frozen=True)
class Period:
    """A five-ones period: two calendar months, or a quarter."""

    start: date
    end: date

    @property
    def label(self) -> str:
        """How the bulletins name it: "2017年5-6月" or "2017年第2季度"."""
        if self.end.month - self.start.month == 2:
            return f"{self.start.year}年第{(self.start.month - 1) // 3 + 1}季度"
        return f"{self.start.year}年{self.start.month}-{self.end.month}月"


def _span(day: date, months: int) -> Period:
    first = (day.month - 1) // months * months + 1
    last = first + months - 1
    return Period(date(day.year, first, 1), date(day.year, last, calendar.monthrange(day.year, last)[1]))


def two_month_period(day: date) -> Period:
    """The two-month period of full-time and seconded cadres holding ``day`` (Jan–Feb, Mar–Apr, …)."""
    return _span(day, 2)


def quarter(day: date) -> Period:
    """The quarter holding ``day`` (part-time cadres and leading organs)."""
    return _span(day, 3)


def cadre_period(cadre_kind: str, day: date) -> Period:
    """A cadre's five-ones period holding ``day``: two months, or a quarter for a part-time cadre."""
    return quarter(day) if cadre_kind == "part_time" else two_month_period(day)


def periods_of_year(cadre_kind: str | None, year: int) -> list[Period]:
    """Every period of ``year`` for a cadre of ``cadre_kind`` (None: a leading organ, by quarter)."""
    months = 3 if cadre_kind in (None, "part_time") else 2
    return [_span(date(year, month, 1), months) for month in range(1, 13, months)]


# --------------------------------------------------------------------------------------- compliance

@dataclass(frozen=True)
class Compliance:
    """How a cadre or a leading organ stands in one period: activities by kind against its quota."""

    period: Period
    quota: int
    by_kind: dict[str, int]

    @property
    def count(self) -> int:
        """Valid activities recorded in the period."""
        return sum(self.by_kind.values())

    @property
    def met(self) -> bool:
        """At least ``quota`` activities, of as many different kinds (at most all five)."""
        kinds_done = sum(1 for n in self.by_kind.values() if n)
        return self.count >= self.quota and kinds_done >= min(self.quota, len(self.by_kind))


def _counts(session: Session, query) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for owner, kind, n in session.execute(query):
        counts[owner][kind] = n
    return counts


def cadre_compliance_in(session: Session, organisation: Organisation, day: date) -> dict[int, Compliance]:
    """The compliance of every cadre of a subtree in the period holding ``day`` (each by their kind), by cadre id."""
    quotas = effective_quotas(session, organisation)
    cadres = session.execute(select(Cadre.id, Cadre.kind, Cadre.organisation_id)
                             .join(Organisation, Organisation.id == Cadre.organisation_id)
                             .where(in_subtree(Organisation.path, organisation.path))).all()
    counts: dict[int, dict[str, int]] = {}
    for part_time in (False, True):
        period = cadre_period("part_time" if part_time else "full_time", day)
        kind_filter = Cadre.kind == "part_time" if part_time else Cadre.kind != "part_time"
        counts.update(_counts(session, select(Activity.cadre_id, Activity.kind, func.count())
                              .join(Cadre, Cadre.id == Activity.cadre_id)
                              .join(Organisation, Organisation.id == Cadre.organisation_id)
                              .where(in_subtree(Organisation.path, organisation.path), kind_filter,
                                     Activity.held_on >= period.start.isoformat(),
                                     Activity.held_on <= period.end.isoformat(), Activity.revoked_at.is_(None))
                              .group_by(Activity.cadre_id, Activity.kind)))
    result = {}
    for cadre_id, kind, org_id in cadres:
        done = counts.get(cadre_id, {})
        result[cadre_id] = Compliance(cadre_period(kind, day), quotas[org_id].activities_for(kind),
                                      {k: done.get(k, 0) for k in CADRE_ACTIVITY_KINDS})
    return result


def cadre_compliance(session: Session, cadre: Cadre, day: date) -> Compliance:
    """One cadre's compliance in their period holding ``day``."""
    period = cadre_period(cadre.kind, day)
    counts = _counts(session, select(Activity.cadre_id, Activity.kind, func.count())
                     .where(Activity.cadre_id == cadre.id, Activity.held_on >= period.start.isoformat(),
                            Activity.held_on <= period.end.isoformat(), Activity.revoked_at.is_(None))
                     .group_by(Activity.cadre_id, Activity.kind)).get(cadre.id, {})
    organisation = session.get(Organisation, cadre.organisation_id)
    return Compliance(period, effective_quota(session, organisation).activities_for(cadre.kind),
                      {k: counts.get(k, 0) for k in CADRE_ACTIVITY_KINDS})


def organ_compliance_in(session: Session, organisation: Organisation, day: date) -> dict[int, Compliance]:
    """The compliance of every leading organ of a subtree in the quarter holding ``day``, by organisation id.

    An organ's own collective activities count (recorded with no cadre); its cadres' do not.
    """
    quotas = effective_quotas(session, organisation)
    period = quarter(day)
    organs = session.scalars(select(Organisation.id).where(in_subtree(Organisation.path, organisation.path),
                                                           Organisation.kind.in_(LEADING_ORGAN_KINDS))).all()
    counts = _counts(session, select(Activity.organisation_id, Activity.kind, func.count())
                     .join(Organisation, Organisation.id == Activity.organisation_id)
                     .where(in_subtree(Organisation.path, organisation.path), Activity.cadre_id.is_(None),
                            Organisation.kind.in_(LEADING_ORGAN_KINDS),
                            Activity.held_on >= period.start.isoformat(), Activity.held_on <= period.end.isoformat(),
                            Activity.revoked_at.is_(None))
                     .group_by(Activity.organisation_id, Activity.kind))
    return {org_id: Compliance(period, quotas[org_id].organ_activities,
                               {k: counts.get(org_id, {}).get(k, 0) for k in ORGAN_ACTIVITY_KINDS})
            for org_id in organs}


@dataclass(frozen=True)
class ChildCompliance:
    """How many cadres and leading organs of one child's subtree meet their quota in the current period."""

    organisation_id: int
    cadres: int = 0
    cadres_met: int = 0
    organs: int = 0
    organs_met: int = 0


@dataclass(frozen=True)
class SubtreeCompliance:
    """The five-ones compliance of a subtree in the period holding ``day``: every cadre and organ, and per child.

    ``cadres`` and ``organs`` list (id, compliance) with those short of their quota first (fewest
    activities first), then by id: the order a page lists them in.
    """

    day: date
    cadres: list[tuple[int, Compliance]]
    organs: list[tuple[int, Compliance]]
    children: dict[int, ChildCompliance]

    @property
    def cadres_met(self) -> int:
        """Cadres meeting their quota."""
        return sum(1 for _id, c in self.cadres if c.met)

    @property
    def organs_met(self) -> int:
        """Leading organs meeting their quota."""
        return sum(1 for _id, c in self.organs if c.met)


def _unmet_first(items: dict[int, Compliance]) -> list[tuple[int, Compliance]]:
    return sorted(items.items(), key=lambda item: (item[1].met, item[1].count, item[0]))


def subtree_compliance(session: Session, organisation: Organisation, day: date) -> SubtreeCompliance:
    """:func:`cadre_compliance_in` and :func:`organ_compliance_in` of a subtree, ordered, and summed per child.

    A child's figures cover its whole subtree; the organisation's own cadres belong to no child.
    """
    cadres = cadre_compliance_in(session, organisation, day)
    organs = organ_compliance_in(session, organisation, day)
    child_of: dict[int, int | None] = {}
    for org_id, path in session.execute(select(Organisation.id, Organisation.path)
                                        .where(in_subtree(Organisation.path, organisation.path))):
        chain = [int(part) for part in path.strip("/").split("/")]
        child_of[org_id] = chain[organisation.depth + 1] if len(chain) > organisation.depth + 1 else None
    counts: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for cadre_id, org_id in session.execute(select(Cadre.id, Cadre.organisation_id)
                                            .join(Organisation, Organisation.id == Cadre.organisation_id)
                                            .where(in_subtree(Organisation.path, organisation.path))):
        child = child_of.get(org_id)
        if child is not None and cadre_id in cadres:
            counts[child][0] += 1
            counts[child][1] += cadres[cadre_id].met
    for org_id, compliance in organs.items():
        child = child_of.get(org_id)
        if child is not None:
            counts[child][2] += 1
            counts[child][3] += compliance.met
    children = {child: ChildCompliance(child, *numbers) for child, numbers in counts.items()}
    for child in {c for c in child_of.values() if c is not None} - children.keys():
        children[child] = ChildCompliance(child)
    return SubtreeCompliance(day, _unmet_first(cadres), _unmet_first(organs), children)


def organ_compliance(session: Session, organ: Organisation, day: date) -> Compliance:
    """One leading organ's compliance in the quarter holding ``day``; ``ValueError`` below county level."""
    if not organ.is_leading_organ:
        raise ValueError(f"「{organ.name}」不是团的领导机关（县级以上）/ {organ.code} is not a leading organ "
                         "(county level or above)")
    period = quarter(day)
    counts = _counts(session, select(Activity.organisation_id, Activity.kind, func.count())
                     .where(Activity.organisation_id == organ.id, Activity.cadre_id.is_(None),
                            Activity.held_on >= period.start.isoformat(), Activity.held_on <= period.end.isoformat(),
                            Activity.revoked_at.is_(None))
                     .group_by(Activity.organisation_id, Activity.kind)).get(organ.id, {})
    return Compliance(period, effective_quota(session, organ).organ_activities,
                      {k: counts.get(k, 0) for k in ORGAN_ACTIVITY_KINDS})


# ----------------------------------------------------------------------------------------- contacts

@dataclass(frozen=True)
class ContactProgress:
    """A cadre's progress toward the contact target: contacts counting (complete tags), all contacts, the target."""

    counted: int
    contacts: int
    target: int

    @property
    def reached(self) -> bool:
        """Whether the counted contacts reach the target."""
        return self.counted >= self.target


def contact_progress(session: Session, cadre: Cadre) -> ContactProgress:
    """How many young people ``cadre`` contacts (with complete tags, and in all) against their target."""
    complete = and_(Youth.occupation.is_not(None), Youth.occupation != "", Youth.industry.is_not(None),
                    Youth.industry != "")
    total, counted = session.execute(
        select(func.count(), func.count().filter(complete)).select_from(Contact)
        .join(Youth, Youth.id == Contact.youth_id).where(Contact.cadre_id == cadre.id)).one()
    organisation = session.get(Organisation, cadre.organisation_id)
    return ContactProgress(counted or 0, total or 0, effective_quota(session, organisation).contacts_for(cadre.kind))
