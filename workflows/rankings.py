"""The daily ranking (日常排名) of cadres and organisations, kept as one snapshot per day.

Every day one run recomputes, in bulk SQL, two snapshot tables:

- ``cadre_ranking``: one row per cadre with the year's points, contacts and bound youth, the
  five-ones periods met, and the cadre's rank (competition ranking, "1224": equal points share a
  rank) within the whole tree, within their depth-1 unit (city, enterprise, university, agency),
  within their depth-2 unit (county), and within their own organisation.  Cadres are ranked by
  points (个人积分) alone; ties are listed by cadre id.
- ``organisation_ranking``: one row per organisation with the figures of its whole subtree:
  average points of its cadres, five-ones compliance (periods met / periods due so far this year,
  cadres' and the organ's own, each against the quota in force there: ``quotas.effective_quotas``), campaign completion (tasks done / tasks), mobile-binding rate (bound / contacted
  youth), a composite score (:data:`SCORE_WEIGHTS`), and its rank among its siblings by the score
  and by each figure, and among all organisations of its depth.

Readers only read these tables with indexed, paginated queries.  Previous days are kept, so a rank
can be charted over time (:func:`prune_rankings` thins out old days but keeps every month's last
day and the half-year review day).  A subtree deeper than a county is ranked on the fly from the
same rows (a few hundred at most).

The inputs owned by other parts of the programme are one function call each (:class:`RankingSources`,
which tests may replace): points from the ledger (``points.year_scores``) and campaign completion
(``campaigns.completion_by_organisation``).
"""
from __future__ import annotations

import calendar
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time as clock_time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import JSON, Date, Index, Integer, Numeric, String, and_, bindparam, delete, func, insert, select, text
from sqlalchemy.orm import Mapped, Session, aliased, mapped_column

from engine.models import Base, UtcDateTime

from .campaigns import completion_by_organisation
from .models import CADRE_ACTIVITY_KINDS, LEADING_ORGAN_KINDS, ORGAN_ACTIVITY_KINDS, PATH_TYPE, Cadre, Organisation
from .organisations import ancestor_ids, in_subtree
from .points import year_scores
from .quotas import NOTICE_QUOTA, EffectiveQuota, effective_quotas

ZONE = ZoneInfo("Asia/Shanghai")
CENT = Decimal("0.01")
RATE_PLACES = Decimal("0.0001")
# The composite score of an organisation (0–100): average points count 40 %, five-ones
# compliance, campaign completion and the mobile-binding rate 20 % each.  A figure that does not
# apply (no cadres, no campaign launched, no period due yet) is left out and the others share its
# weight, so an organisation is never marked down for what it was never asked to do.
SCORE_WEIGHTS = {"points": Decimal(40), "compliance": Decimal(20), "campaigns": Decimal(20), "binding": Decimal(20)}
# Depths whose subtree ranks are stored on every cadre row (province, city-level unit, county).
RANKED_DEPTHS = (0, 1, 2)
HISTOGRAM_BUCKETS = 10  # points distribution: [0,10), [10,20) … [90,100]
WORK_MEM = "128MB"      # PostgreSQL, for the recomputation's transaction only
KEEP_DAILY_DAYS = 92    # older daily snapshots are pruned, except month ends and the half-year day
HALF_YEAR_DAY = (6, 15)  # the half-year review (半年考核) reads the snapshot of 15 June
ORG_SORTS = {"score": "rank_among_siblings", "points": "rank_points", "compliance": "rank_compliance",
             "campaigns": "rank_campaigns", "binding": "rank_binding"}


class RankingRun(Base):
    """One computed day: when it was computed and how much it covers."""

    __tablename__ = "ranking_run"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    computed_at: Mapped[datetime]
    cadres: Mapped[int] = mapped_column(Integer)
    organisations: Mapped[int] = mapped_column(Integer)
    milliseconds: Mapped[int] = mapped_column(Integer)


class CadreRanking(Base):
    """One cadre's standing on one day (a snapshot row)."""

    __tablename__ = "cadre_ranking"
    # Derived data written 100,000 rows at a time: no surrogate key and no foreign key (each costs a
    # check or an index entry per row); a cadre removed from the roster simply drops out of the pages.
    __table_args__ = (Index("ix_cadre_ranking_root", "day", "root_id", "position_in_root"),
                      Index("ix_cadre_ranking_depth1", "day", "depth1_id", "position_in_depth1"),
                      Index("ix_cadre_ranking_depth2", "day", "depth2_id", "position_in_depth2"),
                      Index("ix_cadre_ranking_org", "day", "organisation_id", "position_in_organisation"))

    cadre_id: Mapped[int] = mapped_column(Integer, primary_key=True)  # (cadre, day): also a cadre's history
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(Integer)
    org_path: Mapped[str] = mapped_column(PATH_TYPE)
    root_id: Mapped[int] = mapped_column(Integer)
    depth1_id: Mapped[int | None] = mapped_column(Integer)
    depth2_id: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    points: Mapped[Decimal] = mapped_column(Numeric(7, 2))
    contacts: Mapped[int] = mapped_column(Integer)
    bound: Mapped[int] = mapped_column(Integer)
    period_activities: Mapped[int] = mapped_column(Integer)  # valid activities in the current quota period
    periods_met: Mapped[int] = mapped_column(Integer)
    periods_due: Mapped[int] = mapped_column(Integer)
    rank_in_root: Mapped[int] = mapped_column(Integer)
    rank_in_depth1: Mapped[int | None] = mapped_column(Integer)
    rank_in_depth2: Mapped[int | None] = mapped_column(Integer)
    rank_in_organisation: Mapped[int] = mapped_column(Integer)
    # The place in each list (1, 2, 3 … with ties broken by cadre id): a page is one index range.
    position_in_root: Mapped[int] = mapped_column(Integer)
    position_in_depth1: Mapped[int | None] = mapped_column(Integer)
    position_in_depth2: Mapped[int | None] = mapped_column(Integer)
    position_in_organisation: Mapped[int] = mapped_column(Integer)


class OrganisationRanking(Base):
    """One organisation's standing on one day, with the figures of its whole subtree."""

    __tablename__ = "organisation_ranking"
    __table_args__ = (Index("ix_organisation_ranking_siblings", "day", "parent_id", "rank_among_siblings"),
                      Index("ix_organisation_ranking_depth", "day", "root_id", "depth", "rank_at_depth"))

    organisation_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(Integer)
    root_id: Mapped[int] = mapped_column(Integer)
    depth: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(PATH_TYPE)
    cadres: Mapped[int] = mapped_column(Integer)       # in the subtree
    own_cadres: Mapped[int] = mapped_column(Integer)   # whose home organisation this is
    points_total: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    average_points: Mapped[Decimal | None] = mapped_column(Numeric(7, 2))
    periods_met: Mapped[int] = mapped_column(Integer)
    periods_due: Mapped[int] = mapped_column(Integer)
    compliance_rate: Mapped[Decimal | None] = mapped_column(Numeric(5, 4))
    campaign_done: Mapped[int] = mapped_column(Integer)
    campaign_total: Mapped[int] = mapped_column(Integer)
    campaign_rate: Mapped[Decimal | None] = mapped_column(Numeric(5, 4))
    contacts: Mapped[int] = mapped_column(Integer)
    bound: Mapped[int] = mapped_column(Integer)
    binding_rate: Mapped[Decimal | None] = mapped_column(Numeric(5, 4))
    score: Mapped[Decimal] = mapped_column(Numeric(7, 2))
    points_histogram: Mapped[list] = mapped_column(JSON)  # cadres per 10 points, subtree
    rank_among_siblings: Mapped[int | None] = mapped_column(Integer)
    rank_at_depth: Mapped[int | None] = mapped_column(Integer)
    rank_points: Mapped[int | None] = mapped_column(Integer)
    rank_compliance: Mapped[int | None] = mapped_column(Integer)
    rank_campaigns: Mapped[int | None] = mapped_column(Integer)
    rank_binding: Mapped[int | None] = mapped_column(Integer)


# ----------------------------------------------------------------------------------- the inputs

@dataclass(frozen=True)
class RankingSources:
    """Where the figures owned by other parts of the programme come from (one call each)."""

    points_by_cadre: Callable[[Session, int], dict[int, Decimal]] = year_scores
    campaign_completion: Callable[[Session, Organisation, datetime, datetime],
                                  dict[int, tuple[int, int]]] = completion_by_organisation


# --------------------------------------------------------------------------------- time windows

def local_today(now: datetime) -> date:
    """The date in the province (Beijing time) at ``now``."""
    return now.astimezone(ZONE).date()


def day_start(day: date) -> datetime:
    """The first instant of ``day`` in Beijing time, as an aware UTC datetime."""
    return datetime.combine(day, clock_time(0), ZONE).astimezone(timezone.utc)


def day_end(day: date) -> datetime:
    """The first instant after ``day`` (Beijing time), as an aware UTC datetime."""
    return day_start(day + timedelta(days=1))


def month_bounds(month: str) -> tuple[date, date]:
    """The first and last day of ``"YYYY-MM"``; ``ValueError`` for anything else."""
    try:
        year, number = (int(part) for part in month.split("-"))
        first = date(year, number, 1)
    except ValueError:
        raise ValueError(f"月份格式应为 YYYY-MM，而不是 {month!r} / month must be YYYY-MM") from None
    return first, date(year, number, calendar.monthrange(year, number)[1])


def quota_periods(day: date) -> tuple[int, int]:
    """The current two-month period (full-time and seconded cadres) and quarter (part-time, organs) of ``day``,
    each counted from 0; it is also how many periods of that length the year has completed before it."""
    return (day.month - 1) // 2, (day.month - 1) // 3


def _rate(part: int, whole: int) -> Decimal | None:
    return (Decimal(part) / Decimal(whole)).quantize(RATE_PLACES, ROUND_HALF_UP) if whole else None


def composite_score(average_points: Decimal | None, compliance: Decimal | None, campaigns: Decimal | None,
                    binding: Decimal | None) -> Decimal:
    """The weighted score (0–100) of :data:`SCORE_WEIGHTS`; figures that do not apply share their weight."""
    figures = {"points": average_points, "compliance": None if compliance is None else compliance * 100,
               "campaigns": None if campaigns is None else campaigns * 100,
               "binding": None if binding is None else binding * 100}
    present = {name: value for name, value in figures.items() if value is not None}
    if not present:
        return Decimal("0.00")
    weight = sum(SCORE_WEIGHTS[name] for name in present)
    return (sum(SCORE_WEIGHTS[name] * value for name, value in present.items()) / weight).quantize(CENT, ROUND_HALF_UP)


# ---------------------------------------------------------------------------------- computing

@dataclass(frozen=True)
class RankingRunResult:
    """What one recomputation did."""

    day: date
    cadres: int
    organisations: int
    seconds: float


def _stage(session: Session, name: str, columns: list[tuple[str, str]], rows: list[tuple]) -> None:
    """Load ``rows`` into a new temporary table of ``columns`` (name, SQL type): COPY on PostgreSQL,
    executemany on SQLite."""
    session.execute(text(f"DROP TABLE IF EXISTS {name}"))
    session.execute(text(f"CREATE TEMPORARY TABLE {name} ({', '.join(f'{n} {t}' for n, t in columns)})"))
    if not rows:
        return
    names = [column for column, _type in columns]
    if session.get_bind().dialect.name == "postgresql":
        raw = session.connection().connection.driver_connection
        with raw.cursor() as cursor, cursor.copy(f"COPY {name} ({', '.join(names)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    placeholders = ", ".join(f":{column}" for column in names)
    session.execute(text(f"INSERT INTO {name} ({', '.join(names)}) VALUES ({placeholders})"),
                    [{column: (str(value) if isinstance(value, Decimal) else value)
                      for column, value in zip(names, row)} for row in rows])


def _histogram_case() -> str:
    cases = " ".join(f"WHEN points >= {bucket * 10} THEN {bucket}" for bucket in range(HISTOGRAM_BUCKETS - 1, 0, -1))
    return f"CASE {cases} ELSE 0 END"


# The five-ones periods of each cadre are counted with one hash aggregate by cadre and period, the
# kinds as conditional sums (COUNT(DISTINCT …) would force a sort of every activity), then one by cadre.
# The window functions sort narrow rows (ids and points); the other figures are joined afterwards.
_PERIOD = "(CAST(substr(a.held_on, 6, 2) AS INTEGER) - 1) / (CASE WHEN c2.kind = 'part_time' THEN 3 ELSE 2 END)"
_KIND_SUMS = ", ".join(f"SUM(CASE WHEN a.kind = '{kind}' THEN 1 ELSE 0 END) AS k{number}"
                       for number, kind in enumerate(CADRE_ACTIVITY_KINDS))
_KINDS_DONE = " + ".join(f"(CASE WHEN g.k{number} > 0 THEN 1 ELSE 0 END)" for number in range(len(CADRE_ACTIVITY_KINDS)))
_CADRE_INSERT = f"""
INSERT INTO cadre_ranking (day, cadre_id, organisation_id, org_path, root_id, depth1_id, depth2_id, kind, points,
    contacts, bound, period_activities, periods_met, periods_due,
    rank_in_root, rank_in_depth1, rank_in_depth2, rank_in_organisation,
    position_in_root, position_in_depth1, position_in_depth2, position_in_organisation)
SELECT :day, w.cadre_id, w.organisation_id, lv.path, w.root_id, w.depth1_id, w.depth2_id, c.kind, w.points,
    COALESCE(ct.contacts, 0), COALESCE(ct.bound, 0), COALESCE(q.period_activities, 0), COALESCE(q.periods_met, 0),
    (CASE WHEN c.kind = 'part_time' THEN :quarters_done ELSE :bimonths_done END) + COALESCE(q.current_met, 0),
    w.rank_in_root, w.rank_in_depth1, w.rank_in_depth2, w.rank_in_organisation,
    w.position_in_root, w.position_in_depth1, w.position_in_depth2, w.position_in_organisation
FROM (
    SELECT b.cadre_id, b.organisation_id, b.root_id, b.depth1_id, b.depth2_id, b.points,
        RANK() OVER (PARTITION BY b.root_id ORDER BY b.cents DESC) AS rank_in_root,
        ROW_NUMBER() OVER (PARTITION BY b.root_id ORDER BY b.cents DESC, b.cadre_id) AS position_in_root,
        CASE WHEN b.depth1_id IS NULL THEN NULL
            ELSE RANK() OVER (PARTITION BY b.depth1_id ORDER BY b.cents DESC) END AS rank_in_depth1,
        CASE WHEN b.depth1_id IS NULL THEN NULL
            ELSE ROW_NUMBER() OVER (PARTITION BY b.depth1_id ORDER BY b.cents DESC, b.cadre_id) END
            AS position_in_depth1,
        CASE WHEN b.depth2_id IS NULL THEN NULL
            ELSE RANK() OVER (PARTITION BY b.depth2_id ORDER BY b.cents DESC) END AS rank_in_depth2,
        CASE WHEN b.depth2_id IS NULL THEN NULL
            ELSE ROW_NUMBER() OVER (PARTITION BY b.depth2_id ORDER BY b.cents DESC, b.cadre_id) END
            AS position_in_depth2,
        RANK() OVER (PARTITION BY b.organisation_id ORDER BY b.cents DESC) AS rank_in_organisation,
        ROW_NUMBER() OVER (PARTITION BY b.organisation_id ORDER BY b.cents DESC, b.cadre_id)
            AS position_in_organisation
    FROM (
        SELECT c0.id AS cadre_id, c0.organisation_id, l0.root_id, l0.depth1_id, l0.depth2_id,
            COALESCE(p.points, 0) AS points, COALESCE(p.cents, 0) AS cents
        FROM cadre c0
        JOIN tmp_ranking_levels l0 ON l0.organisation_id = c0.organisation_id
        LEFT JOIN tmp_ranking_points p ON p.cadre_id = c0.id
    ) b
) w
JOIN cadre c ON c.id = w.cadre_id
JOIN tmp_ranking_levels lv ON lv.organisation_id = w.organisation_id
LEFT JOIN (
    SELECT k.cadre_id, COUNT(*) AS contacts, COUNT(y.id) AS bound
    FROM contact k LEFT JOIN youth y ON y.id = k.youth_id AND y.bound_at < :day_end
    WHERE k.since < :day_end
    GROUP BY k.cadre_id
) ct ON ct.cadre_id = w.cadre_id
LEFT JOIN (
    SELECT per.cadre_id,
        SUM(CASE WHEN per.n >= per.quota AND per.kinds >= per.min_kinds THEN 1 ELSE 0 END) AS periods_met,
        SUM(CASE WHEN per.period = per.current_period THEN per.n ELSE 0 END) AS period_activities,
        SUM(CASE WHEN per.period = per.current_period AND per.n >= per.quota AND per.kinds >= per.min_kinds
            THEN 1 ELSE 0 END) AS current_met
    FROM (
        SELECT g.cadre_id, g.period, g.n, {_KINDS_DONE} AS kinds,
            CASE WHEN c3.kind = 'part_time' THEN :quarters_done ELSE :bimonths_done END AS current_period,
            CASE WHEN c3.kind = 'part_time' THEN l3.part_time_quota ELSE l3.cadre_quota END AS quota,
            CASE WHEN c3.kind = 'part_time' THEN l3.part_time_kinds ELSE l3.cadre_kinds END AS min_kinds
        FROM (
            SELECT a.cadre_id, {_PERIOD} AS period, COUNT(*) AS n, {_KIND_SUMS}
            FROM activity a JOIN cadre c2 ON c2.id = a.cadre_id
            WHERE a.held_on >= :year_start AND a.held_on <= :day_iso AND a.revoked_at IS NULL
            GROUP BY a.cadre_id, {_PERIOD}
        ) g
        JOIN cadre c3 ON c3.id = g.cadre_id
        JOIN tmp_ranking_levels l3 ON l3.organisation_id = c3.organisation_id
    ) per
    GROUP BY per.cadre_id
) q ON q.cadre_id = w.cadre_id
"""

_ORGAN_QUOTA = """
SELECT a.organisation_id, (CAST(substr(a.held_on, 6, 2) AS INTEGER) - 1) / 3 AS quarter, COUNT(*) AS n,
    COUNT(DISTINCT a.kind) AS kinds
FROM activity a
WHERE a.cadre_id IS NULL AND a.held_on >= :year_start AND a.held_on <= :day_iso AND a.revoked_at IS NULL
GROUP BY a.organisation_id, (CAST(substr(a.held_on, 6, 2) AS INTEGER) - 1) / 3
"""

_ORG_RANKS = """
UPDATE organisation_ranking SET rank_among_siblings = r.by_score, rank_at_depth = r.at_depth,
    rank_points = r.by_points, rank_compliance = r.by_compliance, rank_campaigns = r.by_campaigns,
    rank_binding = r.by_binding
FROM (
    SELECT organisation_id,
        RANK() OVER (PARTITION BY parent_id ORDER BY score DESC) AS by_score,
        RANK() OVER (PARTITION BY root_id, depth ORDER BY score DESC) AS at_depth,
        RANK() OVER (PARTITION BY parent_id ORDER BY COALESCE(average_points, -1) DESC) AS by_points,
        RANK() OVER (PARTITION BY parent_id ORDER BY COALESCE(compliance_rate, -1) DESC) AS by_compliance,
        RANK() OVER (PARTITION BY parent_id ORDER BY COALESCE(campaign_rate, -1) DESC) AS by_campaigns,
        RANK() OVER (PARTITION BY parent_id ORDER BY COALESCE(binding_rate, -1) DESC) AS by_binding
    FROM organisation_ranking WHERE day = :day
) r
WHERE organisation_ranking.day = :day AND organisation_ranking.organisation_id = r.organisation_id
"""


@dataclass
class _OrgTotals:
    org: tuple  # (id, parent_id, path, depth, kind)
    root_id: int
    cadres: int = 0
    own_cadres: int = 0
    points: Decimal = Decimal(0)
    periods_met: int = 0
    periods_due: int = 0
    contacts: int = 0
    bound: int = 0
    histogram: list[int] = field(default_factory=lambda: [0] * HISTOGRAM_BUCKETS)

    def add(self, other: _OrgTotals) -> None:
        self.cadres += other.cadres
        self.points += other.points
        self.periods_met += other.periods_met
        self.periods_due += other.periods_due
        self.contacts += other.contacts
        self.bound += other.bound
        self.histogram = [a + b for a, b in zip(self.histogram, other.histogram)]


def _kinds_needed(quota: int, kinds: tuple[str, ...]) -> int:
    """Different kinds a period needs: as many as the quota, at most all five (see ``quotas.Compliance.met``)."""
    return min(quota, len(kinds))


def _decimal(value: Any) -> Decimal:
    """A database number as an exact 2-place Decimal (SQLite hands back floats)."""
    return Decimal(str(value or 0)).quantize(CENT, ROUND_HALF_UP)


def compute_rankings(session: Session, day: date, now: datetime,
                     sources: RankingSources | None = None) -> RankingRunResult:
    """Recompute the snapshot of ``day`` (replacing an earlier one) in the caller's transaction.

    Facts count up to the end of ``day`` (Beijing time): contacts made and youth bound by then,
    activities held from 1 January to ``day``; points are the ledger's for ``day``'s year.
    """
    began = time.perf_counter()
    sources = sources or RankingSources()
    if session.get_bind().dialect.name == "postgresql":
        # Sorts and hashes of 100,000 cadres and 700,000 activities fit in memory instead of spilling to disk.
        session.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
    year_start = date(day.year, 1, 1)
    bimonths_done, quarters_done = quota_periods(day)
    session.execute(delete(CadreRanking).where(CadreRanking.day == day))
    session.execute(delete(OrganisationRanking).where(OrganisationRanking.day == day))
    session.execute(delete(RankingRun).where(RankingRun.day == day))

    orgs = session.execute(select(Organisation.id, Organisation.parent_id, Organisation.path, Organisation.depth,
                                  Organisation.kind).order_by(Organisation.path)).all()
    roots = list(session.scalars(select(Organisation).where(Organisation.parent_id.is_(None))))
    quotas: dict[int, EffectiveQuota] = {}
    for root in roots:
        quotas.update(effective_quotas(session, root))
    levels = []
    for org_id, _parent, path, depth, _kind in orgs:
        chain = [int(part) for part in path.strip("/").split("/")]
        quota = quotas.get(org_id, NOTICE_QUOTA)
        full, part = quota.activities_for("full_time"), quota.activities_for("part_time")
        levels.append((org_id, path, chain[0], chain[1] if depth >= 1 else None, chain[2] if depth >= 2 else None,
                       full, _kinds_needed(full, CADRE_ACTIVITY_KINDS), part, _kinds_needed(part, CADRE_ACTIVITY_KINDS)))
    _stage(session, "tmp_ranking_levels", [("organisation_id", "INTEGER PRIMARY KEY"), ("path", "VARCHAR(512)"),
                                           ("root_id", "INTEGER"), ("depth1_id", "INTEGER"), ("depth2_id", "INTEGER"),
                                           ("cadre_quota", "INTEGER"), ("cadre_kinds", "INTEGER"),
                                           ("part_time_quota", "INTEGER"), ("part_time_kinds", "INTEGER")], levels)
    points = sources.points_by_cadre(session, day.year)
    # Whole cents beside the points: the window functions sort integers, much faster than numerics.
    _stage(session, "tmp_ranking_points", [("cadre_id", "INTEGER PRIMARY KEY"), ("points", "NUMERIC(7, 2)"),
                                           ("cents", "INTEGER")],
           [(cadre_id, exact, int(exact * 100)) for cadre_id, exact in
            ((cadre_id, Decimal(value).quantize(CENT, ROUND_HALF_UP)) for cadre_id, value in points.items())])
    statement = text(_CADRE_INSERT).bindparams(bindparam("day", type_=Date()), bindparam("day_end", type_=UtcDateTime()))
    session.execute(statement, {"day": day, "day_end": day_end(day), "quarters_done": quarters_done, "bimonths_done": bimonths_done,
                                "year_start": year_start.isoformat(), "day_iso": day.isoformat()})
    session.execute(text("DROP TABLE tmp_ranking_points"))
    session.execute(text("DROP TABLE tmp_ranking_levels"))

    totals = {org[0]: _OrgTotals(org=tuple(org), root_id=level[2]) for org, level in zip(orgs, levels)}
    direct = session.execute(
        select(CadreRanking.organisation_id, func.count(), func.sum(CadreRanking.points),
               func.sum(CadreRanking.periods_met), func.sum(CadreRanking.periods_due),
               func.sum(CadreRanking.contacts), func.sum(CadreRanking.bound))
        .where(CadreRanking.day == day).group_by(CadreRanking.organisation_id))
    for org_id, count, points_sum, met, due, contacts, bound in direct:
        own = totals[org_id]
        own.cadres = own.own_cadres = count
        own.points, own.periods_met, own.periods_due = _decimal(points_sum), int(met or 0), int(due or 0)
        own.contacts, own.bound = int(contacts or 0), int(bound or 0)
    histogram = session.execute(text(f"SELECT organisation_id, {_histogram_case()} AS bucket, COUNT(*) "
                                     "FROM cadre_ranking WHERE day = :day GROUP BY organisation_id, bucket")
                                .bindparams(bindparam("day", type_=Date())), {"day": day})
    for org_id, index, count in histogram:
        totals[org_id].histogram[int(index)] += int(count)
    organ_periods: dict[int, dict[int, bool]] = {}
    for org_id, quarter, count, kinds in session.execute(text(_ORGAN_QUOTA), {"year_start": year_start.isoformat(),
                                                                              "day_iso": day.isoformat()}):
        needed = quotas.get(org_id, NOTICE_QUOTA).organ_activities
        organ_periods.setdefault(org_id, {})[int(quarter)] = (count >= needed
                                                              and kinds >= _kinds_needed(needed, ORGAN_ACTIVITY_KINDS))
    for org_id, _parent, _path, _depth, kind in orgs:
        if kind in LEADING_ORGAN_KINDS:
            met = organ_periods.get(org_id, {})
            totals[org_id].periods_met += sum(met.values())
            totals[org_id].periods_due += quarters_done + int(met.get(quarters_done, False))
    for org_id, parent_id, _path, _depth, _kind in reversed(orgs):  # children before parents: paths sort parents first
        if parent_id is not None and parent_id in totals:
            totals[parent_id].add(totals[org_id])

    campaigns: dict[int, tuple[int, int]] = {}
    for root in roots:
        campaigns.update(sources.campaign_completion(session, root, day_start(year_start), day_end(day)))
    rows = []
    for org_id, parent_id, path, depth, _kind in orgs:
        t = totals[org_id]
        done, total = campaigns.get(org_id, (0, 0))
        average = (t.points / t.cadres).quantize(CENT, ROUND_HALF_UP) if t.cadres else None
        compliance, campaign_rate, binding = _rate(t.periods_met, t.periods_due), _rate(done, total), _rate(t.bound,
                                                                                                          t.contacts)
        rows.append({"day": day, "organisation_id": org_id, "parent_id": parent_id, "root_id": t.root_id,
                     "depth": depth, "path": path, "cadres": t.cadres, "own_cadres": t.own_cadres,
                     "points_total": t.points, "average_points": average, "periods_met": t.periods_met,
                     "periods_due": t.periods_due, "compliance_rate": compliance, "campaign_done": done,
                     "campaign_total": total, "campaign_rate": campaign_rate, "contacts": t.contacts,
                     "bound": t.bound, "binding_rate": binding,
                     "score": composite_score(average, compliance, campaign_rate, binding),
                     "points_histogram": t.histogram})
    if rows:
        session.execute(insert(OrganisationRanking), rows)
        session.execute(text(_ORG_RANKS).bindparams(bindparam("day", type_=Date())), {"day": day})
    cadre_count = sum(t.own_cadres for t in totals.values())
    seconds = time.perf_counter() - began
    session.add(RankingRun(day=day, computed_at=now, cadres=cadre_count, organisations=len(rows),
                           milliseconds=int(seconds * 1000)))
    session.flush()
    return RankingRunResult(day, cadre_count, len(rows), seconds)


def kept_days(days: list[date], today: date, keep_days: int = KEEP_DAILY_DAYS) -> set[date]:
    """Which of ``days`` to keep: the last ``keep_days``, every month's last day, and each half-year day."""
    cutoff = today - timedelta(days=keep_days)
    return {day for day in days
            if day >= cutoff or (day + timedelta(days=1)).day == 1 or (day.month, day.day) == HALF_YEAR_DAY}


def prune_rankings(session: Session, today: date, keep_days: int = KEEP_DAILY_DAYS) -> int:
    """Delete the snapshots :func:`kept_days` does not keep; return how many days went."""
    days = list(session.scalars(select(RankingRun.day)))
    gone = sorted(set(days) - kept_days(days, today, keep_days))
    if gone:
        session.execute(delete(CadreRanking).where(CadreRanking.day.in_(gone)))
        session.execute(delete(OrganisationRanking).where(OrganisationRanking.day.in_(gone)))
        session.execute(delete(RankingRun).where(RankingRun.day.in_(gone)))
    return len(gone)


# ----------------------------------------------------------------------------------- reading

def latest_day(session: Session, on_or_before: date | None = None) -> date | None:
    """The most recent computed day (at or before ``on_or_before``), or ``None``."""
    query = select(func.max(RankingRun.day))
    if on_or_before is not None:
        query = query.where(RankingRun.day <= on_or_before)
    return session.scalar(query)


def computed_days(session: Session, limit: int = 400) -> list[date]:
    """The computed days, newest first."""
    return list(session.scalars(select(RankingRun.day).order_by(RankingRun.day.desc()).limit(limit)))


@dataclass(frozen=True)
class OrganisationStanding:
    """An organisation's row of one day's ranking, with its name."""

    organisation_id: int
    code: str
    name: str
    kind: str
    day: date
    rank: int | None             # the rank the list is sorted by (siblings or depth)
    rank_among_siblings: int | None
    siblings: int | None
    score: Decimal
    cadres: int
    own_cadres: int
    average_points: Decimal | None
    periods_met: int
    periods_due: int
    compliance_rate: Decimal | None
    campaign_done: int
    campaign_total: int
    campaign_rate: Decimal | None
    contacts: int
    bound: int
    binding_rate: Decimal | None
    points_histogram: tuple[int, ...]


def _standing(row: OrganisationRanking, org: Organisation, rank: int | None,
              siblings: int | None = None) -> OrganisationStanding:
    return OrganisationStanding(
        organisation_id=org.id, code=org.code, name=org.name, kind=org.kind, day=row.day, rank=rank,
        rank_among_siblings=row.rank_among_siblings, siblings=siblings, score=_decimal(row.score), cadres=row.cadres,
        own_cadres=row.own_cadres,
        average_points=None if row.average_points is None else _decimal(row.average_points),
        periods_met=row.periods_met, periods_due=row.periods_due,
        compliance_rate=_exact_rate(row.compliance_rate), campaign_done=row.campaign_done,
        campaign_total=row.campaign_total, campaign_rate=_exact_rate(row.campaign_rate), contacts=row.contacts,
        bound=row.bound, binding_rate=_exact_rate(row.binding_rate), points_histogram=tuple(row.points_histogram))


def _exact_rate(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(RATE_PLACES, ROUND_HALF_UP)


def organisation_standing(session: Session, org: Organisation, day: date,
                          count_siblings: bool = True) -> OrganisationStanding | None:
    """``org``'s own row of ``day`` (its subtree's figures and its rank among its siblings, and how many they are)."""
    row = session.scalar(select(OrganisationRanking).where(OrganisationRanking.organisation_id == org.id,
                                                           OrganisationRanking.day == day))
    if row is None:
        return None
    if not count_siblings:
        return _standing(row, org, row.rank_among_siblings)
    siblings = session.scalar(select(func.count()).select_from(OrganisationRanking)
                              .where(OrganisationRanking.day == day,
                                     OrganisationRanking.parent_id == row.parent_id if row.parent_id is not None
                                     else OrganisationRanking.parent_id.is_(None)))
    return _standing(row, org, row.rank_among_siblings, siblings)


def child_ranking(session: Session, parent: Organisation, day: date, sort: str = "score", limit: int = 50,
                  offset: int = 0) -> list[OrganisationStanding]:
    """The children of ``parent`` ranked among themselves by ``sort`` (score, points, compliance, campaigns,
    binding), one page."""
    if sort not in ORG_SORTS:
        raise ValueError(f"排序方式应为 {', '.join(ORG_SORTS)} 之一 / sort must be one of {', '.join(ORG_SORTS)}")
    rank = getattr(OrganisationRanking, ORG_SORTS[sort])
    rows = session.execute(select(OrganisationRanking, Organisation)
                           .join(Organisation, Organisation.id == OrganisationRanking.organisation_id)
                           .where(OrganisationRanking.day == day, OrganisationRanking.parent_id == parent.id)
                           .order_by(rank, Organisation.code).limit(limit).offset(offset)).all()
    return [_standing(row, org, getattr(row, ORG_SORTS[sort])) for row, org in rows]


def child_count(session: Session, parent: Organisation, day: date) -> int:
    """How many children of ``parent`` the ranking of ``day`` holds."""
    return session.scalar(select(func.count()).select_from(OrganisationRanking)
                          .where(OrganisationRanking.day == day, OrganisationRanking.parent_id == parent.id)) or 0


def depth_ranking(session: Session, root: Organisation, depth: int, day: date, limit: int = 50,
                  offset: int = 0) -> tuple[list[OrganisationStanding], int]:
    """Every organisation ``depth`` levels down the whole tree under ``root``, ranked by score; and how many."""
    ranked = (select(OrganisationRanking.organisation_id,
                     func.rank().over(order_by=OrganisationRanking.score.desc()).label("rank"))
              .where(OrganisationRanking.day == day, OrganisationRanking.depth == depth,
                     in_subtree(OrganisationRanking.path, root.path)).subquery())
    rows = session.execute(select(OrganisationRanking, Organisation, ranked.c.rank)
                           .join(ranked, and_(ranked.c.organisation_id == OrganisationRanking.organisation_id,
                                              OrganisationRanking.day == day))
                           .join(Organisation, Organisation.id == OrganisationRanking.organisation_id)
                           .order_by(ranked.c.rank, Organisation.code).limit(limit).offset(offset)).all()
    total = session.scalar(select(func.count()).select_from(ranked)) or 0
    return [_standing(row, org, rank) for row, org, rank in rows], total


@dataclass(frozen=True)
class CadreStanding:
    """A cadre's row of one day's ranking, with their name and organisation."""

    cadre_id: int
    code: str
    name: str
    kind: str
    organisation_id: int
    organisation_name: str
    day: date
    rank: int
    points: Decimal
    contacts: int
    bound: int
    period_activities: int
    periods_met: int
    periods_due: int

    @property
    def binding_rate(self) -> Decimal | None:
        """Bound youth / contacted youth."""
        return _rate(self.bound, self.contacts)

    @property
    def compliance_rate(self) -> Decimal | None:
        """Five-ones periods met / periods due so far this year."""
        return _rate(self.periods_met, self.periods_due)


SCOPES = ("subtree", "own")


def _cadre_scope(org: Organisation, scope: str):
    """(rank column, position column, filter) for the cadres of ``org``: its whole subtree, or those at home
    there; (None, None, filter) for a subtree deeper than the ranked depths."""
    if scope not in SCOPES:
        raise ValueError(f"范围应为 subtree 或 own / scope must be one of {', '.join(SCOPES)}")
    if scope == "own":
        return (CadreRanking.rank_in_organisation, CadreRanking.position_in_organisation,
                CadreRanking.organisation_id == org.id)
    if org.depth in RANKED_DEPTHS:
        column, level = (("root_id", "root"), ("depth1_id", "depth1"), ("depth2_id", "depth2"))[org.depth]
        return (getattr(CadreRanking, f"rank_in_{level}"), getattr(CadreRanking, f"position_in_{level}"),
                getattr(CadreRanking, column) == org.id)
    county = ancestor_ids(org.path)[RANKED_DEPTHS[-1]]  # narrowed to its county by an index, then by path
    return None, None, and_(CadreRanking.depth2_id == county, in_subtree(CadreRanking.org_path, org.path))


def cadre_ranking(session: Session, org: Organisation, day: date, scope: str = "subtree", limit: int = 50,
                  offset: int = 0) -> list[CadreStanding]:
    """One page of the cadres of ``org`` (its subtree, or ``scope="own"``: at home there) ranked by points.

    A page of a stored list is one range of its position index, as fast at the 2,000th page as at the first.
    """
    rank, position, where = _cadre_scope(org, scope)
    if rank is None:  # a subtree deeper than a county: rank its few rows on the fly
        ranked = (select(CadreRanking, func.rank().over(order_by=CadreRanking.points.desc()).label("rank_here"))
                  .where(CadreRanking.day == day, where).subquery())
        source = aliased(CadreRanking, ranked)
        query = (select(source, Cadre.code, Cadre.name, Organisation.name, ranked.c.rank_here)
                 .join(Cadre, Cadre.id == source.cadre_id)
                 .join(Organisation, Organisation.id == source.organisation_id)
                 .order_by(ranked.c.rank_here, source.cadre_id).limit(limit).offset(offset))
    else:
        query = (select(CadreRanking, Cadre.code, Cadre.name, Organisation.name, rank)
                 .join(Cadre, Cadre.id == CadreRanking.cadre_id)
                 .join(Organisation, Organisation.id == CadreRanking.organisation_id)
                 .where(CadreRanking.day == day, where, position > offset, position <= offset + limit)
                 .order_by(position))
    return [CadreStanding(cadre_id=row.cadre_id, code=code, name=name, kind=row.kind,
                          organisation_id=row.organisation_id, organisation_name=org_name, day=row.day, rank=int(r),
                          points=_decimal(row.points), contacts=row.contacts, bound=row.bound,
                          period_activities=row.period_activities, periods_met=row.periods_met,
                          periods_due=row.periods_due)
            for row, code, name, org_name, r in session.execute(query)]


def cadre_count(session: Session, org: Organisation, day: date, scope: str = "subtree") -> int:
    """How many cadres :func:`cadre_ranking` lists in all."""
    row = session.scalar(select(OrganisationRanking).where(OrganisationRanking.organisation_id == org.id,
                                                           OrganisationRanking.day == day))
    if row is None:
        return 0
    return row.own_cadres if scope == "own" else row.cadres


def cadre_standing(session: Session, cadre: Cadre, day: date) -> CadreRanking | None:
    """The cadre's snapshot row of ``day``."""
    return session.scalar(select(CadreRanking).where(CadreRanking.cadre_id == cadre.id, CadreRanking.day == day))


@dataclass(frozen=True)
class HistoryPoint:
    """A rank (and the figure behind it) on one day."""

    day: date
    rank: int | None
    value: Decimal


def organisation_history(session: Session, org: Organisation, since: date, until: date) -> list[HistoryPoint]:
    """``org``'s rank among its siblings (and score) on each computed day in [since, until]."""
    rows = session.execute(select(OrganisationRanking.day, OrganisationRanking.rank_among_siblings,
                                  OrganisationRanking.score)
                           .where(OrganisationRanking.organisation_id == org.id,
                                  OrganisationRanking.day >= since, OrganisationRanking.day <= until)
                           .order_by(OrganisationRanking.day))
    return [HistoryPoint(day, rank, _decimal(score)) for day, rank, score in rows]


def cadre_history(session: Session, cadre: Cadre, since: date, until: date,
                  level: str = "organisation") -> list[HistoryPoint]:
    """The cadre's rank (within their organisation, or ``level`` root/depth1/depth2) and points per computed day."""
    column = {"organisation": CadreRanking.rank_in_organisation, "root": CadreRanking.rank_in_root,
              "depth1": CadreRanking.rank_in_depth1, "depth2": CadreRanking.rank_in_depth2}[level]
    rows = session.execute(select(CadreRanking.day, column, CadreRanking.points)
                           .where(CadreRanking.cadre_id == cadre.id, CadreRanking.day >= since,
                                  CadreRanking.day <= until).order_by(CadreRanking.day))
    return [HistoryPoint(day, rank, _decimal(points)) for day, rank, points in rows]


def bottom_cadres(session: Session, org: Organisation, day: date, count: int,
                  scope: str = "own") -> list[CadreStanding]:
    """The last ``count`` cadres of :func:`cadre_ranking` (lowest points first)."""
    total = cadre_count(session, org, day, scope)
    rows = cadre_ranking(session, org, day, scope, limit=count, offset=max(total - count, 0))
    return list(reversed(rows))


__all__ = ["RankingRun", "CadreRanking", "OrganisationRanking", "RankingSources", "compute_rankings",
           "prune_rankings", "latest_day", "child_ranking", "depth_ranking", "cadre_ranking", "cadre_count",
           "organisation_history", "cadre_history", "composite_score", "month_bounds", "local_today"]
