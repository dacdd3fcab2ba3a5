"""Youth satisfaction (青年满意度): the 1–5 star ratings youth give cadres, for the monthly bulletin.

The youth-voice and micro-wish processes end with the youth's rating of the answer or of the
fulfilled wish; their service task ``record_satisfaction`` writes it here, once per instance.
:func:`satisfaction_summary` rolls a month's ratings up over an organisation's subtree.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from engine.models import Base

from .models import Cadre, Organisation, User, Youth
from .organisations import in_subtree
from .spot_checks import month_window
from .wishes import valid_rating

SOURCES = ("youth_voice", "micro_wish")


class SatisfactionRating(Base):
    """One youth's rating of one answered question or fulfilled wish."""

    __tablename__ = "satisfaction_rating"
    __table_args__ = (UniqueConstraint("source", "source_id"),
                      Index("ix_satisfaction_rating_rated_at", "rated_at"),
                      Index("ix_satisfaction_rating_cadre", "cadre_id", "rated_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(16))      # youth_voice / micro_wish
    source_id: Mapped[str] = mapped_column(String(64))   # the process instance rated
    youth_id: Mapped[int | None] = mapped_column(ForeignKey("youth.id"))
    cadre_id: Mapped[int | None] = mapped_column(ForeignKey("cadre.id"))  # None when staff (a pool coordinator) served
    rated_username: Mapped[str | None] = mapped_column(String(64))        # who answered or fulfilled
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    stars: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(String(500))
    rated_at: Mapped[datetime]


@dataclass(frozen=True)
class SatisfactionSummary:
    """A month's ratings in a subtree: how many, and their average (two decimals; None without ratings)."""

    count: int
    average: Decimal | None


def record_rating(session: Session, *, source: str, source_id: str, youth_username: str | None,
                  rated_username: str | None, stars, comment: str | None, organisation_code: str | None,
                  now: datetime) -> SatisfactionRating | None:
    """Store a rating (idempotent per source and instance); ``None`` when there is no valid rating.

    The rating counts for the rated cadre's organisation, or, when the one who served is not a
    cadre (a coordinator of a wish pool), for ``organisation_code`` (where they served).
    """
    if source not in SOURCES:
        raise ValueError(f"未知的评价来源 {source!r} / source must be one of {', '.join(SOURCES)}")
    number = valid_rating(stars)
    if number is None:
        return None
    existing = session.scalar(select(SatisfactionRating).where(SatisfactionRating.source == source,
                                                               SatisfactionRating.source_id == str(source_id)))
    if existing is not None:
        return existing
    cadre = None
    if rated_username:
        cadre = session.scalar(select(Cadre).join(User, User.id == Cadre.user_id)
                               .where(User.username == rated_username))
    youth_id = None
    if youth_username:
        youth_id = session.scalar(select(Youth.id).join(User, User.id == Youth.user_id)
                                  .where(User.username == youth_username))
    org_id = cadre.organisation_id if cadre is not None else None
    if org_id is None and organisation_code:
        org_id = session.scalar(select(Organisation.id).where(Organisation.code == organisation_code))
    if org_id is None:
        raise ValueError(f"无法确定评价所属组织 / no organisation for the rating of {source} {source_id}")
    row = SatisfactionRating(source=source, source_id=str(source_id), youth_id=youth_id,
                             cadre_id=cadre.id if cadre else None, rated_username=rated_username,
                             organisation_id=org_id, stars=number, comment=(comment or "")[:500] or None,
                             rated_at=now)
    session.add(row)
    session.flush()
    return row


def satisfaction_summary(session: Session, organisation: Organisation, month: str | date) -> SatisfactionSummary:
    """Count and average stars of the ratings given in ``month`` (Beijing time) in ``organisation``'s subtree."""
    start, end = month_window(month)
    count, total = session.execute(
        select(func.count(), func.coalesce(func.sum(SatisfactionRating.stars), 0))
        .join(Organisation, Organisation.id == SatisfactionRating.organisation_id)
        .where(SatisfactionRating.rated_at >= start, SatisfactionRating.rated_at < end,
               in_subtree(Organisation.path, organisation.path))).one()
    average = (Decimal(int(total)) / count).quantize(Decimal("0.01"), ROUND_HALF_UP) if count else None
    return SatisfactionSummary(count=int(count), average=average)
