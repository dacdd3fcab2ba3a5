"""The demo province's work so far: activities, task-list items, interactions and contacts, all scored.

:func:`generate_province` makes the people; this makes what they did, so that the points ledger,
the stars and diamonds, the five-ones compliance and the rankings show something right after
``flask demo load``.  Everything is drawn from ``random.Random(seed)``: the same seed gives the
same facts.

- ``small``: every fact goes through the path the application itself uses, which awards its
  points: :func:`activities.record_activity` (this year's activities of every cadre and leading
  organ, and some of last year's, for the history pages), :func:`education_practice.record_item`,
  :func:`interactions.record_like` / ``record_comment`` / ``share_article``, and
  :func:`contact_points.award_contact_points` for the contacts with complete tags and the bound
  youth.  The three demo cadres, and some others, meet the five-ones quota of their current period.
- ``province``: the same kinds of activity in bulk (chunked inserts, their ledger entries with one
  ``INSERT … SELECT``, the tally rebuilt set-based as ``bench/ranking.py`` does), and the contact
  points through ``award_contact_points``; a minute or so at 100,000 cadres.
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time as clock_time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import String, case, cast, func, insert, literal, select, text
from sqlalchemy.orm import Session

from .activities import record_activity
from .contact_points import award_contact_points
from .education_practice import PRACTICE_ITEMS, record_item
from .interactions import record_comment, record_like, share_article
from .models import CADRE_ACTIVITY_KINDS, LEADING_ORGAN_KINDS, ORGAN_ACTIVITY_KINDS, Activity, Cadre, Organisation
from .points import RULE_SET_OF_KIND, PointEntry, Points, rebuild_tallies, rules_for
from .spot_checks import KIND_NAMES_ZH

ZONE = ZoneInfo("Asia/Shanghai")
CHUNK_ROWS = 5_000
DEMO_CADRES = 3  # generate_province puts the three printed demo cadres first
PLACES = ("青年之家", "社区活动室", "团委会议室", "街道党群服务中心", "学校报告厅", "企业职工书屋", "村文化广场")
ARTICLES = ("青春心向党 建功新时代", "致敬最美青年志愿者", "“1+100”：我和我联系的一百名青年", "读懂新时代的青年使命",
            "青年之声：你的问题我来答", "小伙伴的微心愿实现了")
PRACTICE_MONTHS = range(5, 10)  # the education practice runs May–September
# Each fact of the small size goes through the application's own path (about 1 ms each on SQLite),
# so it gets a few facts per cadre: the demo loads in seconds and still ranks everybody apart.
SMALL_ACTIVITIES_PER_YEAR = 6
DILIGENT_SHARE = 0.15  # cadres (and twice as many organs) who already meet the current period's quota
PROVINCE_ACTIVITIES_PER_YEAR = 12


@dataclass
class DemoFacts:
    """How many facts :func:`generate_demo_facts` made."""

    activities: int = 0
    practice_items: int = 0
    interactions: int = 0
    articles: int = 0
    point_entries: int = 0
    seconds: float = 0.0

    def counts_line(self) -> str:
        """One line with the counts, e.g. for the command line."""
        return (f"{self.activities:,} activities, {self.practice_items:,} task-list items, "
                f"{self.interactions:,} likes and comments, {self.articles:,} shared articles, "
                f"{self.point_entries:,} points entries ({self.seconds:.1f} s)")


def _moment(day: date, now: datetime) -> datetime:
    """Noon of ``day`` in Beijing time (never later than ``now``): when a fact of that day is recorded."""
    return min(datetime.combine(day, clock_time(12), ZONE), now)


def _random_day(rng: random.Random, first: date, last: date) -> date:
    return first + timedelta(days=rng.randrange((last - first).days + 1))


def _period_start(today: date, part_time: bool) -> date:
    """The first day of the five-ones period holding ``today``: two months, or a quarter (part-time, organs)."""
    months = 3 if part_time else 2
    return date(today.year, (today.month - 1) // months * months + 1, 1)


def _activity_count(rng: random.Random, elapsed_days: int, per_year: int) -> int:
    """Up to ``per_year`` activities a year (the quota asks 30), fewer early in the year; some cadres do nothing."""
    return 0 if rng.random() < 0.1 else rng.randint(0, max(1, round(per_year * elapsed_days / 365)))


def generate_demo_facts(session: Session, size: str = "small", seed: int = 2017, now: datetime | None = None,
                        progress: Callable[[str], None] | None = None) -> DemoFacts:
    """Record the demo province's activities and other scoring facts (executed, not committed)."""
    began = time.perf_counter()
    now = now or datetime.now(ZONE)
    rng = random.Random(seed + 1)
    facts = _bulk_facts(session, rng, now, progress) if size == "province" else _real_facts(session, rng, now)
    facts.point_entries = session.scalar(select(func.count()).select_from(PointEntry))
    facts.seconds = time.perf_counter() - began
    return facts


# ------------------------------------------------------------------------------- small: real paths

def _real_facts(session: Session, rng: random.Random, now: datetime) -> DemoFacts:
    facts = DemoFacts()
    today = now.astimezone(ZONE).date()
    year_start, last_year = date(today.year, 1, 1), today.year - 1
    cadres = session.scalars(select(Cadre).order_by(Cadre.id)).all()
    orgs = {org.id: org for org in session.scalars(select(Organisation))}

    def activity(cadre: Cadre | None, org: Organisation, kind: str, day: date) -> None:
        record_activity(session, organisation=org, kind=kind, held_on=day.isoformat(), place=rng.choice(PLACES),
                        youth_count=rng.randint(3, 40), cadre=cadre, now=_moment(day, now),
                        description=f"{KIND_NAMES_ZH[kind]}：与联系的青年面对面交流，听取意见建议并做好记录。",
                        evidence=[f"demo-{kind}-{day.isoformat()}.jpg"])
        facts.activities += 1

    for index, cadre in enumerate(cadres):
        org = orgs[cadre.organisation_id]
        if index < DEMO_CADRES or rng.random() < DILIGENT_SHARE:  # meet the current period's quota
            for kind in CADRE_ACTIVITY_KINDS:
                activity(cadre, org, kind, _random_day(rng, _period_start(today, cadre.kind == "part_time"), today))
        for _ in range(_activity_count(rng, (today - year_start).days + 1, SMALL_ACTIVITIES_PER_YEAR)):
            activity(cadre, org, rng.choice(CADRE_ACTIVITY_KINDS), _random_day(rng, year_start, today))
        for _ in range(rng.randint(1, 4) if index < DEMO_CADRES or rng.random() < 0.4 else 0):  # 历年
            activity(cadre, org, rng.choice(CADRE_ACTIVITY_KINDS),
                     _random_day(rng, date(last_year, 1, 1), date(last_year, 12, 31)))
        _practice(session, rng, facts, cadre, today, now)
        _interactions(session, rng, facts, cadre, index, year_start, today, now)
    for org in sorted(orgs.values(), key=lambda o: o.id):
        if org.kind in LEADING_ORGAN_KINDS:
            if rng.random() < DILIGENT_SHARE * 2:
                for kind in ORGAN_ACTIVITY_KINDS:
                    activity(None, org, kind, _random_day(rng, _period_start(today, part_time=True), today))
            for _ in range(rng.randint(0, 6)):
                activity(None, org, rng.choice(ORGAN_ACTIVITY_KINDS), _random_day(rng, year_start, today))
    award_contact_points(session, now)
    session.flush()
    return facts


def _practice(session: Session, rng: random.Random, facts: DemoFacts, cadre: Cadre, today: date,
              now: datetime) -> None:
    """Some education-practice items: this year's once the practice has begun, else last year's."""
    if rng.random() > 0.3:
        return
    year = today.year if today.month >= PRACTICE_MONTHS.start else today.year - 1
    last = min(today, date(year, PRACTICE_MONTHS.stop - 1, 30))
    for item in rng.sample(list(PRACTICE_ITEMS), rng.randint(1, 3)):
        day = _random_day(rng, date(year, PRACTICE_MONTHS.start, 1), last)
        record_item(session, cadre=cadre, item=item, held_on=day.isoformat(), place=rng.choice(PLACES),
                    participants=rng.randint(5, 30), description=f"{PRACTICE_ITEMS[item]}，支部团员青年参加。",
                    evidence=[f"demo-{item}.jpg"], now=_moment(day, now))
        facts.practice_items += 1


def _interactions(session: Session, rng: random.Random, facts: DemoFacts, cadre: Cadre, index: int,
                  year_start: date, today: date, now: datetime) -> None:
    """Likes and comments in the cadre's circle, and articles the cadre shared."""
    for number in range(rng.randint(0, 3)):
        moment = _moment(_random_day(rng, year_start, today), now)
        target = f"post:{cadre.id}:{number % 3}"
        if rng.random() < 0.6:
            if record_like(session, cadre=cadre, target=target, by=f"demo-youth-{index}-{number}", now=moment):
                facts.interactions += 1
        else:
            record_comment(session, cadre=cadre, target=target, by=f"demo-youth-{index}-{number}",
                           body="谢谢团干部的帮助，活动很有收获！", now=moment)
            facts.interactions += 1
    for title in rng.sample(ARTICLES, rng.randint(0, 1)):
        if share_article(session, cadre=cadre, article=f"https://demo.lianqing.invalid/articles/{ARTICLES.index(title)}",
                         title=title, now=_moment(_random_day(rng, year_start, today), now)):
            facts.articles += 1


# ------------------------------------------------------------------------------------ province: bulk

def _bulk_facts(session: Session, rng: random.Random, now: datetime,
                progress: Callable[[str], None] | None) -> DemoFacts:
    facts = DemoFacts()
    say = progress or (lambda _line: None)
    today = now.astimezone(ZONE).date()
    year_start = date(today.year, 1, 1)
    table = Activity.__table__
    first_id = (session.scalar(select(func.max(table.c.id))) or 0) + 1
    next_id = first_id
    rows: list[dict] = []

    def add(cadre_id: int | None, org_id: int, kind: str) -> None:
        nonlocal next_id
        day = _random_day(rng, year_start, today)
        rows.append({"id": next_id, "cadre_id": cadre_id, "organisation_id": org_id, "kind": kind,
                     "held_on": day.isoformat(), "place": PLACES[next_id % len(PLACES)], "youth_count": 3 + next_id % 30,
                     "description": f"{KIND_NAMES_ZH[kind]}：与联系的青年面对面交流。",
                     "evidence": [f"demo-{next_id}.jpg"], "recorded_at": _moment(day, now)})
        next_id += 1
        if len(rows) >= CHUNK_ROWS:
            session.execute(insert(table), rows)
            rows.clear()

    elapsed = (today - year_start).days + 1
    for cadre_id, org_id in session.execute(select(Cadre.id, Cadre.organisation_id).order_by(Cadre.id)).all():
        for _ in range(_activity_count(rng, elapsed, PROVINCE_ACTIVITIES_PER_YEAR)):
            add(cadre_id, org_id, CADRE_ACTIVITY_KINDS[rng.randrange(len(CADRE_ACTIVITY_KINDS))])
    for org_id in session.scalars(select(Organisation.id).where(Organisation.kind.in_(LEADING_ORGAN_KINDS))
                                  .order_by(Organisation.id)).all():
        for _ in range(rng.randint(0, 6)):
            add(None, org_id, ORGAN_ACTIVITY_KINDS[rng.randrange(len(ORGAN_ACTIVITY_KINDS))])
    if rows:
        session.execute(insert(table), rows)
    facts.activities = next_id - first_id
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT setval(pg_get_serial_sequence('activity', 'id'), "
                             "(SELECT coalesce(max(id), 1) FROM activity))"))
    say(f"activities: {facts.activities:,}")
    _award_activities_in_bulk(session, first_id, today.year)
    award_contact_points(session, now)
    say("points: activities, contacts and bound youth")
    return facts


def _award_activities_in_bulk(session: Session, first_id: int, year: int) -> None:
    """The ledger entries of the cadres' activities from ``first_id`` on (one statement), then their tally.

    The same entries :func:`activities.record_activity` writes one at a time: 活动开展 by the
    cadre's kind, keyed ``activity:<id>``, in the year the activity was recorded.
    """
    rules = rules_for(year)
    points = case(*[(Cadre.kind == kind, literal(rules.points_for("activities", kind), Points()))
                    for kind in RULE_SET_OF_KIND], else_=literal(0, Points()))
    facts = (select(Activity.cadre_id, literal(year), literal("activities"),
                    literal("activity:") + cast(Activity.id, String), points, Activity.recorded_at,
                    literal("activity"), cast(Activity.id, String))
             .join(Cadre, Cadre.id == Activity.cadre_id).where(Activity.id >= first_id))
    columns = ["cadre_id", "year", "category", "dedup_key", "points", "occurred_at", "source_kind", "source_id"]
    session.execute(insert(PointEntry.__table__).from_select(columns, facts))
    rebuild_tallies(session, year, ("activities",))


__all__ = ["DemoFacts", "generate_demo_facts"]
