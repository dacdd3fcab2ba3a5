"""Bulletins (通报) read from the ranking snapshots: monthly, half-year, year-end, and the Annex 4 ledger.

- The **monthly bulletin** (月度通报) of an organisation for a past month, issued on the 1st: its
  headline figures, the ranking of its child organisations and of its own cadres, five-ones
  compliance, campaign completion, spot-check results and the records revoked, youth
  satisfaction, the mobile-binding rate, and the bottom of each list named (通报).  Year-to-date
  figures (points, compliance, binding) come from the ranking snapshot of the month's last day;
  the month's own facts (activities held, records revoked, campaigns launched, spot checks,
  ratings) are counted inside the month, so a bulletin reads the same whenever it is opened.
- The **half-year review** (半年考核, mid-June): the snapshot of 15 June, with the binding rate.
- The **year-end evaluation** (年终考核) with one verdict per cadre, by :data:`PASS_RULE`.
- The **Annex 4 ledger** (附件4): every cadre of a unit, the grassroots committee they guide, the
  branch they take part in, and the education-practice items done.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint, func, or_, select
from sqlalchemy.orm import Mapped, Session, aliased, mapped_column

from engine.errors import NotFound
from engine.models import Base

from .activities import QUOTA
from .campaigns import completion_by_organisation
from .education_practice import DONE, PRACTICE_ITEMS, PracticeItem
from .eligibility import AssessmentOutcome, record_assessments
from .models import Activity, Cadre, Organisation
from .organisations import in_subtree
from .phrases import N_, Month, Phrase, phrase
from .rankings import (HALF_YEAR_DAY, CadreRanking, CadreStanding, OrganisationStanding, cadre_count, cadre_ranking,
                       child_count, child_ranking, day_end, day_start, latest_day, local_today, month_bounds,
                       organisation_standing)
from .roster import CADRE_KIND_NAMES_ZH
from .satisfaction import SatisfactionSummary, satisfaction_summary
from .spot_checks import KIND_NAMES_ZH as ACTIVITY_KIND_NAMES
from .spot_checks import SpotCheckSummary, spot_check_summary

BOTTOM_CHILDREN = 3   # child organisations named at the bottom of a bulletin (at most half the list)
BOTTOM_CADRES = 5     # own cadres named
CADRES_SHOWN = 20     # own cadres listed on the page (the workbook lists them all)
WORKBOOK_CADRES_MAX = 200_000

# The year-end pass rule (年终考核合格标准), in one place: a cadre passes when their points for the
# year reach PASS_MIN_POINTS (60 points = 3 diamonds) and none of their records of the year was
# found false and revoked (“有数据无过程”).  A cadre who fails cannot be nominated as an
# outstanding cadre (不合格的团干部不能参评).
PASS_MIN_POINTS = Decimal("60")
PASS_RULE = ("年度积分不低于60分（3钻），且全年没有被核查认定为不属实而撤销的记录 / at least 60 points in the year "
             "and no record of the year found false and revoked")

KINDS = ("monthly", "half_year", "year_end")


class BulletinIssue(Base):
    """A bulletin that was issued (the monthly job's mark: each is issued, and announced, once)."""

    __tablename__ = "bulletin_issue"
    __table_args__ = (UniqueConstraint("organisation_id", "kind", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))     # monthly / half_year / year_end
    period: Mapped[str] = mapped_column(String(7))    # "2026-05" / "2026"
    snapshot_day: Mapped[date]
    issued_at: Mapped[datetime]
    cadres: Mapped[int] = mapped_column(Integer)


def named_bottom(rows: list, count: int, total: int | None = None) -> list:
    """The last ``count`` rows of a ranked list of ``total`` rows (at most half of it), lowest first.

    ``rows`` is the whole list, or its tail when ``total`` says how long the whole list is.
    """
    take = min(count, (len(rows) if total is None else total) // 2, len(rows))
    return list(reversed(rows[len(rows) - take:])) if take else []


def _snapshot_for(session: Session, last: date, first: date) -> date:
    day = latest_day(session, on_or_before=last)
    if day is None or day < first:
        raise NotFound(f"{first:%Y-%m-%d} 至 {last:%Y-%m-%d} 没有排名数据，请先计算排名（flask assessment rank） / "
                       "no ranking computed for that period yet; run `flask assessment rank --day …`")
    return day


def _standing(session: Session, org: Organisation, day: date) -> OrganisationStanding:
    standing = organisation_standing(session, org, day)
    if standing is None:
        raise NotFound(f"{day} 的排名中没有「{org.name}」 / {org.code} is not in the ranking of {day}")
    return standing


# ------------------------------------------------------------------------------------ monthly

@dataclass(frozen=True)
class RevokedRecord:
    """A record revoked in the month (found false on a spot check)."""

    activity_id: int
    held_on: str
    kind: str
    cadre_name: str | None
    organisation_name: str
    revoked_on: date
    reason: str


@dataclass(frozen=True)
class MonthFacts:
    """What happened inside the month in a subtree."""

    activities: int          # held in the month and not revoked by its end
    revoked: int             # revoked in the month
    campaign_done: int       # instances of campaigns launched in the month, completed
    campaign_total: int

    @property
    def campaign_rate(self) -> Decimal | None:
        """Completed / launched instances, four places."""
        return (Decimal(self.campaign_done) / self.campaign_total).quantize(Decimal("0.0001")) \
            if self.campaign_total else None


@dataclass(frozen=True)
class Bulletin:
    """The monthly bulletin (月度通报) of one organisation for one month."""

    organisation: Organisation
    month: str
    first: date
    last: date
    snapshot_day: date
    standing: OrganisationStanding
    facts: MonthFacts
    children: list[OrganisationStanding]
    child_facts: dict[int, MonthFacts]
    cadres: list[CadreStanding]            # own cadres, ranked (at most CADRES_SHOWN unless asked for all)
    cadre_total: int
    named_children: list[OrganisationStanding]
    named_cadres: list[CadreStanding]
    revoked: list[RevokedRecord]
    spot_checks: SpotCheckSummary
    satisfaction: SatisfactionSummary
    quota: int = QUOTA

    @property
    def heading(self) -> Phrase:
        """"青岛团市委 2026年5月“1+100”工作月度通报" (workflows.phrases: the pages word it per language)."""
        return phrase(N_("%(organisation)s %(month)s“1+100”工作月度通报"), organisation=self.organisation.name,
                      month=Month(self.first.year, self.first.month))

    @property
    def title(self) -> str:
        """The heading in Chinese."""
        return str(self.heading)


def _month_facts(session: Session, orgs: list[Organisation], first: date, last: date) -> dict[int, MonthFacts]:
    """:class:`MonthFacts` of each of ``orgs``' subtrees."""
    start, end = day_start(first), day_end(last)
    facts = {}
    for org in orgs:
        held = (select(func.count()).select_from(Activity)
                .join(Organisation, Organisation.id == Activity.organisation_id)
                .where(in_subtree(Organisation.path, org.path), Activity.held_on >= first.isoformat(),
                       Activity.held_on <= last.isoformat(),
                       or_(Activity.revoked_at.is_(None), Activity.revoked_at >= end)))
        revoked = (select(func.count()).select_from(Activity)
                   .join(Organisation, Organisation.id == Activity.organisation_id)
                   .where(in_subtree(Organisation.path, org.path), Activity.revoked_at >= start,
                          Activity.revoked_at < end))
        facts[org.id] = MonthFacts(session.scalar(held) or 0, session.scalar(revoked) or 0, 0, 0)
    return facts


def revoked_records(session: Session, org: Organisation, first: date, last: date,
                    limit: int = 500) -> list[RevokedRecord]:
    """The records of ``org``'s subtree revoked between ``first`` and ``last`` (Beijing time)."""
    home = aliased(Organisation)
    rows = session.execute(
        select(Activity, Cadre.name, home.name).join(home, home.id == Activity.organisation_id)
        .outerjoin(Cadre, Cadre.id == Activity.cadre_id)
        .where(in_subtree(home.path, org.path), Activity.revoked_at >= day_start(first),
               Activity.revoked_at < day_end(last))
        .order_by(Activity.revoked_at, Activity.id).limit(limit)).all()
    return [RevokedRecord(activity.id, activity.held_on, ACTIVITY_KIND_NAMES.get(activity.kind, activity.kind),
                          cadre_name, org_name, local_today(activity.revoked_at), activity.revoked_reason or "")
            for activity, cadre_name, org_name in rows]


def monthly_bulletin(session: Session, org: Organisation, month: str, all_cadres: bool = False) -> Bulletin:
    """The bulletin of ``org`` for ``month`` ("YYYY-MM"), read from the snapshot of the month's last day.

    ``all_cadres`` lists every own cadre (for the workbook) instead of the first :data:`CADRES_SHOWN`.
    """
    first, last = month_bounds(month)
    day = _snapshot_for(session, last, first)
    standing = _standing(session, org, day)
    children_count = child_count(session, org, day)
    children = child_ranking(session, org, day, limit=max(children_count, 1))
    child_orgs = list(session.scalars(select(Organisation).where(Organisation.id.in_([c.organisation_id
                                                                                     for c in children]))))
    facts = _month_facts(session, [org, *child_orgs], first, last)
    campaigns = completion_by_organisation(session, org, day_start(first), day_end(last))
    for org_id, month_facts in list(facts.items()):
        done, total = campaigns.get(org_id, (0, 0))
        facts[org_id] = MonthFacts(month_facts.activities, month_facts.revoked, done, total)
    total_cadres = cadre_count(session, org, day, "own")
    shown = min(total_cadres, WORKBOOK_CADRES_MAX) if all_cadres else CADRES_SHOWN
    cadres = cadre_ranking(session, org, day, "own", limit=max(shown, 1))
    bottom = cadre_ranking(session, org, day, "own", limit=BOTTOM_CADRES, offset=max(total_cadres - BOTTOM_CADRES, 0))
    return Bulletin(organisation=org, month=f"{first.year:04d}-{first.month:02d}", first=first, last=last,
                    snapshot_day=day, standing=standing, facts=facts[org.id], children=children,
                    child_facts={child.id: facts[child.id] for child in child_orgs}, cadres=cadres,
                    cadre_total=total_cadres, named_children=named_bottom(children, BOTTOM_CHILDREN),
                    named_cadres=named_bottom(bottom, BOTTOM_CADRES, total_cadres), revoked=revoked_records(session, org, first, last),
                    spot_checks=spot_check_summary(session, org, month),
                    satisfaction=satisfaction_summary(session, org, month))


# ---------------------------------------------------------------------------------- half-year

@dataclass(frozen=True)
class HalfYearReview:
    """The half-year review (半年考核) of one organisation: the snapshot of 15 June."""

    organisation: Organisation
    year: int
    snapshot_day: date
    standing: OrganisationStanding
    children: list[OrganisationStanding]
    cadres: list[CadreStanding]

    @property
    def heading(self) -> Phrase:
        """"青岛团市委 2026年“1+100”工作半年考核评估"."""
        return phrase(N_("%(organisation)s %(year)s年“1+100”工作半年考核评估"), organisation=self.organisation.name,
                      year=self.year)

    @property
    def title(self) -> str:
        """The heading in Chinese."""
        return str(self.heading)


def half_year_review(session: Session, org: Organisation, year: int) -> HalfYearReview:
    """``org``'s half-year review of ``year``: its children and its own cadres as of 15 June."""
    day = _snapshot_for(session, date(year, *HALF_YEAR_DAY), date(year, 1, 1))
    children = child_ranking(session, org, day, limit=max(child_count(session, org, day), 1))
    cadres = cadre_ranking(session, org, day, "own", limit=max(min(cadre_count(session, org, day, "own"),
                                                                   WORKBOOK_CADRES_MAX), 1))
    return HalfYearReview(org, year, day, _standing(session, org, day), children, cadres)


# ----------------------------------------------------------------------------------- year-end

@dataclass(frozen=True)
class CadreVerdict:
    """One cadre's year-end verdict."""

    standing: CadreStanding
    revoked: int
    passed: bool
    reason: str


def verdict(points: Decimal, revoked: int) -> tuple[bool, str]:
    """Apply :data:`PASS_RULE`: (passed, the reason in words)."""
    reasons = []
    if points < PASS_MIN_POINTS:
        reasons.append(f"年度积分{points}分，低于{PASS_MIN_POINTS}分 / {points} points, below {PASS_MIN_POINTS}")
    if revoked:
        reasons.append(f"{revoked}条记录经核查不属实被撤销 / {revoked} record(s) found false")
    return (not reasons), ("合格 / passed" if not reasons else "；".join(reasons))


@dataclass(frozen=True)
class YearEndEvaluation:
    """The year-end evaluation (年终考核) of an organisation's subtree: a verdict per cadre."""

    organisation: Organisation
    year: int
    snapshot_day: date
    standing: OrganisationStanding
    children: list[OrganisationStanding]
    verdicts: list[CadreVerdict]
    rule: str = PASS_RULE

    @property
    def passed(self) -> int:
        """How many cadres passed."""
        return sum(1 for v in self.verdicts if v.passed)

    @property
    def heading(self) -> Phrase:
        """"青岛团市委 2026年“1+100”工作年终考核"."""
        return year_end_heading(self.organisation, self.year)

    @property
    def title(self) -> str:
        """The heading in Chinese."""
        return str(self.heading)


def year_end_heading(org: Organisation, year: int) -> Phrase:
    """The title of ``org``'s year-end evaluation of ``year``."""
    return phrase(N_("%(organisation)s %(year)s年“1+100”工作年终考核"), organisation=org.name, year=year)


def revoked_by_cadre(session: Session, org: Organisation, year: int) -> dict[int, int]:
    """How many records of each cadre of ``org``'s subtree, held in ``year``, were revoked."""
    rows = session.execute(
        select(Activity.cadre_id, func.count()).join(Organisation, Organisation.id == Activity.organisation_id)
        .where(in_subtree(Organisation.path, org.path), Activity.cadre_id.is_not(None),
               Activity.revoked_at.is_not(None), Activity.held_on >= f"{year:04d}-01-01",
               Activity.held_on <= f"{year:04d}-12-31")
        .group_by(Activity.cadre_id))
    return {cadre_id: count for cadre_id, count in rows}


def year_end_evaluation(session: Session, org: Organisation, year: int) -> YearEndEvaluation:
    """Every cadre of ``org``'s subtree judged by :data:`PASS_RULE` on the year's last snapshot."""
    day = _snapshot_for(session, date(year, 12, 31), date(year, 1, 1))
    total = cadre_count(session, org, day)
    cadres = cadre_ranking(session, org, day, limit=max(min(total, WORKBOOK_CADRES_MAX), 1))
    revoked = revoked_by_cadre(session, org, year)
    verdicts = []
    for standing in cadres:
        passed, reason = verdict(standing.points, revoked.get(standing.cadre_id, 0))
        verdicts.append(CadreVerdict(standing, revoked.get(standing.cadre_id, 0), passed, reason))
    children = child_ranking(session, org, day, limit=max(child_count(session, org, day), 1))
    return YearEndEvaluation(org, year, day, _standing(session, org, day), children, verdicts)


@dataclass(frozen=True)
class YearEndPage:
    """One page of the year-end evaluation: the counts of the whole subtree and a page of the cadres who failed.

    The failed cadres are listed in ranking order (points, highest first), as in the workbook;
    :func:`year_end_evaluation` (all verdicts at once) stays the source of the workbook and of the
    recorded results.
    """

    organisation: Organisation
    year: int
    snapshot_day: date
    standing: OrganisationStanding
    total: int
    passed: int
    failed: list[CadreVerdict]
    rule: str = PASS_RULE

    @property
    def failed_total(self) -> int:
        """How many cadres failed."""
        return self.total - self.passed

    @property
    def heading(self) -> Phrase:
        """"青岛团市委 2026年“1+100”工作年终考核"."""
        return year_end_heading(self.organisation, self.year)

    @property
    def title(self) -> str:
        """The heading in Chinese."""
        return str(self.heading)


def _failed_with_enough_points(session: Session, org: Organisation, day: date,
                               revoked: dict[int, int]) -> list[CadreVerdict]:
    """The verdicts of cadres who reached the points but had records revoked (a handful), in ranking order."""
    if not revoked:
        return []
    in_scope = (CadreRanking.day == day, in_subtree(CadreRanking.org_path, org.path))
    rows = session.execute(select(CadreRanking, Cadre.code, Cadre.name, Organisation.name)
                           .join(Cadre, Cadre.id == CadreRanking.cadre_id)
                           .join(Organisation, Organisation.id == CadreRanking.organisation_id)
                           .where(*in_scope, CadreRanking.cadre_id.in_(list(revoked)),
                                  CadreRanking.points >= PASS_MIN_POINTS)
                           .order_by(CadreRanking.points.desc(), CadreRanking.cadre_id)).all()
    verdicts = []
    for row, code, name, org_name in rows:
        above = session.scalar(select(func.count()).select_from(CadreRanking)
                               .where(*in_scope, CadreRanking.points > row.points))
        standing = CadreStanding(cadre_id=row.cadre_id, code=code, name=name, kind=row.kind,
                                 organisation_id=row.organisation_id, organisation_name=org_name, day=row.day,
                                 rank=above + 1, points=Decimal(str(row.points)).quantize(Decimal("0.01")), contacts=row.contacts, bound=row.bound,
                                 period_activities=row.period_activities, periods_met=row.periods_met,
                                 periods_due=row.periods_due)
        passed, reason = verdict(standing.points, revoked[row.cadre_id])
        verdicts.append(CadreVerdict(standing, revoked[row.cadre_id], passed, reason))
    return verdicts


def year_end_page(session: Session, org: Organisation, year: int, offset: int = 0, limit: int = 50) -> YearEndPage:
    """The counts of ``org``'s year-end evaluation and the failed cadres from ``offset`` (a few indexed queries).

    Cadres below :data:`PASS_MIN_POINTS` are the tail of the points ranking, so a page of them is a
    page of the ranking; before them come those who reached the points but had a record revoked.
    """
    day = _snapshot_for(session, date(year, 12, 31), date(year, 1, 1))
    total = cadre_count(session, org, day)
    enough = session.scalar(select(func.count()).select_from(CadreRanking)
                            .where(CadreRanking.day == day, in_subtree(CadreRanking.org_path, org.path),
                                   CadreRanking.points >= PASS_MIN_POINTS))
    revoked = revoked_by_cadre(session, org, year)
    first = _failed_with_enough_points(session, org, day, revoked)
    page = first[offset:offset + limit]
    start = max(offset - len(first), 0)
    wanted = limit - len(page)
    if wanted > 0 and enough + start < total:
        for standing in cadre_ranking(session, org, day, limit=wanted, offset=enough + start):
            passed, reason = verdict(standing.points, revoked.get(standing.cadre_id, 0))
            page.append(CadreVerdict(standing, revoked.get(standing.cadre_id, 0), passed, reason))
    return YearEndPage(org, year, day, _standing(session, org, day), total, enough - len(first), page)


def record_year_end(session: Session, evaluation: YearEndEvaluation, decided_by: str | None, now: datetime) -> int:
    """Write every verdict of ``evaluation`` as the cadre's :class:`~workflows.eligibility.AssessmentResult`
    of the year (overwriting an earlier run); return how many were written."""
    return record_assessments(session, evaluation.year,
                              (AssessmentOutcome(v.standing.cadre_id, v.passed, None if v.passed else v.reason)
                               for v in evaluation.verdicts), decided_by, now)


# ------------------------------------------------------------------------------------ Annex 4

@dataclass(frozen=True)
class Annex4Line:
    """One cadre's line of the Annex 4 ledger (团干部指导参与基层团组织“一学一做”教育实践情况汇总表)."""

    number: int
    cadre_code: str
    cadre_name: str
    kind: str
    unit: str
    committee: str | None
    branch: str | None
    items_done: tuple[str, ...]

    @property
    def lecture_given(self) -> bool:
        """Whether the themed league lecture (主题团课) was given."""
        return PRACTICE_ITEMS["themed_lecture"] in self.items_done

    @property
    def remark(self) -> str:
        """What is missing, in words."""
        if self.committee is None:
            return "未确定联系的基层团委（团总支）"
        if self.branch is None:
            return "未确定参与的团支部"
        missing = len(PRACTICE_ITEMS) - len(self.items_done)
        return f"尚有{missing}项未完成" if missing else "全部完成"


ANNEX4_TITLE = "团干部指导参与基层团组织“一学一做”教育实践情况汇总表"


def annex4_ledger(session: Session, org: Organisation, year: int, limit: int | None = None) -> list[Annex4Line]:
    """Every cadre of ``org``'s subtree with the committee and branch they guide and the items done in ``year``."""
    home, committee, branch = aliased(Organisation), aliased(Organisation), aliased(Organisation)
    query = (select(Cadre.id, Cadre.code, Cadre.name, Cadre.kind, home.name, committee.name, branch.name)
             .join(home, home.id == Cadre.organisation_id)
             .outerjoin(committee, committee.id == Cadre.guided_committee_id)
             .outerjoin(branch, branch.id == Cadre.guided_branch_id)
             .where(in_subtree(home.path, org.path)).order_by(home.path, Cadre.code))
    if limit is not None:
        query = query.limit(limit)
    rows = session.execute(query).all()
    done: dict[int, set[str]] = defaultdict(set)
    items = (select(PracticeItem.cadre_id, PracticeItem.item).join(Cadre, Cadre.id == PracticeItem.cadre_id)
             .join(home, home.id == Cadre.organisation_id)
             .where(in_subtree(home.path, org.path), PracticeItem.year == year, PracticeItem.status == DONE))
    for cadre_id, item in session.execute(items):
        done[cadre_id].add(item)
    return [Annex4Line(number, code, name, CADRE_KIND_NAMES_ZH.get(kind, kind), unit, committee_name, branch_name,
                       tuple(PRACTICE_ITEMS[item] for item in PRACTICE_ITEMS if item in done[cadre_id]))
            for number, (cadre_id, code, name, kind, unit, committee_name, branch_name) in enumerate(rows, start=1)]


# ---------------------------------------------------------------------------------- issuing

def issue_bulletin(session: Session, org: Organisation, kind: str, period: str, snapshot_day: date,
                   cadres: int, now: datetime) -> BulletinIssue | None:
    """Mark a bulletin issued; ``None`` when it was issued before (so it is announced once)."""
    if kind not in KINDS:
        raise ValueError(f"通报类型应为 {', '.join(KINDS)} 之一 / kind must be one of {', '.join(KINDS)}")
    existing = session.scalar(select(BulletinIssue).where(BulletinIssue.organisation_id == org.id,
                                                          BulletinIssue.kind == kind, BulletinIssue.period == period))
    if existing is not None:
        return None
    issue = BulletinIssue(organisation_id=org.id, kind=kind, period=period, snapshot_day=snapshot_day,
                          issued_at=now, cadres=cadres)
    session.add(issue)
    session.flush()
    return issue


def issued(session: Session, org: Organisation, limit: int = 24) -> list[BulletinIssue]:
    """The bulletins issued for ``org``, newest first."""
    return list(session.scalars(select(BulletinIssue).where(BulletinIssue.organisation_id == org.id)
                                .order_by(BulletinIssue.period.desc(), BulletinIssue.kind).limit(limit)))


__all__ = ["Bulletin", "HalfYearReview", "YearEndEvaluation", "Annex4Line", "BulletinIssue", "monthly_bulletin",
           "half_year_review", "year_end_evaluation", "record_year_end", "annex4_ledger", "issue_bulletin", "issued",
           "PASS_RULE", "PASS_MIN_POINTS", "named_bottom", "verdict"]
