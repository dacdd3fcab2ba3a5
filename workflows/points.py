"""The points ledger (个人积分, Annex 2 of the notice): every scoring fact is one entry; scores are read from it.

A fact (a contact, a recorded activity, an answered question…) is awarded once: the entry's
de-duplication key is unique per cadre, year and category, so a second identical fact adds
nothing.  An entry keeps its raw points (by the cadre's kind at the time of the fact); the caps
of Annex 2 are applied when a score is read, so revoking one entry (a record found false) lets
the next fact count again.  The year is the fact's calendar year in Beijing time: points restart
every 1 January (从1月1日起重新计分) and earlier years stay listable (历史殿堂).

``point_tally`` keeps the raw sum per cadre, year and category in whole cents, written in the
transaction of each award and revocation, so :func:`year_scores` aggregates at most eight rows a
cadre instead of the whole ledger.  :func:`rebuild_tallies` recomputes it from the ledger.

Arithmetic is exact: entries are ``Decimal`` with two places, and sums and caps are taken in
whole cents (integers) on every database.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import (ForeignKey, Index, Integer, Numeric, String, UniqueConstraint, case, delete, func, literal,
                        select, update)
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.types import TypeDecorator

from engine.models import Base

from .models import Cadre, Organisation
from .organisations import in_subtree

LEAGUE_ZONE = ZoneInfo("Asia/Shanghai")
CENT = Decimal("0.01")

CATEGORIES = ("contacts", "activities", "education_practice", "youth_voice", "micro_wishes",
              "mobile_binding", "likes_comments", "article_sharing")
SOURCE_KINDS = ("contact", "activity", "practice_item", "voice_answer", "wish_reply", "binding", "interaction",
                "article")
CATEGORY_NAMES_ZH = {"contacts": "联系人数", "activities": "活动开展", "education_practice": "一学一做",
                     "youth_voice": "青年之声", "micro_wishes": "微心愿", "mobile_binding": "绑定手机端",
                     "likes_comments": "点赞留言", "article_sharing": "精彩文章分享"}
# Annex 2 has two rule sets: full-time and seconded cadres share one, part-time cadres have the other.
RULE_SET_OF_KIND = {"full_time": "full_time", "seconded": "full_time", "part_time": "part_time"}


# ------------------------------------------------------------------------------------------ rules

@dataclass(frozen=True)
class CategoryRule:
    """One category of Annex 2: its cap and the points per fact, by variant and rule set."""

    cap: Decimal
    points: Mapping[str, Mapping[str, Decimal]]  # variant → {"full_time": …, "part_time": …}
    group: str | None = None                      # categories sharing one more cap (互动情况)

    @property
    def default_variant(self) -> str:
        """The variant of a fact that names none (the first one listed)."""
        return next(iter(self.points))


@dataclass(frozen=True)
class RuleSet:
    """The points rules in force from ``first_year`` on."""

    first_year: int
    categories: Mapping[str, CategoryRule]
    group_caps: Mapping[str, Decimal] = field(default_factory=dict)
    total_cap: Decimal = Decimal(100)
    points_per_star: Decimal = Decimal(5)
    stars_per_diamond: int = 4

    def points_for(self, category: str, cadre_kind: str, variant: str | None = None) -> Decimal:
        """The points one fact of ``category`` (and ``variant``) is worth to a cadre of ``cadre_kind``."""
        rule = self.categories.get(category)
        if rule is None:
            raise ValueError(f"未知的积分类别 {category!r} / unknown points category; one of {', '.join(CATEGORIES)}")
        by_set = rule.points.get(variant or rule.default_variant)
        if by_set is None:
            raise ValueError(f"积分类别 {category} 没有 {variant!r} 这一项 / category {category} has no variant "
                             f"{variant!r}; one of {', '.join(rule.points)}")
        if cadre_kind not in RULE_SET_OF_KIND:
            raise ValueError(f"未知的团干部类型 {cadre_kind!r} / unknown cadre kind")
        return by_set[RULE_SET_OF_KIND[cadre_kind]]

    def group_of(self, category: str) -> str:
        """The cap group of a category (its own name unless it shares a cap)."""
        return self.categories[category].group or category


def _rule(cap: str, points: dict[str, tuple[str, str]], group: str | None = None) -> CategoryRule:
    return CategoryRule(Decimal(cap), {variant: {"full_time": Decimal(full), "part_time": Decimal(part)}
                                       for variant, (full, part) in points.items()}, group)


# 2017年团干部直接联系青年积分规则 (Annex 2).  Points per fact: (full-time and seconded, part-time).
ANNEX_2_2017 = RuleSet(
    first_year=2017,
    categories={
        # category              cap   variant: (专职/挂职, 兼职)
        "contacts": _rule("10", {"contact": ("0.1", "1")}),             # 须“职业”标签齐全
        "activities": _rule("35", {"record": ("1", "1.5")}),            # 填写1次
        "education_practice": _rule("12", {"item": ("1.5", "1.5")}),    # 同一项不重复计分
        "youth_voice": _rule("10", {"question": ("1", "1"),             # 回复“青年之声”问题
                                    "hero_board": ("0.5", "0.5")}),     # 回复“英雄帖”问题；同一问题按1次
        "micro_wishes": _rule("10", {"reply": ("2", "2")}),
        "mobile_binding": _rule("10", {"youth": ("0.1", "1")}, group="interaction"),
        "likes_comments": _rule("8", {"like": ("0.5", "0.5"), "comment": ("0.5", "0.5")}, group="interaction"),
        "article_sharing": _rule("5", {"article": ("0.5", "0.5")}),
    },
    group_caps={"interaction": Decimal(18)},  # 互动情况（18分）
)
RULE_SETS: tuple[RuleSet, ...] = (ANNEX_2_2017,)


def rules_for(year: int) -> RuleSet:
    """The rule set in force in ``year`` (the newest one starting that year or before; the first for earlier years)."""
    in_force = [rules for rules in RULE_SETS if rules.first_year <= year]
    if not in_force:
        return min(RULE_SETS, key=lambda rules: rules.first_year)
    return max(in_force, key=lambda rules: rules.first_year)


def league_year(moment: datetime) -> int:
    """The points year of a moment: its calendar year in Beijing time (the reset is at 00:00 on 1 January there)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetimes are not accepted; pass an aware datetime")
    return moment.astimezone(LEAGUE_ZONE).year


def to_cents(points: Decimal) -> int:
    """Whole cents of a points value with at most two decimal places."""
    cents = Decimal(points) * 100
    if cents != cents.to_integral_value():
        raise ValueError(f"积分最多两位小数 / points have at most two decimal places: {points}")
    return int(cents)


def from_cents(cents: int) -> Decimal:
    """The points value of a number of cents, with two places (1000 → Decimal('10.00'))."""
    return Decimal(int(cents)).scaleb(-2)


def _capped(cents: int, cap: Decimal) -> int:
    return min(cents, to_cents(cap))


# ------------------------------------------------------------------------------------------ tables

class Points(TypeDecorator):
    """``Numeric(7, 2)`` read back as an exact ``Decimal`` on every database.

    SQLite has no decimal type: the value travels as a float there and is brought back to its two
    places here (SQLAlchemy would warn and round on every read otherwise).
    """

    impl = Numeric(7, 2)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Numeric(7, 2, asdecimal=False))
        return dialect.type_descriptor(Numeric(7, 2))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = Decimal(value).quantize(CENT)
        return float(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, float):
            return from_cents(round(value * 100))
        return Decimal(value).quantize(CENT)


class PointEntry(Base):
    """One scoring fact of one cadre: the raw points, its year, category, source and de-duplication key."""

    __tablename__ = "point_entry"
    __table_args__ = (UniqueConstraint("cadre_id", "year", "category", "dedup_key"),
                      Index("ix_point_entry_source", "source_kind", "source_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    cadre_id: Mapped[int] = mapped_column(ForeignKey("cadre.id"))
    year: Mapped[int] = mapped_column(Integer)
    category: Mapped[str] = mapped_column(String(32))
    dedup_key: Mapped[str] = mapped_column(String(200))
    points: Mapped[Decimal] = mapped_column(Points())
    occurred_at: Mapped[datetime]
    source_kind: Mapped[str] = mapped_column(String(32))
    source_id: Mapped[str] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(500))


class PointTally(Base):
    """The raw (uncapped) points of one cadre in one year and category, in cents: the ledger summed as it grows."""

    __tablename__ = "point_tally"
    __table_args__ = (Index("ix_point_tally_cadre", "cadre_id", "year"),)

    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    cadre_id: Mapped[int] = mapped_column(ForeignKey("cadre.id"), primary_key=True)
    category: Mapped[str] = mapped_column(String(32), primary_key=True)
    cents: Mapped[int] = mapped_column(Integer)
    entries: Mapped[int] = mapped_column(Integer)


def dialect_insert(session: Session, table):
    """An INSERT that knows ``ON CONFLICT`` for the session's database (PostgreSQL or SQLite)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


TallyKey = tuple[int, int, str]  # (cadre id, year, category)


def add_to_tally(session: Session, deltas: Mapping[TallyKey, tuple[int, int]]) -> None:
    """Add (cents, entries) to the tally of each (cadre id, year, category); one statement for all.

    Rows are written in key order, so two transactions touching the same cadres lock them in the
    same order (no deadlock on PostgreSQL).
    """
    rows = [{"cadre_id": cadre_id, "year": year, "category": category, "cents": cents, "entries": entries}
            for (cadre_id, year, category), (cents, entries) in sorted(deltas.items()) if cents or entries]
    if not rows:
        return
    table = PointTally.__table__
    statement = dialect_insert(session, table)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.year, table.c.cadre_id, table.c.category],
        set_={"cents": table.c.cents + statement.excluded.cents,
              "entries": table.c.entries + statement.excluded.entries})
    session.execute(statement, rows)


def tally_deltas(rows: Iterable[tuple[int, int, str, Decimal]], sign: int = 1) -> dict[TallyKey, tuple[int, int]]:
    """Sum (cadre id, year, category, points) rows into tally deltas; ``sign`` -1 for revocations."""
    deltas: dict[TallyKey, list[int]] = defaultdict(lambda: [0, 0])
    for cadre_id, year, category, points in rows:
        delta = deltas[(cadre_id, year, category)]
        delta[0] += sign * to_cents(points)
        delta[1] += sign
    return {key: (cents, entries) for key, (cents, entries) in deltas.items()}


# ----------------------------------------------------------------------------------------- awarding

def award(session: Session, cadre: Cadre, category: str, dedup_key: str, occurred_at: datetime, source_kind: str,
          source_id: str, *, variant: str | None = None) -> PointEntry | None:
    """Record one scoring fact; ``None`` (and nothing written) if the same fact was recorded before.

    The points come from the rule set of the fact's year and the cadre's kind (``variant`` picks
    e.g. a 英雄帖 answer within 青年之声).  "The same fact" is the same cadre, year, category and
    ``dedup_key``, also when the earlier entry was revoked.  Safe when two transactions race: the
    unique key lets exactly one write.
    """
    if source_kind not in SOURCE_KINDS:
        raise ValueError(f"未知的积分来源 {source_kind!r} / unknown source kind; one of {', '.join(SOURCE_KINDS)}")
    year = league_year(occurred_at)
    points = rules_for(year).points_for(category, cadre.kind, variant)
    table = PointEntry.__table__
    statement = (dialect_insert(session, table)
                 .values(cadre_id=cadre.id, year=year, category=category, dedup_key=dedup_key[:200], points=points,
                         occurred_at=occurred_at, source_kind=source_kind, source_id=str(source_id)[:64])
                 .on_conflict_do_nothing(index_elements=[table.c.cadre_id, table.c.year, table.c.category,
                                                         table.c.dedup_key])
                 .returning(table.c.id))
    entry_id = session.execute(statement).scalar()
    if entry_id is None:
        return None
    add_to_tally(session, {(cadre.id, year, category): (to_cents(points), 1)})
    return session.get(PointEntry, entry_id)


def revoke_source(session: Session, source_kind: str, source_id: str, reason: str, now: datetime) -> int:
    """Revoke every live entry of one source (e.g. an activity found false); returns how many were revoked.

    Revoked entries stay in the ledger (with when and why) and no longer count; revoking again is a no-op.
    """
    table = PointEntry.__table__
    revoked = session.execute(
        update(table).where(table.c.source_kind == source_kind, table.c.source_id == str(source_id),
                            table.c.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=(reason or "")[:500])
        .returning(table.c.cadre_id, table.c.year, table.c.category, table.c.points)).all()
    add_to_tally(session, tally_deltas(revoked, sign=-1))
    for entry in list(session.identity_map.values()):  # loaded entries must not show stale revocation fields
        if isinstance(entry, PointEntry) and entry.source_kind == source_kind and entry.source_id == str(source_id):
            session.expire(entry)
    return len(revoked)


# ------------------------------------------------------------------------------------------ scoring

@dataclass(frozen=True)
class CadreScore:
    """A cadre's score for one year: capped points by category, the total, stars and diamonds.

    ``stars`` are the stars shown beside the diamonds (0-3: every 4 stars become a diamond);
    ``total_stars`` counts every 5 points.
    """

    cadre_id: int
    year: int
    total: Decimal
    by_category: dict[str, Decimal]
    raw_by_category: dict[str, Decimal]
    facts: dict[str, int]
    stars: int
    diamonds: int

    @property
    def total_stars(self) -> int:
        """One star per 5 points, diamonds included (100 points = 20 stars = 5 diamonds)."""
        return self.diamonds * rules_for(self.year).stars_per_diamond + self.stars


def score_from_raw(raw_cents: Mapping[str, int], rules: RuleSet) -> tuple[dict[str, int], int]:
    """Apply the caps: capped cents by category and the capped total, from raw cents by category."""
    capped = {name: _capped(raw_cents.get(name, 0), rule.cap) for name, rule in rules.categories.items()}
    groups: dict[str, int] = defaultdict(int)
    for name, cents in capped.items():
        groups[rules.group_of(name)] += cents
    total = sum(_capped(cents, rules.group_caps[group]) if group in rules.group_caps else cents
                for group, cents in groups.items())
    return capped, min(total, to_cents(rules.total_cap))


def badges(total: Decimal, rules: RuleSet) -> tuple[int, int]:
    """(stars beside the diamonds, diamonds) for a total: a star per 5 points, a diamond per 4 stars."""
    all_stars = int(total // rules.points_per_star)
    return all_stars % rules.stars_per_diamond, all_stars // rules.stars_per_diamond


def cadre_score(session: Session, cadre_id: int, year: int) -> CadreScore:
    """A cadre's score in ``year`` from the live ledger entries, with every cap of that year's rules."""
    table = PointEntry.__table__
    rows = session.execute(
        select(table.c.category, table.c.points, table.c.cadre_id)
        .where(table.c.cadre_id == cadre_id, table.c.year == year, table.c.revoked_at.is_(None))).all()
    raw: dict[str, int] = defaultdict(int)
    facts: dict[str, int] = defaultdict(int)
    for category, points, _ in rows:
        raw[category] += to_cents(points)
        facts[category] += 1
    return _score(cadre_id, year, raw, facts)


def _score(cadre_id: int, year: int, raw: Mapping[str, int], facts: Mapping[str, int]) -> CadreScore:
    rules = rules_for(year)
    capped, total_cents = score_from_raw(raw, rules)
    total = from_cents(total_cents)
    stars, diamonds = badges(total, rules)
    return CadreScore(cadre_id=cadre_id, year=year, total=total,
                      by_category={name: from_cents(capped[name]) for name in CATEGORIES},
                      raw_by_category={name: from_cents(raw.get(name, 0)) for name in CATEGORIES},
                      facts={name: facts.get(name, 0) for name in CATEGORIES}, stars=stars, diamonds=diamonds)


def _least(expression, cap_cents: int):
    return case((expression > cap_cents, literal(cap_cents)), else_=expression)


def year_scores(session: Session, year: int, organisation: Organisation | None = None) -> dict[int, Decimal]:
    """Every cadre's capped total for ``year`` (0 for a cadre with no points), optionally for one subtree.

    One query: the cadres, outer-joined to an aggregate of ``point_tally`` (at most one row per
    cadre and category) with the caps applied in SQL in whole cents.  Suited to ranking a province
    of 100,000 cadres.
    """
    rules = rules_for(year)
    tally = PointTally.__table__
    capped = case(*[(tally.c.category == name, _least(tally.c.cents, to_cents(rule.cap)))
                    for name, rule in rules.categories.items()], else_=literal(0))
    per_category = select(tally.c.cadre_id, capped.label("cents")).where(tally.c.year == year)
    cadres = select(Cadre.id)
    if organisation is not None:
        in_tree = in_subtree(Organisation.path, organisation.path)
        per_category = (per_category.join(Cadre, Cadre.id == tally.c.cadre_id)
                        .join(Organisation, Organisation.id == Cadre.organisation_id).where(in_tree))
        cadres = cadres.join(Organisation, Organisation.id == Cadre.organisation_id).where(in_tree)
    binding_groups = {name: cap for name, cap in rules.group_caps.items()
                      if cap < sum(rule.cap for rule in rules.categories.values() if rule.group == name)}
    if binding_groups:  # a shared cap below the sum of its categories' caps needs one more level
        group = case(*[(tally.c.category == name, literal(rules.group_of(name))) for name in rules.categories],
                     else_=tally.c.category)
        by_category = per_category.add_columns(group.label("grp")).subquery()
        by_group = (select(by_category.c.cadre_id, by_category.c.grp, func.sum(by_category.c.cents).label("cents"))
                    .group_by(by_category.c.cadre_id, by_category.c.grp).subquery())
        group_capped = case(*[(by_group.c.grp == name, _least(by_group.c.cents, to_cents(cap)))
                              for name, cap in binding_groups.items()], else_=by_group.c.cents)
        totals = select(by_group.c.cadre_id, func.sum(group_capped).label("cents")).group_by(by_group.c.cadre_id)
    else:  # Annex 2: the 18 of 互动情况 is exactly its 10 + 8, so the category caps suffice
        by_category = per_category.subquery()
        totals = (select(by_category.c.cadre_id, func.sum(by_category.c.cents).label("cents"))
                  .group_by(by_category.c.cadre_id))
    totals = totals.subquery()
    total_cap = to_cents(rules.total_cap)
    query = cadres.add_columns(totals.c.cents).outerjoin(totals, totals.c.cadre_id == Cadre.id)
    values: dict[int, Decimal] = {}  # totals repeat a lot: one Decimal per distinct value
    scores = {}
    for cadre_id, cents in session.connection().execute(query).all():  # Core rows: no ORM work per row
        cents = min(int(cents or 0), total_cap)
        value = values.get(cents)
        if value is None:
            value = values[cents] = from_cents(cents)
        scores[cadre_id] = value
    return scores


# ---------------------------------------------------------------------------- history (历史殿堂)

def score_years(session: Session, cadre_id: int) -> list[int]:
    """The years in which a cadre has ledger entries, newest first."""
    table = PointTally.__table__
    return list(session.scalars(select(table.c.year).where(table.c.cadre_id == cadre_id).distinct()
                                .order_by(table.c.year.desc())))


def history(session: Session, cadre_id: int, before_year: int) -> list[CadreScore]:
    """The hall of history (历史殿堂): the cadre's scores of every year before ``before_year``, newest first."""
    table = PointTally.__table__
    raw: dict[int, dict[str, int]] = defaultdict(dict)
    facts: dict[int, dict[str, int]] = defaultdict(dict)
    for year, category, cents, entries in session.execute(
            select(table.c.year, table.c.category, table.c.cents, table.c.entries)
            .where(table.c.cadre_id == cadre_id, table.c.year < before_year)):
        raw[year][category], facts[year][category] = cents, entries
    return [_score(cadre_id, year, raw[year], facts[year]) for year in sorted(raw, reverse=True)]


def rebuild_tallies(session: Session, year: int | None = None, categories: Iterable[str] | None = None) -> int:
    """Recompute ``point_tally`` from the live ledger (all years or one, all categories or some).

    Set-based (one DELETE, one INSERT … SELECT … GROUP BY): the repair tool, and the way bulk
    backfills bring the tally up to date.  Returns the number of tally rows rebuilt.
    """
    tally, ledger = PointTally.__table__, PointEntry.__table__
    clear = delete(tally)
    source = (select(ledger.c.year, ledger.c.cadre_id, ledger.c.category,
                     func.sum(func.round(ledger.c.points * 100)).cast(Integer), func.count())
              .where(ledger.c.revoked_at.is_(None))
              .group_by(ledger.c.year, ledger.c.cadre_id, ledger.c.category))
    count = select(func.count()).select_from(tally)
    if year is not None:
        clear, source, count = (clear.where(tally.c.year == year), source.where(ledger.c.year == year),
                                count.where(tally.c.year == year))
    if categories is not None:
        chosen = list(categories)
        clear, source, count = (clear.where(tally.c.category.in_(chosen)), source.where(ledger.c.category.in_(chosen)),
                                count.where(tally.c.category.in_(chosen)))
    session.execute(clear)
    session.execute(tally.insert().from_select(["year", "cadre_id", "category", "cents", "entries"], source))
    return session.scalar(count)
